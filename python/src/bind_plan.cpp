// Python bindings of the planner (submodule trnsim._trnsim.plan): one training step (and,
// with `tokens`, the whole run; with `search`, the best parallelism) of a model on a system,
// as the very dict `trnsim plan --json` prints (plan::planToJson; docs/plan.md).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_model.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/plan/plan_json.h"
#include "trnsim/plan/report.h"
#include "trnsim/plan/run.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

[[noreturn]] void raise(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kConfig:
    case ErrorCode::kParse:
    case ErrorCode::kUnsupported:
      throw py::value_error(s.toString());
    default:
      throw std::runtime_error(s.toString());
  }
}
template <class T>
T unwrap(Expected<T> e) {
  if (!e.hasValue()) raise(e.status());
  return std::move(e).value();
}

plan::Recompute recomputeOf(const std::string& s) {
  if (s == "none") return plan::Recompute::kNone;
  if (s == "selective") return plan::Recompute::kSelective;
  if (s == "full") return plan::Recompute::kFull;
  throw py::value_error("recompute must be 'none', 'selective' or 'full', not '" + s + "'");
}
plan::Precision precisionOf(const std::string& s) {
  if (s == "bf16") return plan::Precision::kBf16;
  if (s == "fp8") return plan::Precision::kFp8;
  throw py::value_error("precision must be 'bf16' or 'fp8', not '" + s + "'");
}

}  // namespace

