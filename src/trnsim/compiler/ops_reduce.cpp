// Reductions over any set of dims (sum, mean, amax, amin, any, max/min values): the kept dims
// go on partitions and loops, the reduced dims on the free axis of each tile (read with their
// own strides by the DMA), VectorE reduces each row and folds chunks into an fp32 accumulator.
#include <fmt/format.h>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"

namespace trnsim::compiler {
namespace {

using detail::badArg;
using detail::in;
using isa::AluOp;
using isa::Slice;
using Types = std::vector<TensorType>;

/// Which dims of a rank-r input a node reduces (attr dim: int or list; missing/empty = all).
Expected<std::vector<bool>> reducedDims(const Node& n, int rank) {
  std::vector<int64_t> dims = n.intsAttr("dim");
  std::vector<bool> red(size_t(rank), dims.empty());
  for (int64_t d : dims) {
    TRNSIM_ASSIGN_OR_RETURN(int nd, normalizeDim(d, rank));
    if (rank > 0) red[size_t(nd)] = true;
  }
  return red;
}

Expected<Types> inferReduce(const Graph& g, const Node& n) {
  const TensorType& t = in(g, n, 0);
  TRNSIM_ASSIGN_OR_RETURN(std::vector<bool> red, reducedDims(n, t.rank()));
  const bool keep = n.intAttr("keepdim", 0) != 0;
  std::vector<int64_t> shape;
  for (int d = 0; d < t.rank(); ++d) {
    if (!red[size_t(d)])
      shape.push_back(t.shape[size_t(d)]);
    else if (keep)
      shape.push_back(1);
  }
  DType dt = t.dtype;
  if (n.op == "sum" && !numerics::isFloat(dt)) dt = DType::kInt32;
  if (n.op == "mean" && !numerics::isFloat(dt)) return badArg(n, "mean needs a float input");
  if (n.op == "any") dt = DType::kUInt8;
  TRNSIM_ASSIGN_OR_RETURN(dt, detail::dtypeAttr(n, "dtype", dt));
  Types out{TensorType{dt, shape}};
  if ((n.op == "max" || n.op == "min") && n.has("dim"))
    out.push_back(TensorType{DType::kInt32, shape});  // indices
  return out;
}

struct Axis {
  int64_t size, inStride, outStride;
};

/// Merges adjacent axes that are one run for both strides.
std::vector<Axis> merge(std::vector<Axis> axes) {
  std::vector<Axis> out;
  for (const Axis& a : axes) {
    if (a.size == 1) continue;
    if (!out.empty() && out.back().inStride == a.inStride * a.size &&
        out.back().outStride == a.outStride * a.size) {
      out.back().size *= a.size;
      out.back().inStride = a.inStride;
      out.back().outStride = a.outStride;
      continue;
    }
    out.push_back(a);
  }
  return out;
}

Status lowerReduce(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  const TensorType& t = g.type(n.inputs[0]);
  // max/min with dim and their indices read: VectorE max8 + nc_find_index8 (ops_rows.cpp).
  if (n.outputs.size() > 1 && cx.isRead(n.outputs[1])) return detail::lowerMinMaxWithIndices(cx, n);
  TRNSIM_ASSIGN_OR_RETURN(std::vector<bool> red, reducedDims(n, t.rank()));
  const auto inStrides = contiguousStrides(t.shape);
  // Output strides over the input's dims: reduced dims do not advance the output.
  std::vector<int64_t> keptShape;
  for (int d = 0; d < t.rank(); ++d)
    if (!red[size_t(d)]) keptShape.push_back(t.shape[size_t(d)]);
  const auto keptStrides = contiguousStrides(keptShape);
  std::vector<Axis> kept, reduced;
  for (int d = 0, k = 0; d < t.rank(); ++d) {
    if (red[size_t(d)])
      reduced.push_back({t.shape[size_t(d)], inStrides[size_t(d)], 0});
    else
      kept.push_back({t.shape[size_t(d)], inStrides[size_t(d)], keptStrides[size_t(k++)]});
  }
  kept = merge(kept);
  reduced = merge(reduced);
  if (reduced.empty()) reduced.push_back({1, 0, 0});
  if (reduced.size() > 3)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{}: {} non-adjacent reduced dims; at most 3 are supported", n.op,
                              reduced.size()));
  // Partition axis: the largest kept axis (a single row when everything is reduced).
  size_t pAxis = 0;
  for (size_t i = 0; i < kept.size(); ++i)
    if (kept[i].size >= kept[pAxis].size) pAxis = i;
  const Axis part = kept.empty() ? Axis{1, 0, 0} : kept[pAxis];
  std::vector<Axis> loops;
  for (size_t i = 0; i < kept.size(); ++i)
    if (i != pAxis) loops.push_back(kept[i]);

  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  const Axis innerR = reduced.back();
  int64_t outerR = 1;
  for (size_t i = 0; i + 1 < reduced.size(); ++i) outerR *= reduced[i].size;
  const int64_t maxFree = 4096;
  if (outerR > 1 && outerR * innerR.size > maxFree)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{}: {} reduced elements per row over several dims; reduce in two "
                              "steps",
                              n.op, outerR * innerR.size));
  const int64_t chunk = std::min(innerR.size, maxFree);
  const int64_t chunks = (innerR.size + chunk - 1) / chunk;
  const AluOp op = n.op == "sum" || n.op == "mean"   ? AluOp::kAdd
                   : n.op == "amin" || n.op == "min" ? AluOp::kMin
                                                     : AluOp::kMax;
  const DType inT = t.dtype;
  const isa::Tensor& src = cx.in(n, 0);
  const isa::Tensor& dst = cx.out(n, 0);
  const int64_t total = outerR * innerR.size;
  const auto id = b.program().tensors.size();
  std::array<isa::Tensor, 2> x, part1, acc, res;
  for (int i = 0; i < 2; ++i) {
    x[size_t(i)] = b.sbuf(fmt::format("red{}_x{}", id, i), inT, {P, outerR * chunk});
    part1[size_t(i)] = b.sbuf(fmt::format("red{}_p{}", id, i), DType::kFP32, {P, 1});
    acc[size_t(i)] = b.sbuf(fmt::format("red{}_acc{}", id, i), DType::kFP32, {P, 1});
    res[size_t(i)] = b.sbuf(fmt::format("red{}_res{}", id, i), dst.dtype(), {P, 1});
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  std::vector<int64_t> idx(loops.size(), 0);
  uint64_t iter = 0;
  for (;;) {
    int64_t inBase = 0, outBase = 0;
    for (size_t j = 0; j < loops.size(); ++j) {
      inBase += idx[j] * loops[j].inStride;
      outBase += idx[j] * loops[j].outStride;
    }
    for (int64_t p0 = 0; p0 < part.size; p0 += P, ++iter) {
      const size_t s = iter % 2;
      const int64_t np = std::min(P, part.size - p0);
      const Slice rows = Slice::range(0, np);
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t nc = std::min(chunk, innerR.size - c * chunk);
        isa::AccessPattern ap;
        ap.tensor = src.id();
        ap.partitionStride = part.inStride;
        ap.partitions = uint32_t(np);
        ap.offset = inBase + p0 * part.inStride + c * chunk * innerR.inStride;
        uint8_t f = 0;
        for (size_t i = 0; i + 1 < reduced.size(); ++i)
          ap.free[f++] = {reduced[i].inStride, reduced[i].size};
        ap.free[f++] = {innerR.inStride, nc};
        ap.numFree = f;
        auto xt = x[s]({rows, Slice::range(0, outerR * nc)});
        (void)b.dmaCopy(xt, ap);
        if (n.op == "any") (void)b.tensorScalar(xt, xt, AluOp::kNotEqual, 0.0f);
        auto target = c == 0 ? acc[s]({rows}) : part1[s]({rows});
        (void)b.tensorReduce(target, op, xt, 1u);
        if (c > 0) (void)b.tensorTensor(acc[s]({rows}), acc[s]({rows}), part1[s]({rows}), op);
      }
      if (n.op == "mean")
        (void)b.tensorScalar(res[s]({rows}), acc[s]({rows}), AluOp::kMultiply,
                             float(1.0 / double(total)));
      else
        (void)b.tensorCopy(res[s]({rows}), acc[s]({rows}));
      isa::AccessPattern out;
      out.tensor = dst.id();
      out.partitionStride = part.outStride;
      out.partitions = uint32_t(np);
      out.offset = outBase + p0 * part.outStride;
      out.free[0] = {1, 1};
      out.numFree = 1;
      (void)b.dmaCopy(out, res[s]({rows}));
    }
    size_t j = loops.size();
    while (j-- > 0) {
      if (++idx[j] < loops[j].size) break;
      idx[j] = 0;
    }
    if (j == size_t(-1)) break;
  }
  for (int i = 0; i < 2; ++i)
    for (auto* tt : {&x[size_t(i)], &part1[size_t(i)], &acc[size_t(i)], &res[size_t(i)]})
      b.release(*tt);
  return b.status();
}

const OpDef kOps[] = {
    {"sum", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
    {"mean", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
    {"amax", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
    {"amin", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
    {"max", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
    {"min", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
    {"any", OpClass::kReduction, 1, 1, inferReduce, lowerReduce},
};

}  // namespace

std::span<const OpDef> reduceOps() { return kOps; }

}  // namespace trnsim::compiler
