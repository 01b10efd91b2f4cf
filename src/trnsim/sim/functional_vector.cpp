// VectorE: the elementwise ALU instructions, copies, scans and selects (most also run on
// ScalarE or GpSimd), the free-dim reductions, batch-norm statistics and the top-8 search.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim::detail {

Status Exec::tensorTensor() {
  const View& dst = operand(0);
  const View& a = operand(1);
  const View& b = operand(2);
  auto is32 = [](DType t) { return t == DType::kInt32 || t == DType::kUInt32; };
  const bool bitvec = detail::isBitvecOp(in_.alu0);
  if (bitvec ||
      (in_.engine == arch::Engine::kGpSimd && is32(dst.dtype) && is32(a.dtype) && is32(b.dtype))) {
    std::vector<int64_t> x, y;
    TRNSIM_RETURN_IF_ERROR(readInts(a, x, bitvec));
    TRNSIM_RETURN_IF_ERROR(readInts(b, y, bitvec));
    const int bits = typeBits(dst.dtype);
    for (size_t i = 0; i < x.size(); ++i) x[i] = detail::aluI(in_.alu0, x[i], y[i], bits);
    writeInts(dst, x, 0);
    return {};
  }
  std::vector<float> x, y;
  TRNSIM_RETURN_IF_ERROR(readFloats(a, x));
  TRNSIM_RETURN_IF_ERROR(readFloats(b, y));
  for (size_t i = 0; i < x.size(); ++i) x[i] = detail::aluF(in_.alu0, x[i], y[i]);
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::tensorScalar() {
  const View& dst = operand(0);
  const View& data = operand(1);
  const bool rev0 = in_.has(isa::kFlagReverse0), rev1 = in_.has(isa::kFlagReverse1);
  const int64_t F = data.F;
  if (detail::isBitvecOp(in_.alu0) || detail::isBitvecOp(in_.alu1)) {
    std::vector<int64_t> x;
    TRNSIM_RETURN_IF_ERROR(readInts(data, x, true));
    std::array<std::vector<int64_t>, 2> s;
    for (int k = 0; k < 2; ++k) {
      s[size_t(k)].assign(data.P, int64_t(in_.imm[size_t(k)]));
      if (has(uint8_t(2 + k))) {
        const View& sv = operand(uint8_t(2 + k));
        std::vector<int64_t> vals;
        TRNSIM_RETURN_IF_ERROR(readInts(sv, vals, true));
        for (uint32_t p = 0; p < data.P; ++p)
          s[size_t(k)][p] = vals[size_t((sv.P == 1 ? 0 : p) * sv.F)];
      }
    }
    const int bits = typeBits(dst.dtype);
    for (uint32_t p = 0; p < data.P; ++p)
      for (int64_t f = 0; f < F; ++f) {
        int64_t& v = x[size_t(p * F + f)];
        v = rev0 ? detail::aluI(in_.alu0, s[0][p], v, bits)
                 : detail::aluI(in_.alu0, v, s[0][p], bits);
        if (in_.alu1 != AluOp::kBypass)
          v = rev1 ? detail::aluI(in_.alu1, s[1][p], v, bits)
                   : detail::aluI(in_.alu1, v, s[1][p], bits);
      }
    writeInts(dst, x, 0);
    return {};
  }
  std::vector<float> x, s0, s1;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, 0, data.P, s0));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(3, 1, data.P, s1));
  for (uint32_t p = 0; p < data.P; ++p) {
    float* row = x.data() + int64_t(p) * F;
    for (int64_t f = 0; f < F; ++f) {
      float v =
          rev0 ? detail::aluF(in_.alu0, s0[p], row[f]) : detail::aluF(in_.alu0, row[f], s0[p]);
      if (in_.alu1 != AluOp::kBypass)
        v = rev1 ? detail::aluF(in_.alu1, s1[p], v) : detail::aluF(in_.alu1, v, s1[p]);
      row[f] = v;
    }
  }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::scalarTensorTensor() {
  const View& dst = operand(0);
  const View& data = operand(1);
  const View& data1 = operand(3);
  std::vector<float> x, y, s0;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(readFloats(data1, y));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, 0, data.P, s0));
  const int64_t F = data.F;
  for (uint32_t p = 0; p < data.P; ++p)
    for (int64_t f = 0; f < F; ++f) {
      const size_t i = size_t(p * F + f);
      x[i] = detail::aluF(in_.alu1, detail::aluF(in_.alu0, x[i], s0[p]), y[i]);
    }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::tensorReduce() {
  const View& dst = operand(0);
  const View& data = operand(1);
  if (dst.P != data.P)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("dst has {} partitions but data has {}", dst.P, data.P));
  const uint64_t mask = uint64_t(in_.iarg[0]);
  // Output strides of the kept dims (row-major over the kept dims in order).
  std::array<int64_t, 4> outStride{};
  int64_t outF = 1;
  for (int k = data.nd - 1; k >= 0; --k) {
    if ((mask >> k) & 1u) {
      outStride[size_t(k)] = 0;
    } else {
      outStride[size_t(k)] = outF;
      outF *= data.apCount[size_t(k)];
    }
  }
  if (dst.F != outF)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("dst has {} elements per partition; reducing axis mask {:#x} of {} "
                             "leaves {}",
                             dst.F, mask, describe(data), outF));
  const int64_t F = data.F;
  // Output index of each free element of data.
  std::vector<int64_t> outIndex(static_cast<size_t>(F));
  {
    std::array<int64_t, 4> idx{};
    for (int64_t f = 0; f < F; ++f) {
      int64_t o = 0;
      for (int k = 0; k < data.nd; ++k) o += idx[size_t(k)] * outStride[size_t(k)];
      outIndex[size_t(f)] = o;
      for (int k = data.nd - 1; k >= 0; --k) {
        if (++idx[size_t(k)] < data.apCount[size_t(k)]) break;
        idx[size_t(k)] = 0;
      }
    }
  }
  const bool negate = in_.has(isa::kFlagNegate);
  std::vector<uint8_t> seen(static_cast<size_t>(outF));
  if (detail::isBitvecOp(in_.alu0)) {
    std::vector<int64_t> x, out(size_t(dst.numElements()), 0);
    TRNSIM_RETURN_IF_ERROR(readInts(data, x, true));
    const int bits = typeBits(dst.dtype);
    for (uint32_t p = 0; p < data.P; ++p) {
      std::fill(seen.begin(), seen.end(), 0);
      for (int64_t f = 0; f < F; ++f) {
        int64_t& o = out[size_t(p * outF + outIndex[size_t(f)])];
        const int64_t v = x[size_t(p * F + f)];
        uint8_t& first = seen[size_t(outIndex[size_t(f)])];
        o = first ? detail::aluI(in_.alu0, o, v, bits) : v;
        first = 1;
      }
    }
    writeInts(dst, out, 0);
    return {};
  }
  std::vector<float> x, out(size_t(dst.numElements()), 0.0f);
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  for (uint32_t p = 0; p < data.P; ++p) {
    std::fill(seen.begin(), seen.end(), 0);
    for (int64_t f = 0; f < F; ++f) {
      float& o = out[size_t(p * outF + outIndex[size_t(f)])];
      const float v = x[size_t(p * F + f)];
      uint8_t& first = seen[size_t(outIndex[size_t(f)])];  // a flag: a counter would wrap
      o = first ? detail::aluF(in_.alu0, o, v) : v;
      first = 1;
    }
  }
  if (negate)
    for (float& v : out) v = -v;
  writeFloats(dst, out, 0);
  return {};
}

