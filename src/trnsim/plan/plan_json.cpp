// The plan as JSON (docs/plan.md, "JSON output").

#include "trnsim/plan/plan_json.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace trnsim::plan {

namespace {

using nlohmann::json;

constexpr double kGib = 1024.0 * 1024.0 * 1024.0;

/// JSON has no infinity or NaN: those become null.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json parallelismJson(const Parallelism& p) {
  return json{{"tp", p.tp},
              {"pp", p.pp},
              {"dp", p.dp},
              {"cp", p.cp},
              {"ep", p.ep},
              {"vpp", p.vpp},
              {"microbatch", p.microbatch},
              {"zero", p.zero},
              {"recompute", recomputeName(p.recompute)},
              {"sequence_parallel", p.sequenceParallel},
              {"precision", precisionName(p.precision)},
              {"attention", attentionName(p.attention)},
              {"dropout", p.dropout}};
}

json breakdownJson(const StepBreakdown& b) {
  return json{{"compute", num(b.compute)},      {"recompute", num(b.recompute)},
              {"tp_exposed", num(b.tpExposed)}, {"cp_exposed", num(b.cpExposed)},
              {"ep_exposed", num(b.epExposed)}, {"dp_exposed", num(b.dpExposed)},
              {"pp_exposed", num(b.ppExposed)}, {"bubble", num(b.bubble)},
              {"optimizer", num(b.optimizer)},  {"overlapped_comm", num(b.overlappedComm)}};
}

void putStep(json& j, const StepEstimate& e) {
  j["step_time_s"] = num(e.stepTimeS);
  j["tokens_per_s"] = num(e.tokensPerS);
  j["model_tflops_per_chip"] = num(e.modelTflopsPerChip);
  j["hardware_tflops_per_chip"] = num(e.hardwareTflopsPerChip);
  j["mfu"] = num(e.mfu);
  j["hfu"] = num(e.hfu);
  j["memory_per_chip_gib"] = num(e.memoryPerChipGib);
  j["memory_capacity_gib"] = num(e.memoryCapacityGib);
  j["fits"] = e.fits;
  if (!e.why.empty()) j["why"] = e.why;
  j["breakdown"] = breakdownJson(e.breakdown);
  j["memory_gib"] = json{{"weights", num(e.memory.weights / kGib)},
                         {"gradients", num(e.memory.gradients / kGib)},
                         {"optimizer", num(e.memory.optimizer / kGib)},
                         {"activations", num(e.memory.activations / kGib)},
                         {"buffers", num(e.memory.buffers / kGib)}};
  j["parallelism"] = parallelismJson(e.parallelism);
  if (!e.computeModel.empty()) j["compute_model"] = e.computeModel;
  if (!e.computeNote.empty()) j["compute_note"] = e.computeNote;
  j["validation"] = json{{"basis", e.confidence.basis},
                         {"direct", e.confidence.direct},
                         {"error_band", e.confidence.errorBand > 0 ? num(e.confidence.errorBand)
                                                                   : json(nullptr)},
                         {"assumptions", e.confidence.assumptions}};
}

void putRun(json& j, const RunEstimate& r) {
  j["tokens"] = num(r.tokens);
  j["steps"] = r.steps;
  j["compute_days"] = num(r.computeDays);
  bool finishes = r.timeToTrainDays > 0;
  j["time_to_train_days"] = finishes ? num(r.timeToTrainDays) : json(nullptr);
  j["cost_usd"] = r.priced && finishes ? num(r.costUsd) : json(nullptr);
  j["usd_per_node_hour"] = r.priced ? num(r.usdPerNodeHour) : json(nullptr);
  j["nodes"] = r.nodes;
  j["energy_mwh"] = finishes ? num(r.energyMwh) : json(nullptr);
  j["goodput"] = num(r.goodput);
  j["checkpoint_interval_s"] = num(r.checkpointIntervalS);
  j["checkpoint_write_s"] = num(r.checkpointWriteS);
  j["checkpoint_bytes"] = num(r.checkpointBytes);
  j["restore_s"] = num(r.restoreS);
  j["restart_s"] = num(r.restartS);
  j["expected_interruptions"] = num(r.expectedInterruptions);
  j["job_mtbf_hours"] = num(r.mtbfHours);
  j["straggler_slowdown"] = num(r.stragglerSlowdown);
  if (!r.note.empty()) j["note"] = r.note;
}

json searchJson(const SearchResult& s, Objective objective) {
  json top = json::array();
  for (const StepEstimate& e : s.top)
    top.push_back(json{{"parallelism", parallelismJson(e.parallelism)},
                       {"step_time_s", num(e.stepTimeS)},
                       {"mfu", num(e.mfu)},
                       {"memory_per_chip_gib", num(e.memoryPerChipGib)}});
  return json{{"objective", objectiveName(objective)},
              {"candidates", s.candidates},
              {"evaluated", s.evaluated},
              {"fitting", s.fitting},
              {"invalid", s.invalid},
              {"threads", s.threads},
              {"seconds", num(s.seconds)},
              {"reranked", s.reranked},
              {"top", top}};
}

json systemJson(const SystemPlan& p, Objective objective) {
  json j;
  j["system"] = p.system;
  j["accelerator"] = p.accelerator;
  j["chips"] = p.chips;
  j["ranks"] = p.ranks;
  if (!p.error.empty()) {
    j["error"] = p.error;
    return j;
  }
  putStep(j, p.step);
  if (p.run) putRun(j, *p.run);
  if (p.search) j["search"] = searchJson(*p.search, objective);
  return j;
}

}  // namespace

std::string_view recomputeName(Recompute r) {
  switch (r) {
    case Recompute::kNone:
      return "none";
    case Recompute::kSelective:
      return "selective";
    case Recompute::kFull:
      return "full";
  }
  return "?";
}

std::string_view precisionName(Precision p) { return p == Precision::kFp8 ? "fp8" : "bf16"; }

std::string_view attentionName(AttentionImpl a) {
  return a == AttentionImpl::kMaterialized ? "materialized" : "flash";
}

Expected<AttentionImpl> parseAttention(std::string_view name) {
  if (name == "flash") return AttentionImpl::kFlash;
  if (name == "materialized") return AttentionImpl::kMaterialized;
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("'{}': use 'flash' (fused kernel) or 'materialized' (scores in HBM)",
                            name),
                "--attention");
}

std::string planToJson(const PlanReport& report, int indent) {
  json j = systemJson(report.primary, report.objective);
  const Workload& w = report.workload;
  j["model"] = w.model.name;
  j["global_batch"] = w.globalBatch;
  j["seq"] = w.seq;
  if (std::string c = planConclusion(report); !c.empty()) j["conclusion"] = c;
  if (!report.compare.empty()) {
    json c = json::array();
    for (const SystemPlan& p : report.compare) c.push_back(systemJson(p, report.objective));
    j["compare"] = c;
  }
  if (!report.goodput.empty()) {
    json g = json::array();
    for (const GoodputCurve& curve : report.goodput) {
      json pts = json::array();
      for (auto [chips, goodput] : curve.points)
        pts.push_back(json{{"chips", chips}, {"goodput", num(goodput)}});
      g.push_back(json{{"system", curve.system}, {"points", pts}});
    }
    j["goodput_vs_chips"] = g;
  }
  return j.dump(indent);
}

}  // namespace trnsim::plan
