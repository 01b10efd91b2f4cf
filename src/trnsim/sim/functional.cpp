// Functional execution of NeuronCore programs: memories, operand access, and the value
// semantics of every opcode. Rules and choices are written down in docs/sim.md.

#include "trnsim/sim/functional.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional_math.h"
#include "trnsim/support/random.h"

namespace trnsim::sim {

using isa::AccessPattern;
using isa::AluOp;
using isa::Instruction;
using isa::MemSpace;
using isa::Opcode;
using isa::Program;
using isa::TensorDecl;
using numerics::DType;

// ---------------------------------------------------------------------------------------------
// Memory and RNG

void Memory::allocate(uint64_t size) {
  bytes.assign(size, std::byte{0xFF});
  written.assign(size, 0);
}

namespace {

using support::splitmix64;

/// MemAvailable of /proc/meminfo in bytes; 0 where it cannot be read (then only the
/// allocation itself can fail).
uint64_t hostMemoryAvailable() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) == 0)
      return std::strtoull(line.c_str() + 13, nullptr, 10) * 1024;
  }
  return 0;
}

uint64_t mixSeed(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b * 0xD6E8FEB86659FD93ull);
  return splitmix64(x);
}

}  // namespace

uint32_t RngState::next() {
  // Marsaglia's xorwow: five xorshift words and a Weyl counter.
  uint32_t t = words[4];
  const uint32_t s = words[0];
  words[4] = words[3];
  words[3] = words[2];
  words[2] = words[1];
  words[1] = s;
  t ^= t >> 2;
  t ^= t << 1;
  t ^= s ^ (s << 4);
  words[0] = t;
  words[5] += 362437u;
  return t + words[5];
}

RngState RngState::fromSeed(uint64_t seed) {
  RngState st;
  uint64_t x = seed;
  for (int i = 0; i < 6; i += 2) {
    const uint64_t z = splitmix64(x);
    st.words[i] = uint32_t(z);
    st.words[i + 1] = uint32_t(z >> 32);
  }
  if ((st.words[0] | st.words[1] | st.words[2] | st.words[3] | st.words[4]) == 0) st.words[0] = 1;
  return st;
}

uint64_t hbmExtentBytes(std::span<const Program> programs) {
  uint64_t extent = 0;
  for (const Program& p : programs)
    for (const TensorDecl& t : p.tensors)
      if (t.space == MemSpace::kHbm)
        extent = std::max(extent, t.byteOffset + uint64_t(std::max<int64_t>(t.numElements(), 0)) *
                                                     numerics::dtypeSize(t.dtype));
  return extent;
}

// ---------------------------------------------------------------------------------------------
// State

namespace {

struct CoreState {
  Memory sbuf, psum;
  /// RNG lanes per engine, created from the run's seed on first use.
  std::array<std::vector<RngState>, arch::kNumEngines> rng;
};

}  // namespace

struct FunctionalChip::Impl {
  arch::ChipConfig config;
  uint64_t hbmBytes = 0;
  Memory hbm;
  std::vector<CoreState> cores;
  uint64_t runSeed = 0;

  /// Allocates the HBM image before anything touches it, refusing with a clear error (naming
  /// the largest HBM tensors of `programs`) when the host cannot hold it: a byte of simulated
  /// HBM costs two bytes of host memory (the value and its written-shadow byte).
  Status reserveHbm(std::span<const Program> programs) {
    if (hbm.allocated() || hbmBytes == 0) return {};
    const uint64_t need = 2 * hbmBytes;
    const uint64_t available = hostMemoryAvailable();
    std::string failure;
    if (available != 0 && need > available) {
      failure = fmt::format(
          "needs {:.2f} GB of host memory and this machine has {:.2f} GB "
          "available",
          double(need) / 1e9, double(available) / 1e9);
    } else {
      try {
        hbm.allocate(hbmBytes);
        return {};
      } catch (const std::bad_alloc&) {
        failure = fmt::format("needs {:.2f} GB of host memory and allocating it failed",
                              double(need) / 1e9);
      }
    }
    std::vector<std::pair<uint64_t, std::string>> sizes;
    for (const Program& p : programs)
      for (const auto& t : p.tensors)
        if (t.space == MemSpace::kHbm) sizes.emplace_back(t.bytesPerPartition(), t.name);
    std::sort(sizes.begin(), sizes.end(), std::greater<>());
    std::string largest;
    for (size_t i = 0; i < std::min<size_t>(3, sizes.size()); ++i)
      largest += fmt::format("{}'{}' {:.2f} GB", i ? ", " : "", sizes[i].second,
                             double(sizes[i].first) / 1e9);
    return Status(ErrorCode::kCapacity,
                  fmt::format("simulating the values of {:.2f} GB of HBM tensors (largest: {}) {} "
                              "(2 bytes per simulated byte); run timing-only, which touches no "
                              "memory, or use smaller tensors",
                              double(hbmBytes) / 1e9, largest, failure));
  }

  Memory& memoryFor(uint32_t core, MemSpace space) {
    CoreState& c = cores[core];
    switch (space) {
      case MemSpace::kSbuf:
        if (!c.sbuf.allocated()) c.sbuf.allocate(config.mem.sbufBytesPerCore());
        return c.sbuf;
      case MemSpace::kPsum:
        if (!c.psum.allocated()) c.psum.allocate(config.mem.psumBytesPerCore());
        return c.psum;
      case MemSpace::kHbm:
        break;
    }
    if (!hbm.allocated() && hbmBytes > 0) hbm.allocate(hbmBytes);
    return hbm;
  }
  uint64_t rowBytes(MemSpace space) const {
    return space == MemSpace::kSbuf ? config.mem.sbufBytesPerPartition
                                    : config.psumBytesPerPartition();
  }
  RngState& rngLane(uint32_t core, arch::Engine engine, uint32_t lane) {
    auto& lanes = cores[core].rng[size_t(engine)];
    if (lanes.empty()) {
      lanes.resize(config.mem.sbufPartitions);
      for (uint32_t p = 0; p < lanes.size(); ++p)
        lanes[p] =
            RngState::fromSeed(mixSeed(mixSeed(runSeed, core), (uint64_t(engine) << 32) | p));
    }
    return lanes[std::min<size_t>(lane, lanes.size() - 1)];
  }
};

