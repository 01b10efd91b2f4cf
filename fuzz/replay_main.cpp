// A stand-in for libFuzzer's main(): feeds each file named on the command line, and every
// regular file inside each directory named there, to LLVMFuzzerTestOneInput once, in sorted
// order. It lets an ordinary (gcc, ASan+UBSan) test build replay a fuzz target's corpus
// without clang's fuzzer runtime. A missing directory counts as an empty corpus. The empty
// input always runs first, so a target is exercised even before it has a corpus.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional in a target, as in libFuzzer.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void runOne(const std::vector<uint8_t>& bytes) {
  // A copy of exactly `size` bytes, so ASan sees any read past the end of the input.
  std::vector<uint8_t> copy(bytes);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);

  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& entry : fs::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: %s does not exist; treating it as an empty corpus\n", argv[i]);
    }
  }
  std::sort(inputs.begin(), inputs.end());

  runOne({});
  for (const auto& path : inputs) {
    std::fprintf(stderr, "replay: %s\n", path.c_str());
    runOne(readFile(path));
  }
  std::printf("replay: %zu inputs ran without a crash\n", inputs.size() + 1);
  return 0;
}
