#pragma once
// The whole run (tokens -> steps -> days, dollars, MWh, with failures and checkpoints) and the
// search for the best parallelism.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/plan/estimate.h"

namespace trnsim::plan {

/// Reliability defaults from the Llama 3 report's 54-day, 16,384-GPU run
/// (arXiv 2407.21783, Table 5: 419 unexpected interruptions -> ~50.7k chip-hours MTBF;
/// docs/sources.md).
inline constexpr double kLlama3ChipMtbfHours = 54.0 * 24.0 * 16384.0 / 419.0;
/// Detect, reschedule and re-initialize after an interruption when neither the system nor the
/// caller says (an assumption, documented in docs/plan.md; not a measured figure).
inline constexpr double kDefaultRestartSeconds = 600.0;
/// Spread (sigma of log step time) of one chip's compute time around its nominal value when the
/// caller does not say (an assumption: 1% per-chip jitter; docs/plan.md).
inline constexpr double kDefaultStragglerSigma = 0.01;
/// Bytes per parameter of a checkpoint: bf16 weights (2) + fp32 master weights (4) + Adam's two
/// fp32 moments (8).
inline constexpr double kCheckpointBytesPerParam = 14.0;

/// The ranges of the run's inputs (checkReliability, parseTokenCount; docs/plan.md, "Options
/// and their ranges"). More tokens than any training run (Llama 3: 1.5e13) by five orders of
/// magnitude; the step count of the largest stays exact.
inline constexpr double kMaxTokens = 1e18;
inline constexpr double kMaxStragglerSigma = 1.0;  ///< log-sigma: 1 = e-fold per-chip spread
inline constexpr double kMaxChipMtbfHours = 1e18;  ///< 1e15 and up: "never fails"
inline constexpr double kMaxRestartSeconds = 1e9;  ///< as a system's reliability.restart_seconds
inline constexpr double kMaxCheckpointBytes = 1e18;
inline constexpr double kMaxStragglerSlowdown = 10.0;  ///< fraction of a step
inline constexpr double kMaxUsdPerNodeHour = 1e6;      ///< as a price catalog's entries

struct ReliabilityModel {
  double chipMtbfHours = 0;      ///< per chip; 0 = the system's override or the default
  double restartSeconds = 0;     ///< per interruption, before recomputing lost work
  double checkpointBytes = 0;    ///< 0 = weights + optimizer state of the model
  double stragglerSlowdown = 0;  ///< mean extra step time fraction from stragglers
  /// Used when stragglerSlowdown is 0: each chip's compute time per step is lognormal with this
  /// sigma (median = nominal) and the step waits for the slowest chip. < 0 = the default.
  double stragglerSigma = -1;
  /// Price of one node-hour; 0 = from the price catalog `priceCatalog` by system name.
  double usdPerNodeHour = 0;
  std::string priceCatalog = "default";
};

struct RunEstimate {
  StepEstimate step;
  double tokens = 0;
  uint64_t steps = 0;
  double computeDays = 0;      ///< steps * step time, no failures
  double timeToTrainDays = 0;  ///< with checkpoints, failures and restarts
  double costUsd = 0;
  double energyMwh = 0;
  double goodput = 0;              ///< computeDays / timeToTrainDays
  double checkpointIntervalS = 0;  ///< Young/Daly optimum
  double checkpointWriteS = 0;
  double expectedInterruptions = 0;
  double mtbfHours = 0;  ///< of the whole job
  double usdPerNodeHour = 0;
  // Extensions (planrun):
  uint64_t chips = 0;
  uint64_t nodes = 0;
  std::string system;
  double checkpointBytes = 0;
  double restoreS = 0;              ///< reading the checkpoint back after an interruption
  double restartS = 0;              ///< detect + reschedule + re-initialize, per interruption
  double lostPerInterruptionS = 0;  ///< half an interval (+ write) + restart + restore
  double stragglerSlowdown = 0;     ///< fraction added to each step by waiting for the slowest chip
  bool priced = false;              ///< false: no price for this system (costUsd = 0)
  std::string note;                 ///< why a figure is missing or the run cannot finish
};

/// Checks the numbers of `reliability`: each finite and in its range above (0, or a negative
/// straggler sigma, means the default). Errors name the option a field comes from
/// ("--chip-mtbf-hours", "--restart-seconds", "--straggler-sigma") or "reliability.<field>".
Status checkReliability(const ReliabilityModel& reliability);

/// The reliability part of a run on its own (no step time needed): how much of the wall time
/// is useful work at a given scale. Goodput here excludes stragglers.
struct ReliabilityEstimate {
  double jobMtbfHours = 0;
  double checkpointWriteS = 0;
  double restoreS = 0;
  double restartS = 0;
  double intervalS = 0;  ///< Young/Daly optimal work between checkpoints
  double lostPerInterruptionS = 0;
  /// wall time / useful time (>= 1; infinity when failures outpace progress).
  double wallPerUsefulTime = 1;
  double goodput = 1;  ///< 1 / wallPerUsefulTime
};

/// Young/Daly: with checkpoint cost delta and job MTBF M (same unit), the optimal time of work
/// between checkpoints is sqrt(2 delta M) - delta (Daly 2006, first order), or M when
/// delta >= M / 2. Returns 0 when delta is 0 (checkpoint as often as you like).
double dalyIntervalSeconds(double checkpointWriteS, double jobMtbfS);
/// The expected maximum of n independent standard normal variables, by Blom's
/// order-statistics approximation: PhiInv((n - 0.375) / (n + 0.25)). 0 for n <= 1.
double expectedMaxStandardNormal(uint64_t n);
/// The inverse of the standard normal CDF (|error| < 1e-12 for p in (1e-300, 1 - 1e-16)).
double inverseNormalCdf(double p);
/// Mean extra step-time fraction when each of n chips' compute time is lognormal with median 1
/// and log-sigma `sigma` and the step waits for the slowest: exp(sigma * E[max Z]) - 1.
double stragglerSlowdown(uint64_t chips, double sigma);

/// Checkpoint size of a model: totalParams * kCheckpointBytesPerParam.
double defaultCheckpointBytes(const ModelConfig& model);

/// The reliability model of `chips` chips of `system` writing `checkpointBytes` per
/// checkpoint (overrides from `reliability`, then the system, then the defaults above).
Expected<ReliabilityEstimate> estimateReliability(const arch::SystemConfig& system, uint64_t chips,
                                                  double checkpointBytes,
                                                  const ReliabilityModel& reliability = {});

/// The whole run with every input resolved: `tokensPerStep` (0 = step.tokensPerS * step time),
/// reliability.checkpointBytes (0 = no checkpoints) and reliability.usdPerNodeHour (0 = not
/// priced) taken as given. The functions below fill them in and call this.
Expected<RunEstimate> estimateRunWith(const arch::SystemConfig& system, uint64_t chips,
                                      double tokensPerStep, const StepEstimate& step, double tokens,
                                      const ReliabilityModel& reliability);

/// The whole run without a Planner: `step` of workload `w` on `chips` chips of `system`;
/// checkpoint bytes default to defaultCheckpointBytes(w.model), the price to the catalog's.
Expected<RunEstimate> estimateRunFor(const arch::SystemConfig& system, uint64_t chips,
                                     const Workload& w, const StepEstimate& step, double tokens,
                                     const ReliabilityModel& reliability = {});

/// The whole run. Checkpoint bytes (when reliability.checkpointBytes is 0) are derived from the
/// step's per-chip weight and optimizer memory; prefer the overload with the Workload, which
/// uses the model's parameter count.
Expected<RunEstimate> estimateRun(const Planner& planner, const StepEstimate& step, double tokens,
                                  const ReliabilityModel& reliability = {});
Expected<RunEstimate> estimateRun(const Planner& planner, const Workload& w,
                                  const StepEstimate& step, double tokens,
                                  const ReliabilityModel& reliability = {});

/// "15T", "300B", "2.5e12", "40M", "1k" -> tokens in (0, kMaxTokens]. Errors name the text.
Expected<double> parseTokenCount(std::string_view text);

enum class Objective : uint8_t { kTime, kCost, kEnergy };
std::string_view objectiveName(Objective o);  ///< "time", "cost", "energy"
Expected<Objective> parseObjective(std::string_view name);

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
  // Extensions (planrun):
  uint64_t candidates = 0;  ///< configurations enumerated (evaluated == candidates)
  uint64_t invalid = 0;     ///< the step model refused (an error), not counted as fitting
  double seconds = 0;       ///< host wall time of the search
  uint32_t threads = 1;
  /// With compiled layers: the candidates ranked by the kernel composition whose steps were
  /// re-timed with compiled layers before the best was picked (0: no re-timing).
  uint64_t reranked = 0;
  std::string computeModel;  ///< of the top plans: "compiled", "kernels" or "roofline"
};

