// The row loop of the row ops (ops_rows_loop.h): planning where the rows are (partitions,
// loops, strides per operand), tiles of whole rows, and long rows streamed in chunks.

#include "trnsim/compiler/ops_rows_loop.h"

#include <fmt/format.h>

#include <algorithm>

namespace trnsim::compiler::detail {
namespace {

using isa::AccessPattern;
using isa::AluOp;
using isa::Slice;

struct RowAxis {
  int64_t size;
  std::vector<int64_t> strides;  ///< per operand (inputs then outputs)
};

/// Where the rows of a row loop are: per operand the row stride, the dims on partitions and
/// in loops.
struct RowPlan {
  std::vector<const RowOperand*> ops;  ///< inputs then outputs
  std::vector<int64_t> rowStride;
  RowAxis part{1, {}};
  std::vector<RowAxis> loops;

  /// The rows [p0, p0 + np) of operand k at `base`, elements [c0, c0 + len) of each row.
  AccessPattern hbm(size_t k, int64_t base, int64_t np, int64_t c0, int64_t len) const {
    AccessPattern ap;
    ap.tensor = ops[k]->tensor.id();
    ap.partitionStride = part.strides[k];
    ap.partitions = uint32_t(np);
    ap.offset = base + c0 * rowStride[k];
    ap.free[0] = {rowStride[k], len};
    ap.numFree = 1;
    return ap;
  }
  /// Calls f(offset per operand, rows) for every tile of up to P rows, in loop order.
  Status forEachTile(int64_t P,
                     const std::function<Status(const std::vector<int64_t>&, int64_t)>& f) const {
    const size_t nops = ops.size();
    std::vector<int64_t> idx(loops.size(), 0);
    for (;;) {
      std::vector<int64_t> base(nops, 0);
      for (size_t j = 0; j < loops.size(); ++j)
        for (size_t k = 0; k < nops; ++k) base[k] += idx[j] * loops[j].strides[k];
      for (int64_t p0 = 0; p0 < part.size; p0 += P) {
        std::vector<int64_t> at(nops);
        for (size_t k = 0; k < nops; ++k) at[k] = base[k] + p0 * part.strides[k];
        TRNSIM_RETURN_IF_ERROR(f(at, std::min(P, part.size - p0)));
      }
      size_t j = loops.size();
      while (j-- > 0) {
        if (++idx[j] < loops[j].size) break;
        idx[j] = 0;
      }
      if (j == size_t(-1)) return Status::ok();
    }
  }
};

RowPlan planRows(const std::vector<int64_t>& shape, int dim, const std::vector<RowOperand>& inputs,
                 const std::vector<RowOperand>& outputs) {
  RowPlan plan;
  for (const auto& o : inputs) plan.ops.push_back(&o);
  for (const auto& o : outputs) plan.ops.push_back(&o);
  const auto& ops = plan.ops;
  const size_t nops = ops.size();
  // Per-operand contiguous strides and the row stride.
  std::vector<std::vector<int64_t>> cs(nops);
  plan.rowStride.assign(nops, 1);
  for (size_t k = 0; k < nops; ++k) {
    std::vector<int64_t> s = shape;
    s[size_t(dim)] = ops[k]->len;
    cs[k] = contiguousStrides(s);
    plan.rowStride[k] = ops[k]->shared ? 1 : cs[k][size_t(dim)];
  }
  std::vector<RowAxis> kept;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (int(d) == dim || shape[d] == 1) continue;
    RowAxis a{shape[d], std::vector<int64_t>(nops, 0)};
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
  plan.part = kept.empty() ? RowAxis{1, std::vector<int64_t>(nops, 0)} : kept[pAxis];
  for (size_t i = 0; i < kept.size(); ++i)
    if (i != pAxis) plan.loops.push_back(kept[i]);
  return plan;
}

/// Bytes per partition one tile set of `loop` needs.
int64_t rowLoopBytes(const RowLoop& loop) {
  int64_t bytes = 0;
  for (const auto* v : {&loop.inputs, &loop.outputs})
    for (const auto& o : *v) bytes += o.len * int64_t(numerics::dtypeSize(o.tensor.dtype()));
  for (const auto& [dt, len] : loop.scratch) bytes += len * int64_t(numerics::dtypeSize(dt));
  return bytes;
}

/// SBUF bytes per partition a row loop may use (a little is left for others' small tiles).
int64_t rowLoopAvail(const isa::KernelBuilder& b) { return int64_t(b.sbufFreeBytes()) - 4096; }

}  // namespace

bool rowLoopFits(const isa::KernelBuilder& b, const RowLoop& loop) {
  return rowLoopBytes(loop) <= rowLoopAvail(b);
}

Status emitRowLoop(LowerContext& cx, const char* what, const RowLoop& loop) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  const RowPlan plan = planRows(loop.shape, loop.dim, loop.inputs, loop.outputs);

