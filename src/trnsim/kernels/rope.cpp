#include "trnsim/kernels/rope.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {

using isa::AluOp;
using isa::Slice;
using numerics::DType;

Status emitRope(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& cos,
                const isa::Tensor& sin, const isa::Tensor& out) {
  if (!x.valid() || !cos.valid() || !sin.valid() || !out.valid()) return b.status();
  if (x.shape().size() != 3 || out.shape() != x.shape() || x.shape()[2] % 2 != 0)
    return Status(ErrorCode::kInvalidArgument,
                  "rope: x and out must be [heads, seq, headDim] with an even headDim");
  const int64_t H = x.shape()[0], S = x.shape()[1], D = x.shape()[2], half = D / 2;
  const std::vector<int64_t> table{S, half};
  if (cos.shape() != table || sin.shape() != table)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("rope: cos and sin must be [seq, headDim / 2] = [{}, {}]", S, half));
  const int64_t P = b.chip().mem.sbufPartitions;
  // Each partition takes kRun consecutive positions, so a head's slice of a tile is one
  // contiguous HBM run of kRun * D elements (>= 2 KiB for bf16 D = 128: full DMA efficiency);
  // a tail of fewer than 128 * kRun positions goes one position per partition.
  const int64_t kRun = std::max<int64_t>(1, std::min<int64_t>(8, S / P));
  // Heads per chunk: x, out and four fp32 half-width temporaries, double-buffered, in ~96 KiB.
  const uint64_t perHead =
      uint64_t(kRun * D) * (numerics::dtypeSize(x.dtype()) + numerics::dtypeSize(out.dtype()) + 8);
  const int64_t hc = std::clamp<int64_t>(int64_t(48 * 1024 / perHead), 1, H);
  std::array<isa::Tensor, 2> xt, ot, ct, st, t1, t2, t3, t4;
  for (int i = 0; i < 2; ++i) {
    xt[i] = detail::sbufTile(b, fmt::format("rope_x_{}", i), x.dtype(), {P, hc, kRun, D});
    ot[i] = detail::sbufTile(b, fmt::format("rope_out_{}", i), out.dtype(), {P, hc, kRun, D});
    ct[i] = detail::sbufTile(b, fmt::format("rope_cos_{}", i), DType::kFP32, {P, kRun, half});
    st[i] = detail::sbufTile(b, fmt::format("rope_sin_{}", i), DType::kFP32, {P, kRun, half});
    t1[i] = detail::sbufTile(b, fmt::format("rope_t1_{}", i), DType::kFP32, {P, hc, kRun, half});
    t2[i] = detail::sbufTile(b, fmt::format("rope_t2_{}", i), DType::kFP32, {P, hc, kRun, half});
    t3[i] = detail::sbufTile(b, fmt::format("rope_t3_{}", i), DType::kFP32, {P, hc, kRun, half});
    t4[i] = detail::sbufTile(b, fmt::format("rope_t4_{}", i), DType::kFP32, {P, hc, kRun, half});
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  int64_t step = 0;
  for (int64_t s0 = 0, tile = 0; s0 < S; ++tile) {
    const int64_t k = s0 + P * kRun <= S ? kRun : 1;
    const int64_t p = std::min(P, (S - s0) / k);
    const size_t ti = size_t(tile % 2);
    const auto part = Slice::range(0, p), ks = Slice::range(0, k);
    // Table rows s0 + q * k + j at [q, j].
    (void)b.dmaCopy(ct[ti]({part, ks}), cos.pattern({{k * half, p}, {1, k * half}}, s0 * half));
    (void)b.dmaCopy(st[ti]({part, ks}), sin.pattern({{k * half, p}, {1, k * half}}, s0 * half));
    for (int64_t h0 = 0; h0 < H; h0 += hc, ++step) {
      const int64_t n = std::min(hc, H - h0);
      const size_t i = size_t(step % 2);
      const auto hs = Slice::range(0, n);
      // [p, n heads, k positions x D] of a [H, S, D] tensor.
      auto rows = [&](const isa::Tensor& t) {
        return t.pattern({{k * D, p}, {S * D, n}, {1, k * D}}, (h0 * S + s0) * D);
      };
      auto halfOf = [&](const isa::Tensor& t, int64_t which) {
        return t({part, hs, ks, Slice::range(which * half, (which + 1) * half)});
      };
      // The table tile repeated over the n heads (stride 0).
      auto bcast = [&](const isa::Tensor& t) {
        return t.pattern({{1, p}, {0, n}, {half, k}, {1, half}});
      };
      auto tmp = [&](const isa::Tensor& t) { return t({part, hs, ks}); };
      (void)b.dmaCopy(xt[i]({part, hs, ks}), rows(x));
      const auto x1 = halfOf(xt[i], 0), x2 = halfOf(xt[i], 1);
      // VectorE (2 fp32 streams at 0.96 GHz x 2 elements) takes four of the six ops, GpSimd
      // (1 element per cycle at 1.2 GHz) two, which balances them.
      (void)b.tensorTensor(tmp(t1[i]), x1, bcast(ct[ti]), AluOp::kMultiply);
      (void)b.tensorTensor(tmp(t2[i]), x2, bcast(st[ti]), AluOp::kMultiply);
      (void)b.tensorTensor(tmp(t4[i]), x1, bcast(st[ti]), AluOp::kMultiply);
      (void)b.tensorTensor(tmp(t3[i]), x2, bcast(ct[ti]), AluOp::kMultiply, arch::Engine::kGpSimd);
      (void)b.tensorTensor(halfOf(ot[i], 0), tmp(t1[i]), tmp(t2[i]), AluOp::kSubtract);
      (void)b.tensorTensor(halfOf(ot[i], 1), tmp(t3[i]), tmp(t4[i]), AluOp::kAdd,
                           arch::Engine::kGpSimd);
      (void)b.dmaCopy(rows(out), ot[i]({part, hs, ks}));
    }
    s0 += p * k;
  }
  for (int i = 0; i < 2; ++i)
    for (auto* t : {&xt[i], &ot[i], &ct[i], &st[i], &t1[i], &t2[i], &t3[i], &t4[i]}) b.release(*t);
  return b.status();
}

Expected<isa::Program> ropeProgram(const arch::ChipConfig& chip, int64_t heads, int64_t seq,
                                   int64_t headDim, DType dtype) {
  isa::KernelBuilder b(chip, fmt::format("rope_{}x{}x{}", heads, seq, headDim));
  auto x = b.hbm("x", dtype, {heads, seq, headDim}, isa::TensorKind::kInput);
  auto cos = b.hbm("cos", DType::kFP32, {seq, headDim / 2}, isa::TensorKind::kInput);
  auto sin = b.hbm("sin", DType::kFP32, {seq, headDim / 2}, isa::TensorKind::kInput);
  auto out = b.hbm("out", dtype, {heads, seq, headDim}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitRope(b, x, cos, sin, out));
  return b.finish();
}

}  // namespace trnsim::kernels
