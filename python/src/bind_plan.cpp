// Python bindings of the planner (submodule trnsim._trnsim.plan): one training step (and,
// with `tokens`, the whole run) of a model on a system with a given parallelism, as a dict
// whose keys follow the `trnsim plan --json` output (docs/plan.md).
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
const char* recomputeName(plan::Recompute r) {
  switch (r) {
    case plan::Recompute::kNone:
      return "none";
    case plan::Recompute::kSelective:
      return "selective";
    case plan::Recompute::kFull:
      return "full";
  }
  return "?";
}
plan::Precision precisionOf(const std::string& s) {
  if (s == "bf16") return plan::Precision::kBf16;
  if (s == "fp8") return plan::Precision::kFp8;
  throw py::value_error("precision must be 'bf16' or 'fp8', not '" + s + "'");
}

py::dict parallelismDict(const plan::Parallelism& p) {
  py::dict d;
  d["tp"] = p.tp;
  d["pp"] = p.pp;
  d["dp"] = p.dp;
  d["cp"] = p.cp;
  d["ep"] = p.ep;
  d["vpp"] = p.vpp;
  d["microbatch"] = p.microbatch;
  d["sequence_parallel"] = p.sequenceParallel;
  d["zero"] = p.zero;
  d["recompute"] = recomputeName(p.recompute);
  d["precision"] = p.precision == plan::Precision::kFp8 ? "fp8" : "bf16";
  return d;
}

py::dict stepDict(const plan::StepEstimate& s) {
  py::dict d;
  d["parallelism"] = parallelismDict(s.parallelism);
  d["step_time_s"] = s.stepTimeS;
  d["tokens_per_s"] = s.tokensPerS;
  d["model_tflops_per_chip"] = s.modelTflopsPerChip;
  d["hardware_tflops_per_chip"] = s.hardwareTflopsPerChip;
  d["mfu"] = s.mfu;
  d["hfu"] = s.hfu;
  d["memory_per_chip_gib"] = s.memoryPerChipGib;
  d["memory_capacity_gib"] = s.memoryCapacityGib;
  d["fits"] = s.fits;
  d["why"] = s.why;
  py::dict m;
  m["weights"] = s.memory.weights;
  m["gradients"] = s.memory.gradients;
  m["optimizer"] = s.memory.optimizer;
  m["activations"] = s.memory.activations;
  m["buffers"] = s.memory.buffers;
  m["total"] = s.memory.total();
  d["memory_bytes"] = m;
  const plan::StepBreakdown& b = s.breakdown;
  py::dict bd;
  bd["compute"] = b.compute;
  bd["recompute"] = b.recompute;
  bd["tp_exposed"] = b.tpExposed;
  bd["cp_exposed"] = b.cpExposed;
  bd["ep_exposed"] = b.epExposed;
  bd["dp_exposed"] = b.dpExposed;
  bd["pp_exposed"] = b.ppExposed;
  bd["bubble"] = b.bubble;
  bd["optimizer"] = b.optimizer;
  bd["other"] = b.other;
  bd["overlapped_comm"] = b.overlappedComm;
  d["breakdown_s"] = bd;
  return d;
}

py::dict runDict(const plan::RunEstimate& r) {
  py::dict d;
  d["tokens"] = r.tokens;
  d["steps"] = r.steps;
  d["compute_days"] = r.computeDays;
  d["time_to_train_days"] = r.timeToTrainDays;
  d["cost_usd"] = r.costUsd;
  d["energy_mwh"] = r.energyMwh;
  d["goodput"] = r.goodput;
  d["checkpoint_interval_s"] = r.checkpointIntervalS;
  d["checkpoint_write_s"] = r.checkpointWriteS;
  d["expected_interruptions"] = r.expectedInterruptions;
  d["mtbf_hours"] = r.mtbfHours;
  d["usd_per_node_hour"] = r.usdPerNodeHour;
  return d;
}

}  // namespace

