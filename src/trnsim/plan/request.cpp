// A plan request (request.h): which degrees are searched, the primary system and the
// comparisons, the goodput curves and the report file. Moved from the CLI so that
// trnsim.plan.estimate plans exactly as `trnsim plan` does.

#include "trnsim/plan/request.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace trnsim::plan {

namespace {

bool anyDegree(const PlanRequest& r) {
  return r.tp || r.pp || r.dp || r.cp || r.ep || r.vpp || r.microbatch;
}

/// The degrees as given (the others 1) and the search's view of them.
SearchOptions searchOptions(const PlanRequest& r) {
  SearchOptions o;
  o.objective = r.objective;
  o.threads = r.threads;
  Parallelism& f = o.fixed;
  f = r.recipe;
  f.tp = r.tp.value_or(1);
  f.pp = r.pp.value_or(1);
  f.cp = r.cp.value_or(1);
  f.dp = r.dp.value_or(1);
  f.ep = r.ep.value_or(1);
  f.vpp = r.vpp.value_or(1);
  f.microbatch = r.microbatch.value_or(1);
  f.zero = r.zero.value_or(1);
  f.recompute = r.recompute.value_or(Recompute::kSelective);
  o.fixTp = r.tp.has_value();
  o.fixPp = r.pp.has_value();
  o.fixCp = r.cp.has_value();
  o.fixDp = r.dp.has_value();
  o.fixEp = r.ep.has_value();
  o.fixVpp = r.vpp.has_value();
  o.fixMicrobatch = r.microbatch.has_value();
  o.fixZero = r.zero.has_value();
  o.fixRecompute = r.recompute.has_value();
  // The precision is the user's choice (bf16 unless fp8 is asked for): the search never trades
  // numerics for speed on its own, so systems compare at the same precision.
  o.fixPrecision = true;
  return o;
}

Expected<Planner> makePlanner(const PlanRequest& r, const arch::SystemConfig& system,
                              uint64_t chips) {
  if (r.computeModel) {
    TRNSIM_ASSIGN_OR_RETURN(std::unique_ptr<ComputeModel> cm, r.computeModel(system));
    return Planner::create(system, chips, std::move(cm), PlanTuning{});
  }
  return Planner::create(system, chips, r.plannerOptions);
}

/// Plans one system: searched (fixed degrees kept) or estimated as given.
Expected<SystemPlan> planSystem(const PlanRequest& r, const arch::SystemConfig& system,
                                uint64_t chips, bool searchIt, const SearchOptions& options) {
  SystemPlan out;
  out.system = system.name;
  out.accelerator = system.accel.name;
  out.chips = chips;
  out.ranks = chips * std::max<uint32_t>(system.accel.ranksPerChip, 1);
  TRNSIM_ASSIGN_OR_RETURN(Planner planner, makePlanner(r, system, chips));
  if (searchIt) {
    TRNSIM_ASSIGN_OR_RETURN(SearchResult result, search(planner, r.workload, options));
    out.step = result.best;
    out.search = std::move(result);
  } else {
    Parallelism p = options.fixed;
    uint64_t used = uint64_t(p.tp) * p.pp * p.cp;
    if (!options.fixDp) {
      if (out.ranks % used)
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("tp * pp * cp = {} does not divide the {} ranks ({} chips x {} "
                                  "ranks per chip)",
                                  used, out.ranks, chips, out.ranks / chips),
                      options.fixTp   ? "--tp"
                      : options.fixPp ? "--pp"
                                      : "--cp");
      p.dp = static_cast<uint32_t>(out.ranks / used);
    } else if (used * p.dp != out.ranks) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("tp * pp * dp * cp = {} but the system has {} ranks ({} chips x "
                                "{} ranks per chip)",
                                used * p.dp, out.ranks, chips, out.ranks / chips),
                    "--dp");
    }
    TRNSIM_ASSIGN_OR_RETURN(StepEstimate step, planner.estimate(r.workload, p));
    out.step = std::move(step);
  }
  // Checked before the run (whose errors would blame --tokens for an infinite step).
  TRNSIM_RETURN_IF_ERROR(checkPlanFigures(out, system, r.workload));
  if (r.tokens > 0) {
    TRNSIM_ASSIGN_OR_RETURN(RunEstimate run,
                            estimateRun(planner, r.workload, out.step, r.tokens, r.reliability));
    out.run = std::move(run);
  }
  return out;
}

}  // namespace

