// `trnsim plan`: how long, how much and how many chips a training run needs (docs/plan.md).
//
//   trnsim plan --model NAME|model.json --system NAME|system.json --chips N
//               --global-batch SEQUENCES --seq LEN [--tp --pp --vpp --dp --cp --ep --microbatch
//               --recompute none|selective|full --zero 0|1|2|3 --sequence-parallel
//               --precision bf16|fp8] [--search [--objective time|cost|energy]] [--tokens T]
//               [--compare SYSTEM[:CHIPS],...] [--json] [--report FILE]
//               [--compute-model compiled|kernels]
//
// With no parallel degree (tp pp dp cp ep vpp microbatch) and no --search the parallelism is
// searched (objective: time), keeping --precision, --recompute and --zero when given; with some
// degrees and no --search the others take defaults (dp fills the ranks, the rest 1); with
// --search the given degrees are kept and the others searched.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/plan/plan_json.h"
#include "trnsim/plan/report.h"
#include "trnsim/plan/request.h"
#include "trnsim/plan/run.h"

namespace trnsim::cli {

namespace {

using plan::Parallelism;

struct PlanArgs {
  std::string model, system;
  uint64_t chips = 0, globalBatch = 0;
  uint32_t seq = 0;
  uint32_t tp = 0, pp = 0, vpp = 0, dp = 0, cp = 0, ep = 0, microbatch = 0, zero = 1;
  std::string recompute = "selective", precision = "bf16", objective = "time";
  std::string computeModel = "compiled";
  bool sequenceParallel = true;
  bool search = false;
  std::string tokens;
  std::vector<std::string> compare;
  bool json = false;
  std::string reportPath;
  uint32_t threads = 0;
  double stragglerSigma = -1, chipMtbfHours = 0, restartSeconds = 0;
  // Which options were given (set after parsing).
  CLI::App* cmd = nullptr;
  bool given(const char* name) const { return cmd->count(name) > 0; }
};

plan::Recompute parseRecompute(const std::string& s) {
  return s == "none"   ? plan::Recompute::kNone
         : s == "full" ? plan::Recompute::kFull
                       : plan::Recompute::kSelective;
}

/// Plans one system: searched (fixed degrees kept) or estimated as given.
Expected<plan::SystemPlan> planSystem(const PlanArgs& a, const arch::SystemConfig& system,
                                      uint64_t chips, const plan::Workload& w, bool searchIt,
                                      const plan::SearchOptions& options, double tokens,
                                      const plan::ReliabilityModel& reliability) {
  plan::SystemPlan out;
  out.system = system.name;
  out.accelerator = system.accel.name;
  out.chips = chips;
  out.ranks = chips * std::max<uint32_t>(system.accel.ranksPerChip, 1);
  plan::PlannerOptions plannerOptions;
  TRNSIM_ASSIGN_OR_RETURN(plannerOptions.computeModel, plan::parseComputeModelKind(a.computeModel));
  TRNSIM_ASSIGN_OR_RETURN(plan::Planner planner,
                          plan::Planner::create(system, chips, plannerOptions));
  if (searchIt) {
    TRNSIM_ASSIGN_OR_RETURN(plan::SearchResult result, plan::search(planner, w, options));
    out.step = result.best;
    out.search = std::move(result);
  } else {
    Parallelism p = options.fixed;
    uint64_t used = uint64_t(p.tp) * p.pp * p.cp;
    if (!a.given("--dp")) {
      if (out.ranks % used)
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("tp * pp * cp = {} does not divide the {} ranks ({} chips x {} "
                                  "ranks per chip)",
                                  used, out.ranks, chips, out.ranks / chips),
                      a.given("--tp")   ? "--tp"
                      : a.given("--pp") ? "--pp"
                                        : "--cp");
      p.dp = static_cast<uint32_t>(out.ranks / used);
    } else if (used * p.dp != out.ranks) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("tp * pp * dp * cp = {} but the system has {} ranks ({} chips x "
                                "{} ranks per chip)",
                                used * p.dp, out.ranks, chips, out.ranks / chips),
                    "--dp");
    }
    TRNSIM_ASSIGN_OR_RETURN(plan::StepEstimate step, planner.estimate(w, p));
    out.step = std::move(step);
  }
  if (tokens > 0) {
    TRNSIM_ASSIGN_OR_RETURN(plan::RunEstimate run,
                            plan::estimateRun(planner, w, out.step, tokens, reliability));
    out.run = std::move(run);
  }
  return out;
}

