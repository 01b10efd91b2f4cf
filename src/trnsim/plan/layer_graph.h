#pragma once
// The compiler IR of one transformer layer as one rank of a training run executes it, built from
// the planner's model config in C++ (no PyTorch): forward and backward of a layer, the
// attention core alone (selective recomputation, context-parallel ring steps), the embedding
// and LM head with the loss, and the AdamW step. The graphs follow what AOTAutograd captures
// from a `transformers` model in bf16 training (ATen op names and attributes, casts where the
// model casts), so the compiler times them as it would the captured ones. docs/plan_compute.md,
// "Compiled layers", says what each graph holds.
//
// Tensor parallelism splits heads and the FFN as Megatron does; a collective is where the graph
// has an extra input (its result) and an extra output (what it sends): the fabric model times
// it, the graph only the compute around it.

#include <cstdint>
#include <string>

#include "trnsim/plan/model_config.h"
#include "trnsim/support/status.h"

namespace trnsim::plan {

/// The per-rank shape of a layer's graphs.
struct LayerGraphShape {
  uint64_t tp = 1;     ///< tensor-parallel degree: heads, KV heads and FFN divided by it
  uint64_t cp = 1;     ///< context-parallel degree: each rank holds seq / cp tokens per sequence
  uint64_t batch = 1;  ///< sequences in the graph
  uint64_t seq = 0;    ///< tokens per whole sequence
  /// With tp > 1: norms and residual adds on the rank's 1/tp of the tokens (Megatron's sequence
  /// parallelism); off: on all tokens, replicated.
  bool sequenceParallel = true;
  /// false: the attention block only (the dense part of a MoE layer; experts are timed apart).
  bool mlp = true;
  /// Accumulate weight gradients into fp32 main_grad buffers (Megatron's
  /// gradient_accumulation_fusion: one fp32 read and write per weight per micro-batch).
  bool fp32GradAccumulation = true;
  /// The attention core as a fused flash kernel (false), or materialized: scores [S, S] per head
  /// written to HBM, scaled, masked, softmaxed (and dropped out) by separate passes, then the
  /// context matmul (Megatron-LM 2021; NeMo Megatron on Trn1 without a flash kernel). The
  /// materialized form computes the whole S x S, masked half included. Needs cp == 1.
  bool materializedAttention = false;
  /// Dropout probability of the hidden states (after the attention and MLP blocks, before the
  /// residual adds) and, with materialized attention, of the attention probabilities.
  double dropout = 0;
};

/// Sizes one rank's graphs use, derived from the model and the shape.
struct LayerDims {
  int64_t hidden = 0, headDim = 0;
  int64_t heads = 0, kvHeads = 0;  ///< per rank
  int64_t ffn = 0;                 ///< per rank (dense MLP)
  int64_t seqRank = 0;             ///< tokens of one sequence on this rank (seq / cp)
  int64_t tokens = 0;              ///< batch * seqRank: rows of the matmuls
  int64_t normTokens = 0;          ///< rows of the norms and residual adds (tokens / tp with SP)
  int64_t vocab = 0;               ///< per rank (vocab-parallel head)
  bool swiglu = true;              ///< SwiGLU MLP, RMSNorm and RoPE (Llama family); else GELU,
                                   ///< LayerNorm, no RoPE (GPT family)
};
Expected<LayerDims> layerDims(const ModelConfig& m, const LayerGraphShape& s);

/// The IR text of every graph of one layer.
struct LayerGraphs {
  std::string forward;            ///< norms, QKV, RoPE, attention, projections, MLP, residuals
  std::string backward;           ///< gradients of all of that (reads the forward's saved values)
  /// The attention core alone (what selective recomputation runs again): the flash op, or the
  /// materialized scores, mask, softmax, dropout and context.
  std::string attentionForward;
  std::string attentionBackward;  ///< its backward alone
  /// cp > 1: one non-causal attention of the rank's queries against another rank's keys (and
  /// its backward); a ring step of load-balanced context parallelism costs half of one.
  std::string ringForward, ringBackward;
};
Expected<LayerGraphs> buildLayerGraphs(const ModelConfig& m, const LayerGraphShape& s);

/// The embedding lookup, final norm, LM head and cross-entropy loss (forward), and their
/// backward. The embedding's backward is not charged: the op table's index_put(accumulate)
/// lowers it as a one-hot matmul (2 V T h FLOPs), far from what a scatter-add costs.
struct HeadGraphs {
  std::string forward, backward;
};
Expected<HeadGraphs> buildHeadGraphs(const ModelConfig& m, const LayerGraphShape& s);

/// One AdamW step over `elements` parameters (fp32 master weights, moments and main_grad in,
/// updated fp32 state and the bf16 weights out), as one fused pointwise node.
std::string buildAdamwGraph(uint64_t elements);

}  // namespace trnsim::plan
