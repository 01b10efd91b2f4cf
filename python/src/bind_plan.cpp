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

#include "errors.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_model.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/plan/plan_json.h"
#include "trnsim/plan/report.h"
#include "trnsim/plan/request.h"
#include "trnsim/plan/run.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::check;
using pybind::unwrap;

template <class T>
Expected<T> withContext(Expected<T> e, const char* option) {
  if (!e.hasValue()) return e.status().withContext(option);
  return e;
}

plan::Recompute recomputeOf(const std::string& s) {
  if (s == "none") return plan::Recompute::kNone;
  if (s == "selective") return plan::Recompute::kSelective;
  if (s == "full") return plan::Recompute::kFull;
  throw py::value_error("recompute must be 'none', 'selective' or 'full', not '" + s + "'");
}
/// tokens= as `trnsim plan --tokens` reads it (plan::parseTokenCount): a string, or a number.
double tokensOf(const py::object& tokens) {
  if (py::isinstance<py::str>(tokens))
    return unwrap(plan::parseTokenCount(tokens.cast<std::string>()));
  if (py::isinstance<py::bool_>(tokens) ||
      !(py::isinstance<py::int_>(tokens) || py::isinstance<py::float_>(tokens)))
    throw py::type_error(
        "tokens must be a number or a string such as \"15T\", \"300B\", "
        "\"2.5e12\", not " +
        std::string(py::str(py::type::of(tokens))));
  // Through the CLI's parser so a number is checked exactly as the text would be.
  return unwrap(plan::parseTokenCount(std::string(py::str(py::float_(tokens)))));
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
      "parse_tokens", [](const py::object& tokens) { return tokensOf(tokens); }, py::arg("tokens"),
      "A token count as `trnsim plan --tokens` reads it: \"15T\", \"300B\", \"2.5e12\", \"40M\" "
      "or a number.");
  sub.def(
      "estimate",
      [](const std::string& modelName, const std::string& systemName, uint64_t chips,
         uint64_t globalBatch, uint32_t seq, std::optional<uint32_t> tp, std::optional<uint32_t> pp,
         std::optional<uint32_t> dp, std::optional<uint32_t> cp, std::optional<uint32_t> ep,
         std::optional<uint32_t> vpp, std::optional<uint32_t> microbatch, bool sequenceParallel,
         std::optional<uint32_t> zero, std::optional<std::string> recompute,
         std::optional<std::string> precision, const py::object& tokens, const std::string& compute,
         std::optional<bool> doSearch, const std::string& objective, uint32_t threads,
         const std::string& computeModel, const py::object& compare,
         std::optional<std::string> reportPath, const std::string& attention, double dropout,
         std::optional<double> stragglerSigma, std::optional<double> chipMtbfHours,
         std::optional<double> restartSeconds) {
        // The same request as `trnsim plan` (plan::planRequest): the degrees given are kept,
        // and with none given (and search not False) the parallelism is searched.
        if (reportPath) check(plan::checkReportPath(*reportPath));
        plan::PlanRequest r;
        // Errors name the option, as the CLI's do ("--system: file.json: key ...").
        r.system = unwrap(withContext(arch::loadSystem(systemName), "--system"));
        r.workload.model = unwrap(withContext(plan::loadModel(modelName), "--model"));
        r.workload.globalBatch = globalBatch;
        r.workload.seq = seq;
        r.chips = chips;
        r.tp = tp, r.pp = pp, r.cp = cp, r.ep = ep, r.vpp = vpp, r.microbatch = microbatch;
        if (dp.value_or(0) != 0) r.dp = dp;  // dp=0: the ranks left, as no dp
        r.recipe.sequenceParallel = sequenceParallel;
        r.zero = zero;
        if (recompute) r.recompute = recomputeOf(*recompute);
        if (precision) r.recipe.precision = precisionOf(*precision);
        r.recipe.attention = unwrap(plan::parseAttention(attention));
        r.recipe.dropout = dropout;
        // Checked with every other number by plan::validateRequest, as the CLI's options.
        r.stragglerSigma = stragglerSigma;
        r.chipMtbfHours = chipMtbfHours;
        r.restartSeconds = restartSeconds;
        r.search = doSearch;
        r.objective = unwrap(plan::parseObjective(objective));
        r.threads = threads;
        if (!tokens.is_none()) r.tokens = tokensOf(tokens);
        if (py::isinstance<py::str>(compare)) {
          r.compare = {compare.cast<std::string>()};
        } else if (!compare.is_none()) {
          r.compare = compare.cast<std::vector<std::string>>();
        }
        r.goodputCurves = reportPath.has_value();
        if (compute == "roofline") {
          r.computeModel = [](const arch::SystemConfig& s) {
            return plan::makeRooflineComputeModel(s);
          };
        } else if (compute == "simulated") {
          r.computeModel = [](const arch::SystemConfig& s) {
            return plan::makeSimulatedComputeModel(s);
          };
        } else if (compute != "auto") {
          throw py::value_error("compute must be 'auto', 'roofline' or 'simulated', not '" +
                                compute + "'");
        }
        if (computeModel == "kernels")
          r.plannerOptions.computeModel = plan::ComputeModelKind::kKernels;
        else if (computeModel != "compiled")
          throw py::value_error("compute_model must be 'compiled' or 'kernels', not '" +
                                computeModel + "'");
        std::optional<Expected<plan::PlanReport>> report;
        {
          py::gil_scoped_release release;  // a simulated compute model times kernels
          report.emplace(plan::planRequest(r));
        }
        plan::PlanReport done = unwrap(std::move(*report));
        if (reportPath) check(plan::writeReport(*reportPath, done));
        return py::module_::import("json").attr("loads")(plan::planToJson(done, -1));
      },
      py::arg("model"), py::arg("system"), py::arg("chips"), py::arg("global_batch"),
      py::arg("seq"), py::kw_only(), py::arg("tp") = py::none(), py::arg("pp") = py::none(),
      py::arg("dp") = py::none(), py::arg("cp") = py::none(), py::arg("ep") = py::none(),
      py::arg("vpp") = py::none(), py::arg("microbatch") = py::none(),
      py::arg("sequence_parallel") = true, py::arg("zero") = py::none(),
      py::arg("recompute") = py::none(), py::arg("precision") = py::none(),
      py::arg("tokens") = py::none(), py::arg("compute") = "auto", py::arg("search") = py::none(),
      py::arg("objective") = "time", py::arg("threads") = 0, py::arg("compute_model") = "compiled",
      py::arg("compare") = py::none(), py::arg("report") = py::none(),
      py::arg("attention") = "flash", py::arg("dropout") = 0.0,
      py::arg("straggler_sigma") = py::none(), py::arg("chip_mtbf_hours") = py::none(),
      py::arg("restart_seconds") = py::none(),
      "The plan of `model` on `chips` chips of `system`, as the dict `trnsim plan --json` "
      "prints (docs/plan.md), planned exactly as `trnsim plan` plans: step_time_s, "
      "tokens_per_s, model/hardware_tflops_per_chip, mfu, hfu, memory_per_chip_gib, fits, "
      "breakdown{...}, memory_gib{...}, parallelism{...} and, with tokens= (\"15T\", \"300B\", "
      "\"2.5e12\" or a number), steps, time_to_train_days, cost_usd, energy_mwh, goodput, ... "
      "model: a catalog name, a trnsim model JSON or a Hugging Face config.json. With no "
      "degree given the parallelism is searched (objective time, cost or energy), as the CLI; "
      "attention='flash' or 'materialized' and dropout=p are the recipe's (as --attention, "
      "--dropout); straggler_sigma, chip_mtbf_hours and restart_seconds are the reliability "
      "options (as --straggler-sigma, --chip-mtbf-hours, --restart-seconds; every number is "
      "range-checked as the CLI checks it); "
      "with some given, search=True searches the others (kept fixed), otherwise they are 1 "
      "(dp: the ranks left by tp*pp*cp); search=False never searches. compare=[\"dgx-h100\", "
      "\"tpu-v5p:1024\"] plans the same run on other systems (the result's \"compare\"); "
      "report=\"plan.html\" writes the HTML report (its path is checked first). compute: auto "
      "(simulated for Trainium systems, roofline otherwise), roofline or simulated (the kernel "
      "composition with a fresh model). compute_model (with compute='auto'): on Trainium "
      "systems, 'compiled' times each layer's compiled graphs (the default, as `trnsim plan`), "
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
