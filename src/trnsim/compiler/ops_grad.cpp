// Ops that training graphs add to the forward ones: the scatters that the backward passes of
// gathers, slices and losses produce (index_put, scatter, scatter_add, slice_scatter,
// select_scatter) and native_dropout. (copy and prims.fma are pointwise: ops_pointwise.cpp;
// attention's backward sits next to its forward in ops_nn.cpp.)
//
// Every result starts as a copy of `self` (the IR is functional: a node's result never shares
// storage with its inputs), then the scattered part is written over it: strided tile loops for
// slice_scatter/select_scatter, indirect DMAs (128 rows per instruction) for scatter and
// index_put, and for index_put with accumulate=True a one-hot matmul on TensorE (see
// oneHotAccumulate).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/tile_loop.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::in;
using isa::AluOp;
using isa::Slice;
using Types = std::vector<TensorType>;

/// `rows` rows of `cols` contiguous elements of HBM tensor t, `rowStride` elements apart.
isa::AccessPattern hbmRows(const isa::Tensor& t, int64_t offset, int64_t rows, int64_t rowStride,
                           int64_t cols) {
  isa::AccessPattern p;
  p.tensor = t.id();
  p.partitionStride = rowStride;
  p.partitions = uint32_t(rows);
  p.offset = offset;
  p.free[0] = {1, cols};
  p.numFree = 1;
  return p;
}

/// An SBUF tile with a program-unique name.
isa::Tensor sbufTile(isa::KernelBuilder& b, const char* stem, DType dt,
                     std::vector<int64_t> shape) {
  return b.sbuf(fmt::format("{}{}", stem, b.program().tensors.size()), dt, std::move(shape));
}

// ---- slice_scatter, select_scatter ----

/// The part of self that src replaces: its shape, self's strides over it and its offset.
struct Region {
  std::vector<int64_t> shape, strides;
  int64_t offset = 0;
};

Expected<Region> regionOf(const TensorType& x, const Node& n) {
  if (x.rank() == 0) return badArg(n, "self must have at least one dim");
  Region r{x.shape, contiguousStrides(x.shape), 0};
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim", 0), x.rank()));
  const int64_t size = x.shape[size_t(d)];
  if (n.op == "select_scatter") {
    int64_t i = n.intAttr("index");
    if (i < 0) i += size;
    if (i < 0 || i >= size)
      return badArg(n, fmt::format("index {} is out of range for dim {} of size {}",
                                   n.intAttr("index"), d, size));
    r.offset = i * r.strides[size_t(d)];
    r.shape.erase(r.shape.begin() + d);
    r.strides.erase(r.strides.begin() + d);
    return r;
  }
  // slice_scatter: start/end clamp as slice's do; a left-out start/end is the whole dim.
  int64_t start = n.intAttr("start", 0),
          end = n.intAttr("end", std::numeric_limits<int64_t>::max());
  const int64_t step = n.intAttr("step", 1);
  if (step < 1) return badArg(n, fmt::format("step {} must be positive", step));
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  r.offset = start * r.strides[size_t(d)];
  r.shape[size_t(d)] = (end - start + step - 1) / step;
  r.strides[size_t(d)] *= step;
  return r;
}

Expected<Types> inferRegionScatter(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  const TensorType& src = in(g, n, 1);
  TRNSIM_ASSIGN_OR_RETURN(Region r, regionOf(x, n));
  if (src.shape != r.shape)
    return badArg(n,
                  fmt::format("src {} does not have the shape {} of the part of self {} it "
                              "replaces",
                              shapeString(src.shape), shapeString(r.shape), shapeString(x.shape)));
  return Types{x};
}

/// out = self, then src written over the region (a strided tile loop; a cast when the dtypes
/// differ, as PyTorch's copy_ into the slice does).
Status lowerRegionScatter(LowerContext& cx, const Node& n) {
  const TensorType& x = cx.graph().type(n.inputs[0]);
  const TensorType& src = cx.graph().type(n.inputs[1]);
  TRNSIM_ASSIGN_OR_RETURN(Region r, regionOf(x, n));
  TRNSIM_RETURN_IF_ERROR(cx.copyAll(cx.out(n), cx.in(n, 0)));
  if (product(r.shape) == 0) return Status::ok();
  TileLoop loop;
  loop.shape = r.shape.empty() ? std::vector<int64_t>{1} : r.shape;
  loop.inputs = {LoopOperand::broadcast(cx.in(n, 1), src.shape, loop.shape)};
  loop.outputs = {
      LoopOperand{cx.out(n), r.shape.empty() ? std::vector<int64_t>{0} : r.strides, r.offset}};
  if (src.dtype != x.dtype)
    loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
  return emitTileLoop(cx.b(), loop);
}

// ---- scatter ----

