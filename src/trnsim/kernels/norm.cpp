#include "trnsim/kernels/norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {
namespace {

using isa::AluOp;
using isa::Slice;
using numerics::DType;

Status checkShapes(const char* kernel, const isa::Tensor& x, const isa::Tensor& out,
                   std::initializer_list<const isa::Tensor*> vectors) {
  if (x.shape().size() != 2 || x.shape() != out.shape())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{}: x and out must be 2-D [rows, hidden] of equal shape", kernel));
  for (const isa::Tensor* v : vectors) {
    if (v->shape().size() != 1 || v->shape()[0] != x.shape()[1])
      return Status(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' must be 1-D [hidden = {}]",
                                                             kernel, v->decl().name, x.shape()[1]));
  }
  return Status();
}

/// An HBM vector [hidden] read into every partition of an SBUF tile [P, hidden] with one DMA
/// (partition stride 0 on the HBM side).
isa::Tensor broadcastRows(isa::KernelBuilder& b, const isa::Tensor& v, const std::string& name,
                          DType dtype) {
  const int64_t P = b.chip().mem.sbufPartitions, n = v.shape()[0];
  isa::Tensor t = detail::sbufTile(b, name, dtype, {P, n});
  if (t.valid()) (void)b.dmaCopy(t.ap(), v.pattern({{0, P}, {1, n}}));
  return t;
}

Status capacityError(const char* kernel, int64_t hidden, DType dtype) {
  return Status(ErrorCode::kCapacity,
                fmt::format("{}: hidden size {} of {} does not fit the double-buffered row tiles "
                            "in SBUF; this kernel keeps whole rows on chip",
                            kernel, hidden, numerics::dtypeName(dtype)));
}

}  // namespace

