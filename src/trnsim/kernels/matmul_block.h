#pragma once
// The block product shared by emitMatmul (matmul.cpp) and emitMatmulAB (matmul_ab.cpp):
// internal to src/trnsim/kernels.

#include <cstdint>
#include <functional>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"

namespace trnsim::kernels::detail {

using numerics::DType;

/// Time of one streaming-engine instruction over `elems` elements per partition (the timing
/// model's cost for a copy or a PSUM-reading add).
double streamNs(const arch::StreamEngineConfig& e, double elems, uint32_t widestBytes);

struct Blocks {
  int bm, bn, bk;
};

/// The PSUM banks as [TM, TN] fp32 tiles, taken in turn by matmul groups (and transposes).
struct PsumRing {
  std::vector<isa::Tensor> tiles;
  size_t next = 0;
  size_t take() { return next++ % tiles.size(); }
};

/// Output side of the block products: a ring of output rows [TM, >= BN] in out's dtype (two
/// in emitMatmul) and, when K spans several blocks, the fp32 partial sums [TM, bm, >= BN].
struct OutputRows {
  std::vector<isa::Tensor> rows;
  isa::Tensor acc;
  size_t next = 0;
};

/// Spreads PSUM -> SBUF copies over ScalarE and VectorE by their estimated busy time.
struct EngineBalance {
  const arch::ChipConfig* chip = nullptr;
  double scalarNs = 0, vectorNs = 0;

  /// The engine that finishes a copy of `elems` elements per partition first; books it.
  arch::Engine pick(double elems, uint32_t widestBytes) {
    const double s = streamNs(chip->scalar, elems, widestBytes);
    const double v = streamNs(chip->vector, elems, widestBytes);
    if (scalarNs + s <= vectorNs + v) {
      scalarNs += s;
      return arch::Engine::kScalar;
    }
    vectorNs += v;
    return arch::Engine::kVector;
  }
  void addVector(double elems, uint32_t widestBytes) {
    vectorNs += streamNs(chip->vector, elems, widestBytes);
  }
};

/// out block [mSize, nSize] (+)= lhs^T rhs over kSize rows of K, with K on the partitions of
/// both operands: lhs [P, bk, >= mSize], rhs [P, bk, >= nSize], K tile kt at [:, kt, :].
struct BlockProduct {
  const isa::Tensor* lhs = nullptr;
  const isa::Tensor* rhs = nullptr;
  int64_t mSize = 0, nSize = 0, kSize = 0;
  int64_t kb = 0, kBlocks = 1;
  /// Where PSUM copies go: null = ScalarE (as emitMatmul always did); else to the less loaded
  /// of ScalarE and VectorE.
  EngineBalance* balance = nullptr;
  /// Output scale: [TM, >= nSize] (one per column, on every partition) or [TM, 1] (one for
  /// all), multiplied into the fp32 sum on VectorE before the one rounding to out's dtype.
  const isa::Tensor* scale = nullptr;
};

int64_t ceilDiv(int64_t a, int64_t b);
/// The largest divisor of n that is <= limit (at least 1).
int largestDivisor(int64_t n, int64_t limit);
uint64_t sbufBytesNeeded(const Blocks& b, int64_t tileM, int64_t tileN, int64_t kBlocks,
                         numerics::DType in, numerics::DType out);
/// Emits one block product. Per output tile (TM rows x TN columns, partial at the edges) the
/// K-tile matmuls accumulate into the next PSUM bank, which is then copied out (one K block),
/// copied or added into the fp32 partial sums (earlier K blocks), or added to them into the
/// output rows (last K block). Finished output rows go to store(m0, rows): row m0 of the block.
/// afterTile() runs after each tile's instructions.
void emitBlockProduct(isa::KernelBuilder& b, PsumRing& ps, OutputRows& out, const BlockProduct& job,
                      const std::function<void(int64_t, const isa::AccessPattern&)>& store,
                      const std::function<void()>& afterTile = {});

}  // namespace trnsim::kernels::detail