Expected<Types> inferScatter(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  const TensorType& idx = in(g, n, 1);
  if (n.has("reduce"))
    return Status(
        ErrorCode::kUnsupported,
        fmt::format("scatter with reduce=\"{}\" is not supported yet", n.strAttr("reduce")));
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), std::max(1, x.rank())));
  if (numerics::isFloat(idx.dtype)) return badArg(n, "index must be an integer tensor");
  const bool hasSrc = n.inputs.size() == 3;
  if (!hasSrc && !n.has("value")) return badArg(n, "needs src (input 2) or a value attribute");
  if (idx.rank() != x.rank() && !(idx.rank() <= 1 && x.rank() <= 1))
    return badArg(n, fmt::format("index {} and self {} must have the same rank",
                                 shapeString(idx.shape), shapeString(x.shape)));
  for (int k = 0; k < idx.rank() && x.rank() > 0; ++k)
    if (k != d && idx.shape[size_t(k)] > x.shape[size_t(k)])
      return badArg(n, fmt::format("index {} is larger than self {} in dim {}",
                                   shapeString(idx.shape), shapeString(x.shape), k));
  if (hasSrc) {
    const TensorType& src = in(g, n, 2);
    bool fits = src.rank() == idx.rank() || (src.rank() <= 1 && idx.rank() <= 1);
    for (int k = 0; fits && k < idx.rank() && src.rank() > 0; ++k)
      fits = idx.shape[size_t(k)] <= src.shape[size_t(k)];
    if (!fits)
      return badArg(n, fmt::format("src {} must have index's rank and be at least as large as "
                                   "index {} in every dim",
                                   shapeString(src.shape), shapeString(idx.shape)));
  }
  return Types{x};
}

/// flat[pos] = index[pos] * stride(dim) + sum over the other dims k of pos_k * stride(k), with
/// self's strides, for every position of the index tensor: index dim 0 on partitions, the others
/// on the free axis, their offsets by one iota (as gather's offsets in ops_index.cpp).
Expected<isa::Tensor> flatElementOffsets(LowerContext& cx, uint32_t indexValue,
                                         const std::vector<int64_t>& selfShape, int d) {
  const TensorType& it = cx.graph().type(indexValue);
  const int64_t count = it.numElements();
  std::vector<int64_t> ishape = it.shape.empty() ? std::vector<int64_t>{1} : it.shape;
  const std::vector<int64_t> xstr = contiguousStrides(selfShape.empty() ? ishape : selfShape);
  const int64_t rows = ishape[0], F = count / rows;
  if (ishape.size() - 1 > size_t(isa::kMaxFreeDims) || F > 8192)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("scatter with index {} is not supported yet (at most {} dims and "
                              "8192 elements after the first)",
                              shapeString(it.shape), isa::kMaxFreeDims + 1));
  isa::KernelBuilder& b = cx.b();
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, indexValue));
  isa::Tensor flat = cx.scratch("scatter_flat", DType::kInt32, {count});
  const int64_t P = cx.chip().mem.sbufPartitions;
  std::vector<int64_t> tileShape = {P}, steps;
  for (size_t k = 1; k < ishape.size(); ++k) {
    tileShape.push_back(ishape[k]);
    steps.push_back(int(k) == d ? 0 : xstr[k]);
  }
  if (steps.empty()) {
    tileShape.push_back(1);
    steps.push_back(0);
  }
  isa::Tensor ti = sbufTile(b, "scatter_idx", DType::kInt32, tileShape);
  isa::Tensor tb = sbufTile(b, "scatter_base", DType::kFP32, tileShape);
  isa::Tensor tf = sbufTile(b, "scatter_off", DType::kInt32, tileShape);
  TRNSIM_RETURN_IF_ERROR(b.status());
  const int64_t s0 = d == 0 ? 0 : xstr[0];
  for (int64_t r0 = 0; r0 < rows; r0 += P) {
    const int64_t np = std::min(P, rows - r0);
    const Slice part = Slice::range(0, np);
    (void)b.dmaCopy(ti({part}), hbmRows(idx, r0 * F, np, F, F));
    (void)b.iota(tb({part}), steps, float(r0 * s0), float(s0));
    (void)b.scalarTensorTensor(tf({part}), ti({part}), AluOp::kMultiply, float(xstr[size_t(d)]),
                               AluOp::kAdd, tb({part}));
    (void)b.dmaCopy(hbmRows(flat, r0 * F, np, F, F), tf({part}));
  }
  for (auto* t : {&ti, &tb, &tf}) b.release(*t);
  TRNSIM_RETURN_IF_ERROR(b.status());
  return flat;
}

/// scatter along dim d with an index as large as self in every other dim and few (K) indices
/// per line: self, index and the values seen as lines along d (lines on partitions, self's
/// line in column chunks on the free axis); per chunk: self's chunk loaded, then for each k
/// a one-hot mask (iota == index[:, k]) selects the value k (a per-partition column broadcast
/// along the chunk) into the chunk, in index order (a later duplicate wins, as on PyTorch's
/// CPU loop), and the chunk written to out. Cost: 2 K VectorE passes and one HBM round trip
/// of self, instead of an indirect DMA per 128 indices whose destination view is all of out
/// (the timing model charges an indirect DMA by its destination view's extent).
/// scatter's `value` as self's dtype takes it: truncated toward zero for an integer self (as
/// PyTorch converts the scalar).
float scatterValue(const Node& n, DType dt) {
  const double v = n.floatAttr("value");
  return float(numerics::isFloat(dt) ? v : std::trunc(v));
}

bool oneHotScatterFits(const TensorType& x, const TensorType& it, int d) {
  if (x.rank() == 0 || it.rank() != x.rank()) return false;
  for (int k = 0; k < x.rank(); ++k)
    if (k != d && it.shape[size_t(k)] != x.shape[size_t(k)]) return false;
  const int64_t K = it.shape[size_t(d)], S = x.shape[size_t(d)];
  return K >= 1 && K <= 8 && S <= (int64_t(1) << 24) && x.numElements() > 0;
}