/// Everything the search needs to know about the system besides the step model.
struct SearchSpace {
  uint64_t chips = 0;
  uint32_t ranksPerChip = 1;
  bool fp8Available = false;
  double usdPerNodeHour = 0;  ///< for Objective::kCost (0: ranks like time)
  uint32_t chipsPerNode = 1;
  double wattsPerChip = 0;  ///< for Objective::kEnergy
  size_t topCount = 5;
};
/// The step model as the search calls it (must be safe to call from several threads).
using StepFunction = std::function<Expected<StepEstimate>(const Workload&, const Parallelism&)>;

/// The candidate parallelisms the search evaluates, in its fixed order: every combination of
/// tp, cp, pp (divisors of the rank count), dp = ranks / (tp cp pp), ep (MoE: divides experts
/// and dp * cp), vpp (layers % (pp vpp) == 0), microbatch (divides globalBatch / dp), recompute,
/// zero, precision (fp8 only where the chip has it), with heads % tp == 0 and
/// seq % (2 cp) == 0 when cp > 1; fixed degrees from `options` only. Sequence parallelism is
/// on where tp > 1 and the tokens per micro-batch per cp rank divide by tp, off elsewhere.
Expected<std::vector<Parallelism>> searchCandidates(const Workload& w, const SearchSpace& space,
                                                    const SearchOptions& options);
/// The objective's score of one estimate (lower is better): seconds, dollars or joules per step.
double objectiveScore(const StepEstimate& e, const SearchSpace& space, Objective objective);
/// The search over an arbitrary step model (the Planner's in search()). Deterministic for any
/// thread count: equal scores are ordered by the candidate's place in searchCandidates().
Expected<SearchResult> searchWith(const StepFunction& step, const Workload& w,
                                  const SearchSpace& space, const SearchOptions& options);

/// The search with the Planner's step model. With compiled layers every candidate is ranked
/// by the kernel composition and the best PlannerOptions::compiledRerank (at least the top
/// count) are re-timed with compiled layers, in parallel, and re-ranked.
Expected<SearchResult> search(const Planner& planner, const Workload& w,
                              const SearchOptions& options);

}  // namespace trnsim::plan
