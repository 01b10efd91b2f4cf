#include "trnsim/kernels/softmax.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {

using isa::Slice;
using numerics::DType;

Status emitSoftmax(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& out) {
  if (!x.valid() || !out.valid()) return b.status();
  if (x.shape().size() != 2 || x.shape() != out.shape())
    return Status(ErrorCode::kInvalidArgument, "softmax: x and out must be 2-D of equal shape");
  const int64_t rows = x.shape()[0], cols = x.shape()[1];
  const int64_t P = b.chip().mem.sbufPartitions;
  std::array<isa::Tensor, 2> xt, et, ot, negMax, sum, inv;
  for (int i = 0; i < 2; ++i) {
    xt[i] = detail::sbufTile(b, fmt::format("sm_x_{}", i), x.dtype(), {P, cols});
    et[i] = detail::sbufTile(b, fmt::format("sm_exp_{}", i), DType::kFP32, {P, cols});
    ot[i] = detail::sbufTile(b, fmt::format("sm_out_{}", i), out.dtype(), {P, cols});
    negMax[i] = detail::sbufTile(b, fmt::format("sm_negmax_{}", i), DType::kFP32, {P, 1});
    sum[i] = detail::sbufTile(b, fmt::format("sm_sum_{}", i), DType::kFP32, {P, 1});
    inv[i] = detail::sbufTile(b, fmt::format("sm_inv_{}", i), DType::kFP32, {P, 1});
  }
  if (!b.status().isOk()) return b.status();
  for (int64_t r0 = 0, tile = 0; r0 < rows; r0 += P, ++tile) {
    const int64_t p = std::min(P, rows - r0);
    const size_t i = size_t(tile % 2);
    const Slice part = Slice::range(0, p);
    (void)b.dmaCopy(xt[i]({part}), x({Slice::range(r0, r0 + p)}));
    (void)b.tensorReduce(negMax[i]({part}), isa::AluOp::kMax, xt[i]({part}), 1u, /*negate=*/true);
    (void)b.activation(et[i]({part}), isa::ActFunc::kExp, xt[i]({part}), negMax[i]({part}), 1.0f,
                       isa::AluOp::kAdd, sum[i]({part}));
    (void)b.reciprocal(inv[i]({part}), sum[i]({part}));
    (void)b.tensorScalar(ot[i]({part}), et[i]({part}), isa::AluOp::kMultiply, inv[i]({part}));
    (void)b.dmaCopy(out({Slice::range(r0, r0 + p)}), ot[i]({part}));
  }
  for (int i = 0; i < 2; ++i)
    for (auto* t : {&xt[i], &et[i], &ot[i], &negMax[i], &sum[i], &inv[i]}) b.release(*t);
  return b.status();
}

Expected<isa::Program> softmaxProgram(const arch::ChipConfig& chip, int64_t rows, int64_t cols,
                                      DType dtype) {
  isa::KernelBuilder b(chip, fmt::format("softmax_{}x{}", rows, cols));
  auto x = b.hbm("x", dtype, {rows, cols}, isa::TensorKind::kInput);
  auto out = b.hbm("out", dtype, {rows, cols}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitSoftmax(b, x, out));
  return b.finish();
}

}  // namespace trnsim::kernels