int runPlan(PlanArgs& a) {
  // A report that cannot be written fails now, not after a search of minutes.
  if (a.given("--report")) {
    if (Status writable = plan::checkReportPath(a.reportPath); !writable)
      return printError(writable);
  }
  auto model = plan::loadModel(a.model);
  if (!model) return printError(model.status().withContext("--model"));
  auto system = arch::loadSystem(a.system);
  if (!system) return printError(system.status().withContext("--system"));
  auto objective = plan::parseObjective(a.objective);
  if (!objective) return printError(objective.status());
  double tokens = 0;
  if (!a.tokens.empty()) {
    auto t = plan::parseTokenCount(a.tokens);
    if (!t) return printError(t.status());
    tokens = *t;
  }

  plan::Workload w;
  w.model = std::move(model).value();
  w.globalBatch = a.globalBatch;
  w.seq = a.seq;

  plan::SearchOptions options;
  options.objective = *objective;
  options.threads = a.threads;
  Parallelism& f = options.fixed;
  f.tp = a.given("--tp") ? a.tp : 1;
  f.pp = a.given("--pp") ? a.pp : 1;
  f.cp = a.given("--cp") ? a.cp : 1;
  f.dp = a.given("--dp") ? a.dp : 1;
  f.ep = a.given("--ep") ? a.ep : 1;
  f.vpp = a.given("--vpp") ? a.vpp : 1;
  f.microbatch = a.given("--microbatch") ? a.microbatch : 1;
  f.zero = a.zero;
  f.recompute = parseRecompute(a.recompute);
  f.precision = a.precision == "fp8" ? plan::Precision::kFp8 : plan::Precision::kBf16;
  f.sequenceParallel = a.sequenceParallel;
  options.fixTp = a.given("--tp");
  options.fixPp = a.given("--pp");
  options.fixCp = a.given("--cp");
  options.fixDp = a.given("--dp");
  options.fixEp = a.given("--ep");
  options.fixVpp = a.given("--vpp");
  options.fixMicrobatch = a.given("--microbatch");
  options.fixZero = a.given("--zero");
  options.fixRecompute = a.given("--recompute");
  // The precision is the user's choice (bf16 unless --precision fp8): the search never trades
  // numerics for speed on its own, so systems compare at the same precision.
  options.fixPrecision = true;
  // Precision, recomputation and ZeRO are recipe choices, not degrees: alone they do not turn
  // the search off.
  bool anyDegree = options.fixTp || options.fixPp || options.fixCp || options.fixDp ||
                   options.fixEp || options.fixVpp || options.fixMicrobatch;
  bool searchIt = a.search || !anyDegree;

  plan::ReliabilityModel reliability;
  reliability.stragglerSigma = a.stragglerSigma;
  reliability.chipMtbfHours = a.chipMtbfHours;
  reliability.restartSeconds = a.restartSeconds;

  plan::PlanReport report;
  report.workload = w;
  report.tokens = tokens;
  report.objective = *objective;
  auto primary = planSystem(a, *system, a.chips, w, searchIt, options, tokens, reliability);
  if (!primary) return printError(primary.status());
  report.primary = std::move(primary).value();

  std::vector<arch::SystemConfig> systems = {*system};
  for (const std::string& item : a.compare) {
    std::string name = item;
    uint64_t chips = 0;
    if (auto colon = item.rfind(':'); colon != std::string::npos) {
      name = item.substr(0, colon);
      std::string count = item.substr(colon + 1);
      try {
        size_t used = 0;
        chips = std::stoull(count, &used);
        if (used != count.size() || chips == 0) throw std::invalid_argument(count);
      } catch (const std::exception&) {
        return printError(
            fmt::format("--compare {}: '{}' is not a chip count; write "
                        "SYSTEM or SYSTEM:CHIPS, e.g. dgx-h100:2048",
                        item, count));
      }
    }
    auto other = arch::loadSystem(name);
    if (!other) return printError(other.status().withContext("--compare"));
    if (chips == 0) chips = plan::comparableChips(*system, a.chips, *other);
    plan::SearchOptions otherOptions;
    otherOptions.objective = *objective;
    otherOptions.threads = a.threads;
    // The recipe (precision, recomputation, ZeRO, sequence parallelism) carries over; the
    // degrees are searched for the other system's rank count.
    otherOptions.fixed.sequenceParallel = a.sequenceParallel;
    otherOptions.fixed.precision = f.precision;
    otherOptions.fixed.recompute = f.recompute;
    otherOptions.fixed.zero = f.zero;
    otherOptions.fixPrecision = options.fixPrecision;
    otherOptions.fixRecompute = options.fixRecompute;
    otherOptions.fixZero = options.fixZero;
    auto p = planSystem(a, *other, chips, w, true, otherOptions, tokens, reliability);
    if (p) {
      report.compare.push_back(std::move(p).value());
    } else {
      plan::SystemPlan failed;
      failed.system = other->name;
      failed.accelerator = other->accel.name;
      failed.chips = chips;
      failed.error = p.status().toString();
      report.compare.push_back(std::move(failed));
    }
    systems.push_back(std::move(other).value());
  }

  if (!a.reportPath.empty() || !a.compare.empty()) {
    double bytes = plan::defaultCheckpointBytes(w.model);
    std::vector<const plan::SystemPlan*> plans = {&report.primary};
    for (const plan::SystemPlan& p : report.compare) plans.push_back(&p);
    for (size_t i = 0; i < systems.size(); ++i) {
      bool seen = false;  // one curve per system (a system compared at two sizes)
      for (const plan::GoodputCurve& c : report.goodput) seen |= c.system == systems[i].name;
      if (seen) continue;
      const plan::StepEstimate& e = plans[i]->step;
      double fraction =
          e.stepTimeS > 0 ? (e.breakdown.compute + e.breakdown.recompute) / e.stepTimeS : 1.0;
      auto curve =
          plan::goodputCurve(systems[i], plan::goodputChipCounts(systems[i], plans[i]->chips),
                             bytes, fraction, reliability);
      if (curve) report.goodput.push_back(std::move(curve).value());
    }
  }

  if (a.json) {
    fmt::print("{}\n", plan::planToJson(report));
  } else {
    fmt::print("{}", plan::planToText(report));
  }
  if (!a.reportPath.empty()) {
    std::ofstream out(a.reportPath, std::ios::binary);
    out << plan::planToHtml(report);
    out.close();
    if (!out) return printError(fmt::format("--report {}: cannot write the file", a.reportPath));
    if (!a.json) fmt::print("report written to {}\n", a.reportPath);
  }
  return 0;
}

}  // namespace