FunctionalChip::FunctionalChip(const arch::ChipConfig& config, uint64_t hbmBytes)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->hbmBytes = hbmBytes;
  impl_->cores.resize(std::max<uint32_t>(config.coresPerChip, 1));
}

FunctionalChip::~FunctionalChip() = default;

uint64_t FunctionalChip::allocatedBytes() const {
  uint64_t n = impl_->hbm.size() * 2;
  for (const CoreState& c : impl_->cores) n += (c.sbuf.size() + c.psum.size()) * 2;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Operand views: an access pattern resolved to byte offsets in one memory.

namespace {

struct View {
  Memory* mem = nullptr;
  const TensorDecl* decl = nullptr;
  std::string_view slot;
  DType dtype = DType::kFP32;
  int64_t esize = 4;
  int64_t base = 0;       ///< byte offset of element (0, 0, ...)
  int64_t rowStride = 0;  ///< bytes between consecutive partitions (rows)
  uint32_t P = 0;
  int nd = 0;                                  ///< free dims as given in the access pattern
  std::array<int64_t, 4> apCount{1, 1, 1, 1};  ///< the access pattern's free counts
  // Normalised loop nest: 4 dims, the innermost last (padded with count 1 at the front).
  std::array<int64_t, 4> count{1, 1, 1, 1};
  std::array<int64_t, 4> stride{0, 0, 0, 0};  ///< bytes
  int64_t F = 1;
  // Bounding box for overlap checks: rows [row0, row0 + P) and bytes [lo, hi) inside a row
  // (on-chip), or one row of flat bytes (HBM).
  bool onChip = false;
  int64_t row0 = 0;
  int64_t lo = 0, hi = 0;

  int64_t numElements() const { return int64_t(P) * F; }
  /// "[p, i0, i1]" for element `idx` (row-major over the access pattern).
  std::string elementString(int64_t idx) const {
    std::string s = fmt::format("[{}", F > 0 ? idx / F : 0);
    int64_t rem = F > 0 ? idx % F : 0;
    int64_t inner = F;
    for (int k = 0; k < nd; ++k) {
      inner /= std::max<int64_t>(apCount[k], 1);
      s += fmt::format(", {}", inner > 0 ? rem / inner : 0);
      rem = inner > 0 ? rem % inner : 0;
    }
    return s + "]";
  }
};

bool sameLayout(const View& a, const View& b) {
  if (a.mem != b.mem || a.base != b.base || a.P != b.P || a.esize != b.esize || a.F != b.F)
    return false;
  if (a.P > 1 && a.rowStride != b.rowStride) return false;
  // Compare the dims that actually iterate.
  std::vector<std::pair<int64_t, int64_t>> da, db;
  for (int k = 0; k < 4; ++k) {
    if (a.count[k] > 1) da.emplace_back(a.count[k], a.stride[k]);
    if (b.count[k] > 1) db.emplace_back(b.count[k], b.stride[k]);
  }
  return da == db;
}

/// Calls fn(elementIndex, byteOffset, runLength, runStrideBytes) for each innermost run, in
/// row-major order. fn returns false to stop.
template <class Fn>
void forRuns(const View& v, Fn&& fn) {
  int64_t idx = 0;
  const int64_t n = v.count[3];
  const int64_t s = v.stride[3];
  for (uint32_t p = 0; p < v.P; ++p) {
    const int64_t rowBase = v.base + int64_t(p) * v.rowStride;
    for (int64_t a = 0; a < v.count[0]; ++a)
      for (int64_t b = 0; b < v.count[1]; ++b)
        for (int64_t c = 0; c < v.count[2]; ++c) {
          const int64_t off = rowBase + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
          if (!fn(idx, off, n, s)) return;
          idx += n;
        }
  }
}

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

/// Raw element bytes of `v` in row-major order.
void gatherRaw(const View& v, std::byte* out) {
  const std::byte* mem = v.mem->bytes.data();
  forRuns(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    copyElems(out + idx * v.esize, v.esize, mem + off, s, n, v.esize);
    return true;
  });
}

/// Writes raw element bytes (row-major); elements whose mask byte is 0 are left alone.
void scatterRaw(const View& v, const std::byte* in, const uint8_t* mask = nullptr) {
  std::byte* mem = v.mem->bytes.data();
  uint8_t* w = v.mem->written.data();
  forRuns(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (mask == nullptr) {
      copyElems(mem + off, s, in + idx * v.esize, v.esize, n, v.esize);
      if (s == v.esize) {
        std::memset(w + off, 1, size_t(n * v.esize));
      } else {
        for (int64_t j = 0; j < n; ++j) std::memset(w + off + j * s, 1, size_t(v.esize));
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        if (mask[idx + j] == 0) continue;
        std::memcpy(mem + off + j * s, in + (idx + j) * v.esize, size_t(v.esize));
        std::memset(w + off + j * s, 1, size_t(v.esize));
      }
    }
    return true;
  });
}

/// Index of the first element of `v` with a byte nothing wrote, or nullopt.
std::optional<int64_t> firstUninitialized(const View& v) {
  const uint8_t* w = v.mem->written.data();
  std::optional<int64_t> found;
  forRuns(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (s == v.esize) {
      const void* z = std::memchr(w + off, 0, size_t(n * v.esize));
      if (z != nullptr) {
        found = idx + (static_cast<const uint8_t*>(z) - (w + off)) / v.esize;
        return false;
      }
      return true;
    }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t b = 0; b < v.esize; ++b)
        if (w[off + j * s + b] == 0) {
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
  const uint8_t* w = v.mem->written.data();
  forRuns(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t b = 0; b < v.esize; ++b)
        if (w[off + j * s + b] == 0) flags[size_t(idx + j)] = 0;
    return true;
  });
  return flags;
}