void bindPlan(py::module_& m) {
  auto sub = m.def_submodule("plan", "The planner: step time, memory, cost of training runs");
  sub.def("builtin_models", &plan::builtinModelNames,
          "Names of the models built into trnsim (configs/models/*.json).");
  sub.def(
      "estimate",
      [](const std::string& modelName, const std::string& systemName, uint64_t chips,
         uint64_t globalBatch, uint32_t seq, std::optional<uint32_t> tp, std::optional<uint32_t> pp,
         std::optional<uint32_t> dp, std::optional<uint32_t> cp, std::optional<uint32_t> ep,
         std::optional<uint32_t> vpp, std::optional<uint32_t> microbatch, bool sequenceParallel,
         std::optional<uint32_t> zero, std::optional<std::string> recompute,
         std::optional<std::string> precision, std::optional<double> tokens,
         const std::string& compute, bool doSearch, const std::string& objective,
         uint32_t threads, const std::string& computeModel) {
        const arch::SystemConfig system = unwrap(arch::loadSystem(systemName));
        plan::Workload w;
        w.model = unwrap(plan::loadModel(modelName));
        w.globalBatch = globalBatch;
        w.seq = seq;
        plan::Parallelism p;
        p.tp = tp.value_or(1);
        p.pp = pp.value_or(1);
        p.cp = cp.value_or(1);
        p.ep = ep.value_or(1);
        p.vpp = vpp.value_or(1);
        p.microbatch = microbatch.value_or(1);
        p.sequenceParallel = sequenceParallel;
        p.zero = zero.value_or(1);
        if (recompute) p.recompute = recomputeOf(*recompute);
        if (precision) p.precision = precisionOf(*precision);
        const uint64_t ranks = chips * system.accel.ranksPerChip;
        if (dp.value_or(0) != 0) {
          p.dp = *dp;
        } else if (!doSearch) {  // the ranks left by tp * pp * cp
          const uint64_t other = uint64_t(p.tp) * p.pp * p.cp;
          if (other == 0 || ranks % other != 0)
            throw py::value_error("tp * pp * cp = " + std::to_string(other) +
                                  " does not divide the " + std::to_string(ranks) + " ranks of " +
                                  std::to_string(chips) + " chips; pass dp= or change the degrees");
          p.dp = uint32_t(ranks / other);
        }
        plan::Objective obj = plan::Objective::kTime;
        if (objective == "cost")
          obj = plan::Objective::kCost;
        else if (objective == "energy")
          obj = plan::Objective::kEnergy;
        else if (objective != "time")
          throw py::value_error("objective must be 'time', 'cost' or 'energy', not '" + objective +
                                "'");
        std::unique_ptr<plan::ComputeModel> cm;
        if (compute == "roofline") {
          cm = unwrap(plan::makeRooflineComputeModel(system));
        } else if (compute == "simulated") {
          cm = unwrap(plan::makeSimulatedComputeModel(system));
        } else if (compute != "auto") {
          throw py::value_error("compute must be 'auto', 'roofline' or 'simulated', not '" +
                                compute + "'");
        }
        plan::PlannerOptions plannerOptions;
        if (computeModel == "kernels")
          plannerOptions.computeModel = plan::ComputeModelKind::kKernels;
        else if (computeModel != "compiled")
          throw py::value_error("compute_model must be 'compiled' or 'kernels', not '" +
                                computeModel + "'");
        plan::PlanReport report;
        report.workload = w;
        report.tokens = tokens.value_or(0);
        report.objective = obj;
        plan::SystemPlan& sp = report.primary;
        sp.system = system.name;
        sp.accelerator = system.accel.name;
        sp.chips = chips;
        sp.ranks = ranks;
        Status failed;
        {
          py::gil_scoped_release release;  // a simulated compute model times kernels
          failed = [&]() -> Status {
            TRNSIM_ASSIGN_OR_RETURN(
                plan::Planner planner,
                cm ? plan::Planner::create(system, chips, std::move(cm), plan::PlanTuning{})
                   : plan::Planner::create(system, chips, plannerOptions));
            if (doSearch) {
              plan::SearchOptions so;
              so.objective = obj;
              so.fixed = p;
              so.fixTp = tp.has_value();
              so.fixPp = pp.has_value();
              so.fixDp = dp.value_or(0) != 0;
              so.fixCp = cp.has_value();
              so.fixEp = ep.has_value();
              so.fixVpp = vpp.has_value();
              so.fixMicrobatch = microbatch.has_value();
              so.fixRecompute = recompute.has_value();
              so.fixZero = zero.has_value();
              so.fixPrecision = true;  // bf16 unless given, as the CLI
              so.threads = threads;
              TRNSIM_ASSIGN_OR_RETURN(plan::SearchResult sr, plan::search(planner, w, so));
              sp.step = sr.best;
              sp.search = std::move(sr);
            } else {
              TRNSIM_ASSIGN_OR_RETURN(sp.step, planner.estimate(w, p));
            }
            if (tokens) {
              TRNSIM_ASSIGN_OR_RETURN(plan::RunEstimate run,
                                      plan::estimateRun(planner, sp.step, *tokens));
              sp.run = std::move(run);
            }
            return Status();
          }();
        }
        if (!failed.isOk()) raise(failed);
        return py::module_::import("json").attr("loads")(plan::planToJson(report, -1));
      },
      py::arg("model"), py::arg("system"), py::arg("chips"), py::arg("global_batch"),
      py::arg("seq"), py::kw_only(), py::arg("tp") = py::none(), py::arg("pp") = py::none(),
      py::arg("dp") = py::none(), py::arg("cp") = py::none(), py::arg("ep") = py::none(),
      py::arg("vpp") = py::none(), py::arg("microbatch") = py::none(),
      py::arg("sequence_parallel") = true, py::arg("zero") = py::none(),
      py::arg("recompute") = py::none(), py::arg("precision") = py::none(),
      py::arg("tokens") = py::none(), py::arg("compute") = "auto", py::arg("search") = false,
      py::arg("objective") = "time", py::arg("threads") = 0, py::arg("compute_model") = "compiled",
      "The plan of `model` on `chips` chips of `system`, as the dict `trnsim plan --json` "
      "prints (docs/plan.md): step_time_s, tokens_per_s, model/hardware_tflops_per_chip, mfu, "
      "hfu, memory_per_chip_gib, fits, breakdown{...}, memory_gib{...}, parallelism{...} and, "
      "with tokens=, steps, time_to_train_days, cost_usd, energy_mwh, goodput, ... Degrees not "
      "given are 1 (dp: the ranks left by tp*pp*cp); with search=True they are searched "
      "(objective time, cost or energy) and the given ones fixed. compute: auto (simulated for "
      "Trainium systems, roofline otherwise), roofline or simulated (the kernel composition "
      "with a fresh model). compute_model (with compute='auto'): on Trainium systems, "
      "'compiled' times each layer's compiled graphs (the default, as `trnsim plan`), "
      "'kernels' composes per-kernel times; the result's compute_model key says which.");

  py::class_<plan::ComputeModel>(sub, "ComputeModel",
                                 "How long one rank takes for a layer's operations (the "
                                 "planner's compute model for one system)")
      .def_property_readonly("name",
                             [](const plan::ComputeModel& c) { return std::string(c.name()); })
      .def(
          "matmul_seconds",
          [](const plan::ComputeModel& c, uint64_t rows, uint64_t cols, uint64_t inner,
             uint64_t batch, const std::string& precision) {
            return c.matmulSeconds(plan::MatmulShape{rows, cols, inner, batch},
                                   precisionOf(precision));
          },
          py::arg("m"), py::arg("n"), py::arg("k"), py::arg("batch") = 1,
          py::arg("precision") = "bf16", "C[m, n] = A[m, k] @ B[k, n], `batch` times")
      .def(
          "attention_forward_seconds",
          [](const plan::ComputeModel& c, uint64_t batch, uint64_t heads, uint64_t kvHeads,
             uint64_t seq, uint64_t headDim, bool causal, const std::string& precision) {
            return c.attentionForwardSeconds(
                plan::AttentionShape{batch, heads, kvHeads, seq, seq, headDim, causal},
                precisionOf(precision));
          },
          py::arg("batch"), py::arg("heads"), py::arg("kv_heads"), py::arg("seq"),
          py::arg("head_dim"), py::arg("causal") = true, py::arg("precision") = "bf16")
      .def("memory_bound_seconds", &plan::ComputeModel::memoryBoundSeconds, py::arg("bytes"));
  sub.def(
      "compute_model",
      [](const std::string& systemName, const std::string& kind) {
        const arch::SystemConfig system = unwrap(arch::loadSystem(systemName));
        if (kind == "roofline") return unwrap(plan::makeRooflineComputeModel(system));
        if (kind == "simulated") return unwrap(plan::makeSimulatedComputeModel(system));
        if (kind != "auto")
          throw py::value_error("kind must be 'auto', 'roofline' or 'simulated', not '" + kind +
                                "'");
        return unwrap(plan::makeComputeModel(system));
      },
      py::arg("system"), py::arg("kind") = "auto",
      "The planner's compute model of a system (per rank: on Trainium a logical NeuronCore)");
}
