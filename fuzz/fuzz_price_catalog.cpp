// Fuzz target: the price catalog loader (arch::parsePriceCatalog, configs/prices/*.json). Any
// bytes give a named catalog whose every price is a positive finite number with a source, or a
// user's error.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz_json.h"
#include "trnsim/arch/system_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  auto catalog = arch::parsePriceCatalog(textOf(data, size), "fuzz-prices.json");
  if (!catalog) {
    expectUserError(catalog.status());
    return 0;
  }
  require(!catalog->name.empty(), "the catalog has no name");
  for (const auto& [system, entry] : catalog->bySystem) {
    require(!system.empty(), "a price for a system with no name");
    require(std::isfinite(entry.usdPerNodeHour) && entry.usdPerNodeHour > 0 &&
                entry.usdPerNodeHour <= 1e6,
            "a price is outside (0, 1e6] USD per node-hour");
    require(!entry.source.empty(), "a price has no source");
  }
  return 0;
}
