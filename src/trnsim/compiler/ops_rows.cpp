// Ops that work on whole rows along one dim: cumsum, topk, argmax/argmin (and max/min.dim's
// indices), _log_softmax, _softmax over any dim, native_layer_norm without weight/bias or with
// its mean/rstd outputs. A row loop puts the op's dim on the free axis of each tile (read with
// its own stride by the DMA, so no permute is needed), the other dims on the partitions and
// loops; the body works on [rows, L] tiles, fp32 in between. Rows longer than SBUF holds are
// streamed in chunks along the row, one or more passes per row (emitLongRowLoop). The row loop
// itself is ops_rows_loop.cpp.
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <limits>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/ops_rows_loop.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::emitLongRowLoop;
using detail::emitRowLoop;
using detail::in;
using detail::LongRowLoop;
using detail::RowLoop;
using detail::rowLoopFits;
using detail::RowTile;
using isa::AccessPattern;
using isa::AluOp;
using isa::ScalarOperand;
using isa::Slice;
using Types = std::vector<TensorType>;
constexpr float kInf = std::numeric_limits<float>::infinity();

/// A [np, 1] column of a scratch tile.
AccessPattern col(const RowTile& t, size_t i) { return t.cut(t.scratch[i], 1); }

/// Input 0 as fp32: the loaded tile itself, or scratch `s` after a copy (negated if `negate`).
Expected<AccessPattern> asF32(RowTile& t, size_t s, bool negate = false) {
  if (t.ins[0].dtype() == DType::kFP32 && !negate) return t.in(0);
  AccessPattern x = t.cut(t.scratch[s], t.inLen[0]);
  if (negate)
    TRNSIM_RETURN_IF_ERROR(t.b.tensorScalar(x, t.in(0), AluOp::kMultiply, -1.0f));
  else
    TRNSIM_RETURN_IF_ERROR(t.b.tensorCopy(x, t.in(0)));
  return x;
}

/// The dim attribute normalized; rank 0 counts as rank 1.
Expected<int> dimOf(const Graph& g, const Node& n, int64_t def = -1) {
  const int rank = std::max(1, in(g, n, 0).rank());
  return normalizeDim(n.intAttr("dim", def), rank);
}
std::vector<int64_t> shapeOf(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  return t.shape.empty() ? std::vector<int64_t>{1} : t.shape;
}

// ---- cumsum ----

Expected<Types> inferCumsum(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(const int d, dimOf(g, n));
  (void)d;
  DType dt = numerics::isFloat(t.dtype) ? t.dtype : DType::kInt32;
  TRNSIM_ASSIGN_OR_RETURN(t.dtype, detail::dtypeAttr(n, "dtype", dt));
  return Types{t};
}

