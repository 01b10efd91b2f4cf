// The planner's execution model: one training step of a transformer under TP (+SP), PP (1F1B
// or interleaved), DP (ZeRO 0-3), CP and EP, composed from the compute model's per-operation
// times and the fabric's collective times. Megatron-LM's schedule; docs/plan_model.md.

#include "trnsim/plan/estimate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "trnsim/fabric/collective.h"
#include "trnsim/plan/plan_internal.h"

namespace trnsim::plan {
namespace detail {

const ExecutionTuning& executionTuning() {
  static const ExecutionTuning tuning = [] {
    ExecutionTuning t;
    const std::string origin = "<builtin>/configs/plan/execution.json";
    Expected<std::string_view> text = builtinPlanFile("execution");
    if (!text) return t;
    Expected<std::map<std::string, double>> values = parseTuningFile(*text, origin);
    if (!values) return t;
    auto get = [&](const char* key, double& out) {
      auto it = values->find(key);
      if (it != values->end()) out = it->second;
    };
    get("moe_imbalance", t.moeImbalance);
    get("grad_bytes_per_param", t.gradBytesPerParam);
    get("grad_reduce_bytes_per_param", t.gradReduceBytesPerParam);
    get("dp_bucket_params", t.dpBucketParams);
    get("optimizer_bytes_per_param", t.optimizerBytesPerParam);
    get("fixed_buffer_bytes", t.fixedBufferBytes);
    get("tp_overlap", t.tpOverlap);
    get("step_overhead_s", t.stepOverheadS);
    return t;
  }();
  return tuning;
}

}  // namespace detail

namespace {

using fabric::CollectiveOp;

constexpr double kGib = 1024.0 * 1024.0 * 1024.0;

/// Forward FLOPs of one token through one layer, split into the dense matmuls and the
/// attention core (scores and context, causal counted whole as Megatron's formula does).
struct LayerFlops {
  double matmul = 0;
  double attentionCore = 0;
};

LayerFlops layerForwardFlopsPerToken(const ModelConfig& m, bool moe, double seq) {
  const double h = m.hidden, hd = m.headDim();
  const double mats = m.activation == Activation::kSwiglu ? 3 : 2;
  LayerFlops f;
  f.matmul = 2 * h * (m.heads + 2.0 * m.kvHeads) * hd + 2 * m.heads * hd * h;
  if (moe) {
    f.matmul += 2 * mats * h * m.ffnHidden * (m.topK + m.sharedExperts) + 2 * h * m.experts;
  } else {
    const double ffn = m.experts > 1 && m.denseFfnHidden ? m.denseFfnHidden : m.ffnHidden;
    f.matmul += 2 * mats * h * ffn;
  }
  f.attentionCore = 4 * seq * m.heads * hd;
  return f;
}

}  // namespace

StepFlops stepFlops(const Workload& w, Recompute recompute) {
  const ModelConfig& m = w.model;
  const double tokens = static_cast<double>(w.globalBatch) * w.seq;
  const detail::LayerCounts c = detail::layerCounts(m, 0, m.layers);
  const LayerFlops dense = layerForwardFlopsPerToken(m, false, w.seq);
  const LayerFlops moe = layerForwardFlopsPerToken(m, true, w.seq);
  const double nDense = static_cast<double>(c.dense), nMoe = static_cast<double>(c.moe);
  const double layersFwd =
      nDense * (dense.matmul + dense.attentionCore) + nMoe * (moe.matmul + moe.attentionCore);
  const double attnFwd = nDense * dense.attentionCore + nMoe * moe.attentionCore;
  const double logitsFwd = 2.0 * m.hidden * m.vocab;
  StepFlops out;
  out.model = 3 * tokens * (layersFwd + logitsFwd);
  out.hardware = out.model;
  if (recompute == Recompute::kFull) out.hardware += tokens * layersFwd;
  if (recompute == Recompute::kSelective) out.hardware += tokens * attnFwd;
  return out;
}

struct Planner::Impl {
  arch::SystemConfig system;
  uint64_t chips = 0;
  std::unique_ptr<ComputeModel> compute;
  std::unique_ptr<fabric::CollectiveModel> comm;
  PlanTuning tuning;
  PlannerOptions options;
  /// Compiled layers (Trainium-class systems with ComputeModelKind::kCompiled), else null.
  std::shared_ptr<CompiledComputeModel> compiled;
  /// The name of `compute` when it composes the step ("kernels" or "roofline").
  std::string composedName = "kernels";

