#pragma once
// Flash-attention forward on one NeuronCore (causal or not, grouped-query attention).

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

struct AttentionOptions {
  bool causal = true;
  float scale = 0;        ///< softmax scale; 0 = 1 / sqrt(head_dim)
  int keyTile = 512;      ///< keys per S tile (one PSUM bank of fp32): 128, 256 or 512
  int tilesPerGroup = 2;  ///< key tiles sharing one running-max update and one O rescale
  /// Every n-th key tile computes its exp on VectorE (pow(e^scale, S - m)) instead of ScalarE,
  /// which is the busiest engine; 0 = always ScalarE.
  int vectorExpInterval = 5;
  bool writeLse = false;  ///< attentionProgram: also output "lse" [Hq, S] for the backward pass
};

/// out[h] = softmax(scale * q[h] k[g]^T (+ causal mask)) v[g] with g = h / (Hq / Hkv).
/// q, out: HBM [Hq, S, D]; k, v: HBM [Hkv, S, D]; D <= 128, S a multiple of 128; needs a chip
/// with DMA transpose (trn2+). Per 128-query tile, key tiles of `keyTile` keys stream through:
/// TensorE S = Q K^T into PSUM (Q^T and K^T arrive by DMA transpose from HBM; K^T and V stay in
/// SBUF for all query heads of a KV group); VectorE row max per tile; GpSimd updates the running
/// max m, the exp bias and the rescale factor alpha = exp(scale (m_old - m_new)) once per group
/// of tiles; ScalarE P = exp(scale S - scale m) (bf16); DMA transposes P in 128 x 128 blocks;
/// TensorE O_g = P V' where V' = [V | 1], so column D accumulates the row sums; VectorE
/// O = O * alpha + O_g; GpSimd finally divides by the sum. Causal: key tiles past the diagonal
/// are skipped, the diagonal tile is trimmed to the query tile's end and masked by accumulating
/// I^T T (T = -30000 above the diagonal) into its last 128 columns on TensorE. Stages are
/// emitted software-pipelined across groups so every engine has work queued.
/// `lse` (optional, fp32 [Hq, S]) receives each row's log-sum-exp of the scaled, masked scores
/// (scale * max + log(sum)), which the backward pass uses to recompute P.
Status emitAttention(isa::KernelBuilder& b, const isa::Tensor& q, const isa::Tensor& k,
                     const isa::Tensor& v, const isa::Tensor& out, AttentionOptions opts = {},
                     const isa::Tensor& lse = isa::Tensor());

/// Flash-attention backward: dq [Hq, S, D], dk, dv [Hkv, S, D] from q, k, v, the forward's
/// out and lse, and dout. Per KV head, K^T, K and V^T stay in SBUF and dK, dV accumulate in
/// fp32 in SBUF; per query tile and key block of 128: S = Q K^T and P = exp(scale S - lse)
/// recomputed (TensorE, ScalarE), dP = dO V^T (TensorE), dS = P (dP - rowsum(dO o O))
/// (VectorE), dV += P^T dO and dK += dS^T Q (TensorE with P and dS as stationaries, folded
/// into SBUF by VectorE), dS^T by DMA transpose, dQ += dS K accumulated in PSUM over the key
/// blocks. Causal blocks above the diagonal are skipped, the diagonal one masked as in the
/// forward pass. Not software-pipelined yet: correct first, not fast.
Status emitAttentionBackward(isa::KernelBuilder& b, const isa::Tensor& q, const isa::Tensor& k,
                             const isa::Tensor& v, const isa::Tensor& out, const isa::Tensor& dout,
                             const isa::Tensor& lse, const isa::Tensor& dq, const isa::Tensor& dk,
                             const isa::Tensor& dv, AttentionOptions opts = {});

/// A whole backward program: HBM inputs "q", "out", "dout" [Hq, S, D], "k", "v" [Hkv, S, D]
/// (bf16), "lse" [Hq, S] (fp32); outputs "dq" [Hq, S, D], "dk", "dv" [Hkv, S, D] of `gradDtype`.
Expected<isa::Program> attentionBackwardProgram(const arch::ChipConfig& chip, int64_t qHeads,
                                                int64_t kvHeads, int64_t seq, int64_t headDim,
                                                AttentionOptions opts = {},
                                                numerics::DType gradDtype = numerics::DType::kBF16);

/// A whole program: HBM inputs "q" [Hq, S, D], "k" and "v" [Hkv, S, D], output "out" [Hq, S, D].
Expected<isa::Program> attentionProgram(const arch::ChipConfig& chip, int64_t qHeads,
                                        int64_t kvHeads, int64_t seq, int64_t headDim,
                                        AttentionOptions opts = {},
                                        numerics::DType dtype = numerics::DType::kBF16);

/// Flops of the attention that the causal mask keeps (the "non-masked work"): 4 D per
/// (query, key) pair with key <= query (or all pairs when not causal), times Hq.
double attentionUsefulFlops(int64_t qHeads, int64_t seq, int64_t headDim, bool causal);

}  // namespace trnsim::kernels