Status Exec::tensorCopy() {
  const View& dst = operand(0);
  const View& src = operand(1);
  // Vector and GpSimd copy equal dtypes bit for bit; ScalarE goes through fp32.
  return copyElements(dst, src, dst.dtype == src.dtype && in_.engine != arch::Engine::kScalar,
                      /*forceRne=*/false);
}

Status Exec::copyPredicated() {
  const View& dst = operand(0);
  const View& src = operand(1);
  const View& pred = operand(2);
  std::vector<uint8_t> mask;
  TRNSIM_RETURN_IF_ERROR(readNonzero(pred, mask));
  if (in_.has(isa::kFlagReversePred))
    for (uint8_t& m : mask) m = m ? 0 : 1;
  std::vector<std::byte> raw;
  if (dst.dtype == src.dtype) {
    TRNSIM_RETURN_IF_ERROR(readRaw(src, raw));
  } else {
    std::vector<float> x;
    TRNSIM_RETURN_IF_ERROR(readFloats(src, x));
    raw.resize(x.size() * size_t(dst.esize));
    auto st = stochastic(0);
    numerics::convertFromFloat(dst.dtype, x.data(), raw.data(), x.size(), opts_.rounding, &st);
  }
  scatterRaw(dst, raw.data(), mask.data());
  return {};
}

