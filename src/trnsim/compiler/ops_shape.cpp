// Layout ops (views, permutes, slices, concatenation, gathers) and source ops (full, arange).
// Every IR value is a contiguous tensor, so a view of the same elements in the same order is an
// alias (no instructions) and everything else is a tile loop with strided operands.
#include <fmt/format.h>

#include <numeric>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/tile_loop.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::in;
using Types = std::vector<TensorType>;

Expected<Types> one(DType dt, std::vector<int64_t> shape) {
  return Types{TensorType{dt, std::move(shape)}};
}

// ---- views (aliases) ----

Expected<Types> inferView(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  std::vector<int64_t> size = n.intsAttr(n.has("size") ? "size" : "shape");
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < size.size(); ++i) {
    if (size[i] == -1) {
      if (infer >= 0) return badArg(n, "only one dimension can be -1");
      infer = int64_t(i);
    } else {
      known *= size[i];
    }
  }
  if (infer >= 0) size[size_t(infer)] = known == 0 ? 0 : t.numElements() / known;
  if (product(size) != t.numElements())
    return badArg(n, fmt::format("cannot view {} ({} elements) as {}", shapeString(t.shape),
                                 t.numElements(), shapeString(size)));
  return one(t.dtype, size);
}

Expected<Types> inferSame(const Graph& g, const Node& n) { return Types{in(g, n, 0)}; }

Expected<Types> inferUnsqueeze(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), t.rank() + 1));
  t.shape.insert(t.shape.begin() + d, 1);
  return Types{t};
}

Expected<Types> inferSqueeze(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  std::vector<int64_t> dims = n.has("dim") ? n.intsAttr("dim") : n.intsAttr("dims");
  std::vector<bool> drop(t.shape.size(), dims.empty());
  for (int64_t d : dims) {
    TRNSIM_ASSIGN_OR_RETURN(int nd, normalizeDim(d, t.rank()));
    if (t.rank() > 0) drop[size_t(nd)] = true;
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < t.shape.size(); ++i)
    if (!(drop[i] && t.shape[i] == 1)) out.push_back(t.shape[i]);
  return one(t.dtype, out);
}

Status lowerAlias(LowerContext& cx, const Node& n) { return cx.alias(n.outputs[0], cx.in(n, 0)); }

// ---- strided copies ----

Expected<Types> inferPermute(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  const std::vector<int64_t> dims = n.intsAttr("dims");
  if (int(dims.size()) != t.rank())
    return badArg(n, fmt::format("dims {} do not match rank {}", shapeString(dims), t.rank()));
  std::vector<int64_t> out;
  std::vector<bool> seen(dims.size(), false);
  for (int64_t d : dims) {
    TRNSIM_ASSIGN_OR_RETURN(int nd, normalizeDim(d, t.rank()));
    if (seen[size_t(nd)]) return badArg(n, "dims repeat a dimension");
    seen[size_t(nd)] = true;
    out.push_back(t.shape[size_t(nd)]);
  }
  return one(t.dtype, out);
}

/// Copies input 0 read at `strides`/`offset` over the output's shape into the output.
Status stridedCopy(LowerContext& cx, const Node& n, std::vector<int64_t> strides, int64_t offset) {
  const TensorType& ot = cx.graph().type(n.outputs[0]);
  TileLoop loop;
  loop.shape = ot.shape.empty() ? std::vector<int64_t>{1} : ot.shape;
  if (strides.empty()) strides = {0};
  loop.inputs = {LoopOperand{cx.in(n, 0), std::move(strides), offset}};
  loop.outputs = {LoopOperand::broadcast(cx.out(n), ot.shape, loop.shape)};
  return emitTileLoop(cx.b(), loop);
}

Status lowerPermute(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const auto cs = contiguousStrides(t.shape);
  std::vector<int64_t> strides;
  for (int64_t d : n.intsAttr("dims")) strides.push_back(cs[size_t(d < 0 ? d + t.rank() : d)]);
  return stridedCopy(cx, n, strides, 0);
}

Expected<Types> inferTranspose(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(int a, normalizeDim(n.intAttr("dim0"), t.rank()));
  TRNSIM_ASSIGN_OR_RETURN(int b, normalizeDim(n.intAttr("dim1"), t.rank()));
  if (t.rank() > 0) std::swap(t.shape[size_t(a)], t.shape[size_t(b)]);
  return Types{t};
}

Status lowerTranspose(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  auto strides = contiguousStrides(t.shape);
  if (t.rank() > 0) {
    const int a = *normalizeDim(n.intAttr("dim0"), t.rank());
    const int b = *normalizeDim(n.intAttr("dim1"), t.rank());
    std::swap(strides[size_t(a)], strides[size_t(b)]);
  }
  return stridedCopy(cx, n, strides, 0);
}

