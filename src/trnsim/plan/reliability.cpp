// The whole run without the step model: tokens -> steps -> wall time, with checkpoints,
// failures and stragglers (docs/plan.md, "The whole run", has every formula used here).

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "trnsim/plan/run.h"

namespace trnsim::plan {

namespace {

constexpr double kSecondsPerHour = 3600.0;
constexpr double kSecondsPerDay = 86400.0;
constexpr double kJoulesPerMwh = 3.6e9;

double standardNormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

uint64_t nodesOf(const arch::SystemConfig& system, uint64_t chips) {
  uint64_t perNode = std::max<uint32_t>(system.chipsPerNode, 1);
  return (chips + perNode - 1) / perNode;
}

/// Every figure of a finished run is a finite number (goodput in [0, 1]); otherwise an error
/// naming the figure and the inputs it came from, never a run printed as inf or nan.
Status checkRunFigures(const RunEstimate& run, const arch::SystemConfig& system) {
  const std::string systemText =
      system.sourceFile.empty() ? fmt::format("system '{}'", system.name)
                                : fmt::format("system '{}' ({})", system.name, system.sourceFile);
  const std::pair<const char*, double> figures[] = {
      {"compute days", run.computeDays},
      {"time to train (days)", run.timeToTrainDays},
      {"cost (USD)", run.costUsd},
      {"energy (MWh)", run.energyMwh},
      {"straggler slowdown", run.stragglerSlowdown},
      {"checkpoint write time (s)", run.checkpointWriteS},
      {"expected interruptions", run.expectedInterruptions},
  };
  for (const auto& [name, value] : figures) {
    if (std::isfinite(value) && value >= 0) continue;
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("the run's {} is not a finite number ({}): {:g} steps of {:g} s "
                    "on {}; check its rates and bandwidths, or give fewer --tokens",
                    name, value, static_cast<double>(run.steps), run.step.stepTimeS, systemText),
        "--tokens");
  }
  if (!(run.goodput >= 0 && run.goodput <= 1))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("the run's goodput is {}, not a fraction in [0, 1], on {}; check "
                              "its reliability and checkpoint_gbps_per_node",
                              run.goodput, systemText),
                  "--system");
  return Status::ok();
}

}  // namespace

double dalyIntervalSeconds(double checkpointWriteS, double jobMtbfS) {
  if (checkpointWriteS <= 0) return 0;
  if (checkpointWriteS >= jobMtbfS / 2) return jobMtbfS;
  return std::sqrt(2.0 * checkpointWriteS * jobMtbfS) - checkpointWriteS;
}

double inverseNormalCdf(double p) {
  if (!(p > 0)) return -std::numeric_limits<double>::infinity();
  if (!(p < 1)) return std::numeric_limits<double>::infinity();
  // Bisection on the CDF (erfc is accurate in both tails), then two Newton steps.
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-13; ++i) {
    double mid = 0.5 * (lo + hi);
    if (standardNormalCdf(mid) < p) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  double x = 0.5 * (lo + hi);
  for (int i = 0; i < 2; ++i) {
    double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
    if (pdf < 1e-300) break;
    x -= (standardNormalCdf(x) - p) / pdf;
  }
  return x;
}

double expectedMaxStandardNormal(uint64_t n) {
  if (n <= 1) return 0;
  double dn = static_cast<double>(n);
  return inverseNormalCdf((dn - 0.375) / (dn + 0.25));
}

double stragglerSlowdown(uint64_t chips, double sigma) {
  if (sigma <= 0 || chips <= 1) return 0;
  return std::expm1(sigma * expectedMaxStandardNormal(chips));
}

Status checkReliability(const ReliabilityModel& r) {
  // {value, option, low, high, what 0 (or a negative value) means}
  struct Item {
    double value;
    const char* option;
    double high;
    const char* unit;
  };
  const Item items[] = {
      {r.chipMtbfHours, "--chip-mtbf-hours", kMaxChipMtbfHours, "chip-hours"},
      {r.restartSeconds, "--restart-seconds", kMaxRestartSeconds, "s"},
      {r.checkpointBytes, "reliability.checkpointBytes", kMaxCheckpointBytes, "bytes"},
      {r.stragglerSlowdown, "reliability.stragglerSlowdown", kMaxStragglerSlowdown,
       "(fraction of a step)"},
      {r.usdPerNodeHour, "reliability.usdPerNodeHour", kMaxUsdPerNodeHour, "USD"},
  };
  for (const Item& item : items) {
    if (std::isfinite(item.value) && item.value >= 0 && item.value <= item.high) continue;
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a number in [0, {:g}] {} (0: the default)", item.value,
                              item.high, item.unit),
                  item.option);
  }
  if (!std::isfinite(r.stragglerSigma) || r.stragglerSigma > kMaxStragglerSigma)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a log-sigma in [0, {:g}] (0.01: 1% per-chip jitter)",
                              r.stragglerSigma, kMaxStragglerSigma),
                  "--straggler-sigma");
  return Status::ok();
}

