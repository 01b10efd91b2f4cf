// The planner's memory model and the checks of a parallel configuration: what one rank holds
// (weights, gradients, optimizer state, activations, buffers) under TP/SP/PP/DP/CP/EP, ZeRO
// and activation recomputation, with Megatron-LM's formulas (Korthikanti et al. 2022,
// arXiv 2205.05198; megatron/training/theoretical_memory_usage.py). docs/plan_model.md.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "trnsim/plan/plan_internal.h"

namespace trnsim::plan::detail {
namespace {

Status degreeError(std::string_view degree, std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message),
                fmt::format("parallelism.{}", degree));
}

}  // namespace

Status checkPipelineStages(const ModelConfig& m, uint32_t pp, uint32_t vpp) {
  if (pp == 0) return degreeError("pp", "must be at least 1");
  if (vpp == 0) return degreeError("vpp", "must be at least 1");
  // Layers need not divide evenly (Megatron-LM's uneven first/last stages): the busiest stage
  // gets ceil(layers / pp).
  if (pp > m.layers) {
    return degreeError("pp", fmt::format("pp ({}) is larger than the model's layers ({}); every "
                                         "pipeline stage needs at least one layer",
                                         pp, m.layers));
  }
  if (vpp > 1) {
    if (pp == 1) return degreeError("vpp", "an interleaved schedule (vpp > 1) needs pp > 1");
    if (uint64_t{pp} * vpp > m.layers) {
      return degreeError("vpp", fmt::format("pp * vpp ({} * {}) is larger than the model's layers "
                                            "({}); every model chunk needs at least one layer",
                                            pp, vpp, m.layers));
    }
  }
  return Status::ok();
}

Status validateParallelism(const Workload& w, const Parallelism& p, uint64_t ranks) {
  const ModelConfig& m = w.model;
  if (m.layers == 0 || m.hidden == 0 || m.heads == 0 || m.ffnHidden == 0 || m.vocab == 0 ||
      m.kvHeads == 0 || m.hidden % m.heads != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "the model has a zero or inconsistent shape (layers, hidden, heads, kv_heads, "
                  "ffn_hidden, vocab); load it with loadModel()",
                  "workload.model");
  }
  if (w.globalBatch == 0) {
    return Status(ErrorCode::kInvalidArgument, "must be at least 1 sequence",
                  "workload.globalBatch");
  }
  if (w.seq == 0)
    return Status(ErrorCode::kInvalidArgument, "must be at least 1 token", "workload.seq");
  const std::pair<const char*, uint32_t> degrees[] = {{"tp", p.tp},
                                                      {"pp", p.pp},
                                                      {"dp", p.dp},
                                                      {"cp", p.cp},
                                                      {"ep", p.ep},
                                                      {"vpp", p.vpp},
                                                      {"microbatch", p.microbatch}};
  for (const auto& [name, value] : degrees) {
    if (value == 0) return degreeError(name, "must be at least 1");
  }
  const uint64_t product = uint64_t{p.tp} * p.pp * p.dp * p.cp;
  if (product != ranks) {
    const uint64_t others = uint64_t{p.tp} * p.pp * p.cp;
    std::string hint = ranks % others == 0
                           ? fmt::format("; with these tp, pp and cp, set dp = {}", ranks / others)
                           : fmt::format("; tp * pp * cp ({}) must divide {}", others, ranks);
    return degreeError("dp", fmt::format("tp * pp * dp * cp = {} * {} * {} * {} = {}, but the job "
                                         "has {} ranks (chips x ranks per chip){}",
                                         p.tp, p.pp, p.dp, p.cp, product, ranks, hint));
  }
  if (m.heads % p.tp != 0) {
    return degreeError("tp",
                       fmt::format("tp ({}) must divide the model's heads ({})", p.tp, m.heads));
  }
  if (m.kvHeads % p.tp != 0 && p.tp % m.kvHeads != 0) {
    return degreeError("tp", fmt::format("tp ({}) must divide kv_heads ({}) or be a multiple of it",
                                         p.tp, m.kvHeads));
  }
  if (m.ffnHidden % p.tp != 0) {
    return degreeError("tp", fmt::format("tp ({}) must divide ffn_hidden ({})", p.tp, m.ffnHidden));
  }
  if (Status stages = checkPipelineStages(m, p.pp, p.vpp); !stages) return stages;
  if (w.globalBatch % p.dp != 0) {
    return degreeError("dp", fmt::format("dp ({}) must divide the global batch ({} sequences)",
                                         p.dp, w.globalBatch));
  }
  if ((w.globalBatch / p.dp) % p.microbatch != 0) {
    return degreeError("microbatch",
                       fmt::format("microbatch ({}) must divide the sequences per data-parallel "
                                   "rank (global batch {} / dp {} = {})",
                                   p.microbatch, w.globalBatch, p.dp, w.globalBatch / p.dp));
  }
  const uint64_t microbatches = w.globalBatch / p.dp / p.microbatch;
  if (p.vpp > 1 && microbatches % p.pp != 0) {
    return degreeError("vpp", fmt::format("the interleaved schedule needs the micro-batches per "
                                          "step ({}) to be a multiple of pp ({}); use vpp = 1 or "
                                          "change the batch",
                                          microbatches, p.pp));
  }
  if (p.cp > 1 && w.seq % (2 * p.cp) != 0) {
    return degreeError("cp", fmt::format("cp ({}) needs the sequence ({}) divisible by 2 * cp "
                                         "(load-balanced causal ring attention)",
                                         p.cp, w.seq));
  }
  if (p.sequenceParallel && p.tp > 1 && (uint64_t{w.seq} * p.microbatch / p.cp) % p.tp != 0) {
    return degreeError("tp", fmt::format("sequence parallelism needs the tokens per micro-batch "
                                         "per cp rank ({}) divisible by tp ({})",
                                         uint64_t{w.seq} * p.microbatch / p.cp, p.tp));
  }
  if (p.ep > 1) {
    if (m.experts <= 1) return degreeError("ep", "expert parallelism (ep > 1) needs a MoE model");
    if ((uint64_t{p.dp} * p.cp) % p.ep != 0) {
      return degreeError(
          "ep", fmt::format("ep ({}) must divide dp * cp ({})", p.ep, uint64_t{p.dp} * p.cp));
    }
    if (m.experts % p.ep != 0) {
      return degreeError("ep",
                         fmt::format("ep ({}) must divide the experts ({})", p.ep, m.experts));
    }
  }
  if (p.zero > 3) return degreeError("zero", fmt::format("must be 0, 1, 2 or 3, got {}", p.zero));
  return Status::ok();
}