Status lowerScatterOneHot(LowerContext& cx, const Node& n, int d) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  const TensorType& it = g.type(n.inputs[1]);
  const std::vector<int64_t>& xs = x.shape;
  const std::vector<int64_t>& is = it.shape;
  const int64_t outer = product({xs.begin(), xs.begin() + d});
  const int64_t inner = product({xs.begin() + d + 1, xs.end()});
  const int64_t S = xs[size_t(d)], K = is[size_t(d)];
  isa::KernelBuilder& b = cx.b();
  const bool hasSrc = n.inputs.size() == 3;
  // The values at index's positions, contiguous, in self's dtype (as the indirect path casts).
  isa::Tensor vals = cx.scratch("scatter_vals", x.dtype, is);
  if (hasSrc) {
    const TensorType& st = g.type(n.inputs[2]);
    TileLoop loop;
    loop.shape = is;
    std::vector<int64_t> sstr = contiguousStrides(st.shape.empty() ? is : st.shape);
    loop.inputs = {LoopOperand{cx.in(n, 2), sstr, 0}};
    loop.outputs = {LoopOperand::broadcast(vals, is, is)};
    if (st.dtype != x.dtype)
      loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, loop));
  }
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, n.inputs[1]));
  const bool linesInner = inner > 1 && (outer == 1 || inner >= outer);
  const int64_t lines = linesInner ? inner : outer, loops = linesInner ? outer : inner;
  const int64_t P = cx.chip().mem.sbufPartitions, CW = std::min<int64_t>(S, 2048);
  isa::Tensor ti = sbufTile(b, "scat_idx", DType::kInt32, {P, K});
  isa::Tensor tf = sbufTile(b, "scat_idxf", DType::kFP32, {P, K});
  isa::Tensor ts = sbufTile(b, "scat_val", x.dtype, {P, K});
  isa::Tensor io = sbufTile(b, "scat_iota", DType::kFP32, {P, CW});
  isa::Tensor tm = sbufTile(b, "scat_mask", DType::kFP32, {P, CW});
  isa::Tensor tx = sbufTile(b, "scat_self", x.dtype, {P, CW});
  TRNSIM_RETURN_IF_ERROR(b.status());
  if (!hasSrc) TRNSIM_RETURN_IF_ERROR(b.memset(ts.ap(), scatterValue(n, x.dtype)));
  auto pat = [&](const isa::Tensor& t, int64_t len, int64_t j, int64_t l0, int64_t np, int64_t c0,
                 int64_t w) {
    isa::AccessPattern h;
    h.tensor = t.id();
    h.partitions = uint32_t(np);
    if (linesInner) {
      h.partitionStride = 1;
      h.offset = j * len * inner + l0 + c0 * inner;
    } else {
      h.partitionStride = len * inner;
      h.offset = l0 * len * inner + j + c0 * inner;
    }
    h.free[0] = {inner, w};
    h.numFree = 1;
    return h;
  };
  for (int64_t j = 0; j < loops; ++j)
    for (int64_t l0 = 0; l0 < lines; l0 += P) {
      const int64_t np = std::min(P, lines - l0);
      const auto rows = Slice::range(0, np);
      (void)b.dmaCopy(ti({rows}), pat(idx, K, j, l0, np, 0, K));
      (void)b.tensorCopy(tf({rows}), ti({rows}));
      if (hasSrc) (void)b.dmaCopy(ts({rows}), pat(vals, K, j, l0, np, 0, K));
      for (int64_t c0 = 0; c0 < S; c0 += CW) {
        const int64_t w = std::min(CW, S - c0);
        const auto cols = Slice::range(0, w);
        (void)b.iota(io({rows, cols}), {1}, float(c0), 0.0f);
        (void)b.dmaCopy(tx({rows, cols}), pat(cx.in(n, 0), S, j, l0, np, c0, w));
        for (int64_t k = 0; k < K; ++k) {
          const auto kc = Slice::range(k, k + 1);
          (void)b.tensorScalar(tm({rows, cols}), io({rows, cols}), AluOp::kIsEqual,
                               tf({rows, kc}));
          isa::AccessPattern v = ts({rows, kc});
          v.free[0] = {0, w};  // value k broadcast along the chunk
          v.numFree = 1;
          (void)b.tensorCopyPredicated(tx({rows, cols}), v, tm({rows, cols}));
        }
        (void)b.dmaCopy(pat(cx.out(n), S, j, l0, np, c0, w), tx({rows, cols}));
      }
    }
  for (const isa::Tensor* t : {&ti, &tf, &ts, &io, &tm, &tx}) b.release(*t);
  return b.status();
}