Expected<ReliabilityEstimate> estimateReliability(const arch::SystemConfig& system, uint64_t chips,
                                                  double checkpointBytes,
                                                  const ReliabilityModel& reliability) {
  if (chips == 0)
    return Status(ErrorCode::kInvalidArgument, "chips must be at least 1", "reliability");
  TRNSIM_RETURN_IF_ERROR(checkReliability(reliability));
  if (!(checkpointBytes >= 0) || !std::isfinite(checkpointBytes))
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("checkpoint bytes must be a finite number >= 0, got {}", checkpointBytes),
        "reliability");
  double chipMtbfH = reliability.chipMtbfHours > 0          ? reliability.chipMtbfHours
                     : system.reliability.chipMtbfHours > 0 ? system.reliability.chipMtbfHours
                                                            : kLlama3ChipMtbfHours;
  double restartS = reliability.restartSeconds > 0          ? reliability.restartSeconds
                    : system.reliability.restartSeconds > 0 ? system.reliability.restartSeconds
                                                            : kDefaultRestartSeconds;
  ReliabilityEstimate r;
  r.jobMtbfHours = chipMtbfH / static_cast<double>(chips);
  r.restartS = restartS;
  if (checkpointBytes > 0) {
    if (!(system.checkpointGbpsPerNode > 0))
      return Status(ErrorCode::kConfig,
                    fmt::format("system '{}' has no checkpoint storage bandwidth; add "
                                "checkpoint_gbps_per_node to its config",
                                system.name),
                    system.sourceFile.empty() ? system.name : system.sourceFile);
    double bytesPerS =
        system.checkpointGbpsPerNode * 1e9 * static_cast<double>(nodesOf(system, chips));
    r.checkpointWriteS = checkpointBytes / bytesPerS;
    r.restoreS = r.checkpointWriteS;  // read back at the same per-node storage bandwidth
  }
  double mtbfS = r.jobMtbfHours * kSecondsPerHour;
  r.intervalS = dalyIntervalSeconds(r.checkpointWriteS, mtbfS);
  // Work between checkpoints tau costs tau + delta of wall time; an interruption (rate 1/M)
  // loses on average half a segment plus the restart and the restore:
  //   T = W (1 + delta / tau) + (T / M) L  ->  T / W = (1 + delta / tau) / (1 - L / M).
  double overhead = r.intervalS > 0 ? 1.0 + r.checkpointWriteS / r.intervalS : 1.0;
  r.lostPerInterruptionS = 0.5 * (r.intervalS + r.checkpointWriteS) + r.restartS + r.restoreS;
  double progress = 1.0 - r.lostPerInterruptionS / mtbfS;
  if (progress <= 0) {
    r.wallPerUsefulTime = std::numeric_limits<double>::infinity();
    r.goodput = 0;
  } else {
    r.wallPerUsefulTime = overhead / progress;
    r.goodput = 1.0 / r.wallPerUsefulTime;
  }
  return r;
}