Status validateRequest(const PlanRequest& r) {
  auto outOfRange = [](std::string_view option, auto value, auto low, auto high,
                       std::string_view what) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not in {}..{}; {}", value, low, high, what),
                  std::string(option));
  };
  if (r.chips < 1 || r.chips > kMaxChips)
    return outOfRange("--chips", r.chips, 1, kMaxChips, "give the chips of the whole job");
  if (r.workload.globalBatch < 1 || r.workload.globalBatch > kMaxGlobalBatch)
    return outOfRange("--global-batch", r.workload.globalBatch, 1, kMaxGlobalBatch,
                      "give the sequences per optimizer step");
  if (r.workload.seq < 1 || r.workload.seq > kMaxSeq)
    return outOfRange("--seq", r.workload.seq, 1, kMaxSeq, "give the tokens per sequence");
  const std::pair<const char*, const std::optional<uint32_t>*> degrees[] = {
      {"--tp", &r.tp},
      {"--pp", &r.pp},
      {"--dp", &r.dp},
      {"--cp", &r.cp},
      {"--ep", &r.ep},
      {"--vpp", &r.vpp},
      {"--microbatch", &r.microbatch}};
  for (const auto& [option, degree] : degrees) {
    if (*degree && (**degree < 1 || **degree > kMaxDegree))
      return outOfRange(option, **degree, 1, kMaxDegree,
                        "a degree counts ranks (leave it out to search it)");
  }
  if (r.zero && *r.zero > 3)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a ZeRO stage; give 0, 1, 2 or 3 (3 = FSDP)", *r.zero),
                  "--zero");
  if (r.threads > kMaxThreads)
    return outOfRange("--threads", r.threads, 0, kMaxThreads, "0 uses every core");
  if (!(r.recipe.dropout >= 0 && r.recipe.dropout < 1))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a probability in [0, 1)", r.recipe.dropout), "--dropout");
  if (r.tokens != 0 && !(r.tokens > 0 && r.tokens <= kMaxTokens))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a token count in (0, {:g}]; write e.g. 15T or 2.5e12",
                              r.tokens, kMaxTokens),
                  "--tokens");
  // The reliability options as given: 0 or a negative value would silently mean "the
  // default" in ReliabilityModel, so a given one must be positive (sigma: at least 0).
  auto given = [](std::string_view option, const std::optional<double>& v, double low, bool lowOpen,
                  double high, std::string_view unit) -> Status {
    if (!v) return Status::ok();
    if (std::isfinite(*v) && (lowOpen ? *v > low : *v >= low) && *v <= high) return Status::ok();
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a number in {}{:g}, {:g}] {}", *v, lowOpen ? "(" : "[",
                              low, high, unit),
                  std::string(option));
  };
  TRNSIM_RETURN_IF_ERROR(given("--straggler-sigma", r.stragglerSigma, 0, false, kMaxStragglerSigma,
                               "(the log-sigma of per-chip compute time)"));
  TRNSIM_RETURN_IF_ERROR(
      given("--chip-mtbf-hours", r.chipMtbfHours, 0, true, kMaxChipMtbfHours, "chip-hours"));
  TRNSIM_RETURN_IF_ERROR(
      given("--restart-seconds", r.restartSeconds, 0, true, kMaxRestartSeconds, "s"));
  return checkReliability(r.reliability);
}