  /// Seconds of one collective over groups of `size` ranks `stride` apart (all such groups at
  /// once); 0 for a group of one or no bytes.
  Expected<double> collective(CollectiveOp op, double bytes, uint64_t size, uint64_t stride) const {
    if (size <= 1 || bytes <= 0) return 0.0;
    fabric::CollectiveRequest req;
    req.op = op;
    req.bytes = static_cast<uint64_t>(std::ceil(bytes));
    req.group.size = size;
    req.group.stride = stride;
    TRNSIM_ASSIGN_OR_RETURN(fabric::CollectiveCost cost, comm->estimate(req));
    return cost.timeS;
  }

  Expected<StepEstimate> estimate(const Workload& w, const Parallelism& p, bool useCompiled) const;
};

namespace {

/// Times of one layer for one micro-batch on one rank.
struct LayerTimes {
  double fwd = 0;  ///< matmuls + attention + memory-bound ops
  double bwd = 0;
  double attnFwd = 0;           ///< the attention core's forward (selective recompute)
  double tpFwd = 0, tpBwd = 0;  ///< TP/SP collectives
  double cpFwdComm = 0, cpBwdComm = 0;
  double attnBwd = 0;
  double epFwd = 0, epBwd = 0;  ///< MoE all-to-all
};

double backwardMatmul(const ComputeModel& c, const MatmulShape& s, Precision p) {
  // dX = dY W^T (m x k from m x n) and dW = X^T dY (k x n from m).
  MatmulShape dgrad{s.m, s.k, s.n, s.batch};
  MatmulShape wgrad{s.k, s.n, s.m, s.batch};
  return c.matmulSeconds(dgrad, p) + c.matmulSeconds(wgrad, p);
}

uint64_t ceilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

Expected<StepEstimate> Planner::Impl::estimate(const Workload& w, const Parallelism& p,
                                               bool useCompiledIn) const {
  const uint64_t ranks = chips * std::max<uint32_t>(1, system.accel.ranksPerChip);
  TRNSIM_RETURN_IF_ERROR(detail::validateParallelism(w, p, ranks));
  if (!(p.dropout >= 0 && p.dropout < 1))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not a probability in [0, 1)", p.dropout), "--dropout");
  if (p.attention == AttentionImpl::kMaterialized && p.cp > 1)
    return Status(ErrorCode::kInvalidArgument,
                  "materialized attention with context parallelism (cp > 1) is not modelled; "
                  "use --attention flash or cp 1",
                  "--attention");
  if (p.precision == Precision::kFp8 && !(system.accel.peakTflopsFp8 > 0)) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} has no fp8 matmul rate (accel.peak_tflops_fp8 is 0 in {}); use "
                              "bf16",
                              system.accel.name, system.name),
                  "parallelism.precision");
  }
  const detail::ExecutionTuning& tune = detail::executionTuning();
  const ModelConfig& m = w.model;
  const detail::RankShape r = detail::rankShape(w, p);
  const ComputeModel& c = *compute;
  const Precision prec = p.precision;
  // The compiled layers are bf16 (the compiler has no fp8 matmul yet): fp8 plans keep the
  // kernel composition, and say so.
  const bool useCompiled = useCompiledIn && compiled && prec == Precision::kBf16;
  std::string computeNote;
  if (useCompiledIn && compiled && !useCompiled)
    computeNote = "fp8: the kernel composition (compiled layers are bf16 only)";
  LayerGraphShape graphShape;
  graphShape.tp = p.tp;
  graphShape.cp = p.cp;
  graphShape.batch = p.microbatch;
  graphShape.seq = w.seq;
  graphShape.sequenceParallel = p.sequenceParallel;
  graphShape.materializedAttention = p.attention == AttentionImpl::kMaterialized;
  graphShape.dropout = p.dropout;

  const uint64_t T = r.tokensPerMicrobatch;  // tokens of one micro-batch on this rank
  const uint64_t h = m.hidden, hd = m.headDim();
  const uint64_t tp = p.tp;
  const uint64_t headsRank = m.heads / tp;
  const uint64_t kvRank = std::max<uint64_t>(1, m.kvHeads / tp);
  const bool swiglu = m.activation == Activation::kSwiglu;
  const double actBytes = 2.0;  // bf16 activations in HBM
  // Norms, residual adds and dropout work on T/tp tokens with sequence parallelism, on all T
  // tokens (replicated over the TP group) without.
  const double normTokens =
      p.sequenceParallel ? static_cast<double>(T) / tp : static_cast<double>(T);
  const double hiddenBytes = static_cast<double>(T) * h * actBytes;  // one [T, h] activation

  AttentionShape attn{p.microbatch, headsRank, kvRank, w.seq / p.cp,
                      w.seq,        hd,        true,   p.attention == AttentionImpl::kFlash,
                      p.dropout > 0};

  auto mlpTimes = [&](uint64_t tokens, uint64_t ffn, uint64_t batch, double& fwd, double& bwd) {
    MatmulShape up{tokens, (swiglu ? 2 : 1) * ffn / tp, h, batch};
    MatmulShape down{tokens, h, ffn / tp, batch};
    fwd += c.matmulSeconds(up, prec) + c.matmulSeconds(down, prec);
    bwd += backwardMatmul(c, up, prec) + backwardMatmul(c, down, prec);
    // The activation function reads its input(s) and writes its output.
    const double actElems = static_cast<double>(tokens) * batch * ffn / tp * (swiglu ? 3 : 2);
    fwd += c.memoryBoundSeconds(actElems * actBytes);
    bwd += c.memoryBoundSeconds(2 * actElems * actBytes);
  };

  auto layerTimes = [&](bool moe) -> Expected<LayerTimes> {
    LayerTimes t;
    MatmulShape qkv{T, (headsRank + 2 * kvRank) * hd, h, 1};
    MatmulShape proj{T, h, headsRank * hd, 1};
    t.fwd += c.matmulSeconds(qkv, prec) + c.matmulSeconds(proj, prec);
    t.bwd += backwardMatmul(c, qkv, prec) + backwardMatmul(c, proj, prec);
    t.attnFwd = c.attentionForwardSeconds(attn, prec);
    t.attnBwd = c.attentionBackwardSeconds(attn, prec);
    t.fwd += t.attnFwd;
    t.bwd += t.attnBwd;
    // Two norms (read + write h) and two residual adds with dropout (read 2h, write h).
    const double normBytes = normTokens * h * (2 * 2 + 2 * 3) * actBytes;
    t.fwd += c.memoryBoundSeconds(normBytes);
    t.bwd += c.memoryBoundSeconds(2 * normBytes);
    // The MoE part on the kernel model (the router, the experts and shared experts).
    double moeFwd = 0, moeBwd = 0;
    if (!moe) {
      const uint64_t ffn = m.experts > 1 && m.denseFfnHidden ? m.denseFfnHidden : m.ffnHidden;
      mlpTimes(T, ffn, 1, t.fwd, t.bwd);
    } else {
      MatmulShape router{T, m.experts, h, 1};
      moeFwd += c.matmulSeconds(router, prec);
      moeBwd += backwardMatmul(c, router, prec);
      // Each rank of an EP group sends T * topK token copies; its experts/ep local experts
      // receive, on average, T * topK * ep / experts tokens each, the busiest moeImbalance x more.
      const uint64_t local = m.experts / p.ep;
      const uint64_t perExpert = static_cast<uint64_t>(
          std::ceil(static_cast<double>(T) * m.topK * p.ep / m.experts * tune.moeImbalance));
      mlpTimes(std::max<uint64_t>(1, perExpert), m.ffnHidden, local, moeFwd, moeBwd);
      if (m.sharedExperts) mlpTimes(T, uint64_t{m.ffnHidden} * m.sharedExperts, 1, moeFwd, moeBwd);
      t.fwd += moeFwd;
      t.bwd += moeBwd;
      if (p.ep > 1) {
        const double tokensSent =
            (p.sequenceParallel ? static_cast<double>(T) / tp : T) * m.topK * tune.moeImbalance;
        TRNSIM_ASSIGN_OR_RETURN(
            double a2a, collective(CollectiveOp::kAllToAll, tokensSent * h * actBytes, p.ep, tp));
        t.epFwd = 2 * a2a;  // dispatch + combine
        t.epBwd = 2 * a2a;
      }
    }
    if (useCompiled) {
      // The layer's compiled graphs replace the composition; a MoE layer's graph is its dense
      // part (attention block, both norms, residuals) and the experts stay on the kernel model.
      LayerGraphShape gs = graphShape;
      gs.mlp = !moe;
      TRNSIM_ASSIGN_OR_RETURN(CompiledLayerTimes ct, compiled->layer(m, gs));
      t.fwd = ct.forward + moeFwd;
      t.bwd = ct.backward + moeBwd;
      t.attnFwd = ct.attentionForward;
      t.attnBwd = ct.attentionBackward;
    }
    if (tp > 1) {
      if (p.sequenceParallel) {
        TRNSIM_ASSIGN_OR_RETURN(double ag,
                                collective(CollectiveOp::kAllGather, hiddenBytes, tp, 1));
        TRNSIM_ASSIGN_OR_RETURN(double rs,
                                collective(CollectiveOp::kReduceScatter, hiddenBytes, tp, 1));
        t.tpFwd = 2 * (ag + rs);
      } else {
        TRNSIM_ASSIGN_OR_RETURN(double ar,
                                collective(CollectiveOp::kAllReduce, hiddenBytes, tp, 1));
        t.tpFwd = 2 * ar;
      }
      t.tpBwd = t.tpFwd;
    }
    if (p.cp > 1) {
      // Ring attention: cp - 1 steps, each passing this rank's K and V chunk to the next rank;
      // the backward passes K, V and their gradients.
      const double kvBytes = 2.0 * static_cast<double>(T) * kvRank * hd * actBytes;
      TRNSIM_ASSIGN_OR_RETURN(double step, collective(CollectiveOp::kSendRecv, kvBytes, p.cp, tp));
      t.cpFwdComm = (p.cp - 1) * step;
      t.cpBwdComm = 2 * t.cpFwdComm;
    }
    return t;
  };

  // The layers of the busiest pipeline stage.
  const uint32_t moeLayers = static_cast<uint32_t>(detail::layerCounts(m, 0, m.layers).moe);
  const uint32_t denseLayers = m.layers - moeLayers;
  LayerTimes dense, moe;
  if (denseLayers) {
    TRNSIM_ASSIGN_OR_RETURN(dense, layerTimes(false));
  }
  if (moeLayers) {
    TRNSIM_ASSIGN_OR_RETURN(moe, layerTimes(true));
  }
  double nDense = 0, nMoe = 0;
  if (p.pp == 1) {
    nDense = denseLayers;
    nMoe = moeLayers;
  } else if (moeLayers == 0 || (denseLayers && dense.fwd + dense.bwd > moe.fwd + moe.bwd)) {
    nDense = std::min<uint32_t>(denseLayers, r.layersPerRank);
    nMoe = r.layersPerRank - nDense;
  } else {
    nMoe = std::min<uint32_t>(moeLayers, r.layersPerRank);
    nDense = r.layersPerRank - nMoe;
  }
  auto stageSum = [&](double LayerTimes::*field) {
    return nDense * (dense.*field) + nMoe * (moe.*field);
  };

  // Per micro-batch on the busiest stage (the last: it also runs the output layer and loss).
  MatmulShape logits{T, ceilDiv(m.vocab, tp), h, 1};
  const double lossBytes = static_cast<double>(T) * m.vocab / tp * 4.0 * 2;
  double logitsFwd = c.matmulSeconds(logits, prec) + c.memoryBoundSeconds(lossBytes);
  double logitsBwd = backwardMatmul(c, logits, prec) + c.memoryBoundSeconds(lossBytes);
  if (useCompiled) {
    TRNSIM_ASSIGN_OR_RETURN(CompiledHeadTimes ht, compiled->head(m, graphShape));
    logitsFwd = ht.forward;
    logitsBwd = ht.backward;
  }

  const double fwd = stageSum(&LayerTimes::fwd) + logitsFwd;
  const double bwd = stageSum(&LayerTimes::bwd) + logitsBwd;
  double recompute = 0, tpComm = stageSum(&LayerTimes::tpFwd) + stageSum(&LayerTimes::tpBwd);
  const double cpFwdExposed = nDense * std::max(0.0, dense.cpFwdComm - dense.attnFwd) +
                              nMoe * std::max(0.0, moe.cpFwdComm - moe.attnFwd);
  const double cpBwdExposed = nDense * std::max(0.0, dense.cpBwdComm - dense.attnBwd) +
                              nMoe * std::max(0.0, moe.cpBwdComm - moe.attnBwd);
  double cpExposed = cpFwdExposed + cpBwdExposed;
  double cpHidden = stageSum(&LayerTimes::cpFwdComm) + stageSum(&LayerTimes::cpBwdComm) - cpExposed;
  double epComm = stageSum(&LayerTimes::epFwd) + stageSum(&LayerTimes::epBwd);
  if (p.recompute == Recompute::kFull) {
    // The whole forward again, with its TP, CP and EP communication.
    recompute = stageSum(&LayerTimes::fwd);
    tpComm += stageSum(&LayerTimes::tpFwd);
    cpExposed += cpFwdExposed;
    epComm += stageSum(&LayerTimes::epFwd);
  } else if (p.recompute == Recompute::kSelective) {
    recompute = stageSum(&LayerTimes::attnFwd);
  }
  const double tpExposed = tpComm * (1 - tune.tpOverlap);

  // Pipeline point-to-point: each micro-batch crosses every virtual stage boundary forward and
  // backward; the activation [T, h] is split over the TP group (sequence parallelism, or the
  // scatter/gather optimization of Narayanan et al. 2021).
  double ppPerMicrobatch = 0;
  if (p.pp > 1) {
    TRNSIM_ASSIGN_OR_RETURN(double p2p, collective(CollectiveOp::kSendRecv, hiddenBytes / tp, p.pp,
                                                   uint64_t{p.tp} * p.cp * p.dp));
    ppPerMicrobatch = 2.0 * p.vpp * p2p;
  }

  const double microbatchTime =
      fwd + bwd + recompute + tpExposed + cpExposed + epComm + ppPerMicrobatch;
  const double mb = static_cast<double>(r.microbatches);
  const double bubble = (p.pp - 1.0) / p.vpp * microbatchTime;

  // ZeRO-3: every layer's weights gathered before its forward and its backward, gradients
  // reduce-scattered after its backward, once per micro-batch; prefetching hides them under
  // the layer's compute.
  const uint64_t dpDense = uint64_t{p.dp} * p.cp;
  const uint64_t dpExpert = dpDense / p.ep;
  double zero3Exposed = 0, zero3Hidden = 0;
  if (p.zero >= 3 && dpDense > 1) {
    const double layerParams = (r.denseParamsPerRank + r.expertParamsPerRank) / r.layersPerRank;
    TRNSIM_ASSIGN_OR_RETURN(double ag,
                            collective(CollectiveOp::kAllGather, layerParams * 2, dpDense, tp));
    TRNSIM_ASSIGN_OR_RETURN(double rs,
                            collective(CollectiveOp::kReduceScatter,
                                       layerParams * tune.gradReduceBytesPerParam, dpDense, tp));
    const double layerFwd = (fwd - logitsFwd) / r.layersPerRank;
    const double layerBwd = (bwd - logitsBwd) / r.layersPerRank;
    const double perLayer = std::max(0.0, ag - layerFwd) + std::max(0.0, ag + rs - layerBwd);
    zero3Exposed = perLayer * r.layersPerRank * mb;
    zero3Hidden = (2 * ag + rs) * r.layersPerRank * mb - zero3Exposed;
  }

  // Gradient reduction after the last micro-batch's backward, bucket by bucket: everything
  // but the last bucket overlaps that backward pass. With ZeRO >= 1 a reduce-scatter, then the
  // updated weights' all-gather, which overlaps the next step's first forward pass.
  double dpExposed = zero3Exposed, dpHidden = zero3Hidden;
  if (dpDense > 1 && p.zero < 3) {
    double reduce = 0, gather = 0;
    const std::pair<double, uint64_t> parts[] = {{r.denseParamsPerRank, dpDense},
                                                 {r.expertParamsPerRank, dpExpert}};
    for (const auto& [params, group] : parts) {
      if (params <= 0 || group <= 1) continue;
      const uint64_t stride = group == dpDense ? tp : tp * p.ep;
      const double bytes = params * tune.gradReduceBytesPerParam;
      if (p.zero == 0) {
        TRNSIM_ASSIGN_OR_RETURN(double ar,
                                collective(CollectiveOp::kAllReduce, bytes, group, stride));
        reduce += ar;
      } else {
        TRNSIM_ASSIGN_OR_RETURN(double rs,
                                collective(CollectiveOp::kReduceScatter, bytes, group, stride));
        TRNSIM_ASSIGN_OR_RETURN(double ag,
                                collective(CollectiveOp::kAllGather, params * 2, group, stride));
        reduce += rs;
        gather += ag;
      }
    }
    const double params = r.denseParamsPerRank + r.expertParamsPerRank;
    const double lastBucket = std::min(1.0, tune.dpBucketParams / std::max(1.0, params));
    const double window = bwd + recompute;
    const double reduceExposed = std::max(reduce * lastBucket, reduce - window);
    const double gatherExposed = std::max(gather * lastBucket, gather - fwd);
    dpExposed += reduceExposed + gatherExposed;
    dpHidden += reduce + gather - reduceExposed - gatherExposed;
  }

  // Adam on this rank's (shard of the) parameters: a memory-bound pass.
  const double optParams = p.zero >= 1
                               ? r.denseParamsPerRank / dpDense + r.expertParamsPerRank / dpExpert
                               : r.denseParamsPerRank + r.expertParamsPerRank;
  double optimizer = c.memoryBoundSeconds(optParams * tune.optimizerBytesPerParam);
  if (useCompiled) {
    TRNSIM_ASSIGN_OR_RETURN(optimizer, compiled->optimizerSeconds(optParams));
  }

  StepEstimate e;
  e.parallelism = p;
  e.computeModel = useCompiled ? "compiled" : composedName;
  if (useCompiled && moeLayers)
    computeNote = "MoE experts and router on the kernel model; the dense part compiled";
  e.computeNote = computeNote;
  e.confidence = confidenceOf(system, e.computeModel);
  StepBreakdown& b = e.breakdown;
  b.compute = mb * (fwd + bwd);
  b.recompute = mb * recompute;
  b.tpExposed = mb * tpExposed;
  b.cpExposed = mb * cpExposed;
  b.epExposed = mb * epComm;
  b.ppExposed = mb * ppPerMicrobatch;
  b.bubble = bubble;
  b.dpExposed = dpExposed;
  b.optimizer = optimizer;
  b.other = tuning.stepOverheadS;
  b.overlappedComm = mb * (tpComm * tune.tpOverlap + cpHidden) + dpHidden;
  e.stepTimeS = b.compute + b.recompute + b.tpExposed + b.cpExposed + b.epExposed + b.ppExposed +
                b.bubble + b.dpExposed + b.optimizer + b.other;

  const StepFlops flops = stepFlops(w, p.recompute);
  const double chipsD = static_cast<double>(chips);
  e.tokensPerS = static_cast<double>(w.globalBatch) * w.seq / e.stepTimeS;
  e.modelTflopsPerChip = flops.model / e.stepTimeS / chipsD / 1e12;
  e.hardwareTflopsPerChip = flops.hardware / e.stepTimeS / chipsD / 1e12;
  const double peak = c.peakFlopsPerChip(prec);
  e.mfu = peak > 0 ? e.modelTflopsPerChip * 1e12 / peak : 0;
  e.hfu = peak > 0 ? e.hardwareTflopsPerChip * 1e12 / peak : 0;

  e.memory = detail::memoryPerRank(w, p, r);
  const double perChip = std::max<uint32_t>(1, system.accel.ranksPerChip);
  e.memory.weights *= perChip;
  e.memory.gradients *= perChip;
  e.memory.optimizer *= perChip;
  e.memory.activations *= perChip;
  e.memory.buffers *= perChip;
  e.memoryPerChipGib = e.memory.total() / kGib;
  e.memoryCapacityGib = static_cast<double>(system.accel.memoryBytes) / kGib;
  e.fits = e.memory.total() <= static_cast<double>(system.accel.memoryBytes);
  if (!e.fits) {
    const MemoryBreakdown& mm = e.memory;
    e.why = fmt::format(
        "needs {:.1f} GiB per chip (weights {:.1f}, gradients {:.1f}, optimizer {:.1f}, "
        "activations {:.1f}, buffers {:.1f}) but {} has {:.1f} GiB; try more tp or pp, a higher "
        "zero stage, recompute = full or a smaller microbatch",
        e.memoryPerChipGib, mm.weights / kGib, mm.gradients / kGib, mm.optimizer / kGib,
        mm.activations / kGib, mm.buffers / kGib, system.accel.name, e.memoryCapacityGib);
  }
  return e;
}