Status lowerCumsum(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  RowLoop loop;
  loop.shape = shapeOf(g, n);
  loop.dim = *dimOf(g, n);
  const int64_t L = loop.shape[size_t(loop.dim)];
  loop.inputs = {{cx.in(n, 0), L}};
  loop.outputs = {{cx.out(n), L}};
  const bool direct = cx.out(n).dtype() == DType::kFP32;
  loop.scratch = {{DType::kFP32, L}};
  if (!rowLoopFits(cx.b(), loop)) {
    // Long rows: each chunk's scan starts from the last sum of the chunk before.
    LongRowLoop lr;
    lr.shape = std::move(loop.shape);
    lr.dim = loop.dim;
    lr.inputs = std::move(loop.inputs);
    lr.outputs = std::move(loop.outputs);
    lr.chunkScratch = {{DType::kFP32, 1}};
    lr.state = {{DType::kFP32, 1}};  // the running sum
    lr.chunk = [direct](RowTile& t, int, int64_t c0) -> Status {
      AccessPattern acc = direct ? t.out(0) : t.tmp(0);
      const ScalarOperand init = c0 == 0 ? ScalarOperand(0.0f) : ScalarOperand(t.state(0));
      TRNSIM_RETURN_IF_ERROR(
          t.b.tensorTensorScan(acc, t.in(0), t.in(0), init, AluOp::kAdd, AluOp::kBypass));
      const int64_t len = t.inLen[0];
      const AccessPattern lastSum =
          (direct ? t.outs[0] : t.scratch[0])({Slice::range(0, t.np), Slice::range(len - 1, len)});
      TRNSIM_RETURN_IF_ERROR(t.b.tensorCopy(t.state(0), lastSum));
      return direct ? Status::ok() : t.b.tensorCopy(t.out(0), acc);
    };
    return emitLongRowLoop(cx, "cumsum", lr);
  }
  loop.body = [direct](RowTile& t) -> Status {
    // VectorE scan along the free axis: r = x[i] + r, starting at 0, accumulated in fp32.
    AccessPattern acc = direct ? t.out(0) : t.tmp(0);
    TRNSIM_RETURN_IF_ERROR(
        t.b.tensorTensorScan(acc, t.in(0), t.in(0), 0.0f, AluOp::kAdd, AluOp::kBypass));
    return direct ? Status::ok() : t.b.tensorCopy(t.out(0), acc);
  };
  return emitRowLoop(cx, "cumsum", loop);
}

// ---- topk, argmax, argmin, max/min.dim indices ----

/// The largest (or smallest) element of rows longer than SBUF holds and its index: per chunk
/// max8 + nc_find_index8 on an fp32 copy (negated for smallest) give the chunk's best; it replaces
/// the running best where strictly greater, so ties keep the first occurrence. Indices are kept
/// in fp32 (exact below 2^24).
Status emitLongRowArg(LowerContext& cx, const Node& n, RowLoop&& rows, bool largest,
                      bool wantValues) {
  LongRowLoop loop;
  loop.shape = std::move(rows.shape);
  loop.dim = rows.dim;
  loop.inputs = std::move(rows.inputs);
  loop.outputs = std::move(rows.outputs);
  loop.chunkScratch = {{DType::kFP32, 8}};  // the chunk in fp32, padded with -inf to 8
  enum { kBest, kBestIdx, kMax8, kIdx8, kChunkIdx, kGreater };
  loop.state = {{DType::kFP32, 1},  {DType::kFP32, 1}, {DType::kFP32, 8},
                {DType::kInt32, 8}, {DType::kFP32, 1}, {DType::kFP32, 1}};
  loop.chunk = [largest](RowTile& t, int, int64_t c0) -> Status {
    auto& b = t.b;
    const int64_t len = t.inLen[0];
    if (len < 8) TRNSIM_RETURN_IF_ERROR(b.memset(t.tmp(0), -kInf));
    const AccessPattern head = t.cut(t.scratch[0], len);
    if (largest)
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(head, t.in(0)));
    else
      TRNSIM_RETURN_IF_ERROR(b.tensorScalar(head, t.in(0), AluOp::kMultiply, -1.0f));
    TRNSIM_RETURN_IF_ERROR(b.max8(t.state(kMax8), t.tmp(0)));
    TRNSIM_RETURN_IF_ERROR(b.ncFindIndex8(t.state(kIdx8), t.tmp(0), t.state(kMax8)));
    const AccessPattern m = t.cut(t.rowState[kMax8], 1), i = t.cut(t.rowState[kIdx8], 1);
    if (c0 == 0) {
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.state(kBest), m));
      return b.tensorCopy(t.state(kBestIdx), i);
    }
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(t.state(kChunkIdx), i, AluOp::kAdd, float(c0)));
    TRNSIM_RETURN_IF_ERROR(b.tensorTensor(t.state(kGreater), m, t.state(kBest), AluOp::kIsGt));
    TRNSIM_RETURN_IF_ERROR(
        b.tensorCopyPredicated(t.state(kBestIdx), t.state(kChunkIdx), t.state(kGreater)));
    return b.tensorTensor(t.state(kBest), t.state(kBest), m, AluOp::kMax);
  };
  loop.endPass = [largest, wantValues](RowTile& t, int) -> Status {
    auto& b = t.b;
    size_t o = 0;
    if (wantValues) {
      if (largest)
        TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(o), t.state(kBest)));
      else
        TRNSIM_RETURN_IF_ERROR(b.tensorScalar(t.out(o), t.state(kBest), AluOp::kMultiply, -1.0f));
      ++o;
    }
    return b.tensorCopy(t.out(o), t.state(kBestIdx));
  };
  return emitLongRowLoop(cx, std::string(n.op).c_str(), loop);
}

