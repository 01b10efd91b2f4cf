#include "trnsim/kernels/transpose.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {
namespace {

using isa::AluOp;
using isa::Slice;
using numerics::DType;

constexpr int64_t kRowTilesPerBank = 4;  // 4 x 128 fp32 = one 2 KiB PSUM bank

/// Loads rows [r0, r0 + n) of x (n <= 512) into buf [128, 4, C]: row r0 + t*128 + p at [p, t].
void loadRowGroup(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& buf, int64_t r0,
                  int64_t n) {  // n <= buf.shape()[1] * 128
  const int64_t P = b.chip().mem.sbufPartitions;
  for (int64_t t = 0; t * P < n; ++t) {
    const int64_t p = std::min(P, n - t * P);
    (void)b.dmaCopy(buf({Slice::range(0, p), Slice::at(t)}),
                    x({Slice::range(r0 + t * P, r0 + t * P + p)}));
  }
}

/// Transposes the [n rows, w cols] piece at column c0 of a row group into ps [w, n] (fp32).
void transposeGroup(isa::KernelBuilder& b, const isa::Tensor& buf, const isa::Tensor& ps, int64_t n,
                    int64_t c0, int64_t w) {
  const int64_t P = b.chip().mem.sbufPartitions;
  for (int64_t t = 0; t * P < n; ++t) {
    const int64_t p = std::min(P, n - t * P);
    (void)b.ncTranspose(ps({Slice::range(0, w), Slice::range(t * P, t * P + p)}),
                        buf({Slice::range(0, p), Slice::at(t), Slice::range(c0, c0 + w)}));
  }
}

}  // namespace

Status emitTranspose(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& out) {
  if (!x.valid() || !out.valid()) return b.status();
  if (x.shape().size() != 2 || out.shape().size() != 2 || out.shape()[0] != x.shape()[1] ||
      out.shape()[1] != x.shape()[0])
    return Status(ErrorCode::kInvalidArgument, "transpose: x must be [R, C] and out [C, R]");
  const int64_t R = x.shape()[0], C = x.shape()[1];
  const int64_t P = b.chip().mem.sbufPartitions;
  const int64_t group = kRowTilesPerBank * P;
  if (2 * uint64_t(kRowTilesPerBank * C) * numerics::dtypeSize(x.dtype()) + 4096 >
      b.sbufFreeBytes())
    return Status(ErrorCode::kCapacity,
                  fmt::format("transpose: {} columns do not fit the row buffers in SBUF", C));
  std::array<isa::Tensor, 2> in;
  std::array<isa::Tensor, 3> ot;
  for (int i = 0; i < 2; ++i)
    in[i] = detail::sbufTile(b, fmt::format("tr_in_{}", i), x.dtype(), {P, kRowTilesPerBank, C});
  for (int i = 0; i < 3; ++i)
    ot[i] = detail::sbufTile(b, fmt::format("tr_out_{}", i), out.dtype(), {P, group});
  std::vector<isa::Tensor> ps;
  for (uint32_t i = 0; i < b.chip().mem.psumBanks; ++i)
    ps.push_back(detail::psumTile(b, fmt::format("tr_ps_{}", i), DType::kFP32, {P, group}));
  TRNSIM_RETURN_IF_ERROR(b.status());
  size_t next = 0;
  for (int64_t r0 = 0, g = 0; r0 < R; r0 += group, ++g) {
    const int64_t n = std::min(group, R - r0);
    const isa::Tensor& buf = in[size_t(g % 2)];
    loadRowGroup(b, x, buf, r0, n);
    for (int64_t c0 = 0; c0 < C; c0 += P, ++next) {
      const int64_t w = std::min(P, C - c0);
      const isa::Tensor& p = ps[next % ps.size()];
      const isa::Tensor& o = ot[next % ot.size()];
      transposeGroup(b, buf, p, n, c0, w);
      const auto src = p({Slice::range(0, w), Slice::range(0, n)});
      const auto dst = o({Slice::range(0, w), Slice::range(0, n)});
      (void)b.tensorCopy(dst, src, next % 2 ? arch::Engine::kScalar : arch::Engine::kVector);
      (void)b.dmaCopy(out({Slice::range(c0, c0 + w), Slice::range(r0, r0 + n)}), dst);
    }
  }
  for (auto& t : ps) b.release(t);
  for (auto& t : ot) b.release(t);
  for (auto& t : in) b.release(t);
  return b.status();
}

