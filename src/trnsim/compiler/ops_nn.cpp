// Ops lowered through the kernel library: matmuls (mm, bmm, addmm), softmax, layer norm, and
// attention (forward and backward).
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

bool isFp8(DType t) { return t == DType::kFP8E4M3 || t == DType::kFP8E5M2; }

/// mm / bmm: a [.., M, K] @ b [.., K, N] (b [.., N, K] with transpose_b=1, as the layout pass
/// leaves a linear layer's weight; a [.., K, M] with transpose_a=1, as it leaves a weight
/// gradient's X^T). mm and addmm take one more input, b's scale (N elements, or one), as the
/// fp8_matmul pass leaves an fp8 weight: out = (a @ b) * scale [+ bias]; b may then be fp8
/// with a of another float dtype (the result has a's dtype).
Expected<Types> inferMatmul(const Graph& g, const Node& n) {
  const size_t first = n.op == "addmm" ? 1 : 0;
  const TensorType& a = in(g, n, first);
  const TensorType& b = in(g, n, first + 1);
  const int rank = n.op == "bmm" ? 3 : 2;
  if (a.rank() != rank || b.rank() != rank)
    return badArg(n, fmt::format("operands must be {}-D, got {} and {}", rank, shapeString(a.shape),
                                 shapeString(b.shape)));
  const bool ta = n.intAttr("transpose_a", 0) != 0, tb = n.intAttr("transpose_b", 0) != 0;
  const int64_t M = a.shape[size_t(rank - (ta ? 1 : 2))], K = a.shape[size_t(rank - (ta ? 2 : 1))];
  const int64_t Kb = b.shape[size_t(rank - (tb ? 1 : 2))], N = b.shape[size_t(rank - (tb ? 2 : 1))];
  if (K != Kb)
    return badArg(
        n, fmt::format("contraction sizes differ: {}{} @ {}{}", shapeString(a.shape),
                       ta ? " (transposed)" : "", shapeString(b.shape), tb ? " (transposed)" : ""));
  if (rank == 3 && a.shape[0] != b.shape[0])
    return badArg(n, fmt::format("batch sizes differ: {} vs {}", a.shape[0], b.shape[0]));
  if (a.dtype != b.dtype && !(isFp8(b.dtype) && numerics::isFloat(a.dtype)))
    return badArg(n, fmt::format("operand dtypes differ ({} and {}): cast one first (only b, the "
                                 "weight, may be fp8 with a of another float dtype)",
                                 irDtypeName(a.dtype), irDtypeName(b.dtype)));
  if (n.inputs.size() > first + 2) {
    const TensorType& sc = in(g, n, first + 2);
    const int64_t count = sc.numElements();
    if (!numerics::isFloat(sc.dtype) || (count != 1 && count != N))
      return badArg(n, fmt::format("b's scale {}{} must be a float tensor of N = {} elements or "
                                   "of one",
                                   irDtypeName(sc.dtype), shapeString(sc.shape), N));
  }
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
  layout.transposeA = n.intAttr("transpose_a", 0) != 0;
  layout.transposeB = n.intAttr("transpose_b", 0) != 0;
  const size_t first = n.op == "addmm" ? 1 : 0;
  kernels::MatmulEpilogue epilogue;
  if (n.inputs.size() > first + 2) epilogue.columnScale = cx.in(n, first + 2);
  if (n.op != "addmm")
    return kernels::emitMatmulAB(cx.b(), cx.in(n, 0), cx.in(n, 1), cx.out(n), layout, {}, epilogue);
  // addmm: out = beta * bias + alpha * (a @ b): the product in fp32 scratch, then one tile loop.
  const TensorType& o = cx.graph().type(n.outputs[0]);
  isa::Tensor prod = cx.scratch("addmm_prod", DType::kFP32, o.shape);
  TRNSIM_RETURN_IF_ERROR(
      kernels::emitMatmulAB(cx.b(), cx.in(n, 1), cx.in(n, 2), prod, layout, {}, epilogue));
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
  // Another dim: a row loop that reads each row along that dim with its stride. So are rows
  // too long for the kernel's two tile sets (x, fp32 exp, out): the row loop streams them.
  if (t.rank() > 0 && d != t.rank() - 1) return detail::lowerRowSoftmax(cx, n);
  const uint64_t cols = t.rank() ? uint64_t(t.shape.back()) : 1;
  const uint64_t kernelBytes =
      2 * (cols * (numerics::dtypeSize(t.dtype) + 4 +
                   numerics::dtypeSize(cx.graph().type(n.outputs[0]).dtype)) +
           12);
  if (kernelBytes > cx.b().sbufFreeBytes()) return detail::lowerRowSoftmax(cx, n);
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
  // Rows the kernel cannot hold (its SBUF check in emitLayerNorm): the row loop streams them.
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const uint64_t hidden = uint64_t(t.shape.back()), chunks = (hidden + 511) / 512;
  const uint64_t rowBytes = hidden * numerics::dtypeSize(t.dtype);
  const uint64_t outBytes = hidden * numerics::dtypeSize(cx.graph().type(n.outputs[0]).dtype);
  const uint64_t perBuf = 2 * rowBytes + outBytes + 24 * chunks + 64;
  if (2 * rowBytes + 2 * perBuf + 1024 > cx.b().sbufFreeBytes())
    return detail::lowerRowLayerNorm(cx, n);
  return kernels::emitLayerNorm(cx.b(), rows2d(cx, n.inputs[0]), cx.in(n, 1), cx.in(n, 2),
                                rows2d(cx, n.outputs[0]), float(n.floatAttr("eps", 1e-5)));
}

