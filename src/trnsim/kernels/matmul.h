#pragma once
// Tiled matrix multiplication on one NeuronCore, written on the kernel-building API.

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// Blocking of the output and contraction dims, in hardware tiles (128 rows of M, 512 columns
/// of N, 128 rows of K). Zero means "choose": the largest block that fits SBUF.
struct MatmulTiling {
  int tilesInBlockM = 0;
  int tilesInBlockN = 0;
  int tilesInBlockK = 0;
};

/// out[M, N] = lhsT[K, M]^T @ rhs[K, N] (lhsT is A transposed, the layout TensorE wants for its
/// stationary operand). M and K must be multiples of 128 and N a multiple of 512.
/// Loads are double-buffered, PSUM tiles rotate over the banks, and partial sums over K blocks
/// are kept in fp32 in SBUF, so DMA, TensorE and VectorE overlap.
Status emitMatmul(isa::KernelBuilder& b, const isa::Tensor& lhsT, const isa::Tensor& rhs,
                  const isa::Tensor& out, MatmulTiling tiling = {});

/// A whole program: HBM inputs "lhsT" [K, M] and "rhs" [K, N], output "out" [M, N].
Expected<isa::Program> matmulProgram(const arch::ChipConfig& chip, int64_t m, int64_t k, int64_t n,
                                     numerics::DType inDtype = numerics::DType::kBF16,
                                     numerics::DType outDtype = numerics::DType::kBF16,
                                     MatmulTiling tiling = {});

}  // namespace trnsim::kernels