void bindPlan(py::module_& m) {
  auto sub = m.def_submodule("plan", "The planner: step time, memory, cost of training runs");
  sub.def("builtin_models", &plan::builtinModelNames,
          "Names of the models built into trnsim (configs/models/*.json).");
  sub.def(
      "estimate",
      [](const std::string& modelName, const std::string& systemName, uint64_t chips,
         uint64_t globalBatch, uint32_t seq, uint32_t tp, uint32_t pp, uint32_t dp, uint32_t cp,
         uint32_t ep, uint32_t vpp, uint32_t microbatch, bool sequenceParallel, uint32_t zero,
         const std::string& recompute, const std::string& precision, std::optional<double> tokens,
         const std::string& compute) {
        const arch::SystemConfig system = unwrap(arch::loadSystem(systemName));
        plan::Workload w;
        w.model = unwrap(plan::loadModel(modelName));
        w.globalBatch = globalBatch;
        w.seq = seq;
        plan::Parallelism p;
        p.tp = tp;
        p.pp = pp;
        p.cp = cp;
        p.ep = ep;
        p.vpp = vpp;
        p.microbatch = microbatch;
        p.sequenceParallel = sequenceParallel;
        p.zero = zero;
        p.recompute = recomputeOf(recompute);
        p.precision = precisionOf(precision);
        const uint64_t ranks = chips * system.accel.ranksPerChip;
        if (dp == 0) {  // the rest of the ranks
          const uint64_t other = uint64_t(tp) * pp * cp;
          if (other == 0 || ranks % other != 0)
            throw py::value_error("tp * pp * cp = " + std::to_string(other) +
                                  " does not divide the " + std::to_string(ranks) + " ranks of " +
                                  std::to_string(chips) + " chips; pass dp= or change the degrees");
          p.dp = uint32_t(ranks / other);
        } else {
          p.dp = dp;
        }
        std::unique_ptr<plan::ComputeModel> cm;
        if (compute == "roofline") {
          cm = unwrap(plan::makeRooflineComputeModel(system));
        } else if (compute == "simulated") {
          cm = unwrap(plan::makeSimulatedComputeModel(system));
        } else if (compute != "auto") {
          throw py::value_error("compute must be 'auto', 'roofline' or 'simulated', not '" +
                                compute + "'");
        }
        py::dict out;
        {
          Expected<plan::Planner> planner = Status();
          Expected<plan::StepEstimate> step = Status();
          Expected<plan::RunEstimate> run = Status();
          {
            py::gil_scoped_release release;  // a simulated compute model times kernels
            planner = cm ? plan::Planner::create(system, chips, std::move(cm), plan::PlanTuning{})
                         : plan::Planner::create(system, chips);
            if (planner.hasValue()) step = planner->estimate(w, p);
            if (step.hasValue() && tokens) run = plan::estimateRun(*planner, *step, *tokens);
          }
          if (!planner.hasValue()) raise(planner.status());
          if (!step.hasValue()) raise(step.status());
          out["model"] = w.model.name;
          out["system"] = system.name;
          out["chips"] = chips;
          out["global_batch"] = globalBatch;
          out["seq"] = seq;
          out["step"] = stepDict(*step);
          if (tokens) {
            if (!run.hasValue()) raise(run.status());
            out["run"] = runDict(*run);
          }
        }
        return out;
      },
      py::arg("model"), py::arg("system"), py::arg("chips"), py::arg("global_batch"),
      py::arg("seq"), py::kw_only(), py::arg("tp") = 1, py::arg("pp") = 1, py::arg("dp") = 0,
      py::arg("cp") = 1, py::arg("ep") = 1, py::arg("vpp") = 1, py::arg("microbatch") = 1,
      py::arg("sequence_parallel") = true, py::arg("zero") = 1, py::arg("recompute") = "selective",
      py::arg("precision") = "bf16", py::arg("tokens") = py::none(), py::arg("compute") = "auto",
      "One training step of `model` on `chips` chips of `system` with the given parallelism "
      "(dp=0: the ranks left by tp*pp*cp). Returns {model, system, chips, global_batch, seq, "
      "step: {step_time_s, tokens_per_s, mfu, hfu, memory_per_chip_gib, fits, why, "
      "memory_bytes, breakdown_s, parallelism, ...}} and, with tokens=, run: {steps, "
      "time_to_train_days, cost_usd, energy_mwh, goodput, ...}. compute: auto (simulated for "
      "Trainium systems, roofline otherwise), roofline or simulated.");
}