/// values (optional) and i32 indices of the k largest (or smallest) along the row: VectorE
/// max8 and nc_find_index8 over an fp32 copy (negated for smallest, padded with -inf to 8).
Status emitTopK(LowerContext& cx, const Node& n, std::vector<int64_t> shape, int dim, int64_t k,
                bool largest, const isa::Tensor* values, const isa::Tensor* indices) {
  if (k > 8)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{}: k = {} > 8 is not supported yet (VectorE max8 finds 8 per "
                              "pass)",
                              n.op, k));
  RowLoop loop;
  loop.shape = std::move(shape);
  loop.dim = dim;
  const int64_t L = loop.shape[size_t(dim)];
  if (k > L) return badArg(n, fmt::format("k = {} is larger than the dim's size {}", k, L));
  loop.inputs = {{cx.in(n, 0), L}};
  if (values) loop.outputs.push_back({*values, k});
  if (indices) loop.outputs.push_back({*indices, k});
  const int64_t W = std::max<int64_t>(8, L);
  loop.scratch = {{DType::kFP32, W}, {DType::kFP32, 8}, {DType::kInt32, 8}};
  const bool wantValues = values != nullptr;
  if (!rowLoopFits(cx.b(), loop)) {
    if (k != 1)
      return Status(ErrorCode::kUnsupported,
                    fmt::format("{}: k = {} over rows of {} elements (longer than SBUF holds) is "
                                "not supported yet; k = 1 (argmax, max.dim) is",
                                n.op, k, L));
    return emitLongRowArg(cx, n, std::move(loop), largest, wantValues);
  }
  loop.body = [=](RowTile& t) -> Status {
    auto& b = t.b;
    AccessPattern data = t.tmp(0);
    if (L < 8) TRNSIM_RETURN_IF_ERROR(b.memset(data, -kInf));
    AccessPattern head = t.cut(t.scratch[0], L);
    if (largest)
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(head, t.in(0)));
    else
      TRNSIM_RETURN_IF_ERROR(b.tensorScalar(head, t.in(0), AluOp::kMultiply, -1.0f));
    TRNSIM_RETURN_IF_ERROR(b.max8(t.tmp(1), data));
    TRNSIM_RETURN_IF_ERROR(b.ncFindIndex8(t.tmp(2), data, t.tmp(1)));
    size_t o = 0;
    if (wantValues) {
      AccessPattern v = t.cut(t.scratch[1], k);
      if (largest)
        TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(o), v));
      else
        TRNSIM_RETURN_IF_ERROR(b.tensorScalar(t.out(o), v, AluOp::kMultiply, -1.0f));
      ++o;
    }
    if (o < t.outs.size()) TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(o), t.cut(t.scratch[2], k)));
    return Status::ok();
  };
  return emitRowLoop(cx, std::string(n.op).c_str(), loop);
}

Expected<Types> inferTopK(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(int d, dimOf(g, n));
  const int64_t k = n.intAttr("k");
  if (k < 0) return badArg(n, "k must not be negative");
  if (t.rank()) t.shape[size_t(d)] = k;
  return Types{t, TensorType{DType::kInt32, t.shape}};
}