// ---- attention ----

/// q [B, H, Sq, D], k and v [B, Hkv, Sk, D] with H a multiple of Hkv: checked for the forward
/// (inputs 0..2) and the backward (inputs 1..3).
Status checkQkv(const Node& n, const TensorType& q, const TensorType& k, const TensorType& v) {
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return badArg(n, "q, k and v must be 4-D [batch, heads, seq, head_dim]");
  if (k.shape != v.shape || k.shape[0] != q.shape[0] || k.shape[3] != q.shape[3] ||
      k.shape[1] == 0 || q.shape[1] % k.shape[1] != 0)
    return badArg(n, fmt::format("q {}, k {}, v {} do not fit together", shapeString(q.shape),
                                 shapeString(k.shape), shapeString(v.shape)));
  if (n.floatAttr("dropout_p", 0) != 0)
    return Status(ErrorCode::kUnsupported, "scaled_dot_product_attention with dropout_p > 0");
  return Status::ok();
}

Status checkMask(const Graph& g, const Node& n, size_t maskInput, const TensorType& q,
                 const TensorType& k) {
  if (n.inputs.size() <= maskInput) return Status::ok();
  auto s =
      broadcastShapes(in(g, n, maskInput).shape, {q.shape[0], q.shape[1], q.shape[2], k.shape[2]});
  if (!s) return badArg(n, "attn_mask does not broadcast to [B, H, Sq, Sk]");
  return Status::ok();
}

/// _scaled_dot_product_flash_attention_for_cpu(q [B, H, Sq, D], k [B, Hkv, Sk, D], v, attn_mask?)
/// {dropout_p, is_causal, scale} -> (out [B, H, Sq, D], logsumexp [B, H, Sq] f32).
Expected<Types> inferSdpa(const Graph& g, const Node& n) {
  const TensorType& q = in(g, n, 0);
  TRNSIM_RETURN_IF_ERROR(checkQkv(n, q, in(g, n, 1), in(g, n, 2)));
  TRNSIM_RETURN_IF_ERROR(checkMask(g, n, 3, q, in(g, n, 1)));
  return Types{q, TensorType{DType::kFP32, {q.shape[0], q.shape[1], q.shape[2]}}};
}

/// The sizes of one attention node; GQA: the G = H / Hkv query heads of one KV head are
/// adjacent, so q viewed as [B * Hkv, G * Sq, D] meets k and v viewed as [B * Hkv, Sk, D] in one
/// batched matmul, and scores are [B, Hkv, G, Sq, Sk].
struct AttnDims {
  int64_t B = 0, H = 0, Sq = 0, D = 0, Hkv = 0, Sk = 0, G = 0, BK = 0;
  bool causal = false;
  double scale = 0;
  size_t maskInput = 0;  ///< input number of attn_mask (beyond the inputs when there is none)
  DType maskType = DType::kFP32;
};