/// out = self, then out.flat[offset[j]] = value j, one element per partition, 128 per indirect
/// DMA, in index order (a later duplicate wins, as on PyTorch's CPU loop). The values are
/// src's elements at index's positions (copied contiguous, cast to self's dtype), or the
/// scalar `value` from an SBUF tile.
Status lowerScatter(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  const TensorType& it = g.type(n.inputs[1]);
  const int d = *normalizeDim(n.intAttr("dim"), std::max(1, x.rank()));
  if (it.numElements() > 0 && oneHotScatterFits(x, it, d)) return lowerScatterOneHot(cx, n, d);
  TRNSIM_RETURN_IF_ERROR(cx.copyAll(cx.out(n), cx.in(n, 0)));
  const int64_t count = it.numElements();
  if (count == 0) return Status::ok();
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor flat, flatElementOffsets(cx, n.inputs[1], x.shape, d));
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  const bool hasSrc = n.inputs.size() == 3;
  isa::Tensor vals, valueTile;
  if (hasSrc) {
    const TensorType& src = g.type(n.inputs[2]);
    vals = cx.scratch("scatter_src", x.dtype, {count});
    TileLoop loop;
    loop.shape = it.shape.empty() ? std::vector<int64_t>{1} : it.shape;
    std::vector<int64_t> sstr = contiguousStrides(src.shape.empty() ? loop.shape : src.shape);
    loop.inputs = {LoopOperand{cx.in(n, 2), sstr, 0}};
    loop.outputs = {LoopOperand::broadcast(vals, loop.shape, loop.shape)};
    if (src.dtype != x.dtype)
      loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, loop));
  } else {
    valueTile = sbufTile(b, "scatter_value", x.dtype, {P, 1});
    TRNSIM_RETURN_IF_ERROR(b.status());
    TRNSIM_RETURN_IF_ERROR(b.memset(valueTile.ap(), scatterValue(n, x.dtype)));
  }
  isa::Tensor idxTile = sbufTile(b, "scatter_at", DType::kInt32, {P, 1});
  TRNSIM_RETURN_IF_ERROR(b.status());
  const int64_t numel = std::max<int64_t>(1, x.numElements());
  for (int64_t j0 = 0; j0 < count; j0 += P) {
    const int64_t m = std::min(P, count - j0);
    const auto rows = Slice::range(0, m);
    (void)b.dmaCopy(idxTile({rows}), hbmRows(flat, j0, m, 1, 1));
    isa::DmaOptions o;
    o.index = idxTile({rows});
    o.indirectDst = true;
    (void)b.dmaCopy(hbmRows(cx.out(n), 0, numel, 1, 1),
                    hasSrc ? hbmRows(vals, j0, m, 1, 1) : valueTile({rows}), o);
  }
  b.release(idxTile);
  if (valueTile.valid()) b.release(valueTile);
  return b.status();
}

// ---- scatter_add ----

Expected<Types> inferScatterAdd(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  const TensorType& idx = in(g, n, 1);
  const TensorType& src = in(g, n, 2);
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), std::max(1, x.rank())));
  if (numerics::isFloat(idx.dtype)) return badArg(n, "index must be an integer tensor");
  if (idx.rank() != x.rank() && !(idx.rank() <= 1 && x.rank() <= 1))
    return badArg(n, fmt::format("index {} and self {} must have the same rank",
                                 shapeString(idx.shape), shapeString(x.shape)));
  for (int k = 0; k < idx.rank(); ++k) {
    const size_t u = size_t(k);
    if ((k != d && idx.shape[u] > x.shape[u]) || (src.rank() > k && idx.shape[u] > src.shape[u]))
      return badArg(
          n, fmt::format("index {} is larger than self {} or src {} in dim {}",
                         shapeString(idx.shape), shapeString(x.shape), shapeString(src.shape), k));
    if (k != d && idx.shape[u] != x.shape[u])
      return Status(ErrorCode::kUnsupported,
                    fmt::format("scatter_add with an index {} smaller than self {} in a dim other "
                                "than {} is not supported yet",
                                shapeString(idx.shape), shapeString(x.shape), d));
  }
  if (src.rank() != idx.rank() && !(src.rank() <= 1 && idx.rank() <= 1))
    return badArg(n, fmt::format("src {} must have index's rank", shapeString(src.shape)));
  return Types{x};
}

