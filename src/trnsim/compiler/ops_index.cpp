// Advanced indexing: aten.index.Tensor (index tensors on adjacent dims) and aten.gather. Both are
// indirect DMAs (gatherRows, 128 indices per instruction): `index` gathers whole slices of the
// indexed dim; `gather` gathers single elements at flat offsets computed on VectorE (index * stride
// of the gathered dim + an iota of the other dims' offsets).
#include <fmt/format.h>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/tile_loop.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::in;
using isa::Slice;
using Types = std::vector<TensorType>;

/// For each dim of self, the input number of its index tensor (0 = not indexed).
Expected<std::vector<size_t>> indexedDims(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  std::vector<int64_t> present = n.intsAttr("indices_present");
  if (present.empty()) present.assign(n.inputs.size() - 1, 1);
  if (int(present.size()) > x.rank())
    return badArg(n, fmt::format("{} indices for a rank-{} tensor", present.size(), x.rank()));
  std::vector<size_t> which(size_t(x.rank()), 0);
  size_t next = 1;
  for (size_t d = 0; d < present.size(); ++d)
    if (present[d]) which[d] = next++;
  if (next != n.inputs.size())
    return badArg(n, fmt::format("indices_present {} does not match {} index inputs",
                                 shapeString(present), n.inputs.size() - 1));
  return which;
}

Expected<Types> inferIndex(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(std::vector<size_t> which, indexedDims(g, n));
  std::vector<int64_t> bshape;
  int first = -1, last = -1;
  for (int d = 0; d < x.rank(); ++d) {
    if (!which[size_t(d)]) continue;
    const TensorType& it = in(g, n, which[size_t(d)]);
    if (numerics::isFloat(it.dtype) || it.dtype == DType::kUInt8)
      return Status(ErrorCode::kUnsupported,
                    "index with a boolean mask (data-dependent shape) is not supported yet");
    auto s = broadcastShapes(bshape, it.shape);
    if (!s) return badArg(n, "index tensors do not broadcast together");
    bshape = *s;
    if (first < 0) first = d;
    last = d;
  }
  if (first < 0) return Types{x};
  bool adjacent = true;
  for (int d = first; d <= last; ++d) adjacent &= which[size_t(d)] != 0;
  std::vector<int64_t> shape;
  if (adjacent) {
    shape.assign(x.shape.begin(), x.shape.begin() + first);
    shape.insert(shape.end(), bshape.begin(), bshape.end());
    shape.insert(shape.end(), x.shape.begin() + last + 1, x.shape.end());
  } else {
    shape = bshape;
    for (int d = 0; d < x.rank(); ++d)
      if (!which[size_t(d)]) shape.push_back(x.shape[size_t(d)]);
  }
  return Types{TensorType{x.dtype, shape}};
}

/// Index tensors on adjacent dims first..last: out[a, j..., b] = x[a, i1[j], .., ik[j], b] with
/// the indexed dims seen as one dim of rows; several index tensors are first combined into one
/// flat row index (sum of index * the dim's stride inside the block) by one tile loop.
Status lowerIndex(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  TRNSIM_ASSIGN_OR_RETURN(std::vector<size_t> which, indexedDims(g, n));
  int first = -1, last = -1;
  for (int d = 0; d < x.rank(); ++d)
    if (which[size_t(d)]) {
      if (first < 0) first = d;
      last = d;
    }
  if (first < 0) return cx.copyAll(cx.out(n), cx.in(n, 0));
  for (int d = first; d <= last; ++d)
    if (!which[size_t(d)])
      return Status(ErrorCode::kUnsupported,
                    "index with index tensors on non-adjacent dims is not supported yet");
  const TensorType& o = g.type(n.outputs[0]);
  if (o.numElements() == 0) return Status::ok();
  const int64_t outer = product({x.shape.begin(), x.shape.begin() + first});
  const int64_t rows = product({x.shape.begin() + first, x.shape.begin() + last + 1});
  const int64_t inner = product({x.shape.begin() + last + 1, x.shape.end()});
  if (n.inputs.size() == 2) {
    TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, n.inputs[1]));
    return detail::gatherRows(cx, cx.in(n, 0), outer, rows, inner, idx,
                              g.type(n.inputs[1]).numElements(), cx.out(n));
  }
  std::vector<int64_t> bshape;
  for (size_t k = 1; k < n.inputs.size(); ++k)
    bshape = *broadcastShapes(bshape, g.type(n.inputs[k]).shape);
  const int64_t count = product(bshape);
  isa::Tensor flat = cx.scratch("index_flat", DType::kInt32, {count});
  TileLoop loop;
  loop.shape = bshape.empty() ? std::vector<int64_t>{1} : bshape;
  std::vector<float> scale;
  for (int d = first; d <= last; ++d) {
    const uint32_t v = n.inputs[which[size_t(d)]];
    TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, v));
    loop.inputs.push_back(LoopOperand::broadcast(idx, g.type(v).shape, loop.shape));
    scale.push_back(float(product({x.shape.begin() + d + 1, x.shape.begin() + last + 1})));
  }
  loop.outputs = {LoopOperand::broadcast(flat, loop.shape, loop.shape)};
  loop.body = [scale](TileContext& tc) -> Status {
    TRNSIM_RETURN_IF_ERROR(
        tc.b.tensorScalar(tc.output(0), tc.input(0), isa::AluOp::kMultiply, scale[0]));
    for (size_t k = 1; k < scale.size(); ++k)
      TRNSIM_RETURN_IF_ERROR(tc.b.scalarTensorTensor(tc.output(0), tc.input(k),
                                                     isa::AluOp::kMultiply, scale[k],
                                                     isa::AluOp::kAdd, tc.output(0)));
    return Status::ok();
  };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
  return detail::gatherRows(cx, cx.in(n, 0), outer, rows, inner, flat, count, cx.out(n));
}