Status checkPlanFigures(const SystemPlan& plan, const arch::SystemConfig& system,
                        const Workload& workload) {
  const std::string systemText =
      system.sourceFile.empty() ? fmt::format("system '{}'", system.name)
                                : fmt::format("system '{}' ({})", system.name, system.sourceFile);
  const StepEstimate& e = plan.step;
  const StepBreakdown& b = e.breakdown;
  // Each part of the step with the system keys whose rates set it.
  const char* const compute = "accel.peak_tflops_bf16 and accel.memory_gbps";
  const char* const network = "scale_up.*.link_gbps and scale_out.nic_gbps_per_chip";
  struct Part {
    const char* name;
    double value;
    const char* keys;
  };
  const Part parts[] = {
      {"compute", b.compute, compute},
      {"recompute", b.recompute, compute},
      {"tensor-parallel communication", b.tpExposed, network},
      {"context-parallel communication", b.cpExposed, network},
      {"expert-parallel communication", b.epExposed, network},
      {"data-parallel communication", b.dpExposed, network},
      {"pipeline communication", b.ppExposed, network},
      {"pipeline bubble", b.bubble, compute},
      {"optimizer", b.optimizer, compute},
      {"overlapped communication", b.overlappedComm, network},
  };
  // The part at fault: the first that is not a finite number, else the largest. (A part may
  // be a rounding error below zero, e.g. -3e-21 s of overlapped communication.)
  const Part* worst = nullptr;
  for (const Part& part : parts) {
    if (!std::isfinite(part.value)) {
      worst = &part;
      break;
    }
    if (worst == nullptr || part.value > worst->value) worst = &part;
  }
  const bool badPart = !std::isfinite(worst->value);
  if (badPart || !(std::isfinite(e.stepTimeS) && e.stepTimeS > 0 && e.stepTimeS <= kMaxStepSeconds))
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("the step time is {:.4g} s, not a finite number up to {:g} s (32 "
                    "years): its {} takes {:.4g} s on {} chips of {}; a rate there is "
                    "too small (check {}) or model '{}' ({:.3g} parameters) is far too "
                    "large for them",
                    e.stepTimeS, kMaxStepSeconds, worst->name, worst->value, plan.chips, systemText,
                    worst->keys, workload.model.name, workload.model.totalParams()),
        "--system");
  const MemoryBreakdown& m = e.memory;
  const std::pair<const char*, double> figures[] = {
      {"tokens per second", e.tokensPerS},
      {"model TFLOPS per chip", e.modelTflopsPerChip},
      {"hardware TFLOPS per chip", e.hardwareTflopsPerChip},
      {"MFU", e.mfu},
      {"HFU", e.hfu},
      {"memory per chip", e.memoryPerChipGib},
      {"weights memory", m.weights},
      {"gradient memory", m.gradients},
      {"optimizer memory", m.optimizer},
      {"activation memory", m.activations},
      {"buffer memory", m.buffers},
  };
  for (const auto& [name, value] : figures) {
    if (std::isfinite(value)) continue;
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("the step's {} is not a finite number ({}) on {} (step time {} s); "
                              "check its rates and memory size",
                              name, value, systemText, e.stepTimeS),
                  "--system");
  }
  return Status::ok();
}

bool searches(const PlanRequest& request) { return request.search.value_or(!anyDegree(request)); }

Expected<std::vector<CompareTarget>> parseCompareTargets(const std::vector<std::string>& items) {
  std::vector<CompareTarget> out;
  for (const std::string& list : items) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      std::string item = list.substr(start, comma - start);
      start = comma + 1;
      if (item.empty()) continue;
      CompareTarget t;
      t.system = item;
      if (auto colon = item.rfind(':'); colon != std::string::npos) {
        t.system = item.substr(0, colon);
        std::string count = item.substr(colon + 1);
        bool digits =
            !count.empty() && count.size() <= 12 &&
            std::all_of(count.begin(), count.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) t.chips = std::stoull(count);
        if (!digits || t.chips == 0 || t.system.empty())
          return Status(ErrorCode::kInvalidArgument,
                        fmt::format("{}: '{}' is not a chip count; write SYSTEM or "
                                    "SYSTEM:CHIPS, e.g. dgx-h100:2048",
                                    item, count),
                        "--compare");
      }
      out.push_back(std::move(t));
    }
  }
  return out;
}