/// scatter_add(self, dim, index, src) (gather's backward), with index as large as self in the
/// other dims: self, index and src seen as lines along dim (S elements of self, K of index and
/// src per line), lines on partitions, self's line in column chunks on the free axis. Per
/// chunk: acc = self (fp32), then for each k: acc += (iota == index[:, k]) * src[:, k] (one
/// tensor_scalar with the two per-partition scalars, one add), so repeated indices add up, in
/// index order as PyTorch's CPU loop adds them. Cost: 2 K VectorE passes over each line of
/// self: cheap for a gathered column (K = 1: a loss's target logits), quadratic for K ~ S.
Status lowerScatterAdd(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  const TensorType& it = g.type(n.inputs[1]);
  const TensorType& st = g.type(n.inputs[2]);
  const int d = *normalizeDim(n.intAttr("dim"), std::max(1, x.rank()));
  if (it.numElements() == 0 || x.numElements() == 0) return cx.copyAll(cx.out(n), cx.in(n, 0));
  const std::vector<int64_t> xs = x.shape.empty() ? std::vector<int64_t>{1} : x.shape;
  const std::vector<int64_t> is = it.shape.empty() ? std::vector<int64_t>{1} : it.shape;
  const int64_t outer = product({xs.begin(), xs.begin() + d});
  const int64_t inner = product({xs.begin() + d + 1, xs.end()});
  const int64_t S = xs[size_t(d)], K = is[size_t(d)];
  isa::KernelBuilder& b = cx.b();
  // src's elements at index's positions, contiguous and in fp32.
  isa::Tensor src = cx.scratch("scatter_add_src", DType::kFP32, is);
  {
    TileLoop loop;
    loop.shape = is;
    std::vector<int64_t> sstr = contiguousStrides(st.shape.empty() ? is : st.shape);
    loop.inputs = {LoopOperand{cx.in(n, 2), sstr, 0}};
    loop.outputs = {LoopOperand::broadcast(src, is, is)};
    loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(b, loop));
  }
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, n.inputs[1]));
  // Lines on partitions: the larger of outer and inner (the other is looped).
  const bool linesInner = inner > 1 && (outer == 1 || inner >= outer);
  const int64_t lines = linesInner ? inner : outer, loops = linesInner ? outer : inner;
  const int64_t P = cx.chip().mem.sbufPartitions, CW = std::min<int64_t>(S, 2048);
  isa::Tensor ti = sbufTile(b, "sadd_idx", DType::kInt32, {P, K});
  isa::Tensor tf = sbufTile(b, "sadd_idxf", DType::kFP32, {P, K});
  isa::Tensor ts = sbufTile(b, "sadd_src", DType::kFP32, {P, K});
  isa::Tensor io = sbufTile(b, "sadd_iota", DType::kFP32, {P, CW});
  isa::Tensor tx = sbufTile(b, "sadd_self", x.dtype, {P, CW});
  isa::Tensor acc = sbufTile(b, "sadd_acc", DType::kFP32, {P, CW});
  isa::Tensor tt = sbufTile(b, "sadd_t", DType::kFP32, {P, CW});
  isa::Tensor to = sbufTile(b, "sadd_out", x.dtype, {P, CW});
  TRNSIM_RETURN_IF_ERROR(b.status());
  // Element offset of line l (of loop j) and the step along dim, for self and for index/src.
  auto pat = [&](const isa::Tensor& t, int64_t len, int64_t j, int64_t l0, int64_t np, int64_t c0,
                 int64_t w) {
    isa::AccessPattern h;
    h.tensor = t.id();
    h.partitions = uint32_t(np);
    if (linesInner) {  // line = inner position; loop = outer
      h.partitionStride = 1;
      h.offset = j * len * inner + l0 + c0 * inner;
      h.free[0] = {inner, w};
    } else {  // line = outer position; loop = inner
      h.partitionStride = len * inner;
      h.offset = l0 * len * inner + j + c0 * inner;
      h.free[0] = {inner, w};
    }
    h.numFree = 1;
    return h;
  };
  for (int64_t j = 0; j < loops; ++j)
    for (int64_t l0 = 0; l0 < lines; l0 += P) {
      const int64_t np = std::min(P, lines - l0);
      const auto rows = Slice::range(0, np);
      (void)b.dmaCopy(ti({rows}), pat(idx, K, j, l0, np, 0, K));
      (void)b.tensorCopy(tf({rows}), ti({rows}));
      (void)b.dmaCopy(ts({rows}), pat(src, K, j, l0, np, 0, K));
      for (int64_t c0 = 0; c0 < S; c0 += CW) {
        const int64_t w = std::min(CW, S - c0);
        const auto cols = Slice::range(0, w);
        (void)b.iota(io({rows, cols}), {1}, float(c0), 0.0f);
        (void)b.dmaCopy(tx({rows, cols}), pat(cx.in(n, 0), S, j, l0, np, c0, w));
        (void)b.tensorCopy(acc({rows, cols}), tx({rows, cols}));
        for (int64_t k = 0; k < K; ++k) {
          const auto kc = Slice::range(k, k + 1);
          (void)b.tensorScalar(tt({rows, cols}), io({rows, cols}), AluOp::kIsEqual, tf({rows, kc}),
                               AluOp::kMultiply, ts({rows, kc}));
          (void)b.tensorTensor(acc({rows, cols}), acc({rows, cols}), tt({rows, cols}), AluOp::kAdd);
        }
        (void)b.tensorCopy(to({rows, cols}), acc({rows, cols}));
        (void)b.dmaCopy(pat(cx.out(n), S, j, l0, np, c0, w), to({rows, cols}));
      }
    }
  for (const isa::Tensor* t : {&ti, &tf, &ts, &io, &tx, &acc, &tt, &to}) b.release(*t);
  return b.status();
}

// ---- index_put ----

/// Where index_put's index tensors go: per dim of self, the input number of its index tensor
/// (0 = none), the indexed block first..last, the indices' broadcast shape, and the input
/// number of values (the last input).
struct IndexPlan {
  std::vector<size_t> which;
  int first = -1, last = -1;
  std::vector<int64_t> bshape;
};

Expected<IndexPlan> indexPlan(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  std::vector<int64_t> present = n.intsAttr("indices_present");
  if (present.empty()) present.assign(n.inputs.size() - 2, 1);
  if (int(present.size()) > x.rank())
    return badArg(n, fmt::format("{} indices for a rank-{} tensor", present.size(), x.rank()));
  IndexPlan p;
  p.which.assign(size_t(x.rank()), 0);
  size_t next = 1;
  for (size_t d = 0; d < present.size(); ++d)
    if (present[d]) p.which[d] = next++;
  if (next + 1 != n.inputs.size())
    return badArg(n, fmt::format("indices_present {} does not match {} index inputs (inputs are "
                                 "self, the index tensors, values)",
                                 shapeString(present), int64_t(n.inputs.size()) - 2));
  for (int d = 0; d < x.rank(); ++d) {
    if (!p.which[size_t(d)]) continue;
    const TensorType& it = in(g, n, p.which[size_t(d)]);
    if (numerics::isFloat(it.dtype)) return badArg(n, "index tensors must be integers");
    if (it.dtype == DType::kUInt8)
      return Status(ErrorCode::kUnsupported,
                    "index_put with a boolean mask index is not supported yet");
    auto s = broadcastShapes(p.bshape, it.shape);
    if (!s) return badArg(n, "index tensors do not broadcast together");
    p.bshape = *s;
    if (p.first < 0) p.first = d;
    p.last = d;
  }
  if (p.first < 0) return badArg(n, "needs at least one index tensor");
  for (int d = p.first; d <= p.last; ++d)
    if (!p.which[size_t(d)])
      return Status(ErrorCode::kUnsupported,
                    "index_put with index tensors on non-adjacent dims is not supported yet");
  return p;
}