Expected<RunEstimate> estimateRunWith(const arch::SystemConfig& system, uint64_t chips,
                                      double tokensPerStep, const StepEstimate& step, double tokens,
                                      const ReliabilityModel& reliability) {
  if (!(tokens > 0) || !(tokens <= kMaxTokens))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("tokens must be a number in (0, {:g}], got {}", kMaxTokens, tokens),
                  "--tokens");
  if (!(step.stepTimeS > 0) || !std::isfinite(step.stepTimeS))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("the step time must be positive, got {} s", step.stepTimeS), "step");
  if (!(tokensPerStep > 0)) tokensPerStep = step.tokensPerS * step.stepTimeS;
  if (!(tokensPerStep > 0))
    return Status(ErrorCode::kInvalidArgument,
                  "the workload has no tokens per step (global batch and seq are 0)", "workload");

  RunEstimate run;
  run.step = step;
  run.tokens = tokens;
  run.chips = chips;
  run.nodes = nodesOf(system, chips);
  run.system = system.name;
  // A step count past 2^53 is no longer exact in a double, and past 2^64 a cast would wrap
  // (1e26 tokens used to give 0 steps): refuse it rather than print a wrong count.
  const double steps = std::ceil(tokens / tokensPerStep);
  if (!(steps <= 9007199254740992.0))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{:g} tokens at {:g} tokens per step are {:g} steps, more than the "
                              "2^53 the planner counts exactly; give fewer tokens or a larger "
                              "global batch",
                              tokens, tokensPerStep, steps),
                  "--tokens");
  run.steps = static_cast<uint64_t>(steps);
  double usefulS = static_cast<double>(run.steps) * step.stepTimeS;
  run.computeDays = usefulS / kSecondsPerDay;

  // Stragglers: only the compute part varies from chip to chip; the rest (communication,
  // bubble) is already paced by the slowest participant in the step model.
  double sigma =
      reliability.stragglerSigma < 0 ? kDefaultStragglerSigma : reliability.stragglerSigma;
  run.stragglerSlowdown = reliability.stragglerSlowdown > 0 ? reliability.stragglerSlowdown
                                                            : stragglerSlowdown(chips, sigma);
  double computePart = step.breakdown.compute + step.breakdown.recompute;
  if (!(computePart > 0)) computePart = step.stepTimeS;
  double workS = static_cast<double>(run.steps) *
                 (step.stepTimeS + run.stragglerSlowdown * std::min(computePart, step.stepTimeS));

  run.checkpointBytes = reliability.checkpointBytes;
  TRNSIM_ASSIGN_OR_RETURN(ReliabilityEstimate rel,
                          estimateReliability(system, chips, run.checkpointBytes, reliability));
  run.mtbfHours = rel.jobMtbfHours;
  run.checkpointWriteS = rel.checkpointWriteS;
  run.checkpointIntervalS = rel.intervalS;
  run.restoreS = rel.restoreS;
  run.restartS = rel.restartS;
  run.lostPerInterruptionS = rel.lostPerInterruptionS;
  if (!std::isfinite(rel.wallPerUsefulTime)) {
    run.note = fmt::format(
        "the job fails every {:.3g} h on average, sooner than it can restart, restore and redo "
        "lost work ({:.3g} h): it never finishes; use fewer chips or faster checkpoint storage",
        rel.jobMtbfHours, rel.lostPerInterruptionS / kSecondsPerHour);
    run.goodput = 0;
    return run;  // times, cost and energy stay 0: undefined
  }
  double wallS = workS * rel.wallPerUsefulTime;
  run.timeToTrainDays = wallS / kSecondsPerDay;
  run.goodput = usefulS / wallS;
  run.expectedInterruptions = wallS / (rel.jobMtbfHours * kSecondsPerHour);
  run.energyMwh = static_cast<double>(chips) * system.accel.powerWatts * wallS / kJoulesPerMwh;
  if (reliability.usdPerNodeHour > 0) {
    run.priced = true;
    run.usdPerNodeHour = reliability.usdPerNodeHour;
    run.costUsd = static_cast<double>(run.nodes) * run.usdPerNodeHour * wallS / kSecondsPerHour;
  }
  TRNSIM_RETURN_IF_ERROR(checkRunFigures(run, system));
  return run;
}

Expected<double> parseTokenCount(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  auto bad = [&] {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' is not a token count; write e.g. 15T, 300B, 2.5e12 or 40M",
                              std::string(text)),
                  "--tokens");
  };
  if (s.empty()) return bad();
  double scale = 1;
  switch (std::toupper(static_cast<unsigned char>(s.back()))) {
    case 'K':
      scale = 1e3;
      break;
    case 'M':
      scale = 1e6;
      break;
    case 'B':
    case 'G':
      scale = 1e9;
      break;
    case 'T':
      scale = 1e12;
      break;
    case 'P':
      scale = 1e15;
      break;
    default:
      break;
  }
  if (scale != 1) s.remove_suffix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || !(value > 0) || !std::isfinite(value))
    return bad();
  const double tokens = value * scale;
  if (!(tokens <= kMaxTokens))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' is {:g} tokens, more than the {:g} the planner accepts (the "
                              "largest training runs are near 2e13); give fewer tokens",
                              std::string(text), tokens, kMaxTokens),
                  "--tokens");
  return tokens;
}

}  // namespace trnsim::plan
