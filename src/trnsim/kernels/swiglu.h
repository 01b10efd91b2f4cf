#pragma once
// SwiGLU MLP block on one NeuronCore: out = (silu(x Wg) * (x Wu)) Wd.

#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::kernels {

/// out[T, H] = (silu(x Wg) * (x Wu)) Wd with x [T, H], Wg and Wu [H, F], Wd [F, H] in HBM.
/// Built from the library's pieces: emitTranspose gives x^T; emitMatmul computes the
/// transposed projections gate^T = Wg^T x^T and up^T [F, T] (fp32, in HBM), so their product
/// h^T [F, T] is already the stationary layout the down projection needs; one pass (ScalarE
/// silu, VectorE multiply) writes h^T in bf16; emitMatmul(h^T, Wd) gives out.
/// T and H must be multiples of 512 and F of 128 (the matmul kernel's tiles).
Status emitSwiGlu(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& wGate,
                  const isa::Tensor& wUp, const isa::Tensor& wDown, const isa::Tensor& out);

/// A whole program: HBM inputs "x" [tokens, hidden], "w_gate", "w_up" [hidden, ffn],
/// "w_down" [ffn, hidden] (bf16), output "out" [tokens, hidden] of `outDtype`.
Expected<isa::Program> swigluProgram(const arch::ChipConfig& chip, int64_t tokens, int64_t hidden,
                                     int64_t ffn,
                                     numerics::DType outDtype = numerics::DType::kBF16);

}  // namespace trnsim::kernels