/// Shape of self[indices]: self's dims before the block, the indices' shape, the dims after.
std::vector<int64_t> indexedShape(const TensorType& x, const IndexPlan& p) {
  std::vector<int64_t> s(x.shape.begin(), x.shape.begin() + p.first);
  s.insert(s.end(), p.bshape.begin(), p.bshape.end());
  s.insert(s.end(), x.shape.begin() + p.last + 1, x.shape.end());
  return s;
}

Expected<Types> inferIndexPut(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(IndexPlan p, indexPlan(g, n));
  const TensorType& v = in(g, n, n.inputs.size() - 1);
  if (v.dtype != x.dtype)
    return badArg(n, fmt::format("values are {} but self is {}: PyTorch requires the same dtype",
                                 irDtypeName(v.dtype), irDtypeName(x.dtype)));
  const std::vector<int64_t> want = indexedShape(x, p);
  auto s = broadcastShapes(v.shape, want);
  if (!s || *s != want)
    return badArg(n, fmt::format("values {} do not broadcast to the indexed shape {}",
                                 shapeString(v.shape), shapeString(want)));
  return Types{x};
}

/// The flat row of the indexed block for each index position (negative indices wrap, as in
/// PyTorch): sum over the indexed dims of (i + (i < 0) * size) * the dim's stride inside the
/// block, in one tile loop over the indices' broadcast shape.
Expected<isa::Tensor> flatRows(LowerContext& cx, const Node& n, const IndexPlan& p, DType dt) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  TileLoop loop;
  loop.shape = p.bshape.empty() ? std::vector<int64_t>{1} : p.bshape;
  isa::Tensor flat = cx.scratch("index_put_rows", dt, {product(loop.shape)});
  std::vector<float> size, scale;
  for (int d = p.first; d <= p.last; ++d) {
    const uint32_t v = n.inputs[p.which[size_t(d)]];
    loop.inputs.push_back(LoopOperand::broadcast(cx.tensor(v), g.type(v).shape, loop.shape));
    size.push_back(float(x.shape[size_t(d)]));
    scale.push_back(float(product({x.shape.begin() + d + 1, x.shape.begin() + p.last + 1})));
  }
  loop.outputs = {LoopOperand::broadcast(flat, loop.shape, loop.shape)};
  loop.scratchDtypes = {DType::kFP32, DType::kFP32};
  loop.body = [size, scale](TileContext& tc) -> Status {
    auto& b = tc.b;
    const auto acc = tc.scratch(0), t = tc.scratch(1);
    for (size_t k = 0; k < size.size(); ++k) {
      TRNSIM_RETURN_IF_ERROR(
          b.tensorScalar(t, tc.input(k), AluOp::kIsLt, 0.0f, AluOp::kMultiply, size[k]));
      TRNSIM_RETURN_IF_ERROR(b.tensorTensor(t, t, tc.input(k), AluOp::kAdd));
      if (k == 0)
        TRNSIM_RETURN_IF_ERROR(b.tensorScalar(acc, t, AluOp::kMultiply, scale[k]));
      else
        TRNSIM_RETURN_IF_ERROR(
            b.scalarTensorTensor(acc, t, AluOp::kMultiply, scale[k], AluOp::kAdd, acc));
    }
    return b.tensorCopy(tc.output(0), acc);
  };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
  return flat;
}