AttnDims attnDims(const Graph& g, const Node& n, size_t qInput, size_t maskInput) {
  const TensorType& q = g.type(n.inputs[qInput]);
  const TensorType& k = g.type(n.inputs[qInput + 1]);
  AttnDims a;
  a.B = q.shape[0];
  a.H = q.shape[1];
  a.Sq = q.shape[2];
  a.D = q.shape[3];
  a.Hkv = k.shape[1];
  a.Sk = k.shape[2];
  a.G = a.H / a.Hkv;
  a.BK = a.B * a.Hkv;
  a.causal = n.intAttr("is_causal", 0) != 0;
  a.scale = n.has("scale") ? n.floatAttr("scale") : 1.0 / std::sqrt(double(a.D));
  a.maskInput = maskInput;
  if (a.maskInput < n.inputs.size()) a.maskType = g.type(n.inputs[a.maskInput]).dtype;
  return a;
}
bool hasMask(const Node& n, const AttnDims& a) { return a.maskInput < n.inputs.size(); }

/// The flash kernels' conditions: bf16, head_dim <= 128, Sq == Sk a multiple of 128, no explicit
/// mask, a chip with DMA transpose.
bool flashApplies(LowerContext& cx, const Node& n, const AttnDims& a,
                  std::initializer_list<size_t> bf16Inputs) {
  for (size_t i : bf16Inputs)
    if (cx.graph().type(n.inputs[i]).dtype != DType::kBF16) return false;
  return a.D <= 128 && a.Sq == a.Sk && a.Sq % 128 == 0 && !hasMask(n, a) &&
         cx.chip().dma.supportsTranspose();
}

/// One batch of an attention tensor [B, ...] as an HBM view.
isa::Tensor batchView(isa::KernelBuilder& b, const isa::Tensor& t, const char* what, int64_t bi,
                      std::vector<int64_t> shape) {
  const int64_t offset = bi * product(shape);
  return b.hbmView(t, fmt::format("{}_b{}_{}", what, bi, b.program().tensors.size()), t.dtype(),
                   std::move(shape), offset);
}

/// The inputs that turn scores q k^T into the softmax's logits, over the iteration space
/// [B, Hkv, G, Sq, Sk]: the causal mask (0 where key j <= query i, -inf elsewhere: top-left
/// aligned as PyTorch's is_causal, built once with affine_select) and attn_mask (additive, or
/// boolean: keep where true). Appended to `loop.inputs`; scaleAndMask applies them.
Status addMaskInputs(LowerContext& cx, const Node& n, const AttnDims& a, TileLoop& loop) {
  isa::KernelBuilder& b = cx.b();
  if (a.causal) {
    isa::Tensor mask = cx.scratch("causal_mask", DType::kFP32, {a.Sq, a.Sk});
    const int64_t P = cx.chip().mem.sbufPartitions;
    isa::Tensor zero =
        b.sbuf(fmt::format("mask_zero{}", b.program().tensors.size()), DType::kFP32, {P, a.Sk});
    isa::Tensor row =
        b.sbuf(fmt::format("mask_row{}", b.program().tensors.size()), DType::kFP32, {P, a.Sk});
    TRNSIM_RETURN_IF_ERROR(b.status());
    (void)b.memset(zero.ap(), 0.0f);
    for (int64_t r0 = 0; r0 < a.Sq; r0 += P) {
      const int64_t np = std::min(P, a.Sq - r0);
      const auto rows = isa::Slice::range(0, np);
      // keep where (r0 + p) - j >= 0
      (void)b.affineSelect(row({rows}), {-1}, 1.0f, float(r0), isa::AluOp::kIsGe, zero({rows}),
                           -std::numeric_limits<float>::infinity());
      (void)b.dmaCopy(mask({isa::Slice::range(r0, r0 + np)}), row({rows}));
    }
    b.release(zero);
    b.release(row);
    loop.inputs.push_back(LoopOperand::broadcast(mask, {a.Sq, a.Sk}, loop.shape));
  }
  if (hasMask(n, a)) {
    std::vector<int64_t> ms = cx.graph().type(n.inputs[a.maskInput]).shape;
    while (ms.size() < 4) ms.insert(ms.begin(), 1);
    // [B?, H?, Sq, Sk] over [B, Hkv, G, Sq, Sk]: head h = hk * G + g.
    const LoopOperand op =
        LoopOperand::broadcast(cx.in(n, a.maskInput), ms, {a.B, a.H, a.Sq, a.Sk});
    loop.inputs.push_back(LoopOperand{
        op.tensor,
        {op.strides[0], op.strides[1] * a.G, op.strides[1], op.strides[2], op.strides[3]},
        0});
  }
  return b.status();
}