Expected<Planner> Planner::create(const arch::SystemConfig& system, uint64_t chips) {
  return create(system, chips, PlannerOptions{});
}

Expected<Planner> Planner::create(const arch::SystemConfig& system, uint64_t chips,
                                  const PlannerOptions& options) {
  PlanTuning tuning;
  tuning.stepOverheadS = detail::executionTuning().stepOverheadS;
  TRNSIM_ASSIGN_OR_RETURN(Planner planner, create(system, chips, nullptr, tuning));
  planner.impl_->options = options;
  if (!system.accel.simChip.empty() && options.computeModel == ComputeModelKind::kCompiled) {
    TRNSIM_ASSIGN_OR_RETURN(planner.impl_->compiled,
                            CompiledComputeModel::create(system, options.compiled));
  }
  return planner;
}

Expected<Planner> Planner::create(const arch::SystemConfig& system, uint64_t chips,
                                  std::unique_ptr<ComputeModel> compute, const PlanTuning& tuning) {
  try {
    if (chips == 0) return Status(ErrorCode::kInvalidArgument, "must be at least 1", "chips");
    auto impl = std::make_unique<Impl>();
    impl->system = system;
    impl->chips = chips;
    impl->tuning = tuning;
    if (compute) {
      impl->compute = std::move(compute);
    } else {
      TRNSIM_ASSIGN_OR_RETURN(impl->compute, makeComputeModel(system));
    }
    impl->options.computeModel = ComputeModelKind::kKernels;
    impl->composedName =
        impl->compute->name().find("roofline") != std::string_view::npos ? "roofline" : "kernels";
    TRNSIM_ASSIGN_OR_RETURN(fabric::CollectiveModel comm,
                            fabric::CollectiveModel::create(system, chips));
    impl->comm = std::make_unique<fabric::CollectiveModel>(std::move(comm));
    return Planner(std::move(impl));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("planner: ") + e.what());
  }
}