Status lowerTopK(LowerContext& cx, const Node& n) {
  const int d = *dimOf(cx.graph(), n);
  if (cx.graph().type(n.outputs[0]).numElements() == 0) return Status::ok();
  return emitTopK(cx, n, shapeOf(cx.graph(), n), d, n.intAttr("k"), n.intAttr("largest", 1) != 0,
                  &cx.out(n, 0), &cx.out(n, 1));
}

Expected<Types> inferArg(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  std::vector<int64_t> shape;
  const bool keep = n.intAttr("keepdim", 0) != 0;
  if (!n.has("dim")) {
    if (keep) shape.assign(size_t(t.rank()), 1);
  } else {
    TRNSIM_ASSIGN_OR_RETURN(int d, dimOf(g, n));
    shape = t.shape;
    if (t.rank()) {
      if (keep)
        shape[size_t(d)] = 1;
      else
        shape.erase(shape.begin() + d);
    }
  }
  return Types{TensorType{DType::kInt32, shape}};
}

Status lowerArg(LowerContext& cx, const Node& n) {
  const bool largest = n.op == "argmax";
  if (!n.has("dim"))  // over all elements: the input seen as one row
    return emitTopK(cx, n, {std::max<int64_t>(1, cx.graph().type(n.inputs[0]).numElements())}, 0, 1,
                    largest, nullptr, &cx.out(n, 0));
  return emitTopK(cx, n, shapeOf(cx.graph(), n), *dimOf(cx.graph(), n), 1, largest, nullptr,
                  &cx.out(n, 0));
}

// ---- softmax / log_softmax over any dim ----

/// Rows longer than SBUF holds: pass 1 streams the chunks keeping the running max M and the
/// running sum of exp(x - M), rescaled by exp(M_old - M_new) when a chunk raises the max (online
/// softmax); pass 2 streams them again writing exp(x - M) / sum or x - M - log(sum).
Status lowerLongRowSoftmax(LowerContext& cx, const Node& n, RowLoop&& rows) {
  LongRowLoop loop;
  loop.shape = std::move(rows.shape);
  loop.dim = rows.dim;
  loop.passes = 2;
  loop.inputs = std::move(rows.inputs);
  loop.outputs = std::move(rows.outputs);
  loop.chunkScratch = {{DType::kFP32, 1}};  // exp(x - M)
  // negMax (-M), sum, the chunk's -max then the new -M, the chunk's sum, the rescale factor,
  // 1/sum or log(sum).
  enum { kNegMax, kSum, kChunkNegMax, kChunkSum, kRescale, kFinal };
  loop.state.assign(6, {DType::kFP32, 1});
  const bool logSm = n.op == "_log_softmax";
  loop.chunk = [logSm](RowTile& t, int pass, int64_t c0) -> Status {
    auto& b = t.b;
    const AccessPattern x = t.in(0);
    if (pass == 0 && c0 == 0) {
      TRNSIM_RETURN_IF_ERROR(b.tensorReduce(t.state(kNegMax), AluOp::kMax, x, 1u, true));
      return b.activation(t.tmp(0), isa::ActFunc::kExp, x, t.state(kNegMax), 1.0f, AluOp::kAdd,
                          t.state(kSum));
    }
    if (pass == 0) {
      const AccessPattern cneg = t.state(kChunkNegMax), scale = t.state(kRescale);
      TRNSIM_RETURN_IF_ERROR(b.tensorReduce(cneg, AluOp::kMax, x, 1u, true));
      TRNSIM_RETURN_IF_ERROR(b.tensorTensor(cneg, cneg, t.state(kNegMax), AluOp::kMin));
      // exp(M_old - M_new) = exp(-M_new - (-M_old)) <= 1.
      TRNSIM_RETURN_IF_ERROR(b.tensorTensor(scale, cneg, t.state(kNegMax), AluOp::kSubtract));
      TRNSIM_RETURN_IF_ERROR(b.activation(scale, isa::ActFunc::kExp, scale));
      TRNSIM_RETURN_IF_ERROR(b.activation(t.tmp(0), isa::ActFunc::kExp, x, cneg, 1.0f, AluOp::kAdd,
                                          t.state(kChunkSum)));
      TRNSIM_RETURN_IF_ERROR(b.tensorScalar(t.state(kSum), t.state(kSum), AluOp::kMultiply, scale,
                                            AluOp::kAdd, t.state(kChunkSum)));
      return b.tensorCopy(t.state(kNegMax), cneg);
    }
    if (logSm)  // out = (x + negMax) - log(sum)
      return b.tensorScalar(t.out(0), x, AluOp::kAdd, t.state(kNegMax), AluOp::kSubtract,
                            t.state(kFinal));
    TRNSIM_RETURN_IF_ERROR(b.activation(t.tmp(0), isa::ActFunc::kExp, x, t.state(kNegMax)));
    return b.tensorScalar(t.out(0), t.tmp(0), AluOp::kMultiply, t.state(kFinal));
  };
  loop.endPass = [logSm](RowTile& t, int pass) -> Status {
    if (pass != 0) return Status::ok();
    if (logSm) return t.b.activation(t.state(kFinal), isa::ActFunc::kLog, t.state(kSum));
    return t.b.reciprocal(t.state(kFinal), t.state(kSum));
  };
  return emitLongRowLoop(cx, std::string(n.op).c_str(), loop);
}

