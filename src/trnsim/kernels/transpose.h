#pragma once
// 2-D transpose and row/column reductions on one NeuronCore.

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// out[C, R] = x[R, C]^T, any R and C. Rows are loaded 512 at a time ([128, 4, C] in SBUF);
/// for each 128-column block, TensorE transposes the four 128 x 128 pieces into one PSUM bank
/// ([128 columns, 512 rows], fp32, exact), VectorE or ScalarE (alternating) copies the bank
/// to SBUF in out's dtype, and one DMA writes the [128, 512] block of out.
Status emitTranspose(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& out);

/// Reduction operators of emitReduce.
enum class ReduceOp { kSum, kMax };

/// out = reduce of x[R, C] over `axis`: axis 1 (along a row) gives out [R], axis 0 (down a
/// column) gives out [C]. Axis 1: one VectorE tensor_reduce per 128-row tile. Axis 0 (across
/// partitions): TensorE transposes 128 x 128 pieces four at a time into a PSUM bank, VectorE
/// reduces each bank along its free dim and folds the result into a running [128, 1] column.
/// Accumulation is in fp32.
Status emitReduce(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& out, ReduceOp op,
                  int axis);

/// Whole programs: HBM input "x" [rows, cols]; output "out" [cols, rows] (transpose) or
/// [rows] / [cols] (reduce over axis 1 / 0).
Expected<isa::Program> transposeProgram(const arch::ChipConfig& chip, int64_t rows, int64_t cols,
                                        numerics::DType dtype = numerics::DType::kBF16);
Expected<isa::Program> reduceProgram(const arch::ChipConfig& chip, int64_t rows, int64_t cols,
                                     ReduceOp op, int axis,
                                     numerics::DType inDtype = numerics::DType::kBF16,
                                     numerics::DType outDtype = numerics::DType::kFP32);

}  // namespace trnsim::kernels