void gatherFloats(const View& v, float* out) {
  const std::byte* mem = v.mem->bytes.data();
  std::vector<std::byte> tmp;
  forRuns(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
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
  std::byte* mem = v.mem->bytes.data();
  uint8_t* w = v.mem->written.data();
  std::vector<std::byte> tmp;
  forRuns(v, [&](int64_t idx, int64_t off, int64_t n, int64_t s) {
    if (s == v.esize) {
      numerics::convertFromFloat(v.dtype, in + idx, mem + off, size_t(n), r, st);
      std::memset(w + off, 1, size_t(n * v.esize));
    } else {
      tmp.resize(size_t(n * v.esize));
      numerics::convertFromFloat(v.dtype, in + idx, tmp.data(), size_t(n), r, st);
      copyElems(mem + off, s, tmp.data(), v.esize, n, v.esize);
      for (int64_t j = 0; j < n; ++j) std::memset(w + off + j * s, 1, size_t(v.esize));
    }
    return true;
  });
}

bool isIntType(DType t) { return !numerics::isFloat(t); }
int typeBits(DType t) { return int(numerics::dtypeSize(t) * 8); }

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

/// Which read operands are paired element by element with dst (slot 0), so that identical
/// in-place operands are well defined. Bit i = slot i.
uint32_t elementwiseSlots(const Instruction& in) {
  switch (in.opcode) {
    case Opcode::kActivation:
      return 1u << 1;
    case Opcode::kTensorTensor:
      return (1u << 1) | (1u << 2);
    case Opcode::kTensorScalar:
      return 1u << 1;
    case Opcode::kScalarTensorTensor:
      return (1u << 1) | (1u << 3);
    case Opcode::kTensorCopy:
      return 1u << 1;
    case Opcode::kTensorCopyPredicated:
      return (1u << 1) | (1u << 2);
    case Opcode::kTensorTensorScan:
      return (1u << 1) | (1u << 2);
    case Opcode::kAffineSelect:
      return 1u << 1;
    case Opcode::kRangeSelect:
      return 1u << 1;
    case Opcode::kSelectReduce:
      return (1u << 1) | (1u << 2);
    case Opcode::kReciprocal:
      return 1u << 1;
    case Opcode::kDropout:
      return 1u << 1;
    case Opcode::kNcMatchReplace8:
      return 1u << 1;
    case Opcode::kAllReduce:
    case Opcode::kCollectivePermute:
    case Opcode::kSendRecv:
      return 1u << 1;
    case Opcode::kDmaCopy:
      return (in.flags & (isa::kFlagIndirectSrc | isa::kFlagIndirectDst)) ? 0u : (1u << 1);
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Execution of one instruction

class Exec {
 public:
  Exec(FunctionalChip::Impl& impl, const Program& program, uint32_t core, size_t index,
       const RunOptions& opts, bool multiCore)
      : impl_(impl),
        prog_(program),
        in_(program.instructions[index]),
        info_(isa::opInfo(in_.opcode)),
        core_(core),
        index_(index),
        opts_(opts),
        multiCore_(multiCore) {}

  Status run();
  /// Operand `slot` as raw bytes (row-major over the pattern); checks initialization.
  Status readOperandBytes(uint8_t slot, std::vector<std::byte>& out);
  /// Operand `slot` as a span of its memory when it is one contiguous run (else empty).
  Status operandSpan(uint8_t slot, std::span<const std::byte>& out);
  /// Raw bytes (row-major over the pattern) into operand `slot`.
  Status writeOperandBytes(uint8_t slot, std::span<const std::byte> data);

 private:
  // ---- errors ----
  std::string where() const {
    std::string ctx = prog_.instructionContext(index_);
    return multiCore_ ? fmt::format("core {} {}", core_, ctx) : ctx;
  }
  Status error(ErrorCode code, std::string message) const {
    return {code, std::move(message), where()};
  }
  std::string describe(const View& v) const {
    return fmt::format("operand '{}' (tensor '{}')", v.slot,
                       v.decl != nullptr ? v.decl->name : "?");
  }

  // ---- operands ----
  bool has(uint8_t slot) const { return in_.operand(slot) != nullptr; }
  Expected<View> view(uint8_t slot);
  Status checkInit(const View& v) const;
  Status readFloats(const View& v, std::vector<float>& out) const;
  Status readInts(const View& v, std::vector<int64_t>& out, bool bits) const;
  Status readRaw(const View& v, std::vector<std::byte>& out) const;
  Status readNonzero(const View& v, std::vector<uint8_t>& out) const;
  /// Per-partition scalar: the [P,1] tile in `slot` if present, else imm[immIndex].
  Status scalarPerPartition(uint8_t slot, int immIndex, uint32_t P, std::vector<float>& out);
  numerics::StochasticState stochastic(uint8_t slot) const {
    return {mixSeed(opts_.seed, 0x5EEDull + core_), (uint64_t(index_) * 16 + slot) << 32};
  }
  void writeFloats(const View& v, const std::vector<float>& vals, uint8_t slot,
                   bool forceRne = false) const {
    auto st = stochastic(slot);
    scatterFloats(v, vals.data(), forceRne ? numerics::Rounding::kNearestEven : opts_.rounding,
                  &st);
  }
  void writeInts(const View& v, const std::vector<int64_t>& vals, uint8_t slot) const;
  Status expectShape(const View& a, const View& b) const {
    if (a.P != b.P || a.F != b.F)
      return error(ErrorCode::kInvalidArgument,
                   fmt::format("{} is [{} partitions x {}] but {} is [{} x {}]", describe(a), a.P,
                               a.F, describe(b), b.P, b.F));
    return {};
  }
  Status checkOverlaps();
  RngState& lane(const View& v, uint32_t p) {
    return impl_.rngLane(core_, in_.engine, uint32_t(v.row0) + p);
  }

  // ---- opcodes ----
  Status matmul();
  Status transpose();
  Status activation();
  Status tensorTensor();
  Status tensorScalar();
  Status scalarTensorTensor();
  Status tensorReduce();
  Status partitionReduce();
  Status tensorCopy();
  Status copyPredicated();
  Status scan();
  Status memset();
  Status iota(bool select);
  Status rangeSelect();
  Status selectReduce();
  Status bnStats();
  Status bnAggr();
  Status reciprocal();
  Status max8();
  Status findIndex8();
  Status matchReplace8();
  Status localGather();
  Status dropout();
  Status rng();
  Status rand2();
  Status setSeed();
  Status setState();
  Status getState();
  Status dmaCopy();
  Status dmaIndirect();
  Status collectiveAlone();
  Status writeReduce(uint8_t slot, AluOp op, const std::vector<float>& vals, uint32_t P, int64_t F);

  FunctionalChip::Impl& impl_;
  const Program& prog_;
  const Instruction& in_;
  const isa::OpInfo& info_;
  uint32_t core_;
  size_t index_;
  const RunOptions& opts_;
  bool multiCore_;
};

Expected<View> Exec::view(uint8_t slot) {
  const AccessPattern* ap = in_.operand(slot);
  const std::string_view slotName = slot < info_.numOperands ? info_.operands[slot].name : "?";
  if (ap == nullptr)
    return error(ErrorCode::kInvalidArgument, fmt::format("operand '{}' is missing", slotName));
  if (ap->tensor >= prog_.tensors.size())
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("operand '{}' names tensor {} of {}", slotName, ap->tensor,
                             prog_.tensors.size()));
  const TensorDecl& d = prog_.tensors[ap->tensor];
  View v;
  v.decl = &d;
  v.slot = slotName;
  v.dtype = d.dtype;
  v.esize = int64_t(numerics::dtypeSize(d.dtype));
  v.P = ap->partitions;
  v.nd = std::min<int>(ap->numFree, isa::kMaxFreeDims);
  v.onChip = d.onChip();
  v.F = 1;
  for (int k = 0; k < v.nd; ++k) {
    if (ap->free[k].count < 0)
      return error(ErrorCode::kInvalidArgument,
                   fmt::format("operand '{}': negative count in free dim {}", slotName, k));
    v.apCount[k] = ap->free[k].count;
    v.count[4 - v.nd + k] = ap->free[k].count;
    v.stride[4 - v.nd + k] = ap->free[k].stride * v.esize;
    v.F *= ap->free[k].count;
  }
  if (v.nd == 0) v.stride[3] = v.esize;
  v.mem = &impl_.memoryFor(core_, d.space);
  // Byte extent of one row relative to the element (p, 0...).
  int64_t lo = 0, hi = 0;
  for (int k = 0; k < 4; ++k) {
    if (v.count[k] <= 0) continue;
    const int64_t span = (v.count[k] - 1) * v.stride[k];
    lo += std::min<int64_t>(span, 0);
    hi += std::max<int64_t>(span, 0);
  }
  auto oob = [&](const std::string& why) {
    return error(ErrorCode::kOutOfBounds,
                 fmt::format("{} is outside its memory: {}", describe(v), why));
  };
  if (v.onChip) {
    const int64_t rowBytes = int64_t(impl_.rowBytes(d.space));
    v.row0 = int64_t(d.partitionStart) + ap->partitionOffset;
    if (v.row0 + v.P > int64_t(impl_.config.mem.sbufPartitions))
      return oob(fmt::format("partitions {}..{} of {}", v.row0, v.row0 + v.P,
                             impl_.config.mem.sbufPartitions));
    const int64_t start = int64_t(d.byteOffset) + ap->offset * v.esize;
    v.lo = start + lo;
    v.hi = start + hi + v.esize;
    if (v.numElements() > 0 && (v.lo < 0 || v.hi > rowBytes))
      return oob(fmt::format("bytes {}..{} of a {}-byte partition", v.lo, v.hi, rowBytes));
    v.base = v.row0 * rowBytes + start;
    v.rowStride = rowBytes;
  } else {
    v.row0 = 0;
    v.base = int64_t(d.byteOffset) + ap->offset * v.esize;
    v.rowStride = ap->partitionStride * v.esize;
    const int64_t pspan = v.P > 0 ? int64_t(v.P - 1) * v.rowStride : 0;
    v.lo = v.base + lo + std::min<int64_t>(pspan, 0);
    v.hi = v.base + hi + std::max<int64_t>(pspan, 0) + v.esize;
    if (v.numElements() > 0 && (v.lo < 0 || v.hi > int64_t(v.mem->size())))
      return oob(fmt::format("HBM bytes {}..{} of the {} bytes the programs declare", v.lo, v.hi,
                             v.mem->size()));
  }
  return v;
}

Status Exec::checkInit(const View& v) const {
  if (!opts_.detectUninitialized) return {};
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

Status Exec::scalarPerPartition(uint8_t slot, int immIndex, uint32_t P, std::vector<float>& out) {
  out.assign(P, immIndex >= 0 ? in_.imm[size_t(immIndex)] : 0.0f);
  if (!has(slot)) return {};
  TRNSIM_ASSIGN_OR_RETURN(View v, view(slot));
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
  TRNSIM_ASSIGN_OR_RETURN(View r, view(slot));
  if (r.P != P)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} has {} partitions; expected {}", describe(r), r.P, P));
  std::vector<float> red(size_t(r.numElements()), 0.0f);
  for (uint32_t p = 0; p < P; ++p) {
    float acc = F > 0 ? vals[size_t(p * F)] : 0.0f;
    for (int64_t f = 1; f < F; ++f) acc = detail::aluF(op, acc, vals[size_t(p * F + f)]);
    for (int64_t j = 0; j < r.F; ++j) red[size_t(p * r.F + j)] = acc;
  }
  writeFloats(r, red, slot);
  return {};
}

Status Exec::checkOverlaps() {
  const uint32_t ew = elementwiseSlots(in_);
  std::vector<std::pair<uint8_t, View>> writes, reads;
  for (const auto& op : in_.operands) {
    if (op.slot >= info_.numOperands) continue;
    const isa::Access acc = info_.operands[op.slot].access;
    TRNSIM_ASSIGN_OR_RETURN(View v, view(op.slot));
    if (v.numElements() == 0) continue;
    if (acc == isa::Access::kWrite || acc == isa::Access::kReadWrite)
      writes.emplace_back(op.slot, v);
    if (acc == isa::Access::kRead) reads.emplace_back(op.slot, v);
  }
  for (const auto& writeEntry : writes) {
    // Named references, not structured bindings: lambdas below capture them (C++20 allows
    // capturing bindings, clang 14 does not).
    const uint8_t ws = writeEntry.first;
    const View& w = writeEntry.second;
    for (const auto& readEntry : reads) {
      const uint8_t rs = readEntry.first;
      const View& r = readEntry.second;
      if (w.mem != r.mem) continue;
      const int64_t rowA0 = w.onChip ? w.row0 : 0, rowA1 = w.onChip ? w.row0 + w.P : 1;
      const int64_t rowB0 = r.onChip ? r.row0 : 0, rowB1 = r.onChip ? r.row0 + r.P : 1;
      const int64_t row0 = std::max(rowA0, rowB0), row1 = std::min(rowA1, rowB1);
      const int64_t lo = std::max(w.lo, r.lo), hi = std::min(w.hi, r.hi);
      if (row0 >= row1 || lo >= hi) continue;  // bounding boxes are disjoint
      if (ws == 0 && (ew & (1u << rs)) != 0 && sameLayout(w, r)) continue;  // in place
      // Exact check over the intersection of the boxes: a byte map of what w touches.
      const int64_t width = hi - lo;
      std::vector<uint8_t> map(size_t((row1 - row0) * width), 0);
      auto mapIndex = [&](const View& v, int64_t off) -> int64_t {
        const int64_t row = v.onChip ? off / v.rowStride : 0;
        const int64_t col = v.onChip ? off % v.rowStride : off;
        if (row < row0 || row >= row1 || col < lo || col >= hi) return -1;
        return (row - row0) * width + (col - lo);
      };
      forRuns(w, [&](int64_t, int64_t off, int64_t n, int64_t s) {
        for (int64_t j = 0; j < n; ++j)
          for (int64_t b = 0; b < w.esize; ++b)
            if (int64_t i = mapIndex(w, off + j * s + b); i >= 0) map[size_t(i)] = 1;
        return true;
      });
      bool clash = false;
      forRuns(r, [&](int64_t, int64_t off, int64_t n, int64_t s) {
        for (int64_t j = 0; j < n && !clash; ++j)
          for (int64_t b = 0; b < r.esize; ++b)
            if (int64_t i = mapIndex(r, off + j * s + b); i >= 0 && map[size_t(i)] != 0) {
              clash = true;
              break;
            }
        return !clash;
      });
      if (clash)
        return error(ErrorCode::kVerify,
                     fmt::format("{} overlaps {}: the result would be undefined (only an "
                                 "identical, element-for-element in-place operand is allowed, "
                                 "and only for elementwise instructions)",
                                 describe(w), describe(r)));
    }
  }
  return {};
}

// ---- opcodes ---------------------------------------------------------------------------------

Status Exec::matmul() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View st, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View mv, view(2));
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
                    narrow(st.dtype) && narrow(mv.dtype));
  if (in_.has(isa::kFlagAccumulate)) {
    std::vector<float> old;
    TRNSIM_RETURN_IF_ERROR(readFloats(dst, old));
    for (size_t i = 0; i < c.size(); ++i) c[i] = old[i] + c[i];
  }
  writeFloats(dst, c, 0);
  return {};
}