Expected<Types> inferExpand(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  std::vector<int64_t> size = n.intsAttr("size");
  if (size.size() < t.shape.size())
    return badArg(n, fmt::format("cannot expand {} to fewer dims {}", shapeString(t.shape),
                                 shapeString(size)));
  const size_t lead = size.size() - t.shape.size();
  for (size_t i = 0; i < size.size(); ++i) {
    if (i < lead) {
      if (size[i] < 0) return badArg(n, "-1 is not allowed for a new leading dimension");
      continue;
    }
    const int64_t have = t.shape[i - lead];
    if (size[i] == -1) size[i] = have;
    if (have != size[i] && have != 1)
      return badArg(n,
                    fmt::format("cannot expand {} to {}", shapeString(t.shape), shapeString(size)));
  }
  return one(t.dtype, size);
}

Status lowerExpand(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const TensorType& o = cx.graph().type(n.outputs[0]);
  if (t.numElements() == o.numElements()) return cx.alias(n.outputs[0], cx.in(n, 0));
  LoopOperand src = LoopOperand::broadcast(cx.in(n, 0), t.shape, o.shape);
  return stridedCopy(cx, n, src.strides, 0);
}

struct SliceSpec {
  int dim = 0;
  int64_t start = 0, len = 0, step = 1;
};
Expected<SliceSpec> sliceOf(const TensorType& t, const Node& n) {
  SliceSpec s;
  TRNSIM_ASSIGN_OR_RETURN(s.dim, normalizeDim(n.intAttr("dim", 0), t.rank()));
  const int64_t size = t.rank() ? t.shape[size_t(s.dim)] : 1;
  int64_t start = n.intAttr("start", 0), end = n.intAttr("end", INT64_MAX);
  s.step = n.intAttr("step", 1);
  if (s.step < 1) return badArg(n, fmt::format("step {} must be positive", s.step));
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  s.start = start;
  s.len = (end - start + s.step - 1) / s.step;
  return s;
}

Expected<Types> inferSlice(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(SliceSpec s, sliceOf(t, n));
  if (t.rank()) t.shape[size_t(s.dim)] = s.len;
  return Types{t};
}

Status lowerSlice(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  TRNSIM_ASSIGN_OR_RETURN(SliceSpec s, sliceOf(t, n));
  auto strides = contiguousStrides(t.shape);
  const int64_t offset = s.start * strides[size_t(s.dim)];
  strides[size_t(s.dim)] *= s.step;
  return stridedCopy(cx, n, strides, offset);
}

Expected<Types> inferSelect(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), t.rank()));
  int64_t i = n.intAttr("index");
  if (i < 0) i += t.shape[size_t(d)];
  if (i < 0 || i >= t.shape[size_t(d)])
    return badArg(n, fmt::format("index {} is out of range for dim {} of size {}",
                                 n.intAttr("index"), d, t.shape[size_t(d)]));
  t.shape.erase(t.shape.begin() + d);
  return Types{t};
}

Status lowerSelect(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const int d = *normalizeDim(n.intAttr("dim"), t.rank());
  int64_t i = n.intAttr("index");
  if (i < 0) i += t.shape[size_t(d)];
  auto strides = contiguousStrides(t.shape);
  const int64_t offset = i * strides[size_t(d)];
  strides.erase(strides.begin() + d);
  return stridedCopy(cx, n, strides, offset);
}

Expected<Types> inferCat(const Graph& g, const Node& n) {
  // Empty 1-D tensors ([0]) are skipped, as torch.cat does.
  std::optional<TensorType> out;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const TensorType& t = in(g, n, i);
    if (t.rank() == 1 && t.shape[0] == 0) continue;
    if (!out) {
      out = t;
      continue;
    }
    TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), out->rank()));
    if (t.rank() != out->rank())
      return badArg(n, fmt::format("input {} has rank {}, not {}", i, t.rank(), out->rank()));
    for (int k = 0; k < t.rank(); ++k)
      if (k != d && t.shape[size_t(k)] != out->shape[size_t(k)])
        return badArg(n, fmt::format("input {} has shape {}; only dim {} may differ from {}", i,
                                     shapeString(t.shape), d, shapeString(out->shape)));
    out->shape[size_t(d)] += t.shape[size_t(d)];
    out->dtype = detail::promote(out->dtype, t.dtype);
  }
  if (!out) return one(in(g, n, 0).dtype, {0});
  return Types{*out};
}