Status Exec::scan() {
  const View& dst = operand(0);
  const View& d0 = operand(1);
  const View& d1 = operand(2);
  std::vector<float> x, y, init;
  TRNSIM_RETURN_IF_ERROR(readFloats(d0, x));
  TRNSIM_RETURN_IF_ERROR(readFloats(d1, y));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(3, 0, d0.P, init));
  const int64_t F = d0.F;
  for (uint32_t p = 0; p < d0.P; ++p) {
    float r = init[p];
    for (int64_t f = 0; f < F; ++f) {
      const size_t i = size_t(p * F + f);
      r = detail::aluF(in_.alu1, detail::aluF(in_.alu0, x[i], r), y[i]);
      x[i] = r;
    }
  }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::memset() {
  const View& dst = operand(0);
  std::vector<float> x(size_t(dst.numElements()), in_.imm[0]);
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::rangeSelect() {
  const View& dst = operand(0);
  const View& onTrue = operand(1);
  std::vector<float> x, b0, b1;
  TRNSIM_RETURN_IF_ERROR(readFloats(onTrue, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, -1, dst.P, b0));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(3, -1, dst.P, b1));
  const int64_t F = dst.F;
  for (uint32_t p = 0; p < dst.P; ++p)
    for (int64_t f = 0; f < F; ++f) {
      const float i = float(f) + in_.imm[0];
      const bool keep =
          detail::aluF(in_.alu0, i, b0[p]) != 0.0f && detail::aluF(in_.alu1, i, b1[p]) != 0.0f;
      if (!keep) x[size_t(p * F + f)] = in_.imm[1];
    }
  writeFloats(dst, x, 0);
  const AluOp red = in_.reduceOp == AluOp::kBypass ? AluOp::kMax : in_.reduceOp;
  return writeReduce(4, red, x, dst.P, F);
}

Status Exec::selectReduce() {
  const View& dst = operand(0);
  const View& pred = operand(1);
  const View& onTrue = operand(2);
  std::vector<uint8_t> mask;
  TRNSIM_RETURN_IF_ERROR(readNonzero(pred, mask));
  if (in_.has(isa::kFlagReversePred))
    for (uint8_t& m : mask) m = m ? 0 : 1;
  std::vector<float> x, onFalse;
  TRNSIM_RETURN_IF_ERROR(readFloats(onTrue, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(3, 0, dst.P, onFalse));
  const int64_t F = dst.F;
  for (uint32_t p = 0; p < dst.P; ++p)
    for (int64_t f = 0; f < F; ++f)
      if (!mask[size_t(p * F + f)]) x[size_t(p * F + f)] = onFalse[p];
  writeFloats(dst, x, 0);
  const AluOp red = in_.reduceOp == AluOp::kBypass ? AluOp::kMax : in_.reduceOp;
  return writeReduce(4, red, x, dst.P, F);
}

constexpr int64_t kBnStatsFmax = 512;

Status Exec::bnStats() {
  const View& dst = operand(0);
  const View& data = operand(1);
  const int64_t F = data.F;
  const int64_t chunks = (F + kBnStatsFmax - 1) / kBnStatsFmax;
  if (dst.P != data.P || dst.F != 6 * chunks)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("dst is [{} x {}]; bn_stats of [{} x {}] gives [{} x {}]", dst.P,
                             dst.F, data.P, F, data.P, 6 * chunks));
  std::vector<float> x, out(size_t(dst.numElements()));
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  for (uint32_t p = 0; p < data.P; ++p)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t begin = c * kBnStatsFmax, end = std::min(F, begin + kBnStatsFmax);
      for (int parity = 0; parity < 2; ++parity) {
        // Two-pass mean and sum of squared deviations, accumulated in double.
        double sum = 0;
        int64_t n = 0;
        for (int64_t f = begin + parity; f < end; f += 2, ++n) sum += x[size_t(p * F + f)];
        const double mean = n > 0 ? sum / double(n) : 0.0;
        double m2 = 0;
        for (int64_t f = begin + parity; f < end; f += 2) {
          const double d = x[size_t(p * F + f)] - mean;
          m2 += d * d;
        }
        float* rec = &out[size_t(p * dst.F + c * 6 + parity * 3)];
        rec[0] = float(n);
        rec[1] = float(mean);
        rec[2] = float(m2);
      }
    }
  writeFloats(dst, out, 0);
  return {};
}

Status Exec::bnAggr() {
  const View& dst = operand(0);
  const View& data = operand(1);
  if (dst.P != data.P || dst.F != 2 || data.F % 3 != 0)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("bn_aggr needs data with a multiple of 3 elements per partition and "
                             "a [P x 2] dst; got data [{} x {}], dst [{} x {}]",
                             data.P, data.F, dst.P, dst.F));
  std::vector<float> x, out(size_t(dst.numElements()));
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  for (uint32_t p = 0; p < data.P; ++p) {
    const float* rec = &x[size_t(p * data.F)];
    double n = 0, sum = 0;
    for (int64_t t = 0; t < data.F / 3; ++t) {
      n += rec[t * 3];
      sum += double(rec[t * 3]) * rec[t * 3 + 1];
    }
    const double mean = n > 0 ? sum / n : 0.0;
    double m2 = 0;
    for (int64_t t = 0; t < data.F / 3; ++t) {
      const double d = double(rec[t * 3 + 1]) - mean;
      m2 += double(rec[t * 3 + 2]) + double(rec[t * 3]) * d * d;
    }
    out[size_t(p * 2)] = float(mean);
    out[size_t(p * 2 + 1)] = float(n > 0 ? m2 / n : 0.0);
  }
  writeFloats(dst, out, 0);
  return {};
}

