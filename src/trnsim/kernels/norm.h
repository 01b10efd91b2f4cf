#pragma once
// Row normalisations on one NeuronCore: RMSNorm and LayerNorm over the last dim of [rows, hidden].

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight[:].
/// x, out: HBM [rows, hidden]; weight: HBM [hidden]. 128 rows per tile, loads and stores
/// double-buffered; ScalarE squares and sums each row (activation with reduce), VectorE turns
/// the sum into 1/rms and scales the row by it and by the weight (loaded once into all
/// partitions) in one scalar_tensor_tensor.
Status emitRmsNorm(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& weight,
                   const isa::Tensor& out, float eps);

/// out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * weight[:] + bias[:] (population variance).
/// VectorE computes mean and variance with bn_stats/bn_aggr, ScalarE normalises in one
/// activation (scale 1/std, bias -mean/std), VectorE multiplies by the weight and GpSimd adds
/// the bias.
Status emitLayerNorm(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& weight,
                     const isa::Tensor& bias, const isa::Tensor& out, float eps);

/// Whole programs: HBM inputs "x" [rows, hidden], "weight" [hidden] (and "bias" [hidden]),
/// output "out" [rows, hidden], all of `dtype`.
Expected<isa::Program> rmsNormProgram(const arch::ChipConfig& chip, int64_t rows, int64_t hidden,
                                      numerics::DType dtype = numerics::DType::kBF16,
                                      float eps = 1e-6f);
Expected<isa::Program> layerNormProgram(const arch::ChipConfig& chip, int64_t rows, int64_t hidden,
                                        numerics::DType dtype = numerics::DType::kBF16,
                                        float eps = 1e-5f);

}  // namespace trnsim::kernels
