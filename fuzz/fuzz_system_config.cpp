// Fuzz target: the system config loader (arch::parseSystemConfig, configs/systems/*.json). Any
// bytes give a system that keeps the loader's rules (positive finite rates, a scale-up domain
// of whole nodes within the scale-out network, fp32 no faster than bf16) and prints, or a
// user's error.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz_json.h"
#include "trnsim/arch/system_config.h"

namespace {

bool positive(double v) { return std::isfinite(v) && v > 0; }
bool nonNegative(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  auto loaded = arch::parseSystemConfig(textOf(data, size), "fuzz-system.json");
  if (!loaded) {
    expectUserError(loaded.status());
    return 0;
  }
  const arch::SystemConfig& s = *loaded;
  const arch::AcceleratorConfig& a = s.accel;
  require(a.ranksPerChip >= 1, "accel.ranks_per_chip < 1");
  require(positive(a.peakTflopsBf16) && nonNegative(a.peakTflopsFp8) &&
              positive(a.peakTflopsFp32) && positive(a.memoryGbps) && positive(a.powerWatts),
          "an accel rate is not a positive finite number");
  require(a.peakTflopsFp32 <= a.peakTflopsBf16 * (1 + 1e-9), "fp32 is faster than bf16");
  require(a.memoryBytes >= 1, "accel.memory_bytes < 1");
  require(s.chipsPerNode >= 1, "chips_per_node < 1");
  for (const arch::FabricDim& d : s.scaleUp) {
    require(d.size >= 1 && positive(d.linkGbps) && nonNegative(d.hopLatencyNs),
            "a scale_up dimension has a zero size or a bad rate");
  }
  const uint64_t domain = s.chipsPerDomain();
  require(domain >= 1 && domain <= 1000000, "the scale-up domain is outside 1..1,000,000 chips");
  require(domain % s.chipsPerNode == 0, "a scale-up domain is not a whole number of nodes");
  require(s.scaleOut.maxChips >= domain, "scale_out.max_chips is below one scale-up domain");
  require(s.scaleOut.rails >= 1 && s.scaleOut.rails <= s.chipsPerNode,
          "scale_out.rails is outside 1..chips_per_node");
  require(positive(s.scaleOut.nicGbpsPerChip) && nonNegative(s.scaleOut.hopLatencyNs) &&
              std::isfinite(s.scaleOut.oversubscription) && s.scaleOut.oversubscription >= 1,
          "a scale_out rate is not a finite number in range");
  require(positive(s.checkpointGbpsPerNode), "checkpoint_gbps_per_node is not positive");
  require(nonNegative(s.reliability.chipMtbfHours) && nonNegative(s.reliability.restartSeconds),
          "a reliability figure is negative or not finite");
  (void)arch::systemToJson(s);
  (void)arch::describeSystem(s);
  return 0;
}
