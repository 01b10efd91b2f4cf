// Fuzz target: the chip config loader (arch::parseChipConfig, configs/chips/*.json). Any bytes
// give a chip whose every numeric key lies in its declared range (chip_schema.h) and that
// survives chipToConfigJson and a second parse unchanged, or a user's error.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "fuzz_json.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  auto chip = arch::parseChipConfig(textOf(data, size), "fuzz-chip.json");
  if (!chip) {
    expectUserError(chip.status());
    return 0;
  }
  arch::ChipConfig copy = *chip;
  for (const arch::detail::Field& f : arch::detail::chipFields(copy)) {
    const double value = std::visit([](auto* p) { return static_cast<double>(*p); }, f.ref);
    require(f.spec.inRange(value), std::string(f.spec.path) + " is outside " + f.spec.expected());
  }
  const double peak = chip->peakBf16FlopsPerCore();
  require(std::isfinite(peak) && peak > 0, "the bf16 peak is not a positive finite number");
  const std::string written = arch::chipToConfigJson(*chip);
  auto again = arch::parseChipConfig(written, "fuzz-chip-written.json");
  if (!again)
    fuzzFail("chipToConfigJson wrote a chip its parser refuses: " + again.status().toString());
  require(arch::chipToConfigJson(*again) == written, "a written chip reads back differently");
  (void)arch::describeChip(*chip);
  (void)arch::chipToJson(*chip);
  return 0;
}