Status Exec::transpose() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View src, view(1));
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

Status Exec::activation() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data));
  std::vector<float> x, bias, scale;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, -1, data.P, bias));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(3, 0, data.P, scale));
  const int64_t F = data.F;
  for (uint32_t p = 0; p < data.P; ++p) {
    const float s = scale[p], b = bias[p];
    float* row = x.data() + int64_t(p) * F;
    for (int64_t f = 0; f < F; ++f) row[f] = detail::activate(in_.act, row[f] * s + b);
  }
  writeFloats(dst, x, 0);
  if (in_.reduceOp != AluOp::kBypass)
    TRNSIM_RETURN_IF_ERROR(writeReduce(4, in_.reduceOp, x, data.P, F));
  return {};
}

Status Exec::tensorTensor() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View a, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View b, view(2));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, a));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, b));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data));
  const bool rev0 = in_.has(isa::kFlagReverse0), rev1 = in_.has(isa::kFlagReverse1);
  const int64_t F = data.F;
  if (detail::isBitvecOp(in_.alu0) || detail::isBitvecOp(in_.alu1)) {
    std::vector<int64_t> x;
    TRNSIM_RETURN_IF_ERROR(readInts(data, x, true));
    std::array<std::vector<int64_t>, 2> s;
    for (int k = 0; k < 2; ++k) {
      s[size_t(k)].assign(data.P, int64_t(in_.imm[size_t(k)]));
      if (has(uint8_t(2 + k))) {
        TRNSIM_ASSIGN_OR_RETURN(View sv, view(uint8_t(2 + k)));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View data1, view(3));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data1));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
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

