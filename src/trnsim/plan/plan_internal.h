#pragma once
// Internals of the plan layer shared by model_config.cpp, estimate.cpp, memory.cpp and
// compute_roofline.cpp: small JSON helpers (did-you-mean, typed reads) and the execution
// model's tuning constants (configs/plan/execution.json). Not a public header.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trnsim/plan/estimate.h"
#include "trnsim/support/status.h"

namespace trnsim::plan::detail {

/// The model JSON files built into the library (generated from configs/models/*.json).
const std::vector<std::pair<std::string_view, std::string_view>>& builtinModelFiles();
/// The planner's tuning JSON files built into the library (configs/plan/*.json).
const std::vector<std::pair<std::string_view, std::string_view>>& builtinPlanFiles();
/// The text of configs/plan/<stem>.json as built in; an internal error when it is missing.
Expected<std::string_view> builtinPlanFile(std::string_view stem);

/// " (did you mean 'x'?)" for the closest of `candidates` when it is close enough, else "".
std::string didYouMean(std::string_view key, const std::vector<std::string>& candidates);

/// A tuning file (configs/plan/*.json): every key but "description" is
/// {"value": number, "source": "non-empty"}; returns key -> value. Errors name origin and key.
Expected<std::map<std::string, double>> parseTuningFile(std::string_view text,
                                                        const std::string& origin);
/// values[key], or an internal error naming the file and key when the file lacks it.
Expected<double> tuningValue(const std::map<std::string, double>& values, const std::string& key,
                             const std::string& origin);

/// Constants of the execution model that are not hardware facts (configs/plan/execution.json).
struct ExecutionTuning {
  double moeImbalance = 1.0;           ///< busiest expert's tokens / mean, for EP compute and a2a
  double gradBytesPerParam = 4;        ///< Megatron's fp32 main_grad buffer
  double gradReduceBytesPerParam = 2;  ///< bytes per parameter on the wire in the DP reduction
  double dpBucketParams = 40e6;        ///< gradient bucket (the exposed tail of the DP reduction)
  double optimizerBytesPerParam = 30;  ///< HBM traffic of one Adam update per parameter
  double fixedBufferBytes = 0;         ///< per rank: framework workspace, comm buffers
  double tpOverlap = 0;                ///< fraction of TP collectives hidden under compute
  double stepOverheadS = 0;            ///< per step (data loading, logging, launch)
  double normBytesPerElem = 2;         ///< activations are bf16 in HBM
};

/// The tuning constants from configs/plan/execution.json (built in; parsed once).
const ExecutionTuning& executionTuning();

/// Per-rank sizes of one training step for a validated workload and parallelism (the
/// quantities memory.cpp and estimate.cpp share).
struct RankShape {
  uint64_t microbatches = 0;         ///< per step per pipeline (global batch / (dp * microbatch))
  uint32_t layersPerRank = 0;        ///< layers of the busiest stage: ceil(layers / pp)
  uint64_t tokensPerMicrobatch = 0;  ///< microbatch * seq / cp on this rank (before SP split)
  double denseParamsPerRank = 0;     ///< parameters replicated over dp*cp (worst stage)
  double expertParamsPerRank = 0;    ///< parameters replicated over dp*cp/ep (worst stage)
};

/// The pipeline-stage rule, shared by a fixed plan and the search: layers need not divide
/// evenly over pp (Megatron-LM's uneven stages; the busiest stage gets ceil(layers / pp)), but
/// every stage, and every interleaved chunk (pp * vpp), needs at least one layer. Errors are
/// at "parallelism.pp" or "parallelism.vpp".
Status checkPipelineStages(const ModelConfig& m, uint32_t pp, uint32_t vpp);
/// Checks the degrees against the workload and the rank count; errors name the degree.
Status validateParallelism(const Workload& w, const Parallelism& p, uint64_t ranks);
/// The per-rank shape of a validated configuration.
RankShape rankShape(const Workload& w, const Parallelism& p);
/// Memory per RANK (the caller multiplies by ranks per chip).
MemoryBreakdown memoryPerRank(const Workload& w, const Parallelism& p, const RankShape& r);

/// Parameters of one transformer layer (attention + MLP or MoE), split by kind.
struct LayerParams {
  double attention = 0;  ///< QKV + output projection + norms
  double dense = 0;      ///< MLP of a dense layer, or shared experts + router of a MoE layer
  double experts = 0;    ///< all routed experts of a MoE layer
};
LayerParams layerParams(const ModelConfig& m, bool moeLayer);
/// Whether layer `i` (0-based) is a MoE layer.
inline bool isMoeLayer(const ModelConfig& m, uint32_t i) {
  return m.experts > 1 && i >= m.denseLayers;
}

/// How many of the layers [first, last) are dense and how many MoE (isMoeLayer), counted in
/// O(1): the dense layers come first, so a model's size never costs a loop over its layers.
struct LayerCounts {
  uint64_t dense = 0;
  uint64_t moe = 0;
};
LayerCounts layerCounts(const ModelConfig& m, uint64_t first, uint64_t last);
/// The pipeline stages whose parameters can be the largest (rankShape's busiest stage), in
/// increasing order: the first and last (they hold the embeddings), the stage where the dense
/// layers end and its neighbours, and the first stage holding ceil(layers / pp) layers on
/// either side of it. Every other stage holds the same layers as one of these, so the busiest
/// stage is found in O(1) instead of a loop over pp stages and all layers.
std::vector<uint32_t> candidateBusiestStages(const ModelConfig& m, uint32_t pp);

}  // namespace trnsim::plan::detail