Status lowerCat(LowerContext& cx, const Node& n) {
  const TensorType& o = cx.graph().type(n.outputs[0]);
  const int d = *normalizeDim(n.intAttr("dim"), o.rank());
  const auto ostrides = contiguousStrides(o.shape);
  int64_t at = 0;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const TensorType& t = cx.graph().type(n.inputs[i]);
    if (t.numElements() == 0) continue;
    TileLoop loop;
    loop.shape = t.shape;
    loop.inputs = {LoopOperand::broadcast(cx.in(n, i), t.shape, t.shape)};
    loop.outputs = {LoopOperand{cx.out(n), ostrides, at * ostrides[size_t(d)]}};
    if (t.dtype != o.dtype) {
      loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
    }
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
    at += t.shape[size_t(d)];
  }
  return Status::ok();
}

Expected<Types> inferSplit(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim", 0), t.rank()));
  std::vector<int64_t> sizes = n.intsAttr("split_sizes");
  if (sizes.empty()) {
    const int64_t each = n.intAttr("split_size", 0);
    if (each <= 0) return badArg(n, "needs split_sizes or a positive split_size");
    for (int64_t at = 0; at < t.shape[size_t(d)]; at += each)
      sizes.push_back(std::min(each, t.shape[size_t(d)] - at));
  }
  if (std::accumulate(sizes.begin(), sizes.end(), int64_t(0)) != t.shape[size_t(d)])
    return badArg(n, fmt::format("split sizes {} do not add up to dim {} of size {}",
                                 shapeString(sizes), d, t.shape[size_t(d)]));
  Types out;
  for (int64_t s : sizes) {
    TensorType o = t;
    o.shape[size_t(d)] = s;
    out.push_back(o);
  }
  return out;
}

Status lowerSplit(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const int d = *normalizeDim(n.intAttr("dim", 0), t.rank());
  const auto strides = contiguousStrides(t.shape);
  int64_t at = 0;
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    const TensorType& o = cx.graph().type(n.outputs[i]);
    TileLoop loop;
    loop.shape = o.shape;
    loop.inputs = {LoopOperand{cx.in(n, 0), strides, at * strides[size_t(d)]}};
    loop.outputs = {LoopOperand::broadcast(cx.out(n, i), o.shape, o.shape)};
    TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
    at += o.shape[size_t(d)];
  }
  return Status::ok();
}

}  // namespace

// ---- gathers ----

/// out[a, j, b] = src[a, index[j], b] for src viewed as [outer, rows, inner]: one indirect DMA
/// per 128 indices (and per outer index).
Status detail::gatherRows(LowerContext& cx, const isa::Tensor& src, int64_t outer, int64_t rows,
                          int64_t inner, const isa::Tensor& index, int64_t count,
                          const isa::Tensor& out) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  isa::Tensor idx =
      b.sbuf(fmt::format("gather_idx{}", b.program().tensors.size()), DType::kInt32, {P, 1});
  TRNSIM_RETURN_IF_ERROR(b.status());
  for (int64_t j0 = 0; j0 < count; j0 += P) {
    const int64_t m = std::min(P, count - j0);
    isa::AccessPattern iap;
    iap.tensor = index.id();
    iap.partitionStride = 1;
    iap.partitions = uint32_t(m);
    iap.offset = j0;
    iap.free[0] = {1, 1};
    iap.numFree = 1;
    (void)b.dmaCopy(idx({isa::Slice::range(0, m), isa::Slice::all()}), iap);
    for (int64_t a = 0; a < outer; ++a) {
      isa::AccessPattern s, d;
      s.tensor = src.id();
      s.partitionStride = inner;
      s.partitions = uint32_t(rows);
      s.offset = a * rows * inner;
      s.free[0] = {1, inner};
      s.numFree = 1;
      d.tensor = out.id();
      d.partitionStride = inner;
      d.partitions = uint32_t(m);
      d.offset = (a * count + j0) * inner;
      d.free[0] = {1, inner};
      d.numFree = 1;
      isa::DmaOptions o;
      o.index = idx({isa::Slice::range(0, m), isa::Slice::all()});
      o.indirectSrc = true;
      (void)b.dmaCopy(d, s, o);
    }
  }
  b.release(idx);
  return b.status();
}

namespace {

Expected<Types> inferEmbedding(const Graph& g, const Node& n) {
  const TensorType& w = in(g, n, 0);
  const TensorType& idx = in(g, n, 1);
  if (w.rank() != 2) return badArg(n, "the weight must be 2-D [num_embeddings, dim]");
  if (numerics::isFloat(idx.dtype)) return badArg(n, "indices must be integers");
  std::vector<int64_t> s = idx.shape;
  s.push_back(w.shape[1]);
  return one(w.dtype, s);
}

}  // namespace

