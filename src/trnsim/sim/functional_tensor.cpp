// TensorE: nc_matmul (through the fp32 GEMM kernel of functional_matmul.cpp) and
// nc_transpose; dma_transpose shares the transpose.

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
  std::vector<float> a, b;
  TRNSIM_RETURN_IF_ERROR(readFloats(st, a));
  TRNSIM_RETURN_IF_ERROR(readFloats(mv, b));
  if (doubleRow) {
    // Row r of partition k becomes contraction row r * P + k.
    auto regroup = [&](const std::vector<float>& src, int width) {
      std::vector<float> out(src.size());
      const int P = int(st.P);
      for (int k = 0; k < P; ++k)
        for (int r = 0; r < 2; ++r)
          std::memcpy(&out[size_t((r * P + k) * width)], &src[size_t(k * 2 * width + r * width)],
                      size_t(width) * sizeof(float));
      return out;
    };
    a = regroup(a, M);
    b = regroup(b, N);
  }
  std::vector<float> c(size_t(M) * size_t(N));
  // Products of two inputs with <= 12 significant bits are exact in fp32.
  auto narrow = [](DType t) {
    return t == DType::kBF16 || t == DType::kFP16 || t == DType::kFP8E4M3 || t == DType::kFP8E5M2;
  };
  detail::matmulF32(a.data(), b.data(), c.data(), K, M, N, in_.has(isa::kFlagIsTranspose),
                    narrow(st.dtype) && narrow(mv.dtype), opts_.threads);
  if (in_.has(isa::kFlagAccumulate)) {
    std::vector<float> old;
    TRNSIM_RETURN_IF_ERROR(readFloats(dst, old));
    for (size_t i = 0; i < c.size(); ++i) c[i] = old[i] + c[i];
  }
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