Expected<PlanReport> planRequest(const PlanRequest& given) {
  // Every number is checked once here, before any planning (and not by each of the search's
  // candidates); the reliability options as given replace the model's fields.
  TRNSIM_RETURN_IF_ERROR(validateRequest(given));
  PlanRequest r = given;
  if (r.stragglerSigma) r.reliability.stragglerSigma = *r.stragglerSigma;
  if (r.chipMtbfHours) r.reliability.chipMtbfHours = *r.chipMtbfHours;
  if (r.restartSeconds) r.reliability.restartSeconds = *r.restartSeconds;
  TRNSIM_ASSIGN_OR_RETURN(std::vector<CompareTarget> targets, parseCompareTargets(r.compare));
  for (const CompareTarget& t : targets) {
    if (t.chips > kMaxChips)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("{}:{}: more than {} chips; give the chips of the whole job",
                                t.system, t.chips, kMaxChips),
                    "--compare");
  }
  const SearchOptions options = searchOptions(r);

  // Every system is loaded before any planning: a misspelt name fails at once.
  std::vector<arch::SystemConfig> systems = {r.system};
  for (const CompareTarget& t : targets) {
    auto other = arch::loadSystem(t.system);
    if (!other) return other.status().withContext("--compare");
    systems.push_back(std::move(other).value());
  }

  PlanReport report;
  report.workload = r.workload;
  report.tokens = r.tokens;
  report.objective = r.objective;
  TRNSIM_ASSIGN_OR_RETURN(report.primary, planSystem(r, r.system, r.chips, searches(r), options));

  for (size_t i = 0; i < targets.size(); ++i) {
    const arch::SystemConfig* other = &systems[i + 1];
    uint64_t chips =
        targets[i].chips ? targets[i].chips : comparableChips(r.system, r.chips, *other);
    SearchOptions otherOptions;
    otherOptions.objective = r.objective;
    otherOptions.threads = r.threads;
    // The recipe (precision, recomputation, ZeRO, sequence parallelism, every field that is
    // not a degree) carries over; the degrees are searched for the other system's rank count.
    otherOptions.fixed = options.fixed;
    Parallelism& g = otherOptions.fixed;
    g.tp = g.pp = g.dp = g.cp = g.ep = g.vpp = g.microbatch = 1;
    otherOptions.fixPrecision = options.fixPrecision;
    otherOptions.fixRecompute = options.fixRecompute;
    otherOptions.fixZero = options.fixZero;
    auto p = planSystem(r, *other, chips, true, otherOptions);
    if (p) {
      report.compare.push_back(std::move(p).value());
    } else {
      SystemPlan failed;
      failed.system = other->name;
      failed.accelerator = other->accel.name;
      failed.chips = chips;
      failed.error = p.status().toString();
      report.compare.push_back(std::move(failed));
    }
  }

  if (r.goodputCurves || !targets.empty()) {
    double bytes = defaultCheckpointBytes(r.workload.model);
    std::vector<const SystemPlan*> plans = {&report.primary};
    for (const SystemPlan& p : report.compare) plans.push_back(&p);
    for (size_t i = 0; i < systems.size(); ++i) {
      bool seen = false;  // one curve per system (a system compared at two sizes)
      for (const GoodputCurve& c : report.goodput) seen |= c.system == systems[i].name;
      if (seen) continue;
      const StepEstimate& e = plans[i]->step;
      double fraction =
          e.stepTimeS > 0 ? (e.breakdown.compute + e.breakdown.recompute) / e.stepTimeS : 1.0;
      auto curve = goodputCurve(systems[i], goodputChipCounts(systems[i], plans[i]->chips), bytes,
                                fraction, r.reliability);
      // A curve is drawn only when every point is a goodput (the plans above were checked).
      if (curve && std::all_of(curve->points.begin(), curve->points.end(),
                               [](const auto& pt) { return pt.second >= 0 && pt.second <= 1; }))
        report.goodput.push_back(std::move(curve).value());
    }
  }
  return report;
}

Status checkReportPath(const std::string& path) {
  namespace fs = std::filesystem;
  auto error = [&](std::string message) {
    return Status(ErrorCode::kInvalidArgument, std::move(message), "--report");
  };
  if (path.empty()) return error("no file name; give one, e.g. --report plan.html");
  std::error_code ec;
  const fs::path file(path);
  if (fs::is_directory(file, ec))
    return error(fmt::format("{} is a folder; give a file in it, e.g. {}", path,
                             (file / "plan.html").string()));
  const fs::path folder = file.has_parent_path() ? file.parent_path() : fs::path(".");
  if (!fs::is_directory(folder, ec))
    return error(
        fmt::format("cannot write {}: the folder {} does not exist; create it or write "
                    "the report elsewhere",
                    path, folder.string()));
  const bool existed = fs::exists(file, ec);
  {
    // Append mode: an existing report is not truncated by the probe.
    std::ofstream probe(file, std::ios::binary | std::ios::app);
    if (!probe)
      return error(
          fmt::format("cannot write {} (no permission?); choose a path you can write", path));
  }
  if (!existed) fs::remove(file, ec);
  return Status::ok();
}

Status writeReport(const std::string& path, const PlanReport& report) {
  std::ofstream out(path, std::ios::binary);
  out << planToHtml(report);
  out.close();
  if (!out)
    return Status(ErrorCode::kIo, fmt::format("cannot write {}; choose a path you can write", path),
                  "--report");
  return Status::ok();
}

}  // namespace trnsim::plan