Status emitRmsNorm(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& weight,
                   const isa::Tensor& out, float eps) {
  if (!x.valid() || !weight.valid() || !out.valid()) return b.status();
  TRNSIM_RETURN_IF_ERROR(checkShapes("rmsnorm", x, out, {&weight}));
  const int64_t rows = x.shape()[0], hidden = x.shape()[1];
  const int64_t P = b.chip().mem.sbufPartitions;
  const uint64_t rowBytes = uint64_t(hidden) * numerics::dtypeSize(x.dtype());
  const uint64_t outBytes = uint64_t(hidden) * numerics::dtypeSize(out.dtype());
  // Three buffers per stream where they fit: with two, the load of tile i+2 waits for the
  // whole ScalarE -> VectorE chain of tile i and DMA idles (1.4x slower at 8192x8192).
  const int bufs = 3 * (rowBytes + outBytes) + 2 * rowBytes + 1024 <= b.sbufFreeBytes() ? 3 : 2;
  if (2 * rowBytes + 2 * outBytes + 2 * rowBytes + 1024 > b.sbufFreeBytes())
    return capacityError("rmsnorm", hidden, x.dtype());

  isa::Tensor w = broadcastRows(b, weight, "rms_weight", x.dtype());
  // ScalarE's squares are only needed for their sum; one scratch tile serves every row tile.
  isa::Tensor sq = detail::sbufTile(b, "rms_squares", x.dtype(), {P, hidden});
  std::array<isa::Tensor, 3> xt, ot, ms, rstd;
  for (int i = 0; i < bufs; ++i) {
    xt[i] = detail::sbufTile(b, fmt::format("rms_x_{}", i), x.dtype(), {P, hidden});
    ot[i] = detail::sbufTile(b, fmt::format("rms_out_{}", i), out.dtype(), {P, hidden});
    ms[i] = detail::sbufTile(b, fmt::format("rms_meansq_{}", i), DType::kFP32, {P, 1});
    rstd[i] = detail::sbufTile(b, fmt::format("rms_rstd_{}", i), DType::kFP32, {P, 1});
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  // sum((x / sqrt(H))^2) = mean(x^2).
  const float invSqrtH = float(1.0 / std::sqrt(double(hidden)));
  for (int64_t r0 = 0, tile = 0; r0 < rows; r0 += P, ++tile) {
    const int64_t p = std::min(P, rows - r0);
    const size_t i = size_t(tile % bufs);
    const Slice part = Slice::range(0, p);
    (void)b.dmaCopy(xt[i]({part}), x({Slice::range(r0, r0 + p)}));
    (void)b.activation(sq({part}), isa::ActFunc::kSquare, xt[i]({part}), {}, invSqrtH, AluOp::kAdd,
                       ms[i]({part}));
    // rstd = (mean + eps) ^ -0.5
    (void)b.tensorScalar(rstd[i]({part}), ms[i]({part}), AluOp::kAdd, eps, AluOp::kPow, -0.5f);
    (void)b.scalarTensorTensor(ot[i]({part}), xt[i]({part}), AluOp::kMultiply, rstd[i]({part}),
                               AluOp::kMultiply, w({part}));
    (void)b.dmaCopy(out({Slice::range(r0, r0 + p)}), ot[i]({part}));
  }
  for (int i = 0; i < bufs; ++i)
    for (auto* t : {&xt[i], &ot[i], &ms[i], &rstd[i]}) b.release(*t);
  b.release(sq);
  b.release(w);
  return b.status();
}

Status emitLayerNorm(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& weight,
                     const isa::Tensor& bias, const isa::Tensor& out, float eps) {
  if (!x.valid() || !weight.valid() || !bias.valid() || !out.valid()) return b.status();
  TRNSIM_RETURN_IF_ERROR(checkShapes("layernorm", x, out, {&weight, &bias}));
  const int64_t rows = x.shape()[0], hidden = x.shape()[1];
  const int64_t P = b.chip().mem.sbufPartitions;
  const int64_t chunks = (hidden + 511) / 512;  // bn_stats_fmax
  const uint64_t rowBytes = uint64_t(hidden) * numerics::dtypeSize(x.dtype());
  const uint64_t outBytes = uint64_t(hidden) * numerics::dtypeSize(out.dtype());
  const uint64_t perBuf = 2 * rowBytes + outBytes + 24 * uint64_t(chunks) + 64;
  if (2 * rowBytes + 2 * perBuf + 1024 > b.sbufFreeBytes())
    return capacityError("layernorm", hidden, x.dtype());
  const int bufs = 2 * rowBytes + 3 * perBuf + 1024 <= b.sbufFreeBytes() ? 3 : 2;

  isa::Tensor w = broadcastRows(b, weight, "ln_weight", x.dtype());
  isa::Tensor bb = broadcastRows(b, bias, "ln_bias", x.dtype());
  std::array<isa::Tensor, 3> xt, xn, ot, stats, mv, rstd, nmr;
  for (int i = 0; i < bufs; ++i) {
    xt[i] = detail::sbufTile(b, fmt::format("ln_x_{}", i), x.dtype(), {P, hidden});
    xn[i] = detail::sbufTile(b, fmt::format("ln_norm_{}", i), x.dtype(), {P, hidden});
    ot[i] = detail::sbufTile(b, fmt::format("ln_out_{}", i), out.dtype(), {P, hidden});
    stats[i] = detail::sbufTile(b, fmt::format("ln_stats_{}", i), DType::kFP32, {P, 6 * chunks});
    mv[i] = detail::sbufTile(b, fmt::format("ln_meanvar_{}", i), DType::kFP32, {P, 2});
    rstd[i] = detail::sbufTile(b, fmt::format("ln_rstd_{}", i), DType::kFP32, {P, 1});
    nmr[i] = detail::sbufTile(b, fmt::format("ln_negmean_rstd_{}", i), DType::kFP32, {P, 1});
  }
  TRNSIM_RETURN_IF_ERROR(b.status());
  for (int64_t r0 = 0, tile = 0; r0 < rows; r0 += P, ++tile) {
    const int64_t p = std::min(P, rows - r0);
    const size_t i = size_t(tile % bufs);
    const Slice part = Slice::range(0, p);
    (void)b.dmaCopy(xt[i]({part}), x({Slice::range(r0, r0 + p)}));
    (void)b.bnStats(stats[i]({part}), xt[i]({part}));
    (void)b.bnAggr(mv[i]({part}), stats[i]({part}));
    const auto mean = mv[i]({part, Slice::range(0, 1)});
    const auto var = mv[i]({part, Slice::range(1, 2)});
    (void)b.tensorScalar(rstd[i]({part}), var, AluOp::kAdd, eps, AluOp::kPow, -0.5f);
    // nmr = (mean * -1) * rstd
    (void)b.tensorScalar(nmr[i]({part}), mean, AluOp::kMultiply, -1.0f, AluOp::kMultiply,
                         rstd[i]({part}));
    (void)b.activation(xn[i]({part}), isa::ActFunc::kIdentity, xt[i]({part}), nmr[i]({part}),
                       rstd[i]({part}));
    (void)b.tensorTensor(ot[i]({part}), xn[i]({part}), w({part}), AluOp::kMultiply);
    (void)b.tensorTensor(ot[i]({part}), ot[i]({part}), bb({part}), AluOp::kAdd,
                         arch::Engine::kGpSimd);
    (void)b.dmaCopy(out({Slice::range(r0, r0 + p)}), ot[i]({part}));
  }
  for (int i = 0; i < bufs; ++i)
    for (auto* t : {&xt[i], &xn[i], &ot[i], &stats[i], &mv[i], &rstd[i], &nmr[i]}) b.release(*t);
  b.release(bb);
  b.release(w);
  return b.status();
}

Expected<isa::Program> rmsNormProgram(const arch::ChipConfig& chip, int64_t rows, int64_t hidden,
                                      DType dtype, float eps) {
  isa::KernelBuilder b(chip, fmt::format("rmsnorm_{}x{}", rows, hidden));
  auto x = b.hbm("x", dtype, {rows, hidden}, isa::TensorKind::kInput);
  auto w = b.hbm("weight", dtype, {hidden}, isa::TensorKind::kInput);
  auto out = b.hbm("out", dtype, {rows, hidden}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitRmsNorm(b, x, w, out, eps));
  return b.finish();
}

Expected<isa::Program> layerNormProgram(const arch::ChipConfig& chip, int64_t rows, int64_t hidden,
                                        DType dtype, float eps) {
  isa::KernelBuilder b(chip, fmt::format("layernorm_{}x{}", rows, hidden));
  auto x = b.hbm("x", dtype, {rows, hidden}, isa::TensorKind::kInput);
  auto w = b.hbm("weight", dtype, {hidden}, isa::TensorKind::kInput);
  auto bias = b.hbm("bias", dtype, {hidden}, isa::TensorKind::kInput);
  auto out = b.hbm("out", dtype, {rows, hidden}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitLayerNorm(b, x, w, bias, out, eps));
  return b.finish();
}

}  // namespace trnsim::kernels