/// An i32 copy of an index tensor (indices of other integer types are converted).
Expected<isa::Tensor> detail::int32Index(LowerContext& cx, uint32_t v) {
  const isa::Tensor& t = cx.tensor(v);
  if (t.dtype() == DType::kInt32) return t;
  isa::Tensor c = cx.scratch("index_i32", DType::kInt32, {product(t.shape())});
  TileLoop loop;
  loop.shape = {product(t.shape())};
  loop.inputs = {LoopOperand{t, {1}, 0}};
  loop.outputs = {LoopOperand{c, {1}, 0}};
  loop.body = [](TileContext& tc) { return tc.b.tensorCopy(tc.output(0), tc.input(0)); };
  TRNSIM_RETURN_IF_ERROR(emitTileLoop(cx.b(), loop));
  return c;
}

namespace {

Status lowerEmbedding(LowerContext& cx, const Node& n) {
  const TensorType& w = cx.graph().type(n.inputs[0]);
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, n.inputs[1]));
  return detail::gatherRows(cx, cx.in(n, 0), 1, w.shape[0], w.shape[1], idx,
                            cx.graph().type(n.inputs[1]).numElements(), cx.out(n));
}

Expected<Types> inferIndexSelect(const Graph& g, const Node& n) {
  TensorType t = in(g, n, 0);
  const TensorType& idx = in(g, n, 1);
  TRNSIM_ASSIGN_OR_RETURN(int d, normalizeDim(n.intAttr("dim"), t.rank()));
  if (idx.rank() > 1) return badArg(n, "index must be 0-D or 1-D");
  if (t.rank()) t.shape[size_t(d)] = idx.numElements();
  return Types{t};
}

Status lowerIndexSelect(LowerContext& cx, const Node& n) {
  const TensorType& t = cx.graph().type(n.inputs[0]);
  const int d = *normalizeDim(n.intAttr("dim"), t.rank());
  const int64_t outer = product({t.shape.begin(), t.shape.begin() + d});
  const int64_t inner = product({t.shape.begin() + d + 1, t.shape.end()});
  TRNSIM_ASSIGN_OR_RETURN(isa::Tensor idx, detail::int32Index(cx, n.inputs[1]));
  return detail::gatherRows(cx, cx.in(n, 0), outer, t.rank() ? t.shape[size_t(d)] : 1, inner, idx,
                            cx.graph().type(n.inputs[1]).numElements(), cx.out(n));
}

// ---- sources ----

Expected<Types> inferFull(const Graph&, const Node& n) {
  const bool isFloat =
      n.has("fill_value") && std::holds_alternative<double>(n.attrs.at("fill_value"));
  TRNSIM_ASSIGN_OR_RETURN(DType dt,
                          detail::dtypeAttr(n, "dtype", isFloat ? DType::kFP32 : DType::kInt32));
  return one(dt, n.intsAttr("size"));
}

Expected<Types> inferScalarTensor(const Graph&, const Node& n) {
  TRNSIM_ASSIGN_OR_RETURN(DType dt, detail::dtypeAttr(n, "dtype", DType::kFP32));
  return one(dt, {});
}

Status fill(LowerContext& cx, const Node& n, float value) {
  const TensorType& o = cx.graph().type(n.outputs[0]);
  TileLoop loop;
  loop.shape = o.shape.empty() ? std::vector<int64_t>{1} : o.shape;
  loop.outputs = {LoopOperand::broadcast(cx.out(n), o.shape, loop.shape)};
  loop.body = [value](TileContext& tc) { return tc.b.memset(tc.output(0), value); };
  return emitTileLoop(cx.b(), loop);
}

Status lowerFull(LowerContext& cx, const Node& n) {
  return fill(cx, n, float(n.floatAttr("fill_value")));
}
Status lowerScalarTensor(LowerContext& cx, const Node& n) {
  return fill(cx, n, float(n.floatAttr("s")));
}
Status lowerEmpty(LowerContext& cx, const Node& n) { return fill(cx, n, 0.0f); }

bool anyFloat(const Node& n, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = n.attrs.find(k);
    if (it != n.attrs.end() && std::holds_alternative<double>(it->second)) return true;
  }
  return false;
}

