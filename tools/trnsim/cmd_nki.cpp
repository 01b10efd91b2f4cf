// `trnsim nki run SCRIPT [ARGS...]`: NKI kernels are Python, so the command hands the script to
// the Python front end (trnsim.nki.compat, which makes `nki` and `neuronxcc.nki` resolve to
// trnsim) in the interpreter installed beside this executable.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <vector>

#include "commands.h"

namespace trnsim::cli {

int nkiRunCommand(const NkiRunArgs& args) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  std::string python = "python3";
  for (const char* name : {"python", "python3"}) {
    const fs::path candidate = self.parent_path() / name;
    if (!ec && fs::exists(candidate)) {
      python = candidate.string();
      break;
    }
  }
  std::vector<std::string> argvStrings = {python, "-m", "trnsim.nki.compat", args.script};
  argvStrings.insert(argvStrings.end(), args.args.begin(), args.args.end());
  std::vector<char*> argv;
  for (auto& a : argvStrings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  execvp(argv[0], argv.data());
  return printError(fmt::format("cannot start '{}' to run {}: {}; install trnsim with `make` so "
                                "its Python environment sits beside the trnsim executable",
                                python, args.script, std::strerror(errno)));
}

}  // namespace trnsim::cli