  // Tiles: two sets when they fit, else one.
  const int64_t bytes = rowLoopBytes(loop);
  const int64_t avail = rowLoopAvail(b);
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
  uint64_t iter = 0;
  const size_t nin = loop.inputs.size(), nops = plan.ops.size();
  auto perTile = [&](const std::vector<int64_t>& at, int64_t np) -> Status {
    RowTile& t = tiles[iter++ % size_t(sets)];
    t.np = np;
    for (size_t k = 0; k < nin; ++k)
      (void)b.dmaCopy(t.in(k), plan.hbm(k, at[k], np, 0, plan.ops[k]->len));
    TRNSIM_RETURN_IF_ERROR(loop.body(t));
    for (size_t k = nin; k < nops; ++k)
      (void)b.dmaCopy(plan.hbm(k, at[k], np, 0, plan.ops[k]->len), t.out(k - nin));
    return Status::ok();
  };
  TRNSIM_RETURN_IF_ERROR(plan.forEachTile(P, perTile));
  for (auto& t : tiles)
    for (auto* v : {&t.ins, &t.outs, &t.scratch})
      for (auto& tt : *v) b.release(tt);
  return b.status();
}

/// Rows too long for SBUF, streamed in chunks (see LongRowLoop). The chunk is as wide as two
/// tile sets allow (a multiple of 512 elements), so DMA of one chunk overlaps compute on the
/// other.
Status emitLongRowLoop(LowerContext& cx, const char* what, const LongRowLoop& loop) {
  isa::KernelBuilder& b = cx.b();
  const int64_t P = cx.chip().mem.sbufPartitions;
  const int64_t L = loop.shape[size_t(loop.dim)];
  const RowPlan plan = planRows(loop.shape, loop.dim, loop.inputs, loop.outputs);
  auto size = [](DType dt) { return int64_t(numerics::dtypeSize(dt)); };
  // Bytes per chunk element of one tile set, and the bytes that do not grow with the chunk.
  int64_t perElem = 0, fixed = 0;
  for (const auto* v : {&loop.inputs, &loop.outputs})
    for (const auto& o : *v) {
      if (o.len == L)
        perElem += size(o.tensor.dtype());
      else
        fixed += size(o.tensor.dtype()) * o.len;
    }
  for (const auto& [dt, least] : loop.chunkScratch) {
    perElem += size(dt);
    fixed += 2 * size(dt) * least;  // a short last chunk still needs `least`
  }
  for (const auto& [dt, len] : loop.state) fixed += size(dt) * len;
  int64_t C = perElem ? (rowLoopAvail(b) - fixed) / (2 * perElem) : L;
  if (C >= 512) C -= C % 512;
  C = std::min(C, L);
  if (C < 64)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{}: rows of {} elements: not even a chunk of 64 elements fits in "
                              "SBUF ({} bytes free per partition)",
                              what, L, b.sbufFreeBytes()));
  const auto id = b.program().tensors.size();
  int j = 0;
  auto make = [&](DType dt, int64_t len) {
    return b.sbuf(fmt::format("longrow{}_{}", id, j++), dt, {P, std::max<int64_t>(1, len)});
  };
  // Per-row outputs and state: one copy, shared by both tile sets.
  std::vector<isa::Tensor> perRowOut(loop.outputs.size()), state;
  for (size_t k = 0; k < loop.outputs.size(); ++k)
    if (loop.outputs[k].len != L)
      perRowOut[k] = make(loop.outputs[k].tensor.dtype(), loop.outputs[k].len);
  for (const auto& [dt, len] : loop.state) state.push_back(make(dt, len));
  std::vector<RowTile> tiles;
  for (int s = 0; s < 2; ++s) {
    RowTile t{b};
    for (const auto& o : loop.inputs) {
      t.ins.push_back(make(o.tensor.dtype(), C));
      t.inLen.push_back(C);
    }
    for (size_t k = 0; k < loop.outputs.size(); ++k) {
      const auto& o = loop.outputs[k];
      t.outs.push_back(o.len == L ? make(o.tensor.dtype(), C) : perRowOut[k]);
      t.outLen.push_back(o.len == L ? C : o.len);
    }
    for (const auto& [dt, least] : loop.chunkScratch) {
      t.scratch.push_back(make(dt, std::max(least, C)));
      t.scratchLen.push_back(std::max(least, C));
    }
    t.rowState = state;
    for (const auto& st : loop.state) t.rowStateLen.push_back(st.second);
    tiles.push_back(std::move(t));
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  uint64_t iter = 0;
  const size_t nin = loop.inputs.size();
  auto perTile = [&](const std::vector<int64_t>& at, int64_t np) -> Status {
    RowTile* last = nullptr;
    for (int pass = 0; pass < loop.passes; ++pass) {
      const bool lastPass = pass + 1 == loop.passes;
      for (int64_t c0 = 0; c0 < L; c0 += C) {
        RowTile& t = tiles[iter++ % 2];
        last = &t;
        t.np = np;
        const int64_t len = std::min(C, L - c0);
        for (auto& l : t.inLen) l = len;
        for (size_t k = 0; k < t.outs.size(); ++k)
          if (loop.outputs[k].len == L) t.outLen[k] = len;
        for (size_t k = 0; k < t.scratch.size(); ++k)
          t.scratchLen[k] = std::max(loop.chunkScratch[k].second, len);
        for (size_t k = 0; k < nin; ++k)
          if (!loop.inputs[k].shared || lastPass)
            (void)b.dmaCopy(t.in(k), plan.hbm(k, at[k], np, c0, len));
        TRNSIM_RETURN_IF_ERROR(loop.chunk(t, pass, c0));
        if (lastPass)
          for (size_t k = 0; k < loop.outputs.size(); ++k)
            if (loop.outputs[k].len == L)
              (void)b.dmaCopy(plan.hbm(nin + k, at[nin + k], np, c0, len), t.out(k));
      }
      if (loop.endPass) TRNSIM_RETURN_IF_ERROR(loop.endPass(*last, pass));
    }
    for (size_t k = 0; k < loop.outputs.size(); ++k)
      if (loop.outputs[k].len != L)
        (void)b.dmaCopy(plan.hbm(nin + k, at[nin + k], np, 0, loop.outputs[k].len), last->out(k));
    return Status::ok();
  };
  TRNSIM_RETURN_IF_ERROR(plan.forEachTile(P, perTile));
  for (auto& t : tiles) {
    for (auto& tt : t.ins) b.release(tt);
    for (size_t k = 0; k < t.outs.size(); ++k)
      if (loop.outputs[k].len == L) b.release(t.outs[k]);
    for (auto& tt : t.scratch) b.release(tt);
  }
  for (auto& tt : perRowOut)
    if (tt.valid()) b.release(tt);
  for (auto& tt : state) b.release(tt);
  return b.status();
}

}  // namespace trnsim::compiler::detail
