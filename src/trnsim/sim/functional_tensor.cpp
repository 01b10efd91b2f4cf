// TensorE: nc_matmul (through the fp32 GEMM kernel of functional_matmul.cpp) and
// nc_transpose; dma_transpose shares the transpose.

#include <cstdint>
#include <cstring>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim::detail {

Status Exec::matmul() {
  const View& dst = operand(0);
  const View& st = operand(1);
  const View& mv = operand(2);
  if (st.P != mv.P)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("stationary has {} partitions but moving has {}", st.P, mv.P));
  const bool doubleRow = in_.has(isa::kFlagDoubleRow);
  const int rowsPerPart = doubleRow ? 2 : 1;
  if (st.F % rowsPerPart != 0 || mv.F % rowsPerPart != 0)
    return error(ErrorCode::kInvalidArgument, "double_row needs even stationary/moving free sizes");
  const int K = int(st.P) * rowsPerPart;
  const int M = int(st.F / rowsPerPart);
  const int N = int(mv.F / rowsPerPart);
  if (int64_t(dst.P) != M || dst.F != N)
    return error(
        ErrorCode::kInvalidArgument,
        fmt::format("dst is [{} x {}] but stationary/moving give [{} x {}]", dst.P, dst.F, M, N));
  // Reads checked in the order the operands are read: stationary, moving, then the old PSUM.
  const bool accumulate = in_.has(isa::kFlagAccumulate);
  TRNSIM_RETURN_IF_ERROR(checkInit(st));
  TRNSIM_RETURN_IF_ERROR(checkInit(mv));
  if (accumulate) TRNSIM_RETURN_IF_ERROR(checkInit(dst));
  // Operands that are rows of contiguous elements are read in place (converted while the
  // kernel packs them); others are gathered into fp32 first.
  std::vector<float> a, b;
  MatmulInput ain, bin;
  if (!doubleRow && contiguousRows(st) && contiguousRows(mv)) {
    ain = {st.mem->data() + st.base, st.rowStride, st.dtype};
    bin = {mv.mem->data() + mv.base, mv.rowStride, mv.dtype};
  } else {
    a.resize(size_t(st.numElements()));
    b.resize(size_t(mv.numElements()));
    gatherFloats(st, a.data());
    gatherFloats(mv, b.data());
    if (doubleRow) {
      // Row r of partition k becomes contraction row r * P + k.
      auto regroup = [&](const std::vector<float>& src, int width) {
        std::vector<float> out(src.size());
        const int P = int(st.P);
        for (int k = 0; k < P; ++k)
          for (int r = 0; r < 2; ++r)
            std::memcpy(&out[size_t((r * P + k) * width)],
                        &src[size_t(k * 2 * width + r * width)], size_t(width) * sizeof(float));
        return out;
      };
      a = regroup(a, M);
      b = regroup(b, N);
    }
    ain = {reinterpret_cast<const std::byte*>(a.data()), int64_t(M) * 4, DType::kFP32};
    bin = {reinterpret_cast<const std::byte*>(b.data()), int64_t(N) * 4, DType::kFP32};
  }
  const bool skipZero = in_.has(isa::kFlagIsTranspose);
  // An fp32 dst of contiguous rows in another memory than the operands (PSUM, as the verifier
  // asks) takes the result in place: an fp32 write rounds nothing, so this is what
  // writeFloats would store.
  std::byte* dstRow0 = dst.mem->data() + dst.base;
  if (dst.dtype == DType::kFP32 && contiguousRows(dst) && dst.mem != st.mem && dst.mem != mv.mem &&
      dst.rowStride % 4 == 0 && reinterpret_cast<uintptr_t>(dstRow0) % alignof(float) == 0) {
    detail::matmulF32(ain, bin, reinterpret_cast<float*>(dstRow0), dst.rowStride / 4, K, M, N,
                      skipZero, accumulate, opts_.threads);
    markWritten(dst);
    return {};
  }
  std::vector<float> c(size_t(M) * size_t(N));
  if (accumulate) gatherFloats(dst, c.data());
  detail::matmulF32(ain, bin, c.data(), N, K, M, N, skipZero, accumulate, opts_.threads);
  writeFloats(dst, c, 0);
  return {};
}

Status Exec::transpose() {
  const View& dst = operand(0);
  const View& src = operand(1);
  if (int64_t(dst.P) != src.F || dst.F != int64_t(src.P))
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("dst is [{} x {}]; the transpose of [{} x {}] is [{} x {}]", dst.P,
                             dst.F, src.P, src.F, src.F, src.P));
  const int64_t P = src.P, F = src.F;
  const bool isDma = in_.opcode == Opcode::kDmaTranspose;
  if (dst.dtype == src.dtype) {
    std::vector<std::byte> raw, out;
    TRNSIM_RETURN_IF_ERROR(readRaw(src, raw));
    out.resize(raw.size());
    const int64_t e = src.esize;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t f = 0; f < F; ++f)
        std::memcpy(&out[size_t((f * P + p) * e)], &raw[size_t((p * F + f) * e)], size_t(e));
    scatterRaw(dst, out.data());
    return {};
  }
  std::vector<float> x, y;
  TRNSIM_RETURN_IF_ERROR(readFloats(src, x));
  y.resize(x.size());
  for (int64_t p = 0; p < P; ++p)
    for (int64_t f = 0; f < F; ++f) y[size_t(f * P + p)] = x[size_t(p * F + f)];
  writeFloats(dst, y, 0, isDma);
  return {};
}

}  // namespace trnsim::sim::detail
