// Fuzz target: the binary program loader. Any bytes must decode to a program or a kCorrupt
// error; a decoded program must then survive the verifier and an exact text round trip.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_chip.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/text.h"
#include "trnsim/isa/verify.h"

namespace {

int decodeAndCheck(std::span<const uint8_t> bytes) {
  using namespace trnsim;
  auto program = isa::decodeProgram(bytes, "fuzz.bin");
  if (!program.hasValue()) {
    if (program.status().code() != ErrorCode::kCorrupt) std::abort();
    return 0;
  }
  static const arch::ChipConfig chip = fuzzChip();
  (void)isa::verifyProgram(*program, chip);
  // Decoded programs are structurally sound, so the text form must give them back exactly.
  std::string text = isa::printProgram(*program);
  auto back = isa::parseProgram(text, "fuzz.tsim");
  if (!back.hasValue()) std::abort();
  if (isa::encodeProgram(*back) != isa::encodeProgram(*program)) std::abort();
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  decodeAndCheck(std::span<const uint8_t>(data, size));
  // Mutations almost never keep the checksum right, so also decode a copy whose header
  // (payload length, checksum) is made to match: that reaches the structural checks.
  constexpr size_t kHeader = 32;
  if (size >= kHeader && std::memcmp(data, "TRNSIMPG", 8) == 0) {
    std::vector<uint8_t> fixed(data, data + size);
    uint64_t len = size - kHeader;
    uint64_t sum = trnsim::isa::payloadChecksum(std::span<const uint8_t>(fixed).subspan(kHeader));
    for (int i = 0; i < 8; ++i) {
      fixed[16 + size_t(i)] = uint8_t(len >> (8 * i));
      fixed[24 + size_t(i)] = uint8_t(sum >> (8 * i));
    }
    decodeAndCheck(fixed);
  }
  return 0;
}
