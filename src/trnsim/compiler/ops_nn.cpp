// Ops lowered through the kernel library: matmuls (mm, bmm, addmm), softmax and layer norm.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/tile_loop.h"
#include "trnsim/kernels/attention.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/norm.h"
#include "trnsim/kernels/softmax.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::in;
using Types = std::vector<TensorType>;

/// mm / bmm: a [.., M, K] @ b [.., K, N] (b [.., N, K] with transpose_b=1, as the layout pass
/// leaves a linear layer's weight).
Expected<Types> inferMatmul(const Graph& g, const Node& n) {
  const size_t first = n.op == "addmm" ? 1 : 0;
  const TensorType& a = in(g, n, first);
  const TensorType& b = in(g, n, first + 1);
  const int rank = n.op == "bmm" ? 3 : 2;
  if (a.rank() != rank || b.rank() != rank)
    return badArg(n, fmt::format("operands must be {}-D, got {} and {}", rank, shapeString(a.shape),
                                 shapeString(b.shape)));
  const bool tb = n.intAttr("transpose_b", 0) != 0;
  const int64_t M = a.shape[size_t(rank - 2)], K = a.shape[size_t(rank - 1)];
  const int64_t Kb = b.shape[size_t(rank - (tb ? 1 : 2))], N = b.shape[size_t(rank - (tb ? 2 : 1))];
  if (K != Kb)
    return badArg(n, fmt::format("contraction sizes differ: {} @ {}{}", shapeString(a.shape),
                                 shapeString(b.shape), tb ? " (b transposed)" : ""));
  if (rank == 3 && a.shape[0] != b.shape[0])
    return badArg(n, fmt::format("batch sizes differ: {} vs {}", a.shape[0], b.shape[0]));
  if (a.dtype != b.dtype)
    return badArg(n, fmt::format("operand dtypes differ ({} and {}): cast one first",
                                 irDtypeName(a.dtype), irDtypeName(b.dtype)));
  std::vector<int64_t> shape =
      rank == 3 ? std::vector<int64_t>{a.shape[0], M, N} : std::vector<int64_t>{M, N};
  if (n.op == "addmm") {
    auto s = broadcastShapes(in(g, n, 0).shape, shape);
    if (!s || *s != shape)
      return badArg(n, fmt::format("bias {} does not broadcast to {}",
                                   shapeString(in(g, n, 0).shape), shapeString(shape)));
  }
  return Types{TensorType{a.dtype, shape}};
}

Status lowerMatmul(LowerContext& cx, const Node& n) {
  kernels::MatmulLayout layout;
  layout.transposeB = n.intAttr("transpose_b", 0) != 0;
  if (n.op != "addmm")
    return kernels::emitMatmulAB(cx.b(), cx.in(n, 0), cx.in(n, 1), cx.out(n), layout);
  // addmm: out = beta * bias + alpha * (a @ b): the product in fp32 scratch, then one tile loop.
  const TensorType& o = cx.graph().type(n.outputs[0]);
  isa::Tensor prod = cx.scratch("addmm_prod", DType::kFP32, o.shape);
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(cx.b(), cx.in(n, 1), cx.in(n, 2), prod, layout));
  const float alpha = float(n.floatAttr("alpha", 1)), beta = float(n.floatAttr("beta", 1));
  TileLoop loop;
  loop.shape = o.shape;
  loop.inputs = {LoopOperand::broadcast(prod, o.shape, o.shape),
                 LoopOperand::broadcast(cx.in(n, 0), cx.graph().type(n.inputs[0]).shape, o.shape)};
  loop.outputs = {LoopOperand::broadcast(cx.out(n), o.shape, o.shape)};
  loop.scratchDtypes = {DType::kFP32};
  loop.body = [alpha, beta](TileContext& tc) -> Status {
    auto& b = tc.b;
    if (alpha == 1.0f && beta == 1.0f)
      return b.tensorTensor(tc.output(0), tc.input(0), tc.input(1), isa::AluOp::kAdd);
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(tc.scratch(0), tc.input(1), isa::AluOp::kMultiply, beta));
    return b.scalarTensorTensor(tc.output(0), tc.input(0), isa::AluOp::kMultiply, alpha,
                                isa::AluOp::kAdd, tc.scratch(0));
  };
  return emitTileLoop(cx.b(), loop);
}

