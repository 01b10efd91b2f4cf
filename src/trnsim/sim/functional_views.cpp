// Operand views: an access pattern resolved to byte offsets in one memory (SBUF, PSUM, HBM),
// checked against it; gathers and scatters of raw bytes and of fp32 values with the written
// shadow; and the reads and writes the opcode handlers share.

#include <algorithm>
#include <cmath>
#include <cstring>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim::detail {

std::string View::elementString(int64_t idx) const {
  std::string s = fmt::format("[{}", F > 0 ? idx / F : 0);
  int64_t rem = F > 0 ? idx % F : 0;
  int64_t inner = F;
  for (int k = 0; k < nd; ++k) {
    inner /= std::max<int64_t>(apCount[size_t(k)], 1);
    s += fmt::format(", {}", inner > 0 ? rem / inner : 0);
    rem = inner > 0 ? rem % inner : 0;
  }
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// Gathers and scatters

void touch(const View& v) {
  if (v.numElements() <= 0) return;
  const uint64_t len = uint64_t(v.hi - v.lo);
  if (!v.onChip) {
    v.mem->touch(uint64_t(v.lo), len);
    return;
  }
  for (int64_t row = v.row0; row < v.row0 + int64_t(v.P); ++row)
    v.mem->touch(uint64_t(row * v.rowStride + v.lo), len);
}

namespace {

template <size_t kSize>
void copyStrided(std::byte* dst, int64_t dstStride, const std::byte* src, int64_t srcStride,
                 int64_t n) {
  for (int64_t j = 0; j < n; ++j) std::memcpy(dst + j * dstStride, src + j * srcStride, kSize);
}

void copyElems(std::byte* dst, int64_t dstStride, const std::byte* src, int64_t srcStride,
               int64_t n, int64_t esize) {
  if (dstStride == esize && srcStride == esize) {
    std::memcpy(dst, src, size_t(n * esize));
    return;
  }
  switch (esize) {
    case 1:
      copyStrided<1>(dst, dstStride, src, srcStride, n);
      return;
    case 2:
      copyStrided<2>(dst, dstStride, src, srcStride, n);
      return;
    case 4:
      copyStrided<4>(dst, dstStride, src, srcStride, n);
      return;
    default:
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(dst + j * dstStride, src + j * srcStride, size_t(esize));
  }
}

/// Marks written the `n` elements of `esize` bytes starting at byte `off`, `stride` bytes apart.
void markWritten(WrittenBits& w, int64_t off, int64_t n, int64_t stride, int64_t esize) {
  if (stride == esize) {
    w.set(uint64_t(off), uint64_t(n * esize));
    return;
  }
  for (int64_t j = 0; j < n; ++j) w.set(uint64_t(off + j * stride), uint64_t(esize));
}

}  // namespace

/// Raw element bytes of `v` in row-major order.
void gatherRaw(const View& v, std::byte* out) {
  const std::byte* mem = v.mem->data();
  isa::forEachRun(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    copyElems(out + idx * v.esize, v.esize, mem + off, s, n, v.esize);
    return true;
  });
}

/// Writes raw element bytes (row-major); elements whose mask byte is 0 are left alone.
void scatterRaw(const View& v, const std::byte* in, const uint8_t* mask) {
  std::byte* mem = v.mem->data();
  WrittenBits& w = v.mem->written;
  isa::forEachRun(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (mask == nullptr) {
      copyElems(mem + off, s, in + idx * v.esize, v.esize, n, v.esize);
      markWritten(w, off, n, s, v.esize);
    } else {
      for (int64_t j = 0; j < n; ++j) {
        if (mask[idx + j] == 0) continue;
        std::memcpy(mem + off + j * s, in + (idx + j) * v.esize, size_t(v.esize));
        w.set(uint64_t(off + j * s), uint64_t(v.esize));
      }
    }
    return true;
  });
}