Status Exec::partitionReduce() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
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

Status Exec::tensorCopy() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View src, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, src));
  if (dst.dtype == src.dtype && in_.engine != arch::Engine::kScalar) {
    std::vector<std::byte> raw;
    TRNSIM_RETURN_IF_ERROR(readRaw(src, raw));
    scatterRaw(dst, raw.data());
    return {};
  }
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(src, x));
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::copyPredicated() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View src, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View pred, view(2));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, src));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, pred));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View d0, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View d1, view(2));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, d0));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, d1));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  std::vector<float> x(size_t(dst.numElements()), in_.imm[0]);
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::iota(bool select) {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
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
  TRNSIM_ASSIGN_OR_RETURN(View onTrue, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, onTrue));
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(onTrue, x));
  for (size_t i = 0; i < x.size(); ++i)
    if (detail::aluI(in_.alu0, vals[i], 0, 32) == 0) x[i] = in_.imm[2];
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::rangeSelect() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View onTrue, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, onTrue));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View pred, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View onTrue, view(2));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, pred));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, onTrue));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data));
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  for (float& v : x) v = 1.0f / v;
  writeFloats(dst, x, 0);
  return {};
}

/// Descending order with NaN above everything (numpy's sort puts NaN last).
bool greaterNanFirst(float a, float b) {
  if (std::isnan(a)) return !std::isnan(b);
  if (std::isnan(b)) return false;
  return a > b;
}

Status Exec::max8() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View vals, view(2));
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
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View vals, view(2));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data));
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
    TRNSIM_ASSIGN_OR_RETURN(View di, view(3));
    if (di.P != data.P || di.F != 8)
      return error(ErrorCode::kInvalidArgument, "nc_match_replace8 needs a [P x 8] dst_idx");
    writeInts(di, idx, 3);
  }
  return {};
}