LayerCounts layerCounts(const ModelConfig& m, uint64_t first, uint64_t last) {
  const uint64_t denseEnd =
      m.experts > 1 ? std::min<uint64_t>(m.denseLayers, m.layers) : uint64_t{m.layers};
  last = std::max(first, last);
  LayerCounts c;
  c.dense = first < denseEnd ? std::min(last, denseEnd) - first : 0;
  c.moe = (last - first) - c.dense;
  return c;
}

std::vector<uint32_t> candidateBusiestStages(const ModelConfig& m, uint32_t pp) {
  // Stage s holds layers [s * L / pp, (s + 1) * L / pp): floor(L / pp) or that plus one.
  const uint64_t layers = m.layers, stages = std::max<uint32_t>(pp, 1);
  const uint64_t rem = layers % stages;
  const uint64_t denseEnd =
      m.experts > 1 ? std::min<uint64_t>(m.denseLayers, m.layers) : uint64_t{m.layers};
  // The stage holding layer denseEnd (the first MoE layer): the last s with s*L/pp <= denseEnd.
  const uint64_t boundary = denseEnd >= layers || layers == 0
                                ? stages
                                : ((denseEnd + 1) * stages + layers - 1) / layers - 1;
  // The first stage at or after `from` that holds ceil(L / pp) layers: stage s gets the extra
  // layer iff some k in 1..rem has s = ceil(k * pp / rem) - 1 (both factors below 2^32).
  auto firstLongStage = [&](uint64_t from) -> uint64_t {
    if (rem == 0) return stages;
    const uint64_t k = from * rem / stages + 1;
    if (k > rem) return stages;
    return (k * stages + rem - 1) / rem - 1;
  };
  std::vector<uint64_t> picks = {0,
                                 1,
                                 stages - 2,
                                 stages - 1,
                                 boundary - 1,
                                 boundary,
                                 boundary + 1,
                                 firstLongStage(1),
                                 firstLongStage(boundary + 1)};
  std::vector<uint32_t> out;
  for (uint64_t s : picks) {
    if (s < stages) out.push_back(static_cast<uint32_t>(s));  // wrapped or past the end: skipped
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

RankShape rankShape(const Workload& w, const Parallelism& p) {
  const ModelConfig& m = w.model;
  RankShape r;
  r.microbatches = w.globalBatch / p.dp / p.microbatch;
  r.layersPerRank = (m.layers + p.pp - 1) / p.pp;
  r.tokensPerMicrobatch = uint64_t{p.microbatch} * w.seq / p.cp;
  const double embed = static_cast<double>(m.vocab) * m.hidden / p.tp;
  const LayerParams denseLayer = layerParams(m, false), moeLayer = layerParams(m, true);
  double bestTotal = -1;
  // Stages holding the same layers hold the same parameters; the earliest stage of the
  // largest total wins, as a loop over every stage would pick.
  for (uint32_t stage : candidateBusiestStages(m, p.pp)) {
    const LayerCounts c =
        layerCounts(m, uint64_t{stage} * m.layers / p.pp, (uint64_t{stage} + 1) * m.layers / p.pp);
    double dense =
        static_cast<double>(c.dense) * ((denseLayer.attention + denseLayer.dense) / p.tp) +
        static_cast<double>(c.moe) * ((moeLayer.attention + moeLayer.dense) / p.tp);
    double expert = static_cast<double>(c.moe) * (moeLayer.experts / p.tp / p.ep);
    // The first stage holds the input embedding, the last the output layer (a copy of the
    // embedding when tied, kept in sync by an all-reduce as in Megatron-LM).
    if (stage == 0) dense += embed;
    if (stage + 1 == p.pp && (p.pp > 1 || !m.tiedEmbeddings)) dense += embed;
    if (dense + expert > bestTotal) {
      bestTotal = dense + expert;
      r.denseParamsPerRank = dense;
      r.expertParamsPerRank = expert;
    }
  }
  return r;
}

MemoryBreakdown memoryPerRank(const Workload& w, const Parallelism& p, const RankShape& r) {
  const ExecutionTuning& t = executionTuning();
  const ModelConfig& m = w.model;
  const double dpDense = static_cast<double>(p.dp) * p.cp;
  const double dpExpert = dpDense / p.ep;
  const double params = r.denseParamsPerRank + r.expertParamsPerRank;
  const double sharded = r.denseParamsPerRank / dpDense + r.expertParamsPerRank / dpExpert;

  MemoryBreakdown mem;
  mem.weights = 2.0 * (p.zero >= 3 ? sharded : params);
  mem.gradients = t.gradBytesPerParam * (p.zero >= 2 ? sharded : params);
  mem.optimizer = 12.0 * (p.zero >= 1 ? sharded : params);  // fp32 master, Adam m and v

  // Activations of one layer for one micro-batch (Korthikanti et al. 2022, Table 2 and eq. 5:
  // s*b*h*(34 + 5*a*s/h) bytes without parallelism, 34 = 10 + 24 of which the 24 (and the
  // 5as/h of the scores) split over tp, and all of it with sequence parallelism). The MLP's
  // share (16 of the 24 for GELU with ffn = 4h) generalizes to 4*ffn/h, 6*ffn/h for SwiGLU
  // (gate and up outputs, then the product), times the tokens an expert layer sees.
  const double s = static_cast<double>(w.seq) / p.cp;
  const double sbh = s * p.microbatch * m.hidden;
  const double tp = p.tp;
  auto layerActivation = [&](bool moe, Recompute rc) {
    if (rc == Recompute::kFull) return p.sequenceParallel ? 2 * sbh / tp : 2 * sbh;
    double ffn = moe ? m.ffnHidden * (m.topK * t.moeImbalance + m.sharedExperts)
                     : (m.experts > 1 && m.denseFfnHidden ? m.denseFfnHidden : m.ffnHidden);
    double mlp = (m.activation == Activation::kSwiglu ? 6.0 : 4.0) * ffn / m.hidden;
    double scores = rc == Recompute::kNone ? 5.0 * m.heads * s / m.hidden : 0.0;
    if (p.sequenceParallel) return sbh * (18 + mlp + scores) / tp;
    return sbh * (10 + (8 + mlp + scores) / tp);
  };
  const bool anyMoe = m.experts > 1 && m.denseLayers < m.layers;
  const double perLayer = std::max(layerActivation(false, p.recompute),
                                   anyMoe ? layerActivation(true, p.recompute) : 0.0);
  // 1F1B: the first stage keeps the activations of min(pp, micro-batches) micro-batches;
  // the interleaved schedule keeps 1 + (pp-1)/(pp*vpp) times more (Megatron-LM).
  const double inFlight = static_cast<double>(std::min<uint64_t>(p.pp, r.microbatches));
  const double interleave =
      p.vpp > 1 ? 1.0 + (p.pp - 1.0) / (static_cast<double>(p.pp) * p.vpp) : 1.0;
  mem.activations = r.layersPerRank * perLayer * inFlight * interleave;
  if (p.recompute == Recompute::kFull) {
    // The layer being recomputed holds its whole activations during its backward pass.
    mem.activations += std::max(layerActivation(false, Recompute::kNone),
                                anyMoe ? layerActivation(true, Recompute::kNone) : 0.0);
  }
  // The last stage's fp32 logits of one micro-batch (vocab split over tp), plus the fixed
  // framework allowance.
  mem.buffers =
      t.fixedBufferBytes + 4.0 * static_cast<double>(r.tokensPerMicrobatch) * m.vocab / p.tp;
  return mem;
}

}  // namespace trnsim::plan::detail
