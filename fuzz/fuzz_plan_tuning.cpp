// Fuzz target: the planner's tuning-file reader (plan::detail::parseTuningFile:
// configs/plan/roofline.json, execution.json, ...). Any bytes give key -> value with every value
// a finite number, or a user's error.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz_json.h"
#include "trnsim/plan/plan_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  auto values = plan::detail::parseTuningFile(textOf(data, size), "fuzz-tuning.json");
  if (!values) {
    expectUserError(values.status());
    return 0;
  }
  for (const auto& [key, value] : *values) {
    require(key != "description", "'description' read as a value");
    require(std::isfinite(value), "'" + key + "' is not a finite number");
  }
  return 0;
}