// ---- gather ----

Expected<Types> inferGather(const Graph& g, const Node& n) {
  const TensorType& x = in(g, n, 0);
  const TensorType& idx = in(g, n, 1);
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), std::max(1, x.rank())));
  if (numerics::isFloat(idx.dtype)) return badArg(n, "index must be an integer tensor");
  if (idx.rank() != x.rank() && !(idx.rank() <= 1 && x.rank() <= 1))
    return badArg(n, fmt::format("index {} and self {} must have the same rank",
                                 shapeString(idx.shape), shapeString(x.shape)));
  for (int k = 0; k < idx.rank(); ++k)
    if (k != d && idx.shape[size_t(k)] > x.shape[size_t(k)])
      return badArg(n, fmt::format("index {} is larger than self {} in dim {}",
                                   shapeString(idx.shape), shapeString(x.shape), k));
  return Types{TensorType{x.dtype, idx.shape}};
}

/// flat[pos] = index[pos] * stride(dim) + sum over the other dims of pos_k * stride(k) (self's
/// strides): index dim 0 on partitions, the others on the free axis, the sum by one iota.
Status lowerGather(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  const TensorType& x = g.type(n.inputs[0]);
  const TensorType& it = g.type(n.inputs[1]);
  const int64_t count = it.numElements();
  if (count == 0) return Status::ok();
  const int d = *normalizeDim(n.intAttr("dim"), std::max(1, x.rank()));
  std::vector<int64_t> ishape = it.shape.empty() ? std::vector<int64_t>{1} : it.shape;
  std::vector<int64_t> xstr = contiguousStrides(x.shape.empty() ? ishape : x.shape);
  const int64_t rows = ishape[0];
  const int64_t F = count / rows;
  if (ishape.size() - 1 > size_t(isa::kMaxFreeDims) || F > 8192)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("gather with index {} is not supported yet (at most {} dims and "
                              "8192 elements after the first)",
                              shapeString(it.shape), isa::kMaxFreeDims + 1));
  isa::KernelBuilder& b = cx.b();
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, n.inputs[1]));
  isa::Tensor flat = cx.scratch("gather_flat", DType::kInt32, {count});
  const int64_t P = cx.chip().mem.sbufPartitions;
  std::vector<int64_t> tileShape = {P};
  std::vector<int64_t> steps;
  for (size_t k = 1; k < ishape.size(); ++k) {
    tileShape.push_back(ishape[k]);
    steps.push_back(int(k) == d ? 0 : xstr[k]);
  }
  if (steps.empty()) {
    tileShape.push_back(1);
    steps.push_back(0);
  }
  const auto id = b.program().tensors.size();
  isa::Tensor ti = b.sbuf(fmt::format("gather{}_idx", id), DType::kInt32, tileShape);
  isa::Tensor tb = b.sbuf(fmt::format("gather{}_base", id), DType::kFP32, tileShape);
  isa::Tensor tf = b.sbuf(fmt::format("gather{}_flat", id), DType::kInt32, tileShape);
  TRNSIM_RETURN_IF_ERROR(b.status());
  const int64_t s0 = d == 0 ? 0 : xstr[0];
  for (int64_t r0 = 0; r0 < rows; r0 += P) {
    const int64_t np = std::min(P, rows - r0);
    const Slice part = Slice::range(0, np);
    isa::AccessPattern h;
    h.partitionStride = F;
    h.partitions = uint32_t(np);
    h.offset = r0 * F;
    h.free[0] = {1, F};
    h.numFree = 1;
    h.tensor = idx.id();
    (void)b.dmaCopy(ti({part}), h);
    (void)b.iota(tb({part}), steps, float(r0 * s0), float(s0));
    (void)b.scalarTensorTensor(tf({part}), ti({part}), isa::AluOp::kMultiply,
                               float(xstr[size_t(d)]), isa::AluOp::kAdd, tb({part}));
    h.tensor = flat.id();
    (void)b.dmaCopy(h, tf({part}));
  }
  for (auto* t : {&ti, &tb, &tf}) b.release(*t);
  TRNSIM_RETURN_IF_ERROR(b.status());
  return detail::gatherRows(cx, cx.in(n, 0), 1, std::max<int64_t>(1, x.numElements()), 1, flat,
                            count, cx.out(n));
}

constexpr int kAny = 64;
const OpDef kOps[] = {
    {"index", OpClass::kLayout, 1, kAny, inferIndex, lowerIndex},
    {"gather", OpClass::kLayout, 2, 2, inferGather, lowerGather},
};

}  // namespace

std::span<const OpDef> indexOps() { return kOps; }

}  // namespace trnsim::compiler