/// dst = scale * scores (+ causal mask) (+ attn_mask), with the mask inputs addMaskInputs added
/// from input `first` on; scratch tiles s0, s1 serve a boolean mask.
Status scaleAndMask(TileContext& tc, const AttnDims& a, bool mask, const isa::AccessPattern& dst,
                    const isa::AccessPattern& scores, size_t first, const isa::AccessPattern& s0,
                    const isa::AccessPattern& s1) {
  auto& b = tc.b;
  TRNSIM_RETURN_IF_ERROR(b.tensorScalar(dst, scores, isa::AluOp::kMultiply, float(a.scale)));
  if (a.causal)
    TRNSIM_RETURN_IF_ERROR(b.tensorTensor(dst, dst, tc.input(first++), isa::AluOp::kAdd));
  if (!mask) return Status::ok();
  if (numerics::isFloat(a.maskType))
    return b.tensorTensor(dst, dst, tc.input(first), isa::AluOp::kAdd);
  // A boolean mask keeps where true: -inf elsewhere.
  TRNSIM_RETURN_IF_ERROR(b.memset(s0, -std::numeric_limits<float>::infinity()));
  TRNSIM_RETURN_IF_ERROR(b.memset(s1, 0.0f));
  TRNSIM_RETURN_IF_ERROR(b.tensorCopyPredicated(s0, s1, tc.input(first)));
  return b.tensorTensor(dst, dst, s0, isa::AluOp::kAdd);
}

/// dst[r] = log(sum_c exp(src[r, c])) for src fp32 [R, C] in HBM and dst fp32 [R]: 128 rows per
/// tile, C in chunks of up to 4096 (a pass for the row max m, one for sum(exp(x - m))). A row
/// that is all -inf (fully masked) gets 0, as PyTorch's CPU flash attention gives it (and its
/// backward then reads P = exp(-inf - 0) = 0).
Status rowLogSumExp(LowerContext& cx, const isa::Tensor& src, int64_t R, int64_t C,
                    const isa::Tensor& dst) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions, CH = std::min<int64_t>(C, 4096);
  const int64_t chunks = (C + CH - 1) / CH;
  auto tile = [&](const char* stem, int64_t cols) {
    return b.sbuf(fmt::format("{}{}", stem, b.program().tensors.size()), DType::kFP32, {P, cols});
  };
  isa::Tensor x = tile("lse_x", CH), e = tile("lse_e", CH), st = tile("lse_stats", 6);
  TRNSIM_RETURN_IF_ERROR(b.status());
  using isa::AluOp;
  using isa::Slice;
  for (int64_t r0 = 0; r0 < R; r0 += P) {
    const int64_t np = std::min(P, R - r0);
    const auto rows = Slice::range(0, np);
    auto col = [&](int64_t c) { return st({rows, Slice::range(c, c + 1)}); };
    const auto m = col(0), cm = col(1), s = col(2), cs = col(3), eq = col(4), neg = col(5);
    auto load = [&](int64_t c) {
      const int64_t w = std::min(CH, C - c * CH);
      isa::AccessPattern h;
      h.tensor = src.id();
      h.partitionStride = C;
      h.partitions = uint32_t(np);
      h.offset = r0 * C + c * CH;
      h.free[0] = {1, w};
      h.numFree = 1;
      (void)b.dmaCopy(x({rows, Slice::range(0, w)}), h);
      return w;
    };
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t w = load(c);
      (void)b.tensorReduce(c == 0 ? m : cm, AluOp::kMax, x({rows, Slice::range(0, w)}), 1);
      if (c > 0) (void)b.tensorTensor(m, m, cm, AluOp::kMax);
    }
    (void)b.tensorScalar(eq, m, AluOp::kIsEqual, -std::numeric_limits<float>::infinity());
    (void)b.memset(neg, 0.0f);
    (void)b.tensorCopyPredicated(m, neg, eq);  // a fully masked row: shift by 0
    (void)b.tensorScalar(neg, m, AluOp::kMultiply, -1.0f);
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t w = chunks == 1 ? C : load(c);
      (void)b.activation(e({rows, Slice::range(0, w)}), isa::ActFunc::kExp,
                         x({rows, Slice::range(0, w)}), neg, 1.0f, AluOp::kAdd, c == 0 ? s : cs);
      if (c > 0) (void)b.tensorTensor(s, s, cs, AluOp::kAdd);
    }
    (void)b.tensorTensor(s, s, eq, AluOp::kAdd);  // log(0 + 1) = 0 for a fully masked row
    (void)b.activation(cs, isa::ActFunc::kLog, s);
    (void)b.tensorTensor(cs, cs, m, AluOp::kAdd);
    isa::AccessPattern h;
    h.tensor = dst.id();
    h.partitionStride = 1;
    h.partitions = uint32_t(np);
    h.offset = r0;
    h.free[0] = {1, 1};
    h.numFree = 1;
    (void)b.dmaCopy(h, cs);
  }
  for (const isa::Tensor* t : {&x, &e, &st}) b.release(*t);
  return b.status();
}

