#pragma once
// The row loop of the row ops (ops_rows.cpp): a loop over the rows of a tensor along one dim,
// with the dim on the free axis of each tile (read with its own stride by the DMA, so no permute
// is needed) and the other dims on the partitions and loops. emitRowLoop holds whole rows in
// SBUF; emitLongRowLoop streams rows longer than SBUF holds in chunks, one or more passes per
// row.

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "trnsim/compiler/lower.h"

namespace trnsim::compiler::detail {

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
  /// Long rows only: per-row values kept across the chunks of a row (shared by both tile sets).
  std::vector<isa::Tensor> rowState;
  std::vector<int64_t> rowStateLen;
  isa::AccessPattern in(size_t i) const { return cut(ins[i], inLen[i]); }
  isa::AccessPattern out(size_t i) const { return cut(outs[i], outLen[i]); }
  isa::AccessPattern tmp(size_t i) const { return cut(scratch[i], scratchLen[i]); }
  isa::AccessPattern state(size_t i) const { return cut(rowState[i], rowStateLen[i]); }
  isa::AccessPattern cut(const isa::Tensor& t, int64_t len) const {
    return t({isa::Slice::range(0, np), isa::Slice::range(0, len)});
  }
};

struct RowLoop {
  std::vector<int64_t> shape;  ///< the iteration space (the input's shape)
  int dim = 0;                 ///< the row dim
  std::vector<RowOperand> inputs, outputs;
  std::vector<std::pair<numerics::DType, int64_t>> scratch;  ///< dtype, elements per row
  std::function<Status(RowTile&)> body;
};

/// A row loop over rows longer than SBUF holds: every tile of rows streams its rows in chunks
/// along the row dim, `passes` times. Operands with `len` equal to the row length are chunked:
/// inputs are loaded per chunk (`shared` ones, weights, only in the last pass), outputs written
/// per chunk in the last pass; outputs with a shorter `len` (per-row results: an index, a mean)
/// are written once after the last pass. Per-row values that live across chunks are `state`.
struct LongRowLoop {
  std::vector<int64_t> shape;
  int dim = 0;
  int passes = 1;
  std::vector<RowOperand> inputs, outputs;
  /// dtype, least width: scratch as wide as the chunk (at least that many elements).
  std::vector<std::pair<numerics::DType, int64_t>> chunkScratch;
  std::vector<std::pair<numerics::DType, int64_t>> state;  ///< dtype, elements per row
  /// Called per chunk; in/out/tmp are cut to the chunk, `c0` is its first element in the row.
  std::function<Status(RowTile&, int pass, int64_t c0)> chunk;
  /// Called after the last chunk of each pass (state only; per-row outputs after the last).
  std::function<Status(RowTile&, int pass)> endPass;
};

/// Whether one tile set of `loop` (whole rows) fits in SBUF; else it needs emitLongRowLoop.
bool rowLoopFits(const isa::KernelBuilder& b, const RowLoop& loop);
/// Runs `loop.body` on every tile of whole rows; `what` names the op in errors.
Status emitRowLoop(LowerContext& cx, const char* what, const RowLoop& loop);
/// Runs a LongRowLoop (see there); `what` names the op in errors.
Status emitLongRowLoop(LowerContext& cx, const char* what, const LongRowLoop& loop);

}  // namespace trnsim::compiler::detail
