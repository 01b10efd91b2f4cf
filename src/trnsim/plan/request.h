#pragma once
// One `trnsim plan` request as the CLI (tools/trnsim/cmd_plan.cpp) and Python
// (trnsim.plan.estimate) make it: the degrees given and not given, whether to search, the
// systems to compare, the report file. Both front ends build a PlanRequest and call
// planRequest(), so they plan the same way.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_model.h"
#include "trnsim/plan/report.h"
#include "trnsim/plan/run.h"
#include "trnsim/support/status.h"

namespace trnsim::plan {

/// The ranges of a request's numbers, checked in one place (validateRequest) for the CLI and
/// Python alike: wide enough for any real run, narrow enough that every figure the planner
/// computes stays finite and its counts exact (docs/plan.md, "Options and their ranges").
inline constexpr uint64_t kMaxChips = uint64_t{1} << 24;        ///< 16,777,216
inline constexpr uint64_t kMaxGlobalBatch = uint64_t{1} << 40;  ///< sequences per step
inline constexpr uint32_t kMaxSeq = uint32_t{1} << 30;          ///< tokens per sequence
inline constexpr uint32_t kMaxDegree = uint32_t{1} << 30;       ///< tp, pp, dp, ..., microbatch
inline constexpr uint32_t kMaxThreads = 4096;                   ///< search threads
/// A step longer than this (about 32 years) comes from a rate typed far too small in a system
/// config, never from a real run; past it a plan is refused, naming the part that grew.
inline constexpr double kMaxStepSeconds = 1e9;
// Tokens and the reliability options: kMaxTokens, kMaxStragglerSigma, ... in run.h.

/// Makes the compute model of a system (overrides the planner's own choice).
using ComputeModelFactory =
    std::function<Expected<std::unique_ptr<ComputeModel>>(const arch::SystemConfig&)>;

struct PlanRequest {
  Workload workload;
  arch::SystemConfig system;
  uint64_t chips = 0;
  /// Degrees: nullopt = not given (searched, or 1 and dp = the ranks left without a search).
  std::optional<uint32_t> tp, pp, dp, cp, ep, vpp, microbatch;
  /// Recipe: nullopt = not given (searched; ZeRO 1 and selective recomputation otherwise).
  std::optional<uint32_t> zero;
  std::optional<Recompute> recompute;
  /// The rest of the recipe, kept for every system planned (the search never changes it):
  /// precision (bf16 unless fp8 is asked for), sequence parallelism and every other field that
  /// is not a degree. Its degrees, zero and recompute are ignored (the fields above).
  Parallelism recipe;
  /// nullopt: search when no degree is given (the CLI's default); true: search the degrees
  /// not given, keeping those given; false: plan the given degrees.
  std::optional<bool> search;
  Objective objective = Objective::kTime;
  uint32_t threads = 0;  ///< search threads; 0 = every core
  double tokens = 0;     ///< > 0: the whole run (days, cost, energy, goodput)
  /// Other systems to plan the same run on: "SYSTEM" or "SYSTEM:CHIPS" (items may hold
  /// several, comma-separated). Their degrees are searched; the recipe carries over.
  std::vector<std::string> compare;
  bool goodputCurves = false;  ///< goodput against scale per system (always with compare)
  ReliabilityModel reliability;
  /// The reliability options as given (--straggler-sigma, --chip-mtbf-hours,
  /// --restart-seconds); nullopt: the system's figure or the default. They replace
  /// `reliability`'s fields.
  std::optional<double> stragglerSigma, chipMtbfHours, restartSeconds;
  PlannerOptions plannerOptions;
  ComputeModelFactory computeModel;  ///< null: the planner's default for each system
};

/// Whether the request searches (given `search`, or no degree given).
bool searches(const PlanRequest& request);

/// Checks every number of a request before anything is planned: sizes and degrees in their
/// ranges (kMax* above), tokens, dropout and the reliability options finite and in range.
/// Errors (kInvalidArgument) name the option ("--tokens", "--straggler-sigma"), the value, the
/// range and what to do. planRequest() calls it first.
Status validateRequest(const PlanRequest& request);

/// Checks that every figure of one system's plan that is printed (step time and its parts,
/// throughput, MFU, memory; steps, days, cost, energy, goodput) is a finite number in its
/// range, so no plan prints inf, nan or null with success. An error names the figure and the
/// input that made it so (the system's rates, the model's size). `system` is the plan's system,
/// `workload` what it plans.
Status checkPlanFigures(const SystemPlan& plan, const arch::SystemConfig& system,
                        const Workload& workload);

/// The plan of a request: the primary system, the comparisons (a comparison that fails is
/// reported in its SystemPlan's error, not returned) and the goodput curves. Errors name the
/// option at fault ("--tp", "--compare", ...).
Expected<PlanReport> planRequest(const PlanRequest& request);

/// One comparison target.
struct CompareTarget {
  std::string system;
  uint64_t chips = 0;  ///< 0 = comparableChips()
};
/// "dgx-h100" or "dgx-h100:2048"; items may hold several, comma-separated. Errors are at
/// "--compare" and show the form to write.
Expected<std::vector<CompareTarget>> parseCompareTargets(const std::vector<std::string>& items);

/// Whether the HTML report can be written to `path` (its folder exists, the file can be
/// created or overwritten), checked before a search that may take minutes. Leaves no file
/// behind. Errors are at "--report" and say what to do.
Status checkReportPath(const std::string& path);
/// Writes planToHtml(report) to `path`; errors at "--report".
Status writeReport(const std::string& path, const PlanReport& report);

}  // namespace trnsim::plan
