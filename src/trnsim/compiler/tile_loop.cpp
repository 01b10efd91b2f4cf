#include "trnsim/compiler/tile_loop.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace trnsim::compiler {
namespace {

using isa::AccessPattern;
using isa::Slice;

/// The iteration space after dropping size-1 dims and merging dims that are contiguous for
/// every operand; strides[k][d] is operand k's stride of dim d.
struct Space {
  std::vector<int64_t> size;
  std::vector<std::vector<int64_t>> strides;
};

Space coalesce(const TileLoop& loop) {
  const size_t ops = loop.inputs.size() + loop.outputs.size();
  auto strideOf = [&](size_t k) -> const std::vector<int64_t>& {
    return k < loop.inputs.size() ? loop.inputs[k].strides
                                  : loop.outputs[k - loop.inputs.size()].strides;
  };
  Space s;
  s.strides.resize(ops);
  for (size_t d = 0; d < loop.shape.size(); ++d) {
    if (loop.shape[d] == 1) continue;
    s.size.push_back(loop.shape[d]);
    for (size_t k = 0; k < ops; ++k) s.strides[k].push_back(strideOf(k)[d]);
  }
  // Merge dim i into dim i+1 (inner) when every operand steps over dim i as one run of i+1.
  for (size_t i = s.size.size(); i-- > 1;) {
    const size_t outer = i - 1;
    bool ok = true;
    for (size_t k = 0; k < ops && ok; ++k) ok = s.strides[k][outer] == s.strides[k][i] * s.size[i];
    if (!ok) continue;
    s.size[i] *= s.size[outer];
    s.size.erase(s.size.begin() + long(outer));
    for (auto& st : s.strides) st.erase(st.begin() + long(outer));
  }
  if (s.size.empty()) {
    s.size = {1};
    for (auto& st : s.strides) st = {0};
  }
  // Fold the innermost run into rows of `cols` so it spreads over the partitions: when it is
  // the only dim, or when no outer dim fills them (a [8, S, S] score tensor masked by an
  // [S, S] mask coalesces to [8, S * S]: 8 partitions unless the run is split).
  int64_t outerMax = 0;
  for (size_t d = 0; d + 1 < s.size.size(); ++d) outerMax = std::max(outerMax, s.size[d]);
  if (s.size.size() == 1 || (outerMax < 128 && s.size.back() >= 256 * 128)) {
    const int64_t L = s.size.back();
    const int64_t target = std::max<int64_t>(1, (L + 127) / 128);
    int64_t cols = 1;
    for (int64_t c = std::min(target, L); c >= 1; --c) {
      if (L % c == 0) {
        cols = c;
        break;
      }
    }
    s.size.back() = L / cols;
    s.size.push_back(cols);
    for (auto& st : s.strides) {
      const int64_t inner = st.back();
      st.back() = inner * cols;
      st.push_back(inner);
    }
  }
  return s;
}

}  // namespace

LoopOperand LoopOperand::broadcast(const isa::Tensor& t, const std::vector<int64_t>& shape,
                                   const std::vector<int64_t>& iterShape) {
  LoopOperand op{t, std::vector<int64_t>(iterShape.size(), 0), 0};
  const std::vector<int64_t> cs = contiguousStrides(shape);
  const size_t lead = iterShape.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d) op.strides[lead + d] = shape[d] == 1 ? 0 : cs[d];
  return op;
}

AccessPattern TileContext::input(size_t i) const {
  return inTiles[i]({Slice::range(0, partitions), Slice::range(0, freeSize)});
}
AccessPattern TileContext::output(size_t i) const {
  return outTiles[i]({Slice::range(0, partitions), Slice::range(0, freeSize)});
}
AccessPattern TileContext::scratch(size_t i) const {
  return scratchTiles[i]({Slice::range(0, partitions), Slice::range(0, freeSize)});
}

