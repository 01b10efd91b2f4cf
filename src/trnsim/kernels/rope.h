#pragma once
// Rotary position embedding (rotate-half convention) on one NeuronCore.

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// out[h, s, :D/2] = x1 * cos[s] - x2 * sin[s], out[h, s, D/2:] = x2 * cos[s] + x1 * sin[s]
/// with x1 = x[h, s, :D/2], x2 = x[h, s, D/2:]; x, out: HBM [H, S, D]; cos, sin: HBM
/// [S, D/2]. Positions go on partitions (128 per tile) with every head of the tile in one DMA
/// ([128, heads, D]); the tables are loaded once per tile and broadcast over the heads with a
/// stride-0 access pattern. VectorE computes the first half, GpSimd the second.
Status emitRope(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& cos,
                const isa::Tensor& sin, const isa::Tensor& out);

/// A whole program: HBM inputs "x" [heads, seq, headDim], "cos" and "sin" [seq, headDim/2]
/// (fp32), output "out" [heads, seq, headDim].
Expected<isa::Program> ropeProgram(const arch::ChipConfig& chip, int64_t heads, int64_t seq,
                                   int64_t headDim, numerics::DType dtype = numerics::DType::kBF16);

}  // namespace trnsim::kernels
