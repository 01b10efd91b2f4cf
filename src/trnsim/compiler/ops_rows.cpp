// Ops that work on whole rows along one dim: cumsum, topk, argmax/argmin (and max/min.dim's
// indices), _log_softmax, _softmax over any dim, native_layer_norm without weight/bias or with
// its mean/rstd outputs. A row loop puts the op's dim on the free axis of each tile (read with
// its own stride by the DMA, so no permute is needed), the other dims on the partitions and
// loops; the body works on [rows, L] tiles, fp32 in between.
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <limits>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::in;
using isa::AccessPattern;
using isa::AluOp;
using isa::Slice;
using Types = std::vector<TensorType>;
constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- the row loop ----

/// One HBM operand of a row loop: a contiguous tensor shaped like the loop's shape with the
/// row dim of size `len`; `shared` = one row of `len` elements read by every row (weights).
struct RowOperand {
  isa::Tensor tensor;
  int64_t len = 1;
  bool shared = false;
};

struct RowTile {
  isa::KernelBuilder& b;
  int64_t np = 0;  ///< rows of this tile
  std::vector<isa::Tensor> ins, outs, scratch;
  std::vector<int64_t> inLen, outLen, scratchLen;
  AccessPattern in(size_t i) const { return cut(ins[i], inLen[i]); }
  AccessPattern out(size_t i) const { return cut(outs[i], outLen[i]); }
  AccessPattern tmp(size_t i) const { return cut(scratch[i], scratchLen[i]); }
  AccessPattern cut(const isa::Tensor& t, int64_t len) const {
    return t({Slice::range(0, np), Slice::range(0, len)});
  }
};

struct RowLoop {
  std::vector<int64_t> shape;  ///< the iteration space (the input's shape)
  int dim = 0;                 ///< the row dim
  std::vector<RowOperand> inputs, outputs;
  std::vector<std::pair<DType, int64_t>> scratch;  ///< dtype, elements per row
  std::function<Status(RowTile&)> body;
};

struct RowAxis {
  int64_t size;
  std::vector<int64_t> strides;  ///< per operand (inputs then outputs)
};