/// The last-dim rows of value v as a 2-D view [rows, cols].
isa::Tensor rows2d(LowerContext& cx, uint32_t v) {
  const TensorType& t = cx.graph().type(v);
  const int64_t cols = t.rank() ? t.shape.back() : 1;
  return cx.reshaped(v, {cols ? t.numElements() / cols : 0, cols});
}

Expected<Types> inferSoftmax(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_RETURN_IF_ERROR(normalizeDim(n.intAttr("dim"), t.rank()).hasValue()
                             ? Status::ok()
                             : badArg(n, "dim is out of range"));
  if (!numerics::isFloat(t.dtype)) return badArg(n, "needs a float input");
  if (n.intAttr("half_to_float", 0)) t.dtype = DType::kFP32;
  return Types{t};
}

Status lowerSoftmax(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const int d = *normalizeDim(n.intAttr("dim"), t.rank());
  // Another dim: a row loop that reads each row along that dim with its stride.
  if (t.rank() > 0 && d != t.rank() - 1) return detail::lowerRowSoftmax(cx, n);
  return kernels::emitSoftmax(cx.b(), rows2d(cx, n.inputs[0]), rows2d(cx, n.outputs[0]));
}

/// native_layer_norm(x, normalized_shape, weight?, bias?, eps) -> (out, mean, rstd).
Expected<Types> inferLayerNorm(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  const std::vector<int64_t> ns = n.intsAttr("normalized_shape");
  if (ns.size() != 1 || x.rank() < 1 || x.shape.back() != ns[0])
    return badArg(n, fmt::format("normalized_shape {} must be the last dim of {} (one dim)",
                                 shapeString(ns), shapeString(x.shape)));
  std::vector<int64_t> stat = x.shape;
  stat.back() = 1;
  // mean and rstd in the input's dtype, as PyTorch's CPU kernel gives them.
  return Types{x, TensorType{x.dtype, stat}, TensorType{x.dtype, stat}};
}

Status lowerLayerNorm(LowerContext& cx, const Node& n) {
  // Without weight and bias, or with the mean/rstd outputs read (training): a row loop.
  if (n.inputs.size() != 3 || cx.isRead(n.outputs[1]) || cx.isRead(n.outputs[2]))
    return detail::lowerRowLayerNorm(cx, n);
  return kernels::emitLayerNorm(cx.b(), rows2d(cx, n.inputs[0]), cx.in(n, 1), cx.in(n, 2),
                                rows2d(cx, n.outputs[0]), float(n.floatAttr("eps", 1e-5)));
}

/// _scaled_dot_product_flash_attention_for_cpu(q [B, H, Sq, D], k [B, Hkv, Sk, D], v, attn_mask?)
/// {dropout_p, is_causal, scale} -> (out [B, H, Sq, D], logsumexp [B, H, Sq] f32).
Expected<Types> inferSdpa(const Graph& g, const Node& n) {
  const TensorType& q = in(g, n, 0);
  const TensorType& k = in(g, n, 1);
  const TensorType& v = in(g, n, 2);
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return badArg(n, "q, k and v must be 4-D [batch, heads, seq, head_dim]");
  if (k.shape != v.shape || k.shape[0] != q.shape[0] || k.shape[3] != q.shape[3] ||
      q.shape[1] % std::max<int64_t>(1, k.shape[1]) != 0)
    return badArg(n, fmt::format("q {}, k {}, v {} do not fit together", shapeString(q.shape),
                                 shapeString(k.shape), shapeString(v.shape)));
  if (n.floatAttr("dropout_p", 0) != 0)
    return Status(ErrorCode::kUnsupported, "scaled_dot_product_attention with dropout_p > 0");
  if (n.inputs.size() == 4) {
    auto s = broadcastShapes(in(g, n, 3).shape, {q.shape[0], q.shape[1], q.shape[2], k.shape[2]});
    if (!s) return badArg(n, "attn_mask does not broadcast to [B, H, Sq, Sk]");
  }
  return Types{q, TensorType{DType::kFP32, {q.shape[0], q.shape[1], q.shape[2]}}};
}