Status emitReduce(isa::KernelBuilder& b, const isa::Tensor& x, const isa::Tensor& out, ReduceOp op,
                  int axis) {
  if (!x.valid() || !out.valid()) return b.status();
  if (x.shape().size() != 2 || (axis != 0 && axis != 1))
    return Status(ErrorCode::kInvalidArgument, "reduce: x must be 2-D and axis 0 or 1");
  const int64_t R = x.shape()[0], C = x.shape()[1];
  const int64_t want = axis == 1 ? R : C;
  if (out.shape().size() != 1 || out.shape()[0] != want)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("reduce: out must be [{}] for axis {}", want, axis));
  const int64_t P = b.chip().mem.sbufPartitions;
  const AluOp alu = op == ReduceOp::kSum ? AluOp::kAdd : AluOp::kMax;
  const int64_t nTiles = ((axis == 1 ? R : C) + P - 1) / P;
  // Results: column t of res holds elements t*128 .. t*128+127 of out, one per partition.
  isa::Tensor res = detail::sbufTile(b, "red_result", DType::kFP32, {P, nTiles});
  if (axis == 1) {
    if (2 * uint64_t(C) * numerics::dtypeSize(x.dtype()) + 4096 > b.sbufFreeBytes())
      return Status(ErrorCode::kCapacity,
                    fmt::format("reduce: {} columns do not fit the row buffers in SBUF", C));
    std::array<isa::Tensor, 2> in;
    for (int i = 0; i < 2; ++i)
      in[i] = detail::sbufTile(b, fmt::format("red_in_{}", i), x.dtype(), {P, C});
    TRNSIM_RETURN_IF_ERROR(b.status());
    for (int64_t t = 0; t < nTiles; ++t) {
      const int64_t p = std::min(P, R - t * P);
      const isa::Tensor& buf = in[size_t(t % 2)];
      (void)b.dmaCopy(buf({Slice::range(0, p)}), x({Slice::range(t * P, t * P + p)}));
      (void)b.tensorReduce(res({Slice::range(0, p), Slice::range(t, t + 1)}), alu,
                           buf({Slice::range(0, p)}), 1u);
    }
    for (auto& t : in) b.release(t);
  } else {
    const int64_t group = kRowTilesPerBank * P;
    if (2 * uint64_t(kRowTilesPerBank * C) * numerics::dtypeSize(x.dtype()) + 4096 >
        b.sbufFreeBytes())
      return Status(ErrorCode::kCapacity,
                    fmt::format("reduce: {} columns do not fit the row buffers in SBUF", C));
    std::array<isa::Tensor, 2> in, part;
    for (int i = 0; i < 2; ++i) {
      in[i] = detail::sbufTile(b, fmt::format("red_in_{}", i), x.dtype(), {P, kRowTilesPerBank, C});
      part[i] = detail::sbufTile(b, fmt::format("red_part_{}", i), DType::kFP32, {P, 1});
    }
    std::vector<isa::Tensor> ps;
    for (uint32_t i = 0; i < b.chip().mem.psumBanks; ++i)
      ps.push_back(detail::psumTile(b, fmt::format("red_ps_{}", i), DType::kFP32, {P, group}));
    TRNSIM_RETURN_IF_ERROR(b.status());
    size_t next = 0;
    for (int64_t r0 = 0, g = 0; r0 < R; r0 += group, ++g) {
      const int64_t n = std::min(group, R - r0);
      const isa::Tensor& buf = in[size_t(g % 2)];
      loadRowGroup(b, x, buf, r0, n);
      for (int64_t j = 0; j < nTiles; ++j, ++next) {
        const int64_t c0 = j * P, w = std::min(P, C - c0);
        const isa::Tensor& p = ps[next % ps.size()];
        transposeGroup(b, buf, p, n, c0, w);
        const auto src = p({Slice::range(0, w), Slice::range(0, n)});
        const auto acc = res({Slice::range(0, w), Slice::range(j, j + 1)});
        if (r0 == 0) {
          (void)b.tensorReduce(acc, alu, src, 1u);
        } else {
          const auto pt = part[next % 2]({Slice::range(0, w)});
          (void)b.tensorReduce(pt, alu, src, 1u);
          (void)b.tensorTensor(acc, acc, pt, alu, arch::Engine::kGpSimd);
        }
      }
    }
    for (auto& t : ps) b.release(t);
    for (int i = 0; i < 2; ++i) {
      b.release(in[i]);
      b.release(part[i]);
    }
  }
  // out[t * 128 + p] = res[p, t]: full tiles in one strided DMA, the partial last one apart.
  const int64_t n = want, full = n / P;
  if (full > 0)
    (void)b.dmaCopy(out.pattern({{1, P}, {P, full}}), res({Slice::all(), Slice::range(0, full)}));
  if (n % P)
    (void)b.dmaCopy(out.pattern({{1, n % P}, {1, 1}}, full * P),
                    res({Slice::range(0, n % P), Slice::range(full, full + 1)}));
  b.release(res);
  return b.status();
}

Expected<isa::Program> transposeProgram(const arch::ChipConfig& chip, int64_t rows, int64_t cols,
                                        DType dtype) {
  isa::KernelBuilder b(chip, fmt::format("transpose_{}x{}", rows, cols));
  auto x = b.hbm("x", dtype, {rows, cols}, isa::TensorKind::kInput);
  auto out = b.hbm("out", dtype, {cols, rows}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitTranspose(b, x, out));
  return b.finish();
}

Expected<isa::Program> reduceProgram(const arch::ChipConfig& chip, int64_t rows, int64_t cols,
                                     ReduceOp op, int axis, DType inDtype, DType outDtype) {
  isa::KernelBuilder b(chip, fmt::format("reduce_{}_{}x{}_axis{}",
                                         op == ReduceOp::kSum ? "sum" : "max", rows, cols, axis));
  auto x = b.hbm("x", inDtype, {rows, cols}, isa::TensorKind::kInput);
  auto out = b.hbm("out", outDtype, {axis == 1 ? rows : cols}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitReduce(b, x, out, op, axis));
  return b.finish();
}

}  // namespace trnsim::kernels