void markWritten(const View& v) {
  isa::forEachRun(v, [&](int64_t, int64_t off, int64_t n, int64_t s) {
    markWritten(v.mem->written, off, n, s, v.esize);
    return true;
  });
}

/// Index of the first element of `v` with a byte nothing wrote, or nullopt.
std::optional<int64_t> firstUninitialized(const View& v) {
  const WrittenBits& w = v.mem->written;
  // The rows of on-chip memory lie far apart (192 KiB in SBUF), and so do their bits: ask for
  // the bits of the rows a few ahead, so that their cache misses overlap.
  constexpr int64_t kAhead = 32;
  auto prefetchRow = [&](int64_t p) {
    if (v.onChip && p < int64_t(v.P))
      w.prefetch(uint64_t((v.row0 + p) * v.rowStride + v.lo), uint64_t(v.hi - v.lo));
  };
  for (int64_t p = 0; p < kAhead; ++p) prefetchRow(p);
  std::optional<int64_t> found;
  isa::forEachRun(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (v.F > 0 && idx % v.F == 0) prefetchRow(idx / v.F + kAhead);
    if (s == v.esize) {
      const uint64_t len = uint64_t(n * v.esize);
      const uint64_t first = w.firstUnwritten(uint64_t(off), len);
      if (first != len) {
        found = idx + int64_t(first) / v.esize;
        return false;
      }
      return true;
    }
    for (int64_t j = 0; j < n; ++j)
      if (!w.allWritten(uint64_t(off + j * s), uint64_t(v.esize))) {
        found = idx + j;
        return false;
      }
    return true;
  });
  return found;
}

/// Per element: 1 when every byte of it was written.
std::vector<uint8_t> initializedFlags(const View& v) {
  std::vector<uint8_t> flags(size_t(v.numElements()), 1);
  const WrittenBits& w = v.mem->written;
  isa::forEachRun(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    for (int64_t j = 0; j < n; ++j)
      if (!w.allWritten(uint64_t(off + j * s), uint64_t(v.esize))) flags[size_t(idx + j)] = 0;
    return true;
  });
  return flags;
}

void gatherFloats(const View& v, float* out) {
  const std::byte* mem = v.mem->data();
  std::vector<std::byte> tmp;
  isa::forEachRun(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (s == v.esize) {
      numerics::convertToFloat(v.dtype, mem + off, out + idx, size_t(n));
    } else {
      tmp.resize(size_t(n * v.esize));
      copyElems(tmp.data(), v.esize, mem + off, s, n, v.esize);
      numerics::convertToFloat(v.dtype, tmp.data(), out + idx, size_t(n));
    }
    return true;
  });
}

void scatterFloats(const View& v, const float* in, numerics::Rounding r,
                   numerics::StochasticState* st) {
  std::byte* mem = v.mem->data();
  WrittenBits& w = v.mem->written;
  std::vector<std::byte> tmp;
  isa::forEachRun(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (s == v.esize) {
      numerics::convertFromFloat(v.dtype, in + idx, mem + off, size_t(n), r, st);
    } else {
      tmp.resize(size_t(n * v.esize));
      numerics::convertFromFloat(v.dtype, in + idx, tmp.data(), size_t(n), r, st);
      copyElems(mem + off, s, tmp.data(), v.esize, n, v.esize);
    }
    markWritten(w, off, n, s, v.esize);
    return true;
  });
}

/// Integer of element bytes: signed types sign-extended, others zero-extended (float types
/// give their bit pattern).
int64_t decodeBits(DType t, const std::byte* p) {
  switch (numerics::dtypeSize(t)) {
    case 1: {
      uint8_t v;
      std::memcpy(&v, p, 1);
      return numerics::isSigned(t) && isIntType(t) ? int64_t(int8_t(v)) : int64_t(v);
    }
    case 2: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return numerics::isSigned(t) && isIntType(t) ? int64_t(int16_t(v)) : int64_t(v);
    }
    default: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return numerics::isSigned(t) && isIntType(t) ? int64_t(int32_t(v)) : int64_t(v);
    }
  }
}