/// The library's flash attention when it applies (flashApplies); otherwise scores in fp32
/// through the matmul kernel, scale and masks in one tile loop, the softmax kernel, and P @ V.
/// When the logsumexp output (what backward reads) is read: rowLogSumExp over the scores and
/// P = exp(s - lse) instead of the softmax kernel.
Status lowerSdpa(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  isa::KernelBuilder& b = cx.b();
  const AttnDims a = attnDims(g, n, 0, 3);
  const DType qt = g.type(n.inputs[0]).dtype;
  const bool wantLse = cx.isRead(n.outputs[1]);
  if (flashApplies(cx, n, a, {0, 1, 2})) {
    kernels::AttentionOptions o;
    o.causal = a.causal;
    o.scale = float(a.scale);
    for (int64_t bi = 0; bi < a.B; ++bi) {
      isa::Tensor lb = wantLse ? batchView(b, cx.out(n, 1), "lse", bi, {a.H, a.Sq}) : isa::Tensor();
      TRNSIM_RETURN_IF_ERROR(
          kernels::emitAttention(b, batchView(b, cx.in(n, 0), "q", bi, {a.H, a.Sq, a.D}),
                                 batchView(b, cx.in(n, 1), "k", bi, {a.Hkv, a.Sk, a.D}),
                                 batchView(b, cx.in(n, 2), "v", bi, {a.Hkv, a.Sk, a.D}),
                                 batchView(b, cx.out(n, 0), "o", bi, {a.H, a.Sq, a.D}), o, lb));
    }
    return b.status();
  }
  const int64_t BK = a.BK, G = a.G, Sq = a.Sq, Sk = a.Sk, D = a.D;
  isa::Tensor qv = cx.reshaped(n.inputs[0], {BK, G * Sq, D});
  isa::Tensor kv = cx.reshaped(n.inputs[1], {BK, Sk, D});
  isa::Tensor vv = cx.reshaped(n.inputs[2], {BK, Sk, D});
  isa::Tensor scores = cx.scratch("attn_scores", DType::kFP32, {BK, G * Sq, Sk});
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(b, qv, kv, scores, {.transposeB = true}));
  TileLoop loop;
  loop.shape = {a.B, a.Hkv, G, Sq, Sk};
  loop.inputs = {LoopOperand::broadcast(scores, loop.shape, loop.shape)};
  TRNSIM_RETURN_IF_ERROR(addMaskInputs(cx, n, a, loop));
  loop.outputs = {LoopOperand::broadcast(scores, loop.shape, loop.shape)};
  loop.scratchDtypes = {DType::kFP32, DType::kFP32};
  const bool mask = hasMask(n, a);
  loop.body = [a, mask](TileContext& tc) -> Status {
    return scaleAndMask(tc, a, mask, tc.output(0), tc.input(0), 1, tc.scratch(0), tc.scratch(1));
  };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, loop));
  isa::Tensor probs = cx.scratch("attn_probs", qt, {BK, G * Sq, Sk});
  isa::Tensor s2 = b.hbmView(scores, fmt::format("attn_scores2d_{}", b.program().tensors.size()),
                             DType::kFP32, {BK * G * Sq, Sk});
  isa::Tensor p2 = b.hbmView(probs, fmt::format("attn_probs2d_{}", b.program().tensors.size()), qt,
                             {BK * G * Sq, Sk});
  if (wantLse) {
    // Training: lse per row, then P = exp(s - lse), the probabilities backward recomputes (a
    // fully masked row gets lse 0 and P 0, as on PyTorch's CPU).
    isa::Tensor lse = cx.reshaped(n.outputs[1], {BK * G * Sq});
    TRNSIM_RETURN_IF_ERROR(rowLogSumExp(cx, s2, BK * G * Sq, Sk, lse));
    TileLoop pl;
    pl.shape = {BK * G * Sq, Sk};
    pl.inputs = {LoopOperand::broadcast(s2, pl.shape, pl.shape), LoopOperand{lse, {1, 0}, 0}};
    pl.outputs = {LoopOperand::broadcast(p2, pl.shape, pl.shape)};
    pl.scratchDtypes = {DType::kFP32};
    pl.body = [](TileContext& tc) -> Status {
      TRNSIM_RETURN_IF_ERROR(
          tc.b.tensorTensor(tc.scratch(0), tc.input(0), tc.input(1), isa::AluOp::kSubtract));
      return tc.b.activation(tc.output(0), isa::ActFunc::kExp, tc.scratch(0));
    };
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, pl));
  } else {
    TRNSIM_RETURN_IF_ERROR(kernels::emitSoftmax(b, s2, p2));
  }
  isa::Tensor ov = cx.reshaped(n.outputs[0], {BK, G * Sq, D});
  return kernels::emitMatmulAB(b, probs, vv, ov);
}

