#pragma once
// What `trnsim plan` prints: one plan (a step, optionally the whole run and the search that
// chose it) for a system, plus other systems for comparison and goodput at other scales; as a
// terminal table, JSON (plan_json.h) or one self-contained HTML page with inline SVG plots.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trnsim/plan/run.h"

namespace trnsim::plan {

/// The plan of one system.
struct SystemPlan {
  std::string system;       ///< catalog name ("trn2-ultraserver")
  std::string accelerator;  ///< "Trainium2"
  uint64_t chips = 0;
  uint64_t ranks = 0;
  StepEstimate step;
  std::optional<RunEstimate> run;      ///< with --tokens
  std::optional<SearchResult> search;  ///< when the parallelism was searched
  std::string error;  ///< a comparison system that could not be planned: why (step unset)
};

/// Goodput (useful / wall time, with failures, checkpoints and stragglers) of one system at
/// several chip counts.
struct GoodputCurve {
  std::string system;
  std::vector<std::pair<uint64_t, double>> points;  ///< (chips, goodput)
};

struct PlanReport {
  Workload workload;
  double tokens = 0;  ///< 0: no whole-run figures
  Objective objective = Objective::kTime;
  SystemPlan primary;
  std::vector<SystemPlan> compare;
  std::vector<GoodputCurve> goodput;
};

/// Goodput of `chips` of `system` for each chip count in `chipCounts` (checkpoints of
/// `checkpointBytes`, stragglers slowing `computeFraction` of each step).
Expected<GoodputCurve> goodputCurve(const arch::SystemConfig& system,
                                    const std::vector<uint64_t>& chipCounts, double checkpointBytes,
                                    double computeFraction,
                                    const ReliabilityModel& reliability = {});

/// Chip counts for a goodput curve: the system's unit (a scale-up domain, else a node) times
/// powers of two, up to at least `atLeast` and at most the scale-out network's limit.
std::vector<uint64_t> goodputChipCounts(const arch::SystemConfig& system, uint64_t atLeast);

/// The chip count of `other` comparable to `chips` of `base`: the same aggregate dense BF16
/// peak, rounded (in log scale) to the unit of `other` (its scale-up domain, or a node) times a
/// power of two, within its scale-out limit.
uint64_t comparableChips(const arch::SystemConfig& base, uint64_t chips,
                         const arch::SystemConfig& other);

/// One sentence comparing the primary system with each planned comparison system on time (to
/// train, else per step) and cost, within the validated error bands of their compute models;
/// "" without comparisons.
std::string planConclusion(const PlanReport& report);

/// The terminal table.
std::string planToText(const PlanReport& report);
/// One self-contained HTML page (inline SVG, no scripts or URLs): the step-time breakdown per
/// system, time, cost and energy per system, goodput against scale, the search's top plans.
std::string planToHtml(const PlanReport& report);

}  // namespace trnsim::plan