/// out[a] = self[a] + onehot^T @ vals[a] for self and out viewed [outer, R, inner], vals
/// [outer, N, inner] and onehot[n, r] = (rows[n] == r).
///
/// Why a one-hot matmul: index_put's accumulate must add up repeated indices (embedding's
/// backward repeats every token id that occurs twice), so a gather-add-scatter of 128 rows at a
/// time would lose all but one of the duplicates in a group, and one row per DMA round trip
/// serializes everything. On TensorE the duplicates simply add up in the fp32 PSUM accumulation
/// over N. Cost: 2 * R * N * inner flops on TensorE (per outer index) plus R/128 * N/128 one-hot
/// tiles [128 x 128] built on VectorE (iota + compare), and the values streamed once per block
/// of 128 rows unless they fit in SBUF (then loaded once). For an embedding gradient of V rows,
/// T tokens and width E that is 2 V T E flops: heavier than the data movement, but TensorE is
/// the chip's fastest engine and the result is exact up to fp32 summation order.
Status oneHotAccumulate(LowerContext& cx, const isa::Tensor& self, const isa::Tensor& vals,
                        const isa::Tensor& rows, int64_t outer, int64_t R, int64_t inner, int64_t N,
                        const isa::Tensor& out) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  constexpr int64_t kBank = 512;  // fp32 columns of one PSUM bank: a matmul's moving width
  const int64_t EG = std::min<int64_t>(inner, 4 * kBank);  // columns per pass (4 banks)
  const int64_t banks = (EG + kBank - 1) / kBank;
  const int64_t chunks = (N + P - 1) / P, full = N / P, tail = N % P;
  const DType vt = vals.dtype();
  const int64_t esize = int64_t(numerics::dtypeSize(vt));
  const bool resident = chunks * EG * esize <= 64 * 1024;

  // rowsT[p, c] = rows[c * P + p]: chunk c's row numbers, one per partition.
  isa::Tensor rowsT = sbufTile(b, "iput_rows", DType::kFP32, {P, chunks});
  isa::Tensor iota = sbufTile(b, "iput_iota", DType::kFP32, {P, P});
  std::array<isa::Tensor, 2> onehot = {sbufTile(b, "iput_onehot", vt, {P, P}),
                                       sbufTile(b, "iput_onehot", vt, {P, P})};
  isa::Tensor valsT = resident ? sbufTile(b, "iput_vals", vt, {P, chunks, EG}) : isa::Tensor();
  std::array<isa::Tensor, 2> stream;
  if (!resident)
    stream = {sbufTile(b, "iput_stream", vt, {P, EG}), sbufTile(b, "iput_stream", vt, {P, EG})};
  isa::Tensor selfT = sbufTile(b, "iput_self", out.dtype(), {P, EG});
  isa::Tensor outT = sbufTile(b, "iput_out", out.dtype(), {P, EG});
  std::vector<isa::Tensor> ps;
  for (int64_t j = 0; j < banks; ++j)
    ps.push_back(
        b.psum(fmt::format("iput_ps{}", b.program().tensors.size()), DType::kFP32, {P, kBank}));
  TRNSIM_RETURN_IF_ERROR(b.status());
  if (full > 0) {
    isa::AccessPattern src = hbmRows(rows, 0, P, 1, 1);
    src.free[0] = {P, full};
    (void)b.dmaCopy(rowsT({Slice::all(), Slice::range(0, full)}), src);
  }
  if (tail > 0)
    (void)b.dmaCopy(rowsT({Slice::range(0, tail), Slice::range(full, full + 1)}),
                    hbmRows(rows, full * P, tail, 1, 1));
  (void)b.iota(iota.ap(), {1}, 0.0f, 0.0f);
  int64_t step = 0;
  for (int64_t a = 0; a < outer; ++a) {
    for (int64_t e0 = 0; e0 < inner; e0 += EG) {
      const int64_t em = std::min(EG, inner - e0);
      auto valsAt = [&](int64_t c, int64_t nm) {
        return hbmRows(vals, (a * N + c * P) * inner + e0, nm, inner, em);
      };
      if (resident)
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t nm = std::min(P, N - c * P);
          (void)b.dmaCopy(valsT({Slice::range(0, nm), Slice::at(c), Slice::range(0, em)}),
                          valsAt(c, nm));
        }
      for (int64_t v0 = 0; v0 < R; v0 += P) {
        const int64_t vm = std::min(P, R - v0);
        for (int64_t c = 0; c < chunks; ++c, ++step) {
          const int64_t nm = std::min(P, N - c * P);
          const auto nr = Slice::range(0, nm);
          const isa::Tensor& oh = onehot[size_t(step % 2)];
          // onehot[n, r] = (v0 + r == rows[n])
          (void)b.tensorScalar(oh({nr, Slice::range(0, vm)}), iota({nr, Slice::range(0, vm)}),
                               AluOp::kAdd, float(v0), AluOp::kIsEqual,
                               rowsT({nr, Slice::range(c, c + 1)}));
          isa::AccessPattern mv;
          if (!resident) {
            const isa::Tensor& st = stream[size_t(step % 2)];
            (void)b.dmaCopy(st({nr, Slice::range(0, em)}), valsAt(c, nm));
          }
          for (int64_t j = 0; j < banks && j * kBank < em; ++j) {
            const auto cols = Slice::range(j * kBank, std::min(em, (j + 1) * kBank));
            mv = resident ? valsT({nr, Slice::at(c), cols}) : stream[size_t(step % 2)]({nr, cols});
            (void)b.ncMatmul(
                ps[size_t(j)]({Slice::range(0, vm),
                               Slice::range(0, std::min(em, (j + 1) * kBank) - j * kBank)}),
                oh({nr, Slice::range(0, vm)}), mv, {.accumulate = c > 0});
          }
        }
        const auto vr = Slice::range(0, vm);
        (void)b.dmaCopy(selfT({vr, Slice::range(0, em)}),
                        hbmRows(self, (a * R + v0) * inner + e0, vm, inner, em));
        for (int64_t j = 0; j < banks && j * kBank < em; ++j) {
          const int64_t c1 = std::min(em, (j + 1) * kBank);
          const auto cols = Slice::range(j * kBank, c1);
          (void)b.tensorTensor(outT({vr, cols}), selfT({vr, cols}),
                               ps[size_t(j)]({vr, Slice::range(0, c1 - j * kBank)}), AluOp::kAdd);
        }
        (void)b.dmaCopy(hbmRows(out, (a * R + v0) * inner + e0, vm, inner, em),
                        outT({vr, Slice::range(0, em)}));
      }
    }
  }
  for (const isa::Tensor& t : ps) b.release(t);
  for (const isa::Tensor* t : {&rowsT, &iota, &onehot[0], &onehot[1], &selfT, &outT}) b.release(*t);
  if (resident) b.release(valsT);
  for (const isa::Tensor& t : stream)
    if (t.valid()) b.release(t);
  return b.status();
}