// ---- attention backward ----

/// _scaled_dot_product_flash_attention_for_cpu_backward(dout, q, k, v, out, logsumexp,
/// attn_mask?) {dropout_p, is_causal, scale} -> (dq, dk, dv) of q's, k's and v's types.
Expected<Types> inferSdpaBackward(const Graph& g, const Node& n) {
  const TensorType& q = in(g, n, 1);
  const TensorType& k = in(g, n, 2);
  TRNSIM_RETURN_IF_ERROR(checkQkv(n, q, k, in(g, n, 3)));
  TRNSIM_RETURN_IF_ERROR(checkMask(g, n, 6, q, k));
  if (in(g, n, 0).shape != q.shape || in(g, n, 4).shape != q.shape)
    return badArg(n, fmt::format("grad_out {} and out {} must have q's shape {}",
                                 shapeString(in(g, n, 0).shape), shapeString(in(g, n, 4).shape),
                                 shapeString(q.shape)));
  const TensorType& lse = in(g, n, 5);
  // PyTorch's logsumexp is f32; another float dtype (a graph retyped to bf16 by the front end's
  // dtype option) is widened first.
  if (!numerics::isFloat(lse.dtype) ||
      lse.shape != std::vector<int64_t>{q.shape[0], q.shape[1], q.shape[2]})
    return badArg(n, fmt::format("logsumexp must be f32 [B, H, Sq], got {}", typeString(lse)));
  return Types{q, k, in(g, n, 3)};
}

/// Value v as an fp32 tensor of `shape` (its own tensor when it is fp32 already, else a cast).
Expected<isa::Tensor> asF32(LowerContext& cx, uint32_t v, std::vector<int64_t> shape) {
  if (cx.graph().type(v).dtype == DType::kFP32) return cx.reshaped(v, std::move(shape));
  isa::Tensor t = cx.scratch("attn_f32", DType::kFP32, shape);
  TileLoop loop;
  loop.shape = {product(shape)};
  loop.inputs = {LoopOperand{cx.tensor(v), {1}, 0}};
  loop.outputs = {LoopOperand{t, {1}, 0}};
  loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
  return t;
}