Status Exec::localGather() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View src, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View index, view(2));
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

/// Uniform float in [0, 1) from 24 random bits.
float uniform01(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

Status Exec::dropout() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View data, view(1));
  TRNSIM_RETURN_IF_ERROR(expectShape(dst, data));
  std::vector<float> x, prob;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, 0, data.P, prob));
  for (uint32_t p = 0; p < data.P; ++p) {
    RngState& r = lane(dst, p);
    for (int64_t f = 0; f < data.F; ++f)
      if (uniform01(r.next()) < prob[p]) x[size_t(p * data.F + f)] = 0.0f;
  }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::rng() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  std::vector<int64_t> vals(size_t(dst.numElements()));
  for (uint32_t p = 0; p < dst.P; ++p) {
    RngState& r = lane(dst, p);
    for (int64_t f = 0; f < dst.F; ++f) vals[size_t(p * dst.F + f)] = r.next();
  }
  // The low bits of each 32-bit draw, as the element's bit pattern (any dtype).
  std::vector<std::byte> raw(vals.size() * size_t(dst.esize));
  for (size_t i = 0; i < vals.size(); ++i)
    encodeBits(dst.dtype, vals[i], raw.data() + int64_t(i) * dst.esize);
  scatterRaw(dst, raw.data());
  return {};
}

Status Exec::rand2() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  std::vector<float> lo, hi, x(size_t(dst.numElements()));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(1, 0, dst.P, lo));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, 1, dst.P, hi));
  for (uint32_t p = 0; p < dst.P; ++p) {
    RngState& r = lane(dst, p);
    for (int64_t f = 0; f < dst.F; ++f)
      x[size_t(p * dst.F + f)] = lo[p] + uniform01(r.next()) * (hi[p] - lo[p]);
  }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::setSeed() {
  TRNSIM_ASSIGN_OR_RETURN(View seeds, view(0));
  std::vector<int64_t> s;
  TRNSIM_RETURN_IF_ERROR(readInts(seeds, s, true));
  for (uint32_t p = 0; p < seeds.P; ++p)
    lane(seeds, p) = RngState::fromSeed(uint64_t(uint32_t(s[size_t(p * seeds.F)])));
  return {};
}

Status Exec::setState() {
  TRNSIM_ASSIGN_OR_RETURN(View src, view(0));
  if (src.F < 6)
    return error(
        ErrorCode::kInvalidArgument,
        fmt::format("{} has {} elements per partition; the RNG state has 6", describe(src), src.F));
  std::vector<int64_t> s;
  TRNSIM_RETURN_IF_ERROR(readInts(src, s, true));
  for (uint32_t p = 0; p < src.P; ++p) {
    RngState& r = lane(src, p);
    for (int k = 0; k < 6; ++k) r.words[size_t(k)] = uint32_t(s[size_t(p * src.F + k)]);
  }
  return {};
}

Status Exec::getState() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  if (dst.F < 6)
    return error(
        ErrorCode::kInvalidArgument,
        fmt::format("{} has {} elements per partition; the RNG state has 6", describe(dst), dst.F));
  std::vector<int64_t> out(size_t(dst.numElements()), 0);
  for (uint32_t p = 0; p < dst.P; ++p) {
    const RngState& r = lane(dst, p);
    for (int k = 0; k < 6; ++k) out[size_t(p * dst.F + k)] = r.words[size_t(k)];
  }
  writeInts(dst, out, 0);
  return {};
}

Status Exec::dmaCopy() {
  if (in_.has(isa::kFlagIndirectSrc) || in_.has(isa::kFlagIndirectDst)) return dmaIndirect();
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View src, view(1));
  if (dst.numElements() != src.numElements())
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("dma_copy moves {} elements of {} into {} elements of {}",
                             src.numElements(), describe(src), dst.numElements(), describe(dst)));
  if (dst.dtype == src.dtype) {
    std::vector<std::byte> raw;
    TRNSIM_RETURN_IF_ERROR(readRaw(src, raw));
    scatterRaw(dst, raw.data());
    return {};
  }
  std::vector<float> x;
  TRNSIM_RETURN_IF_ERROR(readFloats(src, x));
  writeFloats(dst, x, 0, /*forceRne=*/true);
  return {};
}

/// The single row `row` of `v` as a view of its own.
View rowOf(const View& v, int64_t row) {
  View r = v;
  r.base = v.base + row * v.rowStride;
  r.P = 1;
  r.row0 = v.row0 + (v.onChip ? row : 0);
  return r;
}

Status Exec::dmaIndirect() {
  TRNSIM_ASSIGN_OR_RETURN(View dst, view(0));
  TRNSIM_ASSIGN_OR_RETURN(View src, view(1));
  TRNSIM_ASSIGN_OR_RETURN(View index, view(2));
  const bool gather = in_.has(isa::kFlagIndirectSrc);
  if (gather && in_.has(isa::kFlagIndirectDst))
    return error(ErrorCode::kInvalidArgument, "dma_copy cannot be indirect on both src and dst");
  if (dst.F != src.F)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("indirect dma_copy needs rows of equal size: {} has {}, {} has {}",
                             describe(src), src.F, describe(dst), dst.F));
  const uint32_t rows = gather ? dst.P : src.P;
  const uint32_t bound = gather ? src.P : dst.P;
  if (int64_t(index.P) * index.F < rows || index.P < rows)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} has {} rows; the copy needs one index per row ({})",
                             describe(index), index.P, rows));
  std::vector<int64_t> idx;
  TRNSIM_RETURN_IF_ERROR(readInts(index, idx, false));
  for (uint32_t r = 0; r < rows; ++r) {
    const int64_t i = idx[size_t(int64_t(r) * index.F)];
    if (i < 0 || i >= int64_t(bound)) {
      if (in_.has(isa::kFlagOobSkip)) continue;
      return error(ErrorCode::kOutOfBounds,
                   fmt::format("index {} (row {} of {}) is outside the {} rows of {}", i, r,
                               describe(index), bound, describe(gather ? src : dst)));
    }
    const View s = rowOf(src, gather ? i : r);
    const View d = rowOf(dst, gather ? r : i);
    if (d.dtype == s.dtype) {
      std::vector<std::byte> raw;
      TRNSIM_RETURN_IF_ERROR(readRaw(s, raw));
      scatterRaw(d, raw.data());
    } else {
      std::vector<float> x;
      TRNSIM_RETURN_IF_ERROR(readFloats(s, x));
      writeFloats(d, x, 0, /*forceRne=*/true);
    }
  }
  return {};
}

