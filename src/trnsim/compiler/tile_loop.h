#pragma once
// Tile loops: the one way the compiler streams elements through SBUF. A loop walks an
// iteration space (a shape); every operand is an HBM tensor read or written at its own element
// strides over that space (0 = broadcast), so broadcasting, permutes, slices, expands and
// concatenation are all tile loops with different strides. Dims that are contiguous for every
// operand are merged; one dim goes on the 128 partitions, up to three more on the free axis
// (chunked to fit SBUF), and the rest are looped. Per tile: one DMA per input, the body's
// instructions on [partitions, free] tiles, one DMA per output; two tile sets alternate so DMA
// and compute overlap.

#include <cstdint>
#include <functional>
#include <vector>

#include "trnsim/compiler/graph.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::compiler {

/// An HBM tensor seen over the loop's iteration space.
struct LoopOperand {
  isa::Tensor tensor;
  std::vector<int64_t> strides;  ///< elements per step of each iteration dim (0 = broadcast)
  int64_t offset = 0;            ///< element offset of iteration index 0

  /// The operand of a contiguous tensor of `shape` broadcast (right-aligned) to `iterShape`.
  static LoopOperand broadcast(const isa::Tensor& t, const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& iterShape);
};

/// The body's view of one tile: SBUF access patterns of the loaded inputs and of the tiles it
/// writes, all [partitions, free] with the same element order.
class TileContext {
 public:
  isa::KernelBuilder& b;
  int64_t partitions = 0;  ///< rows of this tile
  int64_t freeSize = 0;    ///< elements per row of this tile

  TileContext(isa::KernelBuilder& builder) : b(builder) {}
  /// Input i of the loop, loaded.
  isa::AccessPattern input(size_t i) const;
  /// Output i of the loop (stored after the body).
  isa::AccessPattern output(size_t i) const;
  /// Scratch tile i (as many as the loop was given).
  isa::AccessPattern scratch(size_t i) const;
  std::vector<isa::Tensor> inTiles, outTiles, scratchTiles;
};

struct TileLoop {
  std::vector<int64_t> shape;        ///< iteration space
  std::vector<LoopOperand> inputs;   ///< loaded into tiles of the tensor's dtype
  std::vector<LoopOperand> outputs;  ///< stored from tiles of the tensor's dtype
  std::vector<DType> scratchDtypes;  ///< extra tiles for the body
  /// Emits the computation of one tile; outputs must be fully written. Empty for a copy
  /// (inputs.size() == outputs.size(), output i = input i): then each tile is one HBM-to-HBM
  /// DMA per operand and nothing passes through SBUF.
  std::function<Status(TileContext&)> body;
  int maxFree = 4096;  ///< cap on elements per partition per tile
};

/// Emits the loop's instructions.
Status emitTileLoop(isa::KernelBuilder& b, const TileLoop& loop);

}  // namespace trnsim::compiler