Status emitRowLoop(LowerContext& cx, const char* what, const RowLoop& loop) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  std::vector<const RowOperand*> ops;
  for (const auto& o : loop.inputs) ops.push_back(&o);
  for (const auto& o : loop.outputs) ops.push_back(&o);
  const size_t nops = ops.size();
  // Per-operand contiguous strides and the row stride.
  std::vector<std::vector<int64_t>> cs(nops);
  std::vector<int64_t> rowStride(nops, 1);
  for (size_t k = 0; k < nops; ++k) {
    std::vector<int64_t> s = loop.shape;
    s[size_t(loop.dim)] = ops[k]->len;
    cs[k] = contiguousStrides(s);
    rowStride[k] = ops[k]->shared ? 1 : cs[k][size_t(loop.dim)];
  }
  std::vector<RowAxis> kept;
  for (size_t d = 0; d < loop.shape.size(); ++d) {
    if (int(d) == loop.dim || loop.shape[d] == 1) continue;
    RowAxis a{loop.shape[d], std::vector<int64_t>(nops, 0)};
    for (size_t k = 0; k < nops; ++k) a.strides[k] = ops[k]->shared ? 0 : cs[k][d];
    if (!kept.empty()) {
      RowAxis& o = kept.back();
      bool merge = true;
      for (size_t k = 0; k < nops && merge; ++k) merge = o.strides[k] == a.strides[k] * a.size;
      if (merge) {
        o.size *= a.size;
        o.strides = a.strides;
        continue;
      }
    }
    kept.push_back(a);
  }
  size_t pAxis = 0;
  for (size_t i = 0; i < kept.size(); ++i)
    if (kept[i].size >= kept[pAxis].size) pAxis = i;
  const RowAxis part = kept.empty() ? RowAxis{1, std::vector<int64_t>(nops, 0)} : kept[pAxis];
  std::vector<RowAxis> loops;
  for (size_t i = 0; i < kept.size(); ++i)
    if (i != pAxis) loops.push_back(kept[i]);

  // Tiles: two sets when they fit, else one.
  int64_t bytes = 0;
  for (const auto* o : ops) bytes += o->len * int64_t(numerics::dtypeSize(o->tensor.dtype()));
  for (const auto& [dt, len] : loop.scratch) bytes += len * int64_t(numerics::dtypeSize(dt));
  const int64_t avail = int64_t(b.sbufFreeBytes()) - 4096;
  const int sets = 2 * bytes <= avail ? 2 : 1;
  if (bytes > avail)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{}: rows of {} elements need {} bytes per partition of SBUF; "
                              "longer rows are not supported yet",
                              what, loop.shape.empty() ? 1 : loop.shape[size_t(loop.dim)], bytes));
  const auto id = b.program().tensors.size();
  std::vector<RowTile> tiles;
  for (int s = 0; s < sets; ++s) {
    RowTile t{b};
    int j = 0;
    auto make = [&](DType dt, int64_t len) {
      return b.sbuf(fmt::format("row{}_{}_{}", id, s, j++), dt, {P, std::max<int64_t>(1, len)});
    };
    for (const auto& o : loop.inputs) {
      t.ins.push_back(make(o.tensor.dtype(), o.len));
      t.inLen.push_back(o.len);
    }
    for (const auto& o : loop.outputs) {
      t.outs.push_back(make(o.tensor.dtype(), o.len));
      t.outLen.push_back(o.len);
    }
    for (const auto& [dt, len] : loop.scratch) {
      t.scratch.push_back(make(dt, len));
      t.scratchLen.push_back(len);
    }
    tiles.push_back(std::move(t));
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  auto hbmAp = [&](size_t k, int64_t base, int64_t np) {
    AccessPattern ap;
    ap.tensor = ops[k]->tensor.id();
    ap.partitionStride = part.strides[k];
    ap.partitions = uint32_t(np);
    ap.offset = base;
    ap.free[0] = {rowStride[k], ops[k]->len};
    ap.numFree = 1;
    return ap;
  };
  std::vector<int64_t> idx(loops.size(), 0);
  uint64_t iter = 0;
  const size_t nin = loop.inputs.size();
  for (;;) {
    std::vector<int64_t> base(nops, 0);
    for (size_t j = 0; j < loops.size(); ++j)
      for (size_t k = 0; k < nops; ++k) base[k] += idx[j] * loops[j].strides[k];
    for (int64_t p0 = 0; p0 < part.size; p0 += P, ++iter) {
      RowTile& t = tiles[iter % size_t(sets)];
      t.np = std::min(P, part.size - p0);
      for (size_t k = 0; k < nin; ++k)
        (void)b.dmaCopy(t.in(k), hbmAp(k, base[k] + p0 * part.strides[k], t.np));
      TRNSIM_RETURN_IF_ERROR(loop.body(t));
      for (size_t k = nin; k < nops; ++k)
        (void)b.dmaCopy(hbmAp(k, base[k] + p0 * part.strides[k], t.np), t.out(k - nin));
    }
    size_t j = loops.size();
    while (j-- > 0) {
      if (++idx[j] < loops[j].size) break;
      idx[j] = 0;
    }
    if (j == size_t(-1)) break;
  }
  for (auto& t : tiles)
    for (auto* v : {&t.ins, &t.outs, &t.scratch})
      for (auto& tt : *v) b.release(tt);
  return b.status();
}

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

}  // namespace

namespace detail {
Status lowerMinMaxWithIndices(LowerContext& cx, const Node& n) {
  const int d = *dimOf(cx.graph(), n);
  return emitTopK(cx, n, shapeOf(cx.graph(), n), d, 1, n.op == "max", &cx.out(n, 0), &cx.out(n, 1));
}

// ---- softmax / log_softmax over any dim ----

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
