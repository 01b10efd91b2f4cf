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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_compiled.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/plan/plan_json.h"
#include "trnsim/plan/report.h"
#include "trnsim/plan/request.h"
#include "trnsim/plan/run.h"

namespace trnsim::cli {

namespace {

struct PlanArgs {
  std::string model, system;
  uint64_t chips = 0, globalBatch = 0;
  uint32_t seq = 0;
  uint32_t tp = 0, pp = 0, vpp = 0, dp = 0, cp = 0, ep = 0, microbatch = 0, zero = 1;
  std::string recompute = "selective", precision = "bf16", objective = "time";
  std::string computeModel = "compiled", attention = "flash";
  double dropout = 0;
  bool sequenceParallel = true;
  bool search = false;
  std::string tokens;
  std::vector<std::string> compare;
  bool json = false;
  std::string reportPath;
  uint32_t threads = 0;
  double stragglerSigma = 0, chipMtbfHours = 0, restartSeconds = 0;
  // Which options were given (set after parsing).
  CLI::App* cmd = nullptr;
  bool given(const char* name) const { return cmd->count(name) > 0; }
};

plan::Recompute parseRecompute(const std::string& s) {
  return s == "none"   ? plan::Recompute::kNone
         : s == "full" ? plan::Recompute::kFull
                       : plan::Recompute::kSelective;
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
  auto computeModel = plan::parseComputeModelKind(a.computeModel);
  if (!computeModel) return printError(computeModel.status());

  // The planning itself (search or not, comparisons, goodput curves) is plan::planRequest,
  // shared with trnsim.plan.estimate.
  plan::PlanRequest r;
  r.workload.model = std::move(model).value();
  r.workload.globalBatch = a.globalBatch;
  r.workload.seq = a.seq;
  r.system = std::move(system).value();
  r.chips = a.chips;
  auto given = [&](const char* name, uint32_t value) {
    return a.given(name) ? std::optional<uint32_t>(value) : std::nullopt;
  };
  r.tp = given("--tp", a.tp);
  r.pp = given("--pp", a.pp);
  r.dp = given("--dp", a.dp);
  r.cp = given("--cp", a.cp);
  r.ep = given("--ep", a.ep);
  r.vpp = given("--vpp", a.vpp);
  r.microbatch = given("--microbatch", a.microbatch);
  r.zero = given("--zero", a.zero);
  if (a.given("--recompute")) r.recompute = parseRecompute(a.recompute);
  r.recipe.precision = a.precision == "fp8" ? plan::Precision::kFp8 : plan::Precision::kBf16;
  r.recipe.sequenceParallel = a.sequenceParallel;
  auto attention = plan::parseAttention(a.attention);
  if (!attention) return printError(attention.status());
  r.recipe.attention = *attention;
  r.recipe.dropout = a.dropout;
  if (a.search) r.search = true;  // else: searched when no degree is given
  r.objective = *objective;
  r.threads = a.threads;
  if (!a.tokens.empty()) {
    auto t = plan::parseTokenCount(a.tokens);
    if (!t) return printError(t.status());
    r.tokens = *t;
  }
  r.compare = a.compare;
  r.goodputCurves = !a.reportPath.empty();
  // Every number given is range-checked by plan::validateRequest (in planRequest), the same
  // check trnsim.plan.estimate gets; CLI11 only converts the text.
  auto givenReal = [&](const char* name, double value) {
    return a.given(name) ? std::optional<double>(value) : std::nullopt;
  };
  r.stragglerSigma = givenReal("--straggler-sigma", a.stragglerSigma);
  r.chipMtbfHours = givenReal("--chip-mtbf-hours", a.chipMtbfHours);
  r.restartSeconds = givenReal("--restart-seconds", a.restartSeconds);
  r.plannerOptions.computeModel = *computeModel;

  auto report = plan::planRequest(r);
  if (!report) return printError(report.status());
  if (a.json) {
    fmt::print("{}\n", plan::planToJson(*report));
  } else {
    fmt::print("{}", plan::planToText(*report));
  }
  if (!a.reportPath.empty()) {
    if (Status written = plan::writeReport(a.reportPath, *report); !written)
      return printError(written);
    if (!a.json) fmt::print("report written to {}\n", a.reportPath);
  }
  return 0;
}

}  // namespace

Command addPlanCommand(CLI::App& app) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "Plan a training run: parallelism, step time, days, dollars, MWh and goodput.");
  a->cmd = cmd;
  cmd->add_option("--model", a->model, "Model name (configs/models) or a model JSON file")
      ->required();
  cmd->add_option("--system", a->system, "System name (configs/systems) or a system JSON file")
      ->required();
  // Ranges are checked by plan::validateRequest, not here (one check for the CLI and Python).
  cmd->add_option("--chips", a->chips, "Chips (GPUs, TPU chips, Trainium chips)")->required();
  cmd->add_option("--global-batch", a->globalBatch, "Sequences per step")->required();
  cmd->add_option("--seq", a->seq, "Tokens per sequence")->required();
  auto degree = [&](const char* name, uint32_t& v, const char* help) {
    cmd->add_option(name, v, help);
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
  cmd->add_option("--zero", a->zero, "ZeRO stage (3 = FSDP)");
  cmd->add_flag("--sequence-parallel,!--no-sequence-parallel", a->sequenceParallel,
                "Sequence parallelism with tensor parallelism (default on)");
  cmd->add_option("--precision", a->precision,
                  "Matmul precision (default bf16; the search keeps it)")
      ->check(CLI::IsMember({"bf16", "fp8"}));
  cmd->add_option("--attention", a->attention,
                  "Attention core: one fused flash kernel, or materialized scores in HBM "
                  "(Megatron-LM 2021, NeMo on Trn1)")
      ->check(CLI::IsMember({"flash", "materialized"}))
      ->capture_default_str();
  cmd->add_option("--dropout", a->dropout,
                  "Hidden and attention dropout probability (GPT-3-era recipes: 0.1)")
      ->capture_default_str();
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
                  "Log-sigma of per-chip compute time, 0..1 (default 0.01)");
  cmd->add_option("--chip-mtbf-hours", a->chipMtbfHours,
                  "Chip-hours between interruptions (default: the system's, else Llama 3's 50.7k)");
  cmd->add_option("--restart-seconds", a->restartSeconds,
                  "Seconds to detect, reschedule and restart after an interruption");
  return {cmd, [a] { return runPlan(*a); }};
}

}  // namespace trnsim::cli