void encodeBits(DType t, int64_t v, std::byte* p) {
  switch (numerics::dtypeSize(t)) {
    case 1: {
      const uint8_t x = uint8_t(uint64_t(v));
      std::memcpy(p, &x, 1);
      return;
    }
    case 2: {
      const uint16_t x = uint16_t(uint64_t(v));
      std::memcpy(p, &x, 2);
      return;
    }
    default: {
      const uint32_t x = uint32_t(uint64_t(v));
      std::memcpy(p, &x, 4);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Operands of the instruction being executed

Expected<View> Exec::makeView(uint8_t slot) {
  const AccessPattern* ap = in_.operand(slot);
  const std::string_view slotName = slot < info_.numOperands ? info_.operands[slot].name : "?";
  if (ap == nullptr)
    return error(ErrorCode::kInvalidArgument, fmt::format("operand '{}' is missing", slotName));
  if (ap->tensor >= prog_.tensors.size())
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("operand '{}' names tensor {} of {}", slotName, ap->tensor,
                             prog_.tensors.size()));
  const TensorDecl& d = prog_.tensors[ap->tensor];
  for (int k = 0; k < std::min<int>(ap->numFree, isa::kMaxFreeDims); ++k)
    if (ap->free[size_t(k)].count < 0)
      return error(ErrorCode::kInvalidArgument,
                   fmt::format("operand '{}': negative count in free dim {}", slotName, k));
  const int64_t rowBytes = int64_t(impl_.rowBytes(d.space));
  View v;
  static_cast<isa::OperandLayout&>(v) = isa::operandLayout(d, *ap, rowBytes);
  v.decl = &d;
  v.slot = slotName;
  v.dtype = d.dtype;
  v.mem = &impl_.memoryFor(core_, d.space);
  auto oob = [&](const std::string& why) {
    return error(ErrorCode::kOutOfBounds,
                 fmt::format("{} is outside its memory: {}", describe(v), why));
  };
  if (v.onChip) {
    if (v.row0 + v.P > int64_t(impl_.config.mem.sbufPartitions))
      return oob(fmt::format("partitions {}..{} of {}", v.row0, v.row0 + v.P,
                             impl_.config.mem.sbufPartitions));
    if (v.numElements() > 0 && (v.lo < 0 || v.hi > rowBytes))
      return oob(fmt::format("bytes {}..{} of a {}-byte partition", v.lo, v.hi, rowBytes));
  } else if (v.numElements() > 0 && (v.lo < 0 || v.hi > int64_t(v.mem->size()))) {
    return oob(fmt::format("HBM bytes {}..{} of the {} bytes the programs declare", v.lo, v.hi,
                           v.mem->size()));
  }
  touch(v);
  return v;
}

Status Exec::checkInit(const View& v) const {
  if (!opts_.detectUninitialized || inputsChecked_) return {};
  if (auto bad = firstUninitialized(v))
    return error(ErrorCode::kUninitializedRead,
                 fmt::format("{} reads memory nothing wrote: element {} (flat index {} of {})",
                             describe(v), v.elementString(*bad), *bad, v.numElements()));
  return {};
}

Status Exec::readFloats(const View& v, std::vector<float>& out) const {
  TRNSIM_RETURN_IF_ERROR(checkInit(v));
  out.resize(size_t(v.numElements()));
  gatherFloats(v, out.data());
  return {};
}

Status Exec::readRaw(const View& v, std::vector<std::byte>& out) const {
  TRNSIM_RETURN_IF_ERROR(checkInit(v));
  out.resize(size_t(v.numElements() * v.esize));
  gatherRaw(v, out.data());
  return {};
}

Status Exec::readInts(const View& v, std::vector<int64_t>& out, bool bits) const {
  if (!bits && !isIntType(v.dtype)) {
    std::vector<float> f;
    TRNSIM_RETURN_IF_ERROR(readFloats(v, f));
    out.resize(f.size());
    for (size_t i = 0; i < f.size(); ++i)
      out[i] = std::isfinite(f[i]) ? int64_t(std::trunc(double(f[i]))) : 0;
    return {};
  }
  std::vector<std::byte> raw;
  TRNSIM_RETURN_IF_ERROR(readRaw(v, raw));
  out.resize(size_t(v.numElements()));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = decodeBits(v.dtype, raw.data() + int64_t(i) * v.esize);
  return {};
}

Status Exec::readNonzero(const View& v, std::vector<uint8_t>& out) const {
  out.resize(size_t(v.numElements()));
  if (isIntType(v.dtype)) {
    std::vector<int64_t> vals;
    TRNSIM_RETURN_IF_ERROR(readInts(v, vals, true));
    for (size_t i = 0; i < vals.size(); ++i) out[i] = vals[i] != 0;
  } else {
    std::vector<float> vals;
    TRNSIM_RETURN_IF_ERROR(readFloats(v, vals));
    for (size_t i = 0; i < vals.size(); ++i) out[i] = vals[i] != 0.0f;
  }
  return {};
}

void Exec::writeInts(const View& v, const std::vector<int64_t>& vals, uint8_t slot) const {
  if (isIntType(v.dtype)) {
    std::vector<std::byte> raw(vals.size() * size_t(v.esize));
    for (size_t i = 0; i < vals.size(); ++i)
      encodeBits(v.dtype, vals[i], raw.data() + int64_t(i) * v.esize);
    scatterRaw(v, raw.data());
    return;
  }
  std::vector<float> f(vals.size());
  for (size_t i = 0; i < vals.size(); ++i) f[i] = float(vals[i]);
  writeFloats(v, f, slot);
}

Status Exec::copyElements(const View& dst, const View& src, bool bitCopy, bool forceRne) {
  if (bitCopy) {
    std::vector<std::byte> raw;
    TRNSIM_RETURN_IF_ERROR(readRaw(src, raw));
    scatterRaw(dst, raw.data());
    return {};
  }
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(src, x));
  writeFloats(dst, x, 0, forceRne);
  return {};
}

Status Exec::scalarPerPartition(uint8_t slot, int immIndex, uint32_t P, std::vector<float>& out) {
  out.assign(P, immIndex >= 0 ? in_.imm[size_t(immIndex)] : 0.0f);
  if (!has(slot)) return {};
  const View& v = operand(slot);
  if (v.P != P && v.P != 1)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} has {} partitions; expected {} (one scalar per partition)",
                             describe(v), v.P, P));
  std::vector<float> vals;
  TRNSIM_RETURN_IF_ERROR(readFloats(v, vals));
  for (uint32_t p = 0; p < P; ++p) out[p] = vals[size_t((v.P == 1 ? 0 : p) * v.F)];
  return {};
}

Status Exec::writeReduce(uint8_t slot, AluOp op, const std::vector<float>& vals, uint32_t P,
                         int64_t F) {
  if (!has(slot)) return {};
  const View& r = operand(slot);
  if (r.P != P)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} has {} partitions; expected {}", describe(r), r.P, P));
  std::vector<float> red(size_t(r.numElements()), 0.0f);
  for (uint32_t p = 0; p < P; ++p) {
    float acc = F > 0 ? vals[size_t(p * F)] : 0.0f;
    for (int64_t f = 1; f < F; ++f) acc = aluF(op, acc, vals[size_t(p * F + f)]);
    for (int64_t j = 0; j < r.F; ++j) red[size_t(p * r.F + j)] = acc;
  }
  writeFloats(r, red, slot);
  return {};
}

}  // namespace trnsim::sim::detail
