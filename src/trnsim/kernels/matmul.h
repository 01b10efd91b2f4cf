#pragma once
// Tiled matrix multiplication on one NeuronCore, written on the kernel-building API.

#include <cstdint>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// Blocking of the output and contraction dims, in hardware tiles (128 rows of M, 512 columns
/// of N, 128 rows of K). Zero means "choose": emitMatmul takes the largest block that fits
/// SBUF, emitMatmulAB the fastest by its cost model among those that fit.
struct MatmulTiling {
  int tilesInBlockM = 0;
  int tilesInBlockN = 0;
  int tilesInBlockK = 0;
  /// emitMatmulAB only: how A (unless transposeA) and B (with transposeB) get K onto the
  /// partitions. kAuto: DMA
  /// transpose where the chip has it and the dtype allows it (2 or 4 bytes), else TensorE.
  enum class Transpose : uint8_t { kAuto, kTensorEngine, kDma };
  Transpose transpose = Transpose::kAuto;
};

/// Operand layouts of emitMatmulAB.
struct MatmulLayout {
  /// a is [..., K, M] (a weight gradient's X^T for X [tokens, features]), not [..., M, K]: it
  /// is already the lhsT TensorE wants, so it is loaded as stored, no transpose.
  bool transposeA = false;
  bool transposeB = false;  ///< b is [..., N, K] (a linear layer's weight), not [..., K, N]
};

/// What emitMatmulAB does to the fp32 sums before their one rounding to out's dtype.
struct MatmulEpilogue {
  /// Per-output-column scale (fp8 weights' dequantization scale): an HBM float tensor of N
  /// elements (out[..., m, n] = sum * scale[n]) or of one (out = sum * scale), multiplied in
  /// on VectorE as PSUM is read. Not valid (the default): no scale.
  isa::Tensor columnScale;
};

/// out[M, N] = lhsT[K, M]^T @ rhs[K, N] (lhsT is A transposed, the layout TensorE wants for its
/// stationary operand). M and K must be multiples of 128 and N a multiple of 512.
/// Loads are double-buffered, PSUM tiles rotate over the banks, and partial sums over K blocks
/// are kept in fp32 in SBUF, so DMA, TensorE and VectorE overlap.
Status emitMatmul(isa::KernelBuilder& b, const isa::Tensor& lhsT, const isa::Tensor& rhs,
                  const isa::Tensor& out, MatmulTiling tiling = {});

/// out[..., M, N] = a[..., M, K] @ b[..., K, N] (a[..., K, M]^T with transposeA, b[..., N, K]^T
/// with transposeB), any M, K, N >= 1, HBM tensors, batch dims of a and out equal, b either with
/// the same batch dims or none (shared, like a weight). Dtypes: a and b both fp32, bf16, fp16,
/// fp8 e4m3 or e5m2, or one of them fp8 and the other any of these (fp8 weights with bf16
/// activations: TensorE reads each operand as stored, 1 byte per fp8 element in HBM and SBUF);
/// out any float dtype; accumulation in fp32 PSUM (fp32 SBUF across K blocks), times the
/// epilogue's column scale, one rounding to out's dtype. A^T (unless transposeA) and B^T (with
/// transposeB) are produced on chip, block by block: dma_transpose on chips that have it, else
/// 128-row tiles transposed on TensorE through PSUM (MatmulTiling::transpose). Partial tiles at the
/// edges; blocks chosen to fit the free SBUF (b.sbufFreeBytes()), K blocks accumulated in fp32;
/// takes every PSUM bank when all are free (needs 2). out must not overlap a or b. docs/kernels.md
/// has the algorithm and its measured utilization.
Status emitMatmulAB(isa::KernelBuilder& b, const isa::Tensor& a, const isa::Tensor& bm,
                    const isa::Tensor& out, MatmulLayout layout = {}, MatmulTiling tiling = {},
                    const MatmulEpilogue& epilogue = {});

/// A whole program around emitMatmulAB: HBM inputs "a" aShape, "b" bShape, output "out" [..., M,
/// N] (the batch dims of a).
Expected<isa::Program> matmulABProgram(const arch::ChipConfig& chip, std::vector<int64_t> aShape,
                                       std::vector<int64_t> bShape,
                                       numerics::DType inDtype = numerics::DType::kBF16,
                                       numerics::DType outDtype = numerics::DType::kBF16,
                                       MatmulLayout layout = {}, MatmulTiling tiling = {});

/// A whole program: HBM inputs "lhsT" [K, M] and "rhs" [K, N], output "out" [M, N].
Expected<isa::Program> matmulProgram(const arch::ChipConfig& chip, int64_t m, int64_t k, int64_t n,
                                     numerics::DType inDtype = numerics::DType::kBF16,
                                     numerics::DType outDtype = numerics::DType::kBF16,
                                     MatmulTiling tiling = {});

}  // namespace trnsim::kernels