/// Layer norm over rows longer than SBUF holds, in three passes over the chunks as the
/// short path's two over the SBUF row: the sum (mean), the sum of squares of x - mean (rstd),
/// then the output.
Status lowerLongRowLayerNorm(LowerContext& cx, RowLoop&& rows, bool hasW, bool hasB, float eps,
                             float invL) {
  LongRowLoop loop;
  loop.shape = std::move(rows.shape);
  loop.dim = rows.dim;
  loop.passes = 3;
  loop.inputs = std::move(rows.inputs);
  loop.outputs = std::move(rows.outputs);
  loop.chunkScratch = {{DType::kFP32, 1}, {DType::kFP32, 1}};  // x - mean, its square / y
  enum { kMean, kRstd, kChunkSum };
  loop.state.assign(3, {DType::kFP32, 1});
  loop.chunk = [=](RowTile& t, int pass, int64_t c0) -> Status {
    auto& b = t.b;
    const AccessPattern x = t.in(0);
    if (pass == 0) {  // kMean holds the sum until the pass ends
      if (c0 == 0) return b.tensorReduce(t.state(kMean), AluOp::kAdd, x, 1u);
      TRNSIM_RETURN_IF_ERROR(b.tensorReduce(t.state(kChunkSum), AluOp::kAdd, x, 1u));
      return b.tensorTensor(t.state(kMean), t.state(kMean), t.state(kChunkSum), AluOp::kAdd);
    }
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(t.tmp(0), x, AluOp::kSubtract, t.state(kMean)));
    if (pass == 1) {  // kRstd holds the sum of squares until the pass ends
      const AccessPattern acc = c0 == 0 ? t.state(kRstd) : t.state(kChunkSum);
      TRNSIM_RETURN_IF_ERROR(
          b.activation(t.tmp(1), isa::ActFunc::kSquare, t.tmp(0), {}, 1.0f, AluOp::kAdd, acc));
      if (c0 == 0) return Status::ok();
      return b.tensorTensor(t.state(kRstd), t.state(kRstd), acc, AluOp::kAdd);
    }
    const AccessPattern y = t.tmp(1);
    const bool last = !hasW && !hasB;
    TRNSIM_RETURN_IF_ERROR(
        b.tensorScalar(last ? t.out(0) : y, t.tmp(0), AluOp::kMultiply, t.state(kRstd)));
    size_t w = 1;
    if (hasW)
      TRNSIM_RETURN_IF_ERROR(b.tensorTensor(hasB ? y : t.out(0), y, t.in(w++), AluOp::kMultiply));
    if (hasB) TRNSIM_RETURN_IF_ERROR(b.tensorTensor(t.out(0), y, t.in(w), AluOp::kAdd));
    return Status::ok();
  };
  loop.endPass = [=](RowTile& t, int pass) -> Status {
    auto& b = t.b;
    if (pass == 0) return b.tensorScalar(t.state(kMean), t.state(kMean), AluOp::kMultiply, invL);
    if (pass == 1) {
      TRNSIM_RETURN_IF_ERROR(
          b.tensorScalar(t.state(kRstd), t.state(kRstd), AluOp::kMultiply, invL, AluOp::kAdd, eps));
      return b.tensorScalar(t.state(kRstd), t.state(kRstd), AluOp::kPow, -0.5f);
    }
    if (t.outs.size() == 3) {
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(1), t.state(kMean)));
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(2), t.state(kRstd)));
    }
    return Status::ok();
  };
  return emitLongRowLoop(cx, "native_layer_norm", loop);
}

}  // namespace

