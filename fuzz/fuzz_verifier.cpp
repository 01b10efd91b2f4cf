// Fuzz target: the text parser and the verifier. Any bytes must parse to a program or a
// kParse error; a parsed program goes through the verifier, the printer and the binary
// encoder and decoder.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_chip.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/text.h"
#include "trnsim/isa/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto program = isa::parseProgram(text, "fuzz.tsim");
  if (!program.hasValue()) {
    if (program.status().code() != ErrorCode::kParse) std::abort();
    return 0;
  }
  static const arch::ChipConfig chip = fuzzChip();
  (void)isa::verifyProgram(*program, chip);
  for (size_t i = 0; i < program->instructions.size(); ++i)
    (void)isa::printInstruction(*program, program->instructions[i]);
  auto bytes = isa::encodeProgram(*program);
  auto back = isa::decodeProgram(bytes, "fuzz.bin");
  if (!back.hasValue()) std::abort();
  if (isa::printProgram(*back) != isa::printProgram(*program)) std::abort();
  return 0;
}