/// dst[r] = sum_d x[r, d] * y[r, d] (fp32) for x, y [R, D] in HBM: 128 rows per tile.
Status rowDot(LowerContext& cx, const isa::Tensor& x, const isa::Tensor& y, int64_t R, int64_t D,
              const isa::Tensor& dst) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  const auto id = b.program().tensors.size();
  isa::Tensor tx = b.sbuf(fmt::format("rowdot{}_x", id), x.dtype(), {P, D});
  isa::Tensor ty = b.sbuf(fmt::format("rowdot{}_y", id), y.dtype(), {P, D});
  isa::Tensor pr = b.sbuf(fmt::format("rowdot{}_xy", id), DType::kFP32, {P, D});
  isa::Tensor sum = b.sbuf(fmt::format("rowdot{}_sum", id), DType::kFP32, {P, 1});
  TRNSIM_RETURN_IF_ERROR(b.status());
  for (int64_t r0 = 0; r0 < R; r0 += P) {
    const int64_t np = std::min(P, R - r0);
    const auto rows = isa::Slice::range(0, np);
    isa::AccessPattern h;
    h.partitionStride = D;
    h.partitions = uint32_t(np);
    h.offset = r0 * D;
    h.free[0] = {1, D};
    h.numFree = 1;
    h.tensor = x.id();
    (void)b.dmaCopy(tx({rows}), h);
    h.tensor = y.id();
    (void)b.dmaCopy(ty({rows}), h);
    (void)b.tensorTensor(pr({rows}), tx({rows}), ty({rows}), isa::AluOp::kMultiply);
    (void)b.tensorReduce(sum({rows}), isa::AluOp::kAdd, pr({rows}), 1);
    h.tensor = dst.id();
    h.partitionStride = 1;
    h.offset = r0;
    h.free[0] = {1, 1};
    (void)b.dmaCopy(h, sum({rows}));
  }
  for (const isa::Tensor* t : {&tx, &ty, &pr, &sum}) b.release(*t);
  return b.status();
}

