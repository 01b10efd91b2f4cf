#pragma once
// Row softmax on one NeuronCore: out[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)).

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// Softmax over the last dim of x [R, C] into out [R, C], 128 rows per tile, loads and stores
/// double-buffered. VectorE finds the row max, ScalarE computes exp(x - max) and its row sum in
/// one activation, VectorE scales by the reciprocal.
Status emitSoftmax(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& out);

/// A whole program: HBM input "x" [rows, cols], output "out" [rows, cols].
Expected<isa::Program> softmaxProgram(const arch::ChipConfig& chip, int64_t rows, int64_t cols,
                                      numerics::DType dtype = numerics::DType::kBF16);

}  // namespace trnsim::kernels