namespace detail {
Status lowerMinMaxWithIndices(LowerContext& cx, const Node& n) {
  const int d = *dimOf(cx.graph(), n);
  return emitTopK(cx, n, shapeOf(cx.graph(), n), d, 1, n.op == "max", &cx.out(n, 0), &cx.out(n, 1));
}

Status lowerRowSoftmax(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  RowLoop loop;
  loop.shape = shapeOf(g, n);
  loop.dim = *dimOf(g, n);
  const int64_t L = loop.shape[size_t(loop.dim)];
  loop.inputs = {{cx.in(n, 0), L}};
  loop.outputs = {{cx.out(n), L}};
  // x (fp32 copy), exp, negMax, sum, log-sum / 1/sum.
  loop.scratch = {{DType::kFP32, L},
                  {DType::kFP32, L},
                  {DType::kFP32, 1},
                  {DType::kFP32, 1},
                  {DType::kFP32, 1}};
  if (!rowLoopFits(cx.b(), loop)) return lowerLongRowSoftmax(cx, n, std::move(loop));
  const bool logSm = n.op == "_log_softmax";
  loop.body = [logSm](RowTile& t) -> Status {
    auto& b = t.b;
    TRNSIM_ASSIGN_OR_RETURN(AccessPattern x, asF32(t, 0));
    TRNSIM_RETURN_IF_ERROR(b.tensorReduce(col(t, 2), AluOp::kMax, x, 1u, /*negate=*/true));
    TRNSIM_RETURN_IF_ERROR(
        b.activation(t.tmp(1), isa::ActFunc::kExp, x, col(t, 2), 1.0f, AluOp::kAdd, col(t, 3)));
    if (!logSm) {
      TRNSIM_RETURN_IF_ERROR(b.reciprocal(col(t, 4), col(t, 3)));
      return b.tensorScalar(t.out(0), t.tmp(1), AluOp::kMultiply, col(t, 4));
    }
    // out = x - (max + log(sum)) = (x + negMax) - log(sum).
    TRNSIM_RETURN_IF_ERROR(b.activation(col(t, 4), isa::ActFunc::kLog, col(t, 3)));
    return b.tensorScalar(t.out(0), x, AluOp::kAdd, col(t, 2), AluOp::kSubtract, col(t, 4));
  };
  return emitRowLoop(cx, std::string(n.op).c_str(), loop);
}

// ---- layer norm without weight/bias, or with its mean/rstd outputs ----

Status lowerRowLayerNorm(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  RowLoop loop;
  loop.shape = shapeOf(g, n);
  loop.dim = int(loop.shape.size()) - 1;
  const int64_t L = loop.shape.back();
  // Which of weight, bias are given (weight_present=0: only a bias).
  bool hasW = false, hasB = false;
  if (n.inputs.size() == 3) hasW = hasB = true;
  if (n.inputs.size() == 2) (n.intAttr("weight_present", 1) != 0 ? hasW : hasB) = true;
  loop.inputs = {{cx.in(n, 0), L}};
  for (size_t i = 1; i < n.inputs.size(); ++i) loop.inputs.push_back({cx.in(n, i), L, true});
  loop.outputs = {{cx.out(n, 0), L}};
  const bool stats = cx.isRead(n.outputs[1]) || cx.isRead(n.outputs[2]);
  if (stats) loop.outputs.push_back({cx.out(n, 1), 1});
  if (stats) loop.outputs.push_back({cx.out(n, 2), 1});
  // x (fp32 copy), centered x, its square, sum/mean, sum of squares/rstd.
  loop.scratch = {{DType::kFP32, L},
                  {DType::kFP32, L},
                  {DType::kFP32, L},
                  {DType::kFP32, 1},
                  {DType::kFP32, 1}};
  const float eps = float(n.floatAttr("eps", 1e-5)), invL = float(1.0 / double(L));
  if (!rowLoopFits(cx.b(), loop))
    return lowerLongRowLayerNorm(cx, std::move(loop), hasW, hasB, eps, invL);
  loop.body = [=](RowTile& t) -> Status {
    auto& b = t.b;
    TRNSIM_ASSIGN_OR_RETURN(AccessPattern x, asF32(t, 0));
    TRNSIM_RETURN_IF_ERROR(b.tensorReduce(col(t, 3), AluOp::kAdd, x, 1u));
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(col(t, 3), col(t, 3), AluOp::kMultiply, invL));
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(t.tmp(1), x, AluOp::kSubtract, col(t, 3)));
    TRNSIM_RETURN_IF_ERROR(
        b.activation(t.tmp(2), isa::ActFunc::kSquare, t.tmp(1), {}, 1.0f, AluOp::kAdd, col(t, 4)));
    TRNSIM_RETURN_IF_ERROR(
        b.tensorScalar(col(t, 4), col(t, 4), AluOp::kMultiply, invL, AluOp::kAdd, eps));
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(col(t, 4), col(t, 4), AluOp::kPow, -0.5f));
    AccessPattern y = t.tmp(2);
    const bool last = !hasW && !hasB;
    TRNSIM_RETURN_IF_ERROR(
        b.tensorScalar(last ? t.out(0) : y, t.tmp(1), AluOp::kMultiply, col(t, 4)));
    size_t w = 1;
    if (hasW)
      TRNSIM_RETURN_IF_ERROR(b.tensorTensor(hasB ? y : t.out(0), y, t.in(w++), AluOp::kMultiply));
    if (hasB) TRNSIM_RETURN_IF_ERROR(b.tensorTensor(t.out(0), y, t.in(w), AluOp::kAdd));
    if (t.outs.size() == 3) {
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(1), col(t, 3)));
      TRNSIM_RETURN_IF_ERROR(b.tensorCopy(t.out(2), col(t, 4)));
    }
    return Status::ok();
  };
  return emitRowLoop(cx, "native_layer_norm", loop);
}
}  // namespace detail

namespace {

Expected<Types> inferLogSoftmax(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(const int d, dimOf(g, n));
  (void)d;
  if (!numerics::isFloat(t.dtype)) return badArg(n, "needs a float input");
  if (n.intAttr("half_to_float", 0)) t.dtype = DType::kFP32;
  return Types{t};
}

const OpDef kOps[] = {
    {"cumsum", OpClass::kReduction, 1, 1, inferCumsum, lowerCumsum},
    {"topk", OpClass::kReduction, 1, 1, inferTopK, lowerTopK},
    {"argmax", OpClass::kReduction, 1, 1, inferArg, lowerArg},
    {"argmin", OpClass::kReduction, 1, 1, inferArg, lowerArg},
    {"_log_softmax", OpClass::kKernel, 1, 1, inferLogSoftmax, detail::lowerRowSoftmax},
};

}  // namespace

std::span<const OpDef> rowOps() { return kOps; }

}  // namespace trnsim::compiler