/// The library's flash-attention backward (per batch) when flashApplies; otherwise, in fp32:
/// S = q k^T and dP = dO v^T (matmul kernel), Dr = rowsum(dO * O), then one tile loop
/// recomputes P = exp(scale S + masks - lse) and dS = scale P (dP - Dr), writing P^T, dS and
/// dS^T; dV = P^T dO, dQ = dS K, dK = dS^T Q (matmul kernel). GQA needs no repeat: with q
/// viewed [B * Hkv, G * Sq, D], the contraction over G * Sq of P^T dO and dS^T Q sums the
/// group's query heads, as PyTorch's dK, dV do.
Status lowerSdpaBackward(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  isa::KernelBuilder& b = cx.b();
  const AttnDims a = attnDims(g, n, 1, 6);
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor lse, asF32(cx, n.inputs[5], {a.B, a.H, a.Sq}));
  if (flashApplies(cx, n, a, {0, 1, 2, 3, 4})) {
    kernels::AttentionOptions o;
    o.causal = a.causal;
    o.scale = float(a.scale);
    for (int64_t bi = 0; bi < a.B; ++bi) {
      const std::vector<int64_t> qs = {a.H, a.Sq, a.D}, ks = {a.Hkv, a.Sk, a.D};
      TRNSIM_RETURN_IF_ERROR(kernels::emitAttentionBackward(
          b, batchView(b, cx.in(n, 1), "q", bi, qs), batchView(b, cx.in(n, 2), "k", bi, ks),
          batchView(b, cx.in(n, 3), "v", bi, ks), batchView(b, cx.in(n, 4), "o", bi, qs),
          batchView(b, cx.in(n, 0), "do", bi, qs), batchView(b, lse, "lse", bi, {a.H, a.Sq}),
          batchView(b, cx.out(n, 0), "dq", bi, qs), batchView(b, cx.out(n, 1), "dk", bi, ks),
          batchView(b, cx.out(n, 2), "dv", bi, ks), o));
    }
    return b.status();
  }
  const int64_t BK = a.BK, G = a.G, Sq = a.Sq, Sk = a.Sk, D = a.D, GS = G * Sq;
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor dov, asF32(cx, n.inputs[0], {BK, GS, D}));
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor qv, asF32(cx, n.inputs[1], {BK, GS, D}));
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor kv, asF32(cx, n.inputs[2], {BK, Sk, D}));
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor vv, asF32(cx, n.inputs[3], {BK, Sk, D}));
  // S (then dS, in place), dP, P^T and dS^T, fp32.
  isa::Tensor sc = cx.scratch("attn_bwd_s", DType::kFP32, {BK, GS, Sk});
  isa::Tensor dp = cx.scratch("attn_bwd_dp", DType::kFP32, {BK, GS, Sk});
  isa::Tensor pt = cx.scratch("attn_bwd_pt", DType::kFP32, {BK, Sk, GS});
  isa::Tensor dst = cx.scratch("attn_bwd_dst", DType::kFP32, {BK, Sk, GS});
  isa::Tensor dr = cx.scratch("attn_bwd_dr", DType::kFP32, {BK * GS});
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(b, qv, kv, sc, {.transposeB = true}));
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(b, dov, vv, dp, {.transposeB = true}));
  TRNSIM_RETURN_IF_ERROR(rowDot(cx, cx.reshaped(n.inputs[0], {BK * GS, D}),
                                cx.reshaped(n.inputs[4], {BK * GS, D}), BK * GS, D, dr));
  TileLoop loop;
  loop.shape = {a.B, a.Hkv, G, Sq, Sk};
  loop.inputs = {LoopOperand::broadcast(sc, loop.shape, loop.shape)};
  TRNSIM_RETURN_IF_ERROR(addMaskInputs(cx, n, a, loop));
  const size_t rest = loop.inputs.size();
  // lse and Dr: [B, Hkv, G, Sq] broadcast over the keys.
  const std::vector<int64_t> rowStrides = {a.Hkv * GS, GS, Sq, 1, 0};
  loop.inputs.push_back(LoopOperand{lse, rowStrides, 0});
  loop.inputs.push_back(LoopOperand::broadcast(dp, loop.shape, loop.shape));
  loop.inputs.push_back(LoopOperand{dr, rowStrides, 0});
  // [B, Hkv, G, Sq, Sk] written as [B * Hkv, Sk, G * Sq].
  const std::vector<int64_t> tStrides = {a.Hkv * Sk * GS, Sk * GS, Sq, 1, GS};
  loop.outputs = {LoopOperand{pt, tStrides, 0}, LoopOperand::broadcast(sc, loop.shape, loop.shape),
                  LoopOperand{dst, tStrides, 0}};
  loop.scratchDtypes = {DType::kFP32, DType::kFP32, DType::kFP32, DType::kFP32};
  const bool mask = hasMask(n, a);
  loop.body = [a, mask, rest](TileContext& tc) -> Status {
    auto& bb = tc.b;
    using isa::AluOp;
    const auto t = tc.scratch(2), u = tc.scratch(3), p = tc.output(0), ds = tc.output(1);
    TRNSIM_RETURN_IF_ERROR(
        scaleAndMask(tc, a, mask, t, tc.input(0), 1, tc.scratch(0), tc.scratch(1)));
    TRNSIM_RETURN_IF_ERROR(bb.tensorTensor(t, t, tc.input(rest), AluOp::kSubtract));
    TRNSIM_RETURN_IF_ERROR(bb.activation(p, isa::ActFunc::kExp, t));
    TRNSIM_RETURN_IF_ERROR(
        bb.tensorTensor(u, tc.input(rest + 1), tc.input(rest + 2), AluOp::kSubtract));
    TRNSIM_RETURN_IF_ERROR(
        bb.scalarTensorTensor(ds, u, AluOp::kMultiply, float(a.scale), AluOp::kMultiply, p));
    return bb.tensorCopy(tc.output(2), ds);
  };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, loop));
  // The matmul kernel rounds once into the outputs' own dtypes.
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(b, pt, dov, cx.reshaped(n.outputs[2], {BK, Sk, D})));
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(b, sc, kv, cx.reshaped(n.outputs[0], {BK, GS, D})));
  return kernels::emitMatmulAB(b, dst, qv, cx.reshaped(n.outputs[1], {BK, Sk, D}));
}

const OpDef kOps[] = {
    {"mm", OpClass::kKernel, 2, 3, inferMatmul, lowerMatmul},
    {"bmm", OpClass::kKernel, 2, 2, inferMatmul, lowerMatmul},
    {"addmm", OpClass::kKernel, 3, 4, inferMatmul, lowerMatmul},
    {"_softmax", OpClass::kKernel, 1, 1, inferSoftmax, lowerSoftmax},
    {"native_layer_norm", OpClass::kKernel, 1, 3, inferLayerNorm, lowerLayerNorm},
    {"_scaled_dot_product_flash_attention_for_cpu", OpClass::kKernel, 3, 4, inferSdpa, lowerSdpa},
    {"_scaled_dot_product_flash_attention_for_cpu_backward", OpClass::kKernel, 6, 7,
     inferSdpaBackward, lowerSdpaBackward},
};

}  // namespace

std::span<const OpDef> nnOps() { return kOps; }

}  // namespace trnsim::compiler