Planner::Planner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Planner::~Planner() = default;
Planner::Planner(Planner&&) noexcept = default;
Planner& Planner::operator=(Planner&&) noexcept = default;

const arch::SystemConfig& Planner::system() const { return impl_->system; }
uint64_t Planner::chips() const { return impl_->chips; }
ComputeModelKind Planner::computeModel() const {
  return impl_->compiled ? ComputeModelKind::kCompiled : ComputeModelKind::kKernels;
}
const PlannerOptions& Planner::options() const { return impl_->options; }
const CompiledComputeModel* Planner::compiledModel() const { return impl_->compiled.get(); }

Expected<StepEstimate> Planner::estimate(const Workload& w, const Parallelism& p) const {
  return estimate(w, p, computeModel());
}

Expected<StepEstimate> Planner::estimate(const Workload& w, const Parallelism& p,
                                         ComputeModelKind kind) const {
  try {
    Expected<StepEstimate> e = impl_->estimate(w, p, kind == ComputeModelKind::kCompiled);
    if (e || !impl_->compiled || kind != ComputeModelKind::kCompiled) return e;
    // A shape the compiler cannot lower yet (e.g. attention over fewer than 128 tokens per
    // rank): the kernel composition answers, and the estimate says why.
    Expected<StepEstimate> k = impl_->estimate(w, p, false);
    if (k)
      k->computeNote = "compiled layers failed (" + e.status().toString() + "); kernel composition";
    return k;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("planner estimate: ") + e.what());
  }
}

}  // namespace trnsim::plan
