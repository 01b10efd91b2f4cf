// GpSimd: the cross-partition reduction, iota / affine_select and local_gather.

#include <algorithm>
#include <array>
#include <cstring>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim::detail {

Status Exec::partitionReduce() {
  const View& dst = operand(0);
  const View& data = operand(1);
  if (dst.numElements() != data.F)
    return error(
        ErrorCode::kInvalidArgument,
        fmt::format("dst has {} elements; data has {} per partition", dst.numElements(), data.F));
  const int64_t F = data.F;
  if (detail::isBitvecOp(in_.alu0)) {
    std::vector<int64_t> x;
    TRNSIM_RETURN_IF_ERROR(readInts(data, x, true));
    std::vector<int64_t> out(x.begin(), x.begin() + F);
    const int bits = typeBits(dst.dtype);
    for (uint32_t p = 1; p < data.P; ++p)
      for (int64_t f = 0; f < F; ++f)
        out[size_t(f)] = detail::aluI(in_.alu0, out[size_t(f)], x[size_t(p * F + f)], bits);
    writeInts(dst, out, 0);
    return {};
  }
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  std::vector<float> out(x.begin(), x.begin() + F);
  for (uint32_t p = 1; p < data.P; ++p)
    for (int64_t f = 0; f < F; ++f)
      out[size_t(f)] = detail::aluF(in_.alu0, out[size_t(f)], x[size_t(p * F + f)]);
  writeFloats(dst, out, 0);
  return {};
}

Status Exec::iota(bool select) {
  const View& dst = operand(0);
  // The affine value, in 32-bit integer arithmetic (wrapping), row-major over dst's dims.
  const int64_t offset = int64_t(in_.imm[0]);
  const int64_t mult = int64_t(in_.imm[1]);
  std::vector<int64_t> vals(size_t(dst.numElements()));
  {
    size_t i = 0;
    std::array<int64_t, 4> idx{};
    for (uint32_t p = 0; p < dst.P; ++p) {
      idx.fill(0);
      for (int64_t f = 0; f < dst.F; ++f) {
        int64_t v = offset + mult * int64_t(p);
        for (int k = 0; k < dst.nd; ++k) v += in_.iarg[size_t(k)] * idx[size_t(k)];
        vals[i++] = int64_t(int32_t(uint32_t(uint64_t(v))));
        for (int k = dst.nd - 1; k >= 0; --k) {
          if (++idx[size_t(k)] < dst.apCount[size_t(k)]) break;
          idx[size_t(k)] = 0;
        }
      }
    }
  }
  if (!select) {
    writeInts(dst, vals, 0);
    return {};
  }
  const View& onTrue = operand(1);
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(onTrue, x));
  for (size_t i = 0; i < x.size(); ++i)
    if (detail::aluI(in_.alu0, vals[i], 0, 32) == 0) x[i] = in_.imm[2];
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::localGather() {
  const View& dst = operand(0);
  const View& src = operand(1);
  const View& index = operand(2);
  constexpr int64_t kGroup = 16;
  if (src.P != dst.P || index.P != dst.P)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("local_gather needs dst, src and index on the same partitions; got "
                             "{}, {}, {}",
                             dst.P, src.P, index.P));
  if (dst.dtype != src.dtype)
    return error(ErrorCode::kInvalidArgument,
                 "local_gather cannot cast: dst and src dtypes differ");
  const int64_t perIdx = in_.iarg[0] > 0 ? in_.iarg[0] : 1;
  const int64_t valid = in_.iarg[1] > 0 ? in_.iarg[1] : index.F;
  if (valid > index.F || valid * perIdx > dst.F)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("local_gather: {} indices of {} elements need {} index slots (have "
                             "{}) and {} dst elements per partition (have {})",
                             valid, perIdx, valid, index.F, valid * perIdx, dst.F));
  std::vector<int64_t> idx;
  TRNSIM_RETURN_IF_ERROR(readInts(index, idx, false));
  std::vector<std::byte> raw(size_t(src.numElements() * src.esize));
  gatherRaw(src, raw.data());
  std::vector<uint8_t> init =
      opts_.detectUninitialized ? initializedFlags(src) : std::vector<uint8_t>();
  // dst keeps its elements beyond valid * perIdx: start from its current bytes.
  const int64_t e = src.esize;
  std::vector<std::byte> out(size_t(dst.numElements() * e));
  gatherRaw(dst, out.data());
  std::vector<uint8_t> mask(size_t(dst.numElements()), 0);
  for (int64_t p = 0; p < int64_t(dst.P); ++p) {
    // The group's free data, flattened partition by partition.
    const int64_t g0 = p / kGroup * kGroup;
    const int64_t groupElems = std::min<int64_t>(kGroup, int64_t(src.P) - g0) * src.F;
    for (int64_t j = 0; j < valid; ++j) {
      const int64_t block = idx[size_t(p * index.F + j)];
      const int64_t start = block * perIdx;
      if (block < 0 || start + perIdx > groupElems)
        return error(ErrorCode::kOutOfBounds,
                     fmt::format("local_gather index {} (partition {}, slot {}) reads elements "
                                 "{}..{} of the {} elements of its 16-partition group of {}",
                                 block, p, j, start, start + perIdx, groupElems, describe(src)));
      for (int64_t k = 0; k < perIdx; ++k) {
        const int64_t s = g0 * src.F + start + k;  // flat element of src (row-major [P, F])
        if (!init.empty() && !init[size_t(s)])
          return error(ErrorCode::kUninitializedRead,
                       fmt::format("{} reads memory nothing wrote: element {} (flat index {})",
                                   describe(src), src.elementString(s), s));
        const int64_t d = p * dst.F + j * perIdx + k;
        std::memcpy(&out[size_t(d * e)], &raw[size_t(s * e)], size_t(e));
        mask[size_t(d)] = 1;
      }
    }
  }
  scatterRaw(dst, out.data(), mask.data());
  return {};
}

}  // namespace trnsim::sim::detail