Expected<Types> inferArange(const Graph&, const Node& n) {
  const double start = n.floatAttr("start", 0), end = n.floatAttr("end"),
               step = n.floatAttr("step", 1);
  if (step == 0) return badArg(n, "step must not be 0");
  const int64_t len = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  TRNSIM_ASSIGN_OR_RETURN(
      DType dt,
      detail::dtypeAttr(n, "dtype",
                        anyFloat(n, {"start", "end", "step"}) ? DType::kFP32 : DType::kInt32));
  return one(dt, {len});
}

/// out[i] = start + step * i, as rows of `cols` elements: iota per [128, cols] tile.
Status lowerArange(LowerContext& cx, const Node& n) {
  const double start = n.floatAttr("start", 0), step = n.floatAttr("step", 1);
  const isa::Tensor& out = cx.out(n);
  const int64_t len = product(out.shape());
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  const int64_t cols = std::max<int64_t>(1, std::min<int64_t>(512, (len + P - 1) / P));
  isa::Tensor t =
      b.sbuf(fmt::format("arange{}", b.program().tensors.size()), out.dtype(), {P, cols});
  TRNSIM_RETURN_IF_ERROR(b.status());
  for (int64_t i0 = 0; i0 < len; i0 += P * cols) {
    const int64_t fullRows = std::min(P, (len - i0) / cols);
    if (fullRows > 0) {
      auto tile = t({isa::Slice::range(0, fullRows), isa::Slice::all()});
      (void)b.iota(tile, {int64_t(step)}, float(start + step * double(i0)),
                   float(step * double(cols)));
      isa::AccessPattern d;
      d.tensor = out.id();
      d.partitionStride = cols;
      d.partitions = uint32_t(fullRows);
      d.offset = i0;
      d.free[0] = {1, cols};
      d.numFree = 1;
      (void)b.dmaCopy(d, tile);
    }
    const int64_t rest = std::min(len - i0, P * cols) - fullRows * cols;
    if (rest > 0) {
      const int64_t at = i0 + fullRows * cols;
      auto tile = t({isa::Slice::range(0, 1), isa::Slice::range(0, rest)});
      (void)b.iota(tile, {int64_t(step)}, float(start + step * double(at)), 0.0f);
      isa::AccessPattern d;
      d.tensor = out.id();
      d.partitionStride = rest;
      d.partitions = 1;
      d.offset = at;
      d.free[0] = {1, rest};
      d.numFree = 1;
      (void)b.dmaCopy(d, tile);
    }
  }
  b.release(t);
  return b.status();
}

constexpr int kAny = 64;
const OpDef kOps[] = {
    {"view", OpClass::kLayout, 1, 1, inferView, lowerAlias},
    {"reshape", OpClass::kLayout, 1, 1, inferView, lowerAlias},
    {"_unsafe_view", OpClass::kLayout, 1, 1, inferView, lowerAlias},
    {"unsqueeze", OpClass::kLayout, 1, 1, inferUnsqueeze, lowerAlias},
    {"squeeze", OpClass::kLayout, 1, 1, inferSqueeze, lowerAlias},
    {"alias", OpClass::kLayout, 1, 1, inferSame, lowerAlias},
    {"detach", OpClass::kLayout, 1, 1, inferSame, lowerAlias},
    {"lift_fresh_copy", OpClass::kLayout, 1, 1, inferSame, lowerAlias},
    {"permute", OpClass::kLayout, 1, 1, inferPermute, lowerPermute},
    {"transpose", OpClass::kLayout, 1, 1, inferTranspose, lowerTranspose},
    {"expand", OpClass::kLayout, 1, 1, inferExpand, lowerExpand},
    {"slice", OpClass::kLayout, 1, 1, inferSlice, lowerSlice},
    {"select", OpClass::kLayout, 1, 1, inferSelect, lowerSelect},
    {"cat", OpClass::kLayout, 1, kAny, inferCat, lowerCat},
    {"split_with_sizes", OpClass::kLayout, 1, 1, inferSplit, lowerSplit},
    {"split", OpClass::kLayout, 1, 1, inferSplit, lowerSplit},
    {"embedding", OpClass::kLayout, 2, 2, inferEmbedding, lowerEmbedding},
    {"index_select", OpClass::kLayout, 2, 2, inferIndexSelect, lowerIndexSelect},
    {"full", OpClass::kSource, 0, 0, inferFull, lowerFull},
    {"empty", OpClass::kSource, 0, 0, inferFull, lowerEmpty},
    {"scalar_tensor", OpClass::kSource, 0, 0, inferScalarTensor, lowerScalarTensor},
    {"arange", OpClass::kSource, 0, 0, inferArange, lowerArange},
};

}  // namespace

std::span<const OpDef> shapeOps() { return kOps; }

}  // namespace trnsim::compiler
