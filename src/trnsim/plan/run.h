#pragma once
// The whole run (tokens -> steps -> days, dollars, MWh, with failures and checkpoints) and the
// search for the best parallelism.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trnsim/plan/estimate.h"

namespace trnsim::plan {

/// Reliability defaults from the Llama 3 report's 54-day, 16,384-GPU run
/// (../shared/reference/cluster.md: 419 unexpected interruptions -> ~50.7k chip-hours MTBF).
struct ReliabilityModel {
  double chipMtbfHours = 0;       ///< per chip; 0 = the system's override or the default
  double restartSeconds = 0;      ///< per interruption, before recomputing lost work
  double checkpointBytes = 0;     ///< 0 = weights + optimizer state of the model
  double stragglerSlowdown = 0;   ///< mean extra step time fraction from stragglers
};

struct RunEstimate {
  StepEstimate step;
  double tokens = 0;
  uint64_t steps = 0;
  double computeDays = 0;        ///< steps * step time, no failures
  double timeToTrainDays = 0;    ///< with checkpoints, failures and restarts
  double costUsd = 0;
  double energyMwh = 0;
  double goodput = 0;            ///< computeDays / timeToTrainDays
  double checkpointIntervalS = 0;  ///< Young/Daly optimum
  double checkpointWriteS = 0;
  double expectedInterruptions = 0;
  double mtbfHours = 0;          ///< of the whole job
  double usdPerNodeHour = 0;
};

Expected<RunEstimate> estimateRun(const Planner& planner, const StepEstimate& step,
                                  double tokens, const ReliabilityModel& reliability = {});

enum class Objective : uint8_t { kTime, kCost, kEnergy };

struct SearchOptions {
  Objective objective = Objective::kTime;
  /// Degrees the user fixed (0 or unset = searched).
  Parallelism fixed;
  bool fixTp = false, fixPp = false, fixDp = false, fixCp = false, fixEp = false, fixVpp = false,
       fixMicrobatch = false, fixRecompute = false, fixZero = false, fixPrecision = false;
  uint32_t threads = 0;  ///< 0 = every core
};

struct SearchResult {
  StepEstimate best;
  uint64_t evaluated = 0;
  uint64_t fitting = 0;
  std::vector<StepEstimate> top;  ///< the best few, best first
};

Expected<SearchResult> search(const Planner& planner, const Workload& w,
                              const SearchOptions& options);

}  // namespace trnsim::plan