Status Exec::readOperandBytes(uint8_t slot, std::vector<std::byte>& out) {
  TRNSIM_ASSIGN_OR_RETURN(View v, view(slot));
  return readRaw(v, out);
}

Status Exec::operandSpan(uint8_t slot, std::span<const std::byte>& out) {
  TRNSIM_ASSIGN_OR_RETURN(View v, view(slot));
  out = {};
  bool contiguous = v.count[0] == 1 && v.count[1] == 1 && v.count[2] == 1 &&
                    v.stride[3] == v.esize && (v.P <= 1 || v.rowStride == v.F * v.esize);
  if (!contiguous || v.numElements() == 0) return {};
  TRNSIM_RETURN_IF_ERROR(checkInit(v));
  out = std::span<const std::byte>(v.mem->bytes.data() + v.base, size_t(v.numElements() * v.esize));
  return {};
}

Status Exec::writeOperandBytes(uint8_t slot, std::span<const std::byte> data) {
  TRNSIM_ASSIGN_OR_RETURN(View v, view(slot));
  if (int64_t(data.size()) != v.numElements() * v.esize)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} takes {} bytes; the collective delivers {}", describe(v),
                             v.numElements() * v.esize, data.size()));
  scatterRaw(v, data.data());
  return {};
}

// A chip run alone (sim::Chip, no fabric::Cluster) is a world of one rank, rank 0: every
// collective whose rank-list is {0} copies src to dst; anything naming another rank needs
// a cluster.
Status Exec::collectiveAlone() {
  const Opcode op = in_.opcode;
  auto needsCluster = [&](const std::string& why) {
    return error(ErrorCode::kUnsupported,
                 fmt::format("{}: a lone chip is a world of one rank (rank 0); run the program on "
                             "a fabric::Cluster (trnsim cluster run --chips N)",
                             why));
  };
  bool copy = true;
  if (op == Opcode::kSendRecv) {
    if (in_.iarg[0] != 0 || in_.iarg[1] != 0)
      return needsCluster(
          fmt::format("sendrecv to rank {} from rank {}", in_.iarg[0], in_.iarg[1]));
  } else {
    const int64_t g = in_.iarg[0];
    if (g < 0 || uint64_t(g) >= prog_.replicaGroups.size())
      return error(ErrorCode::kInvalidArgument,
                   fmt::format("replica group {} is not in the program's table", g));
    const isa::ReplicaGroup& rg = prog_.replicaGroups[size_t(g)];
    if (op == Opcode::kCollectivePermute) {
      copy = false;
      for (const auto& pair : rg.lists) {
        if (pair.size() != 2 || pair[0] != 0 || pair[1] != 0)
          return needsCluster(fmt::format("collective_permute pair {} -> {}",
                                          pair.empty() ? 0u : pair[0],
                                          pair.size() < 2 ? 0u : pair[1]));
        copy = true;
      }
    } else if (!rg.allRanks()) {
      bool alone = false;
      for (const auto& list : rg.lists) {
        if (list.size() == 1 && list[0] == 0)
          alone = true;
        else if (list.size() != 1 || list[0] != 0)
          return needsCluster(
              fmt::format("replica group {} has rank-list [{}]", g, fmt::join(list, ", ")));
      }
      if (!alone) return needsCluster(fmt::format("rank 0 is not in replica group {}", g));
    }
  }
  if (op == Opcode::kCoreBarrier || !copy) return {};
  std::vector<std::byte> data;
  TRNSIM_RETURN_IF_ERROR(readOperandBytes(1, data));
  return writeOperandBytes(0, data);
}

