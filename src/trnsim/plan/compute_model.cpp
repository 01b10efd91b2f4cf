#include "trnsim/plan/compute_model.h"

namespace trnsim::plan {

Expected<std::unique_ptr<ComputeModel>> makeComputeModel(const arch::SystemConfig& system) {
  // Trainium-class chips are timed by the simulator; every other chip by the roofline.
  if (!system.accel.simChip.empty()) return makeSimulatedComputeModel(system);
  return makeRooflineComputeModel(system);
}

}  // namespace trnsim::plan