Status emitTileLoop(isa::KernelBuilder& b, const TileLoop& loop) {
  if (product(loop.shape) == 0) return b.status();
  const bool copyOnly = !loop.body;
  if (copyOnly && loop.inputs.size() != loop.outputs.size())
    return Status(ErrorCode::kInternal, "tile loop: a copy needs one output per input");
  const Space s = coalesce(loop);
  const size_t n = s.size.size();
  const int64_t P = b.chip().mem.sbufPartitions;

  // The partition dim: the largest dim other than the innermost (ties: the inner one).
  size_t pDim = 0;
  for (size_t d = 0; d + 1 < n; ++d)
    if (s.size[d] >= s.size[pDim]) pDim = d;

  // Elements per partition a tile set may take.
  uint64_t bytesPerElem = 0;
  std::vector<DType> tileDtypes;
  if (!copyOnly) {
    for (const auto& o : loop.inputs) tileDtypes.push_back(o.tensor.dtype());
    for (const auto& o : loop.outputs) tileDtypes.push_back(o.tensor.dtype());
    for (DType d : loop.scratchDtypes) tileDtypes.push_back(d);
    for (DType d : tileDtypes) bytesPerElem += numerics::dtypeSize(d);
  }
  int64_t maxFree = loop.maxFree;
  if (!copyOnly) {
    const uint64_t free = b.sbufFreeBytes();
    // Slack: a minimum block per tile, per possible [P, 1] column tile of an input, and one.
    const uint64_t slack = 64 * (tileDtypes.size() + loop.inputs.size() + 1) * 2;
    const int64_t fit = free > slack ? int64_t((free - slack) / (2 * bytesPerElem)) : 0;
    maxFree = std::min<int64_t>(maxFree, fit);
    if (maxFree < 1)
      return Status(ErrorCode::kCapacity,
                    fmt::format("tile loop: {} tiles do not fit in the {} free SBUF bytes per "
                                "partition",
                                tileDtypes.size(), free));
  }

  // Free dims: the innermost (chunked to maxFree), then outward (skipping pDim) while whole
  // dims still fit; at most 3.
  std::vector<size_t> freeDims;  // inner first
  const size_t inner = n - 1;
  const int64_t innerChunk = std::min(s.size[inner], maxFree);
  int64_t outerFree = 1;  // product of the free dims other than the innermost
  freeDims.push_back(inner);
  for (size_t d = n - 1; d-- > 0 && s.size[inner] <= maxFree;) {
    if (d == pDim) continue;
    if (freeDims.size() == 3 || innerChunk * outerFree * s.size[d] > maxFree) break;
    freeDims.push_back(d);
    outerFree *= s.size[d];
  }
  std::vector<size_t> loopDims;
  for (size_t d = 0; d < n; ++d)
    if (d != pDim && std::find(freeDims.begin(), freeDims.end(), d) == freeDims.end())
      loopDims.push_back(d);

  // Tiles: two sets, [P, freeFull] each.
  const int64_t tileFree = outerFree * innerChunk;
  std::array<TileContext, 2> sets{TileContext(b), TileContext(b)};
  // An input constant along every free dim (a [rows, 1] column broadcast along the row) is
  // loaded as one element per partition into a column tile, then broadcast in SBUF by one
  // GpSimd copy: a DMA of one-element runs the size of the whole tile would cost a
  // descriptor per element.
  std::vector<bool> column(loop.inputs.size(), false);
  std::array<std::vector<isa::Tensor>, 2> colTiles;
  if (!copyOnly && tileFree > 1) {
    for (size_t i = 0; i < loop.inputs.size(); ++i) {
      bool c = true;
      for (size_t d : freeDims) c = c && s.strides[i][d] == 0;
      column[i] = c;
    }
  }
  if (!copyOnly) {
    for (int set = 0; set < 2; ++set) {
      TileContext& tc = sets[size_t(set)];
      size_t k = 0;
      // Tensor names must be unique in a program: the tensor count makes them so.
      auto tile = [&](const char* role) {
        return b.sbuf(fmt::format("tile{}_{}", b.program().tensors.size(), role), tileDtypes[k++],
                      {P, tileFree});
      };
      for (size_t i = 0; i < loop.inputs.size(); ++i) tc.inTiles.push_back(tile("in"));
      for (size_t i = 0; i < loop.outputs.size(); ++i) tc.outTiles.push_back(tile("out"));
      for (size_t i = 0; i < loop.scratchDtypes.size(); ++i) tc.scratchTiles.push_back(tile("tmp"));
      for (size_t i = 0; i < loop.inputs.size(); ++i)
        if (column[i])
          colTiles[size_t(set)].push_back(
              b.sbuf(fmt::format("tile{}_col", b.program().tensors.size()),
                     loop.inputs[i].tensor.dtype(), {P, 1}));
    }
    TRNSIM_RETURN_IF_ERROR(b.status());
  }

  auto hbmAp = [&](const LoopOperand& op, size_t k, int64_t base, int64_t np, int64_t nc) {
    AccessPattern ap;
    ap.tensor = op.tensor.id();
    ap.partitionStride = s.strides[k][pDim];
    ap.partitions = uint32_t(np);
    ap.offset = op.offset + base;
    uint8_t f = 0;
    for (size_t j = freeDims.size(); j-- > 0;) {
      const size_t d = freeDims[j];
      ap.free[f++] = isa::Dim{s.strides[k][d], d == inner ? nc : s.size[d]};
    }
    ap.numFree = f;
    return ap;
  };

  // Walk the loop dims (odometer), then partition chunks, then inner chunks.
  std::vector<int64_t> idx(loopDims.size(), 0);
  uint64_t iter = 0;
  const size_t nIn = loop.inputs.size();
  for (;;) {
    for (int64_t p0 = 0; p0 < s.size[pDim]; p0 += P) {
      const int64_t np = std::min(P, s.size[pDim] - p0);
      for (int64_t c0 = 0; c0 < s.size[inner]; c0 += innerChunk, ++iter) {
        const int64_t nc = std::min(innerChunk, s.size[inner] - c0);
        auto baseOf = [&](size_t k) {
          int64_t base = p0 * s.strides[k][pDim] + c0 * s.strides[k][inner];
          for (size_t j = 0; j < loopDims.size(); ++j) base += idx[j] * s.strides[k][loopDims[j]];
          return base;
        };
        if (copyOnly) {
          for (size_t i = 0; i < nIn; ++i) {
            (void)b.dmaCopy(hbmAp(loop.outputs[i], nIn + i, baseOf(nIn + i), np, nc),
                            hbmAp(loop.inputs[i], i, baseOf(i), np, nc));
          }
          continue;
        }
        TileContext& tc = sets[iter % 2];
        tc.partitions = np;
        tc.freeSize = outerFree * nc;
        for (size_t i = 0, c = 0; i < nIn; ++i) {
          if (!column[i]) {
            (void)b.dmaCopy(tc.input(i), hbmAp(loop.inputs[i], i, baseOf(i), np, nc));
            continue;
          }
          const isa::Tensor& col = colTiles[iter % 2][c++];
          AccessPattern src = hbmAp(loop.inputs[i], i, baseOf(i), np, nc);
          src.free[0] = isa::Dim{0, 1};
          src.numFree = 1;
          const Slice rows = Slice::range(0, np);
          (void)b.dmaCopy(col({rows, Slice::range(0, 1)}), src);
          AccessPattern wide = col({rows, Slice::range(0, 1)});
          wide.free[0] = isa::Dim{0, tc.freeSize};
          wide.numFree = 1;
          (void)b.tensorCopy(tc.input(i), wide, arch::Engine::kGpSimd);
        }
        TRNSIM_RETURN_IF_ERROR(loop.body(tc));
        for (size_t i = 0; i < loop.outputs.size(); ++i)
          (void)b.dmaCopy(hbmAp(loop.outputs[i], nIn + i, baseOf(nIn + i), np, nc), tc.output(i));
        TRNSIM_RETURN_IF_ERROR(b.status());
      }
    }
    size_t j = loopDims.size();
    while (j-- > 0) {
      if (++idx[j] < s.size[loopDims[j]]) break;
      idx[j] = 0;
    }
    if (j == size_t(-1)) break;
  }
  for (auto& tc : sets)
    for (auto* v : {&tc.inTiles, &tc.outTiles, &tc.scratchTiles})
      for (auto& t : *v) b.release(t);
  for (auto& v : colTiles)
    for (auto& t : v) b.release(t);
  return b.status();
}

}  // namespace trnsim::compiler