Status Exec::run() {
  TRNSIM_RETURN_IF_ERROR(checkOverlaps());
  switch (in_.opcode) {
    case Opcode::kNcMatmul:
      return matmul();
    case Opcode::kNcTranspose:
      return transpose();
    case Opcode::kActivation:
      return activation();
    case Opcode::kTensorTensor:
      return tensorTensor();
    case Opcode::kTensorScalar:
      return tensorScalar();
    case Opcode::kScalarTensorTensor:
      return scalarTensorTensor();
    case Opcode::kTensorReduce:
      return tensorReduce();
    case Opcode::kTensorPartitionReduce:
      return partitionReduce();
    case Opcode::kTensorCopy:
      return tensorCopy();
    case Opcode::kTensorCopyPredicated:
      return copyPredicated();
    case Opcode::kTensorTensorScan:
      return scan();
    case Opcode::kMemset:
      return memset();
    case Opcode::kIota:
      return iota(false);
    case Opcode::kAffineSelect:
      return iota(true);
    case Opcode::kRangeSelect:
      return rangeSelect();
    case Opcode::kSelectReduce:
      return selectReduce();
    case Opcode::kBnStats:
      return bnStats();
    case Opcode::kBnAggr:
      return bnAggr();
    case Opcode::kReciprocal:
      return reciprocal();
    case Opcode::kMax8:
      return max8();
    case Opcode::kNcFindIndex8:
      return findIndex8();
    case Opcode::kNcMatchReplace8:
      return matchReplace8();
    case Opcode::kLocalGather:
      return localGather();
    case Opcode::kDropout:
      return dropout();
    case Opcode::kRng:
      return rng();
    case Opcode::kRand2:
      return rand2();
    case Opcode::kSetRngSeed:
      return setSeed();
    case Opcode::kRandSetState:
      return setState();
    case Opcode::kRandGetState:
      return getState();
    case Opcode::kDmaCopy:
      return dmaCopy();
    case Opcode::kDmaTranspose:
      return transpose();
    case Opcode::kAllReduce:
    case Opcode::kAllGather:
    case Opcode::kReduceScatter:
    case Opcode::kAllToAll:
    case Opcode::kCollectivePermute:
    case Opcode::kSendRecv:
    case Opcode::kCoreBarrier:
      return collectiveAlone();
    case Opcode::kCount:
      break;
  }
  return error(ErrorCode::kUnsupported,
               fmt::format("opcode {} is not implemented", int(in_.opcode)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host access and the run loop

namespace {

Expected<std::pair<Memory*, View>> hostView(FunctionalChip::Impl& impl, const Program& program,
                                            uint32_t core, uint32_t tensor) {
  if (tensor >= program.tensors.size())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no tensor {} in program '{}'", tensor, program.name));
  const TensorDecl& d = program.tensors[tensor];
  if (core >= impl.cores.size())
    return Status(ErrorCode::kInvalidArgument, fmt::format("core {} does not exist", core));
  View v;
  v.decl = &d;
  v.slot = "host";
  v.dtype = d.dtype;
  v.esize = int64_t(numerics::dtypeSize(d.dtype));
  v.mem = &impl.memoryFor(core, d.space);
  v.P = d.partitions();
  v.F = d.freeElements();
  v.count = {1, 1, 1, std::max<int64_t>(v.F, 0)};
  v.stride = {0, 0, 0, v.esize};
  if (d.onChip()) {
    const int64_t rowBytes = int64_t(impl.rowBytes(d.space));
    if (d.partitionStart + v.P > impl.config.mem.sbufPartitions ||
        int64_t(d.byteOffset) + v.F * v.esize > rowBytes)
      return Status(ErrorCode::kOutOfBounds,
                    fmt::format("tensor '{}' lies outside its memory", d.name));
    v.base = int64_t(d.partitionStart) * rowBytes + int64_t(d.byteOffset);
    v.rowStride = rowBytes;
  } else {
    v.P = 1;
    v.F = d.numElements();
    v.count[3] = std::max<int64_t>(v.F, 0);
    v.base = int64_t(d.byteOffset);
    v.rowStride = 0;
    if (uint64_t(v.base) + uint64_t(v.F * v.esize) > v.mem->size())
      return Status(ErrorCode::kOutOfBounds,
                    fmt::format("tensor '{}' lies outside the HBM the programs declare", d.name));
  }
  return std::make_pair(v.mem, v);
}

}  // namespace

Status FunctionalChip::writeTensor(const Program& program, uint32_t core, uint32_t tensor,
                                   std::span<const std::byte> data) {
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  TRNSIM_ASSIGN_OR_RETURN(auto mv, hostView(*impl_, program, core, tensor));
  const View& v = mv.second;
  if (int64_t(data.size()) != v.numElements() * v.esize)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("tensor '{}' takes {} bytes; got {}", v.decl->name,
                              v.numElements() * v.esize, data.size()));
  scatterRaw(v, data.data());
  return {};
}

Expected<std::vector<std::byte>> FunctionalChip::readTensor(const Program& program, uint32_t core,
                                                            uint32_t tensor) const {
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  TRNSIM_ASSIGN_OR_RETURN(auto mv, hostView(*impl_, program, core, tensor));
  const View& v = mv.second;
  std::vector<std::byte> out(size_t(v.numElements() * v.esize));
  gatherRaw(v, out.data());
  return out;
}

Expected<uint64_t> FunctionalChip::run(std::span<const Program> programs, const RunOptions& opts) {
  impl_->runSeed = opts.seed;
  for (CoreState& c : impl_->cores)
    for (auto& lanes : c.rng) lanes.clear();
  if (programs.size() > impl_->cores.size())
    return Status(ErrorCode::kCapacity,
                  fmt::format("{} programs for {} cores", programs.size(), impl_->cores.size()));
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm(programs));
  uint64_t executed = 0;
  const bool multiCore = programs.size() > 1;
  for (uint32_t core = 0; core < programs.size(); ++core) {
    const Program& prog = programs[core];
    for (size_t i = 0; i < prog.instructions.size(); ++i) {
      Exec ex(*impl_, prog, core, i, opts, multiCore);
      TRNSIM_RETURN_IF_ERROR(ex.run());
      ++executed;
    }
  }
  return executed;
}

Expected<uint64_t> FunctionalChip::runRange(const Program& program, uint32_t core, size_t begin,
                                            size_t end, const RunOptions& opts, bool startOfRun) {
  if (startOfRun) {
    impl_->runSeed = opts.seed;
    for (CoreState& c : impl_->cores)
      for (auto& lanes : c.rng) lanes.clear();
  }
  if (core >= impl_->cores.size())
    return Status(ErrorCode::kInvalidArgument, fmt::format("core {} does not exist", core));
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  end = std::min(end, program.instructions.size());
  for (size_t i = begin; i < end; ++i) {
    Exec ex(*impl_, program, core, i, opts, false);
    TRNSIM_RETURN_IF_ERROR(ex.run());
  }
  return uint64_t(end > begin ? end - begin : 0);
}

Expected<std::vector<std::byte>> FunctionalChip::readOperand(const Program& program, uint32_t core,
                                                             size_t index, uint8_t slot,
                                                             const RunOptions& opts) {
  if (index >= program.instructions.size() || core >= impl_->cores.size())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no instruction {} on core {}", index, core));
  Exec ex(*impl_, program, core, index, opts, false);
  std::vector<std::byte> out;
  TRNSIM_RETURN_IF_ERROR(ex.readOperandBytes(slot, out));
  return out;
}

Expected<std::span<const std::byte>> FunctionalChip::operandBytesInPlace(const Program& program,
                                                                         uint32_t core,
                                                                         size_t index, uint8_t slot,
                                                                         const RunOptions& opts) {
  if (index >= program.instructions.size() || core >= impl_->cores.size())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no instruction {} on core {}", index, core));
  Exec ex(*impl_, program, core, index, opts, false);
  std::span<const std::byte> out;
  TRNSIM_RETURN_IF_ERROR(ex.operandSpan(slot, out));
  return out;
}

Status FunctionalChip::writeOperand(const Program& program, uint32_t core, size_t index,
                                    uint8_t slot, std::span<const std::byte> data,
                                    const RunOptions& opts) {
  if (index >= program.instructions.size() || core >= impl_->cores.size())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no instruction {} on core {}", index, core));
  Exec ex(*impl_, program, core, index, opts, false);
  return ex.writeOperandBytes(slot, data);
}

}  // namespace trnsim::sim