/// The library's flash attention when it applies (bf16, head_dim <= 128, Sq == Sk a multiple
/// of 128, no explicit mask, a chip with DMA transpose); otherwise scores in fp32 through the
/// matmul kernel, scale and masks in one tile loop, the softmax kernel, and P @ V.
Status lowerSdpa(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  isa::KernelBuilder& b = cx.b();
  const TensorType& q = g.type(n.inputs[0]);
  const TensorType& k = g.type(n.inputs[1]);
  const int64_t B = q.shape[0], H = q.shape[1], Sq = q.shape[2], D = q.shape[3];
  const int64_t Hkv = k.shape[1], Sk = k.shape[2];
  const bool causal = n.intAttr("is_causal", 0) != 0;
  const double scale = n.has("scale") ? n.floatAttr("scale") : 1.0 / std::sqrt(double(D));
  const bool wantLse = cx.isRead(n.outputs[1]);
  const bool flash = q.dtype == DType::kBF16 && k.dtype == DType::kBF16 && D <= 128 && Sq == Sk &&
                     Sq % 128 == 0 && n.inputs.size() == 3 && cx.chip().dma.supportsTranspose();
  if (flash) {
    kernels::AttentionOptions o;
    o.causal = causal;
    o.scale = float(scale);
    for (int64_t bi = 0; bi < B; ++bi) {
      auto view = [&](const isa::Tensor& t, const char* what, DType dt,
                      std::vector<int64_t> shape) {
        const int64_t offset = bi * product(shape);
        return b.hbmView(t, fmt::format("{}_b{}_{}", what, bi, b.program().tensors.size()), dt,
                         std::move(shape), offset);
      };
      isa::Tensor qb = view(cx.in(n, 0), "q", q.dtype, {H, Sq, D});
      isa::Tensor kb = view(cx.in(n, 1), "k", k.dtype, {Hkv, Sk, D});
      isa::Tensor vb = view(cx.in(n, 2), "v", k.dtype, {Hkv, Sk, D});
      isa::Tensor ob = view(cx.out(n, 0), "o", q.dtype, {H, Sq, D});
      isa::Tensor lb = wantLse ? view(cx.out(n, 1), "lse", DType::kFP32, {H, Sq}) : isa::Tensor();
      TRNSIM_RETURN_IF_ERROR(kernels::emitAttention(b, qb, kb, vb, ob, o, lb));
    }
    return b.status();
  }
  if (wantLse)
    return Status(ErrorCode::kUnsupported,
                  "attention's logsumexp output (used by backward) needs the flash-attention "
                  "path: bf16, head_dim <= 128, equal query/key lengths a multiple of 128");
  // GQA: the G = H / Hkv query heads of one KV head are adjacent, so q viewed as
  // [B * Hkv, G * Sq, D] meets k and v viewed as [B * Hkv, Sk, D] in one batched matmul.
  // scores[B, Hkv, G, Sq, Sk] = q k^T (fp32), then scale, causal mask and attn_mask in one
  // tile loop.
  const int64_t G = H / Hkv, BK = B * Hkv;
  isa::Tensor qv = cx.reshaped(n.inputs[0], {BK, G * Sq, D});
  isa::Tensor kv = cx.reshaped(n.inputs[1], {BK, Sk, D});
  isa::Tensor vv = cx.reshaped(n.inputs[2], {BK, Sk, D});
  isa::Tensor scores = cx.scratch("attn_scores", DType::kFP32, {BK, G * Sq, Sk});
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(b, qv, kv, scores, {.transposeB = true}));
  TileLoop loop;
  loop.shape = {B, Hkv, G, Sq, Sk};
  loop.inputs = {LoopOperand::broadcast(scores, loop.shape, loop.shape)};
  if (causal) {
    // mask[i, j] = 0 where j <= i + (Sk - Sq), else -inf: built once with affine_select.
    isa::Tensor mask = cx.scratch("causal_mask", DType::kFP32, {Sq, Sk});
    const int64_t P = cx.chip().mem.sbufPartitions;
    isa::Tensor zero =
        b.sbuf(fmt::format("mask_zero{}", b.program().tensors.size()), DType::kFP32, {P, Sk});
    isa::Tensor row =
        b.sbuf(fmt::format("mask_row{}", b.program().tensors.size()), DType::kFP32, {P, Sk});
    TRNSIM_RETURN_IF_ERROR(b.status());
    (void)b.memset(zero.ap(), 0.0f);
    for (int64_t r0 = 0; r0 < Sq; r0 += P) {
      const int64_t np = std::min(P, Sq - r0);
      const auto rows = isa::Slice::range(0, np);
      (void)b.affineSelect(row({rows}), {-1}, 1.0f, float(r0 + Sk - Sq), isa::AluOp::kIsGe,
                           zero({rows}), -std::numeric_limits<float>::infinity());
      (void)b.dmaCopy(mask({isa::Slice::range(r0, r0 + np)}), row({rows}));
    }
    b.release(zero);
    b.release(row);
    loop.inputs.push_back(LoopOperand::broadcast(mask, {Sq, Sk}, loop.shape));
  }
  const bool hasMask = n.inputs.size() == 4;
  DType maskType = DType::kFP32;
  if (hasMask) {
    const TensorType& m = g.type(n.inputs[3]);
    maskType = m.dtype;
    std::vector<int64_t> ms = m.shape;
    while (ms.size() < 4) ms.insert(ms.begin(), 1);
    // [B?, H?, Sq, Sk] over [B, Hkv, G, Sq, Sk]: head h = hk * G + g.
    const LoopOperand op = LoopOperand::broadcast(cx.in(n, 3), ms, {B, H, Sq, Sk});
    loop.inputs.push_back(
        LoopOperand{op.tensor,
                    {op.strides[0], op.strides[1] * G, op.strides[1], op.strides[2], op.strides[3]},
                    0});
  }
  loop.outputs = {LoopOperand::broadcast(scores, loop.shape, loop.shape)};
  loop.scratchDtypes = {DType::kFP32, DType::kFP32};
  const size_t maskInput = causal ? 2 : 1;
  loop.body = [=](TileContext& tc) -> Status {
    auto& bb = tc.b;
    TRNSIM_RETURN_IF_ERROR(
        bb.tensorScalar(tc.output(0), tc.input(0), isa::AluOp::kMultiply, float(scale)));
    if (causal)
      TRNSIM_RETURN_IF_ERROR(
          bb.tensorTensor(tc.output(0), tc.output(0), tc.input(1), isa::AluOp::kAdd));
    if (!hasMask) return Status::ok();
    if (numerics::isFloat(maskType))
      return bb.tensorTensor(tc.output(0), tc.output(0), tc.input(maskInput), isa::AluOp::kAdd);
    // A boolean mask keeps where true: -inf elsewhere.
    TRNSIM_RETURN_IF_ERROR(bb.memset(tc.scratch(0), -std::numeric_limits<float>::infinity()));
    TRNSIM_RETURN_IF_ERROR(bb.memset(tc.scratch(1), 0.0f));
    TRNSIM_RETURN_IF_ERROR(
        bb.tensorCopyPredicated(tc.scratch(0), tc.scratch(1), tc.input(maskInput)));
    return bb.tensorTensor(tc.output(0), tc.output(0), tc.scratch(0), isa::AluOp::kAdd);
  };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, loop));
  isa::Tensor probs = cx.scratch("attn_probs", q.dtype, {BK, G * Sq, Sk});
  isa::Tensor s2 = b.hbmView(scores, fmt::format("attn_scores2d_{}", b.program().tensors.size()),
                             DType::kFP32, {BK * G * Sq, Sk});
  isa::Tensor p2 = b.hbmView(probs, fmt::format("attn_probs2d_{}", b.program().tensors.size()),
                             q.dtype, {BK * G * Sq, Sk});
  TRNSIM_RETURN_IF_ERROR(kernels::emitSoftmax(b, s2, p2));
  isa::Tensor ov = cx.reshaped(n.outputs[0], {BK, G * Sq, D});
  return kernels::emitMatmulAB(b, probs, vv, ov);
}

const OpDef kOps[] = {
    {"mm", OpClass::kKernel, 2, 2, inferMatmul, lowerMatmul},
    {"bmm", OpClass::kKernel, 2, 2, inferMatmul, lowerMatmul},
    {"addmm", OpClass::kKernel, 3, 3, inferMatmul, lowerMatmul},
    {"_softmax", OpClass::kKernel, 1, 1, inferSoftmax, lowerSoftmax},
    {"native_layer_norm", OpClass::kKernel, 1, 3, inferLayerNorm, lowerLayerNorm},
    {"_scaled_dot_product_flash_attention_for_cpu", OpClass::kKernel, 3, 4, inferSdpa, lowerSdpa},
};

}  // namespace

std::span<const OpDef> nnOps() { return kOps; }

}  // namespace trnsim::compiler