CommandAction addPlanCommand(CLI::App& app) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "Plan a training run: parallelism, step time, days, dollars, MWh and goodput.");
  a->cmd = cmd;
  cmd->add_option("--model", a->model, "Model name (configs/models) or a model JSON file")
      ->required();
  cmd->add_option("--system", a->system, "System name (configs/systems) or a system JSON file")
      ->required();
  cmd->add_option("--chips", a->chips, "Chips (GPUs, TPU chips, Trainium chips)")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--global-batch", a->globalBatch, "Sequences per step")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--seq", a->seq, "Tokens per sequence")
      ->required()
      ->check(CLI::Range(uint32_t{1}, uint32_t{1} << 30));
  auto degree = [&](const char* name, uint32_t& v, const char* help) {
    cmd->add_option(name, v, help)->check(CLI::Range(uint32_t{1}, uint32_t{1} << 30));
  };
  degree("--tp", a->tp, "Tensor-parallel degree (ranks)");
  degree("--pp", a->pp, "Pipeline-parallel degree");
  degree("--vpp", a->vpp, "Interleaved pipeline stages per rank");
  degree("--dp", a->dp, "Data-parallel degree (default: the ranks left)");
  degree("--cp", a->cp, "Context-parallel degree");
  degree("--ep", a->ep, "Expert-parallel degree (MoE)");
  degree("--microbatch", a->microbatch, "Sequences per micro-batch");
  cmd->add_option("--recompute", a->recompute, "Activation recomputation")
      ->check(CLI::IsMember({"none", "selective", "full"}));
  cmd->add_option("--zero", a->zero, "ZeRO stage (3 = FSDP)")->check(CLI::IsMember({0, 1, 2, 3}));
  cmd->add_flag("--sequence-parallel,!--no-sequence-parallel", a->sequenceParallel,
                "Sequence parallelism with tensor parallelism (default on)");
  cmd->add_option("--precision", a->precision, "Matmul precision (default bf16; the search keeps it)")
      ->check(CLI::IsMember({"bf16", "fp8"}));
  cmd->add_option("--compute-model", a->computeModel,
                  "Trainium compute: compiled layer graphs timed by the simulator, or the "
                  "per-kernel composition (GPUs and TPUs: the roofline either way)")
      ->check(CLI::IsMember({"compiled", "kernels"}))
      ->capture_default_str();
  cmd->add_flag("--search", a->search,
                "Search the degrees not given (the default when none is given)");
  cmd->add_option("--objective", a->objective, "What the search minimises")
      ->check(CLI::IsMember({"time", "cost", "energy"}))
      ->capture_default_str();
  cmd->add_option("--tokens", a->tokens,
                  "Tokens to train on (15T, 300B, 2.5e12): adds days, cost, energy, goodput");
  cmd->add_option("--compare", a->compare,
                  "Other systems to plan the same run on, SYSTEM or SYSTEM:CHIPS (default chips: "
                  "the same dense BF16 peak)")
      ->delimiter(',');
  cmd->add_flag("--json", a->json, "Print JSON instead of the table");
  cmd->add_option("--report", a->reportPath, "Write a self-contained HTML report to this file");
  cmd->add_option("--threads", a->threads, "Search threads (default: every core)");
  cmd->add_option("--straggler-sigma", a->stragglerSigma,
                  "Log-sigma of per-chip compute time (default 0.01)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--chip-mtbf-hours", a->chipMtbfHours,
                  "Chip-hours between interruptions (default: the system's, else Llama 3's 50.7k)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--restart-seconds", a->restartSeconds,
                  "Seconds to detect, reschedule and restart after an interruption")
      ->check(CLI::PositiveNumber);
  return [a] { return runPlan(*a); };
}

}  // namespace trnsim::cli