/// index_put(self, indices, values, accumulate): self viewed as [outer, R, inner] with the
/// indexed block as R rows, values as [outer, N, inner] (broadcast to that shape first when
/// needed). accumulate=False: out = self, then values' rows written at their rows by indirect
/// DMAs, 128 rows each (a later duplicate wins). accumulate=True: oneHotAccumulate.
Status lowerIndexPut(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  TRNSIM_ASSIGN_OR_RETURN(IndexPlan p, indexPlan(g, n));
  const uint32_t valuesIn = n.inputs.back();
  const TensorType& v = g.type(valuesIn);
  const int64_t outer = product({x.shape.begin(), x.shape.begin() + p.first});
  const int64_t R = product({x.shape.begin() + p.first, x.shape.begin() + p.last + 1});
  const int64_t inner = product({x.shape.begin() + p.last + 1, x.shape.end()});
  const int64_t N = product(p.bshape);
  const bool accumulate = n.intAttr("accumulate", 0) != 0;
  if (accumulate && !numerics::isFloat(x.dtype))
    return Status(ErrorCode::kUnsupported,
                  "index_put with accumulate=True on an integer tensor is not supported yet");
  if (N == 0 || outer * inner == 0 || R == 0) return cx.copyAll(cx.out(n), cx.in(n, 0));
  isa::Tensor vals = cx.tensor(valuesIn);
  const std::vector<int64_t> want = indexedShape(x, p);
  if (v.shape != want) {
    vals = cx.scratch("index_put_values", v.dtype, want);
    TileLoop loop;
    loop.shape = want;
    loop.inputs = {LoopOperand::broadcast(cx.tensor(valuesIn), v.shape, want)};
    loop.outputs = {LoopOperand::broadcast(vals, want, want)};
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
  }
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor rows,
                          flatRows(cx, n, p, accumulate ? DType::kFP32 : DType::kInt32));
  if (accumulate)
    return oneHotAccumulate(cx, cx.in(n, 0), vals, rows, outer, R, inner, N, cx.out(n));
  TRNSIM_RETURN_IF_ERROR(cx.copyAll(cx.out(n), cx.in(n, 0)));
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  isa::Tensor idx = sbufTile(b, "iput_at", DType::kInt32, {P, 1});
  TRNSIM_RETURN_IF_ERROR(b.status());
  for (int64_t j0 = 0; j0 < N; j0 += P) {
    const int64_t m = std::min(P, N - j0);
    const auto r = Slice::range(0, m);
    (void)b.dmaCopy(idx({r}), hbmRows(rows, j0, m, 1, 1));
    for (int64_t a = 0; a < outer; ++a) {
      isa::DmaOptions o;
      o.index = idx({r});
      o.indirectDst = true;
      (void)b.dmaCopy(hbmRows(cx.out(n), a * R * inner, R, inner, inner),
                      hbmRows(vals, (a * N + j0) * inner, m, inner, inner), o);
    }
  }
  b.release(idx);
  return b.status();
}

// ---- native_dropout ----

Expected<Types> inferDropout(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  if (!numerics::isFloat(x.dtype)) return badArg(n, "needs a float input");
  const double p = n.floatAttr("p", -1);
  if (!(p >= 0 && p <= 1))
    return badArg(n, fmt::format("p={} must be a probability in [0, 1]", n.floatAttr("p", -1)));
  return Types{x, TensorType{DType::kUInt8, x.shape}};
}

/// train (the default when left out, as in ATen) and p > 0: per tile, rand2 draws u in [0, 1)
/// from the engine's RNG, mask = (u >= p) (kept with probability 1 - p), out = x * 1/(1-p) *
/// mask, rounded once (PyTorch: x * mask * scale with scale = 1/(1-p) as a float; the same
/// value, since mask is 0 or 1). Otherwise out = x and an all-true mask.
Status lowerDropout(LowerContext& cx, const Node& n) {
  const TensorType& x = cx.graph().type(n.inputs[0]);
  const double p = n.floatAttr("p");
  const bool train = n.intAttr("train", 1) != 0;
  TileLoop loop;
  loop.shape = x.shape.empty() ? std::vector<int64_t>{1} : x.shape;
  if (x.numElements() == 0) return Status::ok();
  if (!train || p == 0) {
    TRNSIM_RETURN_IF_ERROR(cx.copyAll(cx.out(n, 0), cx.in(n, 0)));
    loop.outputs = {LoopOperand::broadcast(cx.out(n, 1), x.shape, loop.shape)};
    loop.body = [](TileContext& tc) { return tc.b.memset(tc.output(0), 1.0f); };
    return emitTileLoop(cx.b(), loop);
  }
  const float scale = p == 1 ? 0.0f : float(1.0 / (1.0 - p));
  loop.inputs = {LoopOperand::broadcast(cx.in(n, 0), x.shape, loop.shape)};
  loop.outputs = {LoopOperand::broadcast(cx.out(n, 0), x.shape, loop.shape),
                  LoopOperand::broadcast(cx.out(n, 1), x.shape, loop.shape)};
  loop.scratchDtypes = {DType::kFP32};
  loop.body = [p = float(p), scale](TileContext& tc) -> Status {
    auto& b = tc.b;
    TRNSIM_RETURN_IF_ERROR(b.rand2(tc.scratch(0), 0.0f, 1.0f));
    TRNSIM_RETURN_IF_ERROR(b.tensorScalar(tc.output(1), tc.scratch(0), AluOp::kIsGe, p));
    return b.scalarTensorTensor(tc.output(0), tc.input(0), AluOp::kMultiply, scale,
                                AluOp::kMultiply, tc.output(1));
  };
  return emitTileLoop(cx.b(), loop);
}

constexpr int kAny = 64;
const OpDef kOps[] = {
    {"slice_scatter", OpClass::kLayout, 2, 2, inferRegionScatter, lowerRegionScatter},
    {"select_scatter", OpClass::kLayout, 2, 2, inferRegionScatter, lowerRegionScatter},
    {"scatter", OpClass::kLayout, 2, 3, inferScatter, lowerScatter},
    {"scatter_add", OpClass::kLayout, 3, 3, inferScatterAdd, lowerScatterAdd},
    {"index_put", OpClass::kLayout, 3, kAny, inferIndexPut, lowerIndexPut},
    {"native_dropout", OpClass::kKernel, 1, 1, inferDropout, lowerDropout},
};

}  // namespace

std::span<const OpDef> gradOps() { return kOps; }

}  // namespace trnsim::compiler