Status Exec::reciprocal() {
  const View& dst = operand(0);
  const View& data = operand(1);
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  for (float& v : x) v = 1.0f / v;
  writeFloats(dst, x, 0);
  return {};
}

namespace {

/// Descending order with NaN above everything (numpy's sort puts NaN last).
bool greaterNanFirst(float a, float b) {
  if (std::isnan(a)) return !std::isnan(b);
  if (std::isnan(b)) return false;
  return a > b;
}

}  // namespace

Status Exec::max8() {
  const View& dst = operand(0);
  const View& data = operand(1);
  if (dst.P != data.P || dst.F != 8 || data.F < 8)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("max8 needs data with >= 8 elements per partition and a [P x 8] "
                             "dst; got data [{} x {}], dst [{} x {}]",
                             data.P, data.F, dst.P, dst.F));
  std::vector<float> x, out(size_t(dst.numElements()));
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  for (uint32_t p = 0; p < data.P; ++p) {
    auto first = x.begin() + int64_t(p) * data.F;
    std::partial_sort(first, first + 8, first + data.F, greaterNanFirst);
    std::copy(first, first + 8, out.begin() + int64_t(p) * 8);
  }
  writeFloats(dst, out, 0);
  return {};
}

constexpr int64_t kNotFound = 0xFFFFFFFFll;

Status Exec::findIndex8() {
  const View& dst = operand(0);
  const View& data = operand(1);
  const View& vals = operand(2);
  if (dst.P != data.P || vals.P != data.P || dst.F != 8 || vals.F != 8)
    return error(ErrorCode::kInvalidArgument, "nc_find_index8 needs [P x 8] vals and dst");
  std::vector<float> x, v;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(readFloats(vals, v));
  std::vector<int64_t> out(size_t(dst.numElements()));
  std::vector<uint8_t> claimed(size_t(data.F));
  for (uint32_t p = 0; p < data.P; ++p) {
    std::fill(claimed.begin(), claimed.end(), 0);
    const float* row = &x[size_t(p * data.F)];
    // Duplicate vals take successive occurrences, in ascending slot order.
    for (int j = 0; j < 8; ++j) {
      int64_t found = kNotFound;
      for (int64_t f = 0; f < data.F; ++f)
        if (!claimed[size_t(f)] && row[f] == v[size_t(p * 8 + j)]) {
          claimed[size_t(f)] = 1;
          found = f;
          break;
        }
      out[size_t(p * 8 + j)] = found;
    }
  }
  writeInts(dst, out, 0);
  return {};
}

Status Exec::matchReplace8() {
  const View& dst = operand(0);
  const View& data = operand(1);
  const View& vals = operand(2);
  if (vals.P != data.P || vals.F != 8)
    return error(ErrorCode::kInvalidArgument, "nc_match_replace8 needs [P x 8] vals");
  std::vector<float> x, v;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(readFloats(vals, v));
  std::vector<int64_t> idx(size_t(data.P) * 8, kNotFound);
  std::vector<uint8_t> claimed(size_t(data.F));
  for (uint32_t p = 0; p < data.P; ++p) {
    std::fill(claimed.begin(), claimed.end(), 0);
    float* row = &x[size_t(p * data.F)];
    // vals are processed from slot 7 down to 0 (the vendor's tie-break for duplicates).
    for (int j = 7; j >= 0; --j)
      for (int64_t f = 0; f < data.F; ++f)
        if (!claimed[size_t(f)] && row[f] == v[size_t(p * 8 + j)]) {
          claimed[size_t(f)] = 1;
          idx[size_t(p * 8 + j)] = f;
          break;
        }
    for (int64_t f = 0; f < data.F; ++f)
      if (claimed[size_t(f)]) row[f] = in_.imm[0];
  }
  writeFloats(dst, x, 0);
  if (has(3)) {
    const View& di = operand(3);
    if (di.P != data.P || di.F != 8)
      return error(ErrorCode::kInvalidArgument, "nc_match_replace8 needs a [P x 8] dst_idx");
    writeInts(di, idx, 3);
  }
  return {};
}

}  // namespace trnsim::sim::detail
