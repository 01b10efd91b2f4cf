#include "trnsim/kernels/swiglu.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "trnsim/kernels/kernel_util.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/transpose.h"

namespace trnsim::kernels {

using isa::AluOp;
using isa::Slice;
using numerics::DType;

Status emitSwiGlu(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& wGate,
                  const isa::Tensor& wUp, const isa::Tensor& wDown, const isa::Tensor& out) {
  for (const isa::Tensor* t : {&x, &wGate, &wUp, &wDown, &out})
    if (!t->valid()) return b.status();
  for (const isa::Tensor* t : {&x, &wGate, &wUp, &wDown, &out})
    if (t->shape().size() != 2)
      return Status(ErrorCode::kInvalidArgument, "swiglu: every operand must be 2-D");
  const int64_t T = x.shape()[0], H = x.shape()[1], F = wGate.shape()[1];
  if (wGate.shape() != std::vector<int64_t>{H, F} || wUp.shape() != wGate.shape() ||
      wDown.shape() != std::vector<int64_t>{F, H} || out.shape() != x.shape())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("swiglu: expected x [T, H], w_gate and w_up [H, F], w_down [F, H], "
                              "out [T, H]; got x [{}, {}], w_gate [{}, {}]",
                              T, H, wGate.shape()[0], F));
  if (T % 512 != 0 || H % 512 != 0 || F % 128 != 0)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("swiglu: tokens {} and hidden {} must be multiples of 512 and ffn "
                              "{} of 128 (the matmul kernel's tiles); pad the operands",
                              T, H, F));
  auto xT = b.hbm(detail::uniqueName(b, "swiglu_xT"), x.dtype(), {H, T});
  auto gateT = b.hbm(detail::uniqueName(b, "swiglu_gateT"), DType::kFP32, {F, T});
  auto upT = b.hbm(detail::uniqueName(b, "swiglu_upT"), DType::kFP32, {F, T});
  auto hT = b.hbm(detail::uniqueName(b, "swiglu_hT"), wDown.dtype(), {F, T});
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitTranspose(b, x, xT));
  TRNSIM_RETURN_IF_ERROR(emitMatmul(b, wGate, xT, gateT));
  TRNSIM_RETURN_IF_ERROR(emitMatmul(b, wUp, xT, upT));

  // h^T = silu(gate^T) * up^T, 128 rows of F x up to 2048 tokens per tile.
  const int64_t P = b.chip().mem.sbufPartitions, cols = std::min<int64_t>(T, 2048);
  std::array<isa::Tensor, 2> g, u, s, h;
  for (int i = 0; i < 2; ++i) {
    g[size_t(i)] = detail::sbufTile(b, fmt::format("swiglu_g_{}", i), DType::kFP32, {P, cols});
    u[size_t(i)] = detail::sbufTile(b, fmt::format("swiglu_u_{}", i), DType::kFP32, {P, cols});
    s[size_t(i)] = detail::sbufTile(b, fmt::format("swiglu_silu_{}", i), DType::kFP32, {P, cols});
    h[size_t(i)] = detail::sbufTile(b, fmt::format("swiglu_h_{}", i), hT.dtype(), {P, cols});
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  int64_t step = 0;
  for (int64_t f0 = 0; f0 < F; f0 += P) {
    for (int64_t t0 = 0; t0 < T; t0 += cols, ++step) {
      const size_t i = size_t(step % 2);
      const auto rows = Slice::range(f0, f0 + P), tok = Slice::range(t0, t0 + cols);
      (void)b.dmaCopy(g[i].ap(), gateT({rows, tok}));
      (void)b.dmaCopy(u[i].ap(), upT({rows, tok}));
      (void)b.activation(s[i].ap(), isa::ActFunc::kSilu, g[i].ap());
      (void)b.tensorTensor(h[i].ap(), s[i].ap(), u[i].ap(), AluOp::kMultiply);
      (void)b.dmaCopy(hT({rows, tok}), h[i].ap());
    }
  }
  for (int i = 0; i < 2; ++i)
    for (auto* t : {&g[size_t(i)], &u[size_t(i)], &s[size_t(i)], &h[size_t(i)]}) b.release(*t);
  TRNSIM_RETURN_IF_ERROR(b.status());
  return emitMatmul(b, hT, wDown, out);
}

Expected<isa::Program> swigluProgram(const arch::ChipConfig& chip, int64_t tokens, int64_t hidden,
                                     int64_t ffn, DType outDtype) {
  isa::KernelBuilder b(chip, fmt::format("swiglu_{}x{}x{}", tokens, hidden, ffn));
  auto x = b.hbm("x", DType::kBF16, {tokens, hidden}, isa::TensorKind::kInput);
  auto wg = b.hbm("w_gate", DType::kBF16, {hidden, ffn}, isa::TensorKind::kInput);
  auto wu = b.hbm("w_up", DType::kBF16, {hidden, ffn}, isa::TensorKind::kInput);
  auto wd = b.hbm("w_down", DType::kBF16, {ffn, hidden}, isa::TensorKind::kInput);
  auto out = b.hbm("out", outDtype, {tokens, hidden}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitSwiGlu(b, x, wg, wu, wd, out));
  return b.finish();
}

}  // namespace trnsim::kernels
