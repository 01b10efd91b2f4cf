// Functional execution of NeuronCore programs: the memories, the run loop, and the preamble
// and dispatch of each instruction. The opcode handlers live in one file per engine (see
// functional_detail.h); rules and choices are written down in docs/sim.md. Programs reach the
// interpreter verified (sim::Chip::load, fabric::Cluster): the verifier owns the rules, such as
// operands that overlap; the interpreter still bounds-checks every operand against its memory.

#include "trnsim/sim/functional.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional_detail.h"
#include "trnsim/support/parallel.h"

namespace trnsim::sim {

using isa::MemSpace;
using isa::Opcode;
using isa::Program;
using isa::TensorDecl;

// ---------------------------------------------------------------------------------------------
// Memories

void Memory::allocate(uint64_t size) {
  // Left uninitialized: a large allocation is mapped on demand by the host, so pages nothing
  // touches cost neither a fill nor a page fault (touch() writes the sentinel chunk by chunk).
  bytes_ = std::make_unique_for_overwrite<std::byte[]>(size);
  size_ = size;
  filled_.assign((size + kChunkBytes * 64 - 1) / (kChunkBytes * 64), 0);
  written.assign(size);
}

void Memory::fillChunks(uint64_t first, uint64_t last) {
  for (uint64_t c = first; c <= last; ++c) {
    uint64_t& word = filled_[c / 64];
    const uint64_t bit = uint64_t(1) << (c % 64);
    if ((word & bit) != 0) continue;
    const uint64_t begin = c * kChunkBytes;
    std::memset(bytes_.get() + begin, 0xFF, size_t(std::min(kChunkBytes, size_ - begin)));
    word |= bit;
  }
}

uint64_t hostMemoryAvailable() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) == 0)
      return std::strtoull(line.c_str() + 13, nullptr, 10) * 1024;
  }
  return 0;
}

uint64_t simulatedHostBytes(uint64_t bytes) { return bytes + (bytes + 63) / 64 * 8; }

uint64_t hbmExtentBytes(std::span<const Program> programs) {
  uint64_t extent = 0;
  for (const Program& p : programs)
    for (const TensorDecl& t : p.tensors)
      if (t.space == MemSpace::kHbm)
        extent = std::max(extent, t.byteOffset + uint64_t(std::max<int64_t>(t.numElements(), 0)) *
                                                     numerics::dtypeSize(t.dtype));
  return extent;
}

Status FunctionalChip::Impl::reserveHbm(std::span<const Program> programs) {
  if (hbm.allocated() || hbmBytes == 0) return {};
  const uint64_t need = simulatedHostBytes(hbmBytes);
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
                            "(1.125 host bytes per simulated byte); run timing-only, which touches no "
                            "memory, or use smaller tensors",
                            double(hbmBytes) / 1e9, largest, failure));
}

FunctionalChip::FunctionalChip(const arch::ChipConfig& config, uint64_t hbmBytes)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->hbmBytes = hbmBytes;
  impl_->cores.resize(std::max<uint32_t>(config.coresPerChip, 1));
}

FunctionalChip::~FunctionalChip() = default;

uint64_t FunctionalChip::allocatedBytes() const {
  uint64_t n = simulatedHostBytes(impl_->hbm.size());
  for (const detail::CoreState& c : impl_->cores)
    n += simulatedHostBytes(c.sbuf.size()) + simulatedHostBytes(c.psum.size());
  return n;
}

uint64_t FunctionalChip::pendingHbmHostBytes() const {
  return impl_->hbm.allocated() ? 0 : simulatedHostBytes(impl_->hbmBytes);
}

// ---------------------------------------------------------------------------------------------
// One instruction: the preamble every opcode shares, then its handler

namespace detail {

Status Exec::require(uint8_t slot) const {
  if (has(slot)) return {};
  const std::string_view slotName = slot < info_.numOperands ? info_.operands[slot].name : "?";
  return error(ErrorCode::kInvalidArgument, fmt::format("operand '{}' is missing", slotName));
}

Status Exec::prepareOperands() {
  for (const isa::Operand& o : in_.operands) {
    if (o.slot >= info_.numOperands) continue;
    TRNSIM_ASSIGN_OR_RETURN(views_[o.slot], makeView(o.slot));
    present_ |= 1u << o.slot;
  }
  for (uint8_t s = 0; s < info_.numOperands; ++s)
    if (!info_.operands[s].optional) TRNSIM_RETURN_IF_ERROR(require(s));
  // The operands paired element by element with dst have its shape. DMA copies and
  // collectives pair elements in order only: their handlers compare element counts.
  const uint32_t sameShape = isa::isCollective(in_.opcode) || in_.opcode == Opcode::kDmaCopy
                                 ? 0u
                                 : isa::elementwiseSlots(in_);
  for (uint8_t s = 1; s < info_.numOperands; ++s)
    if (((sameShape >> s) & 1u) != 0 && has(s))
      TRNSIM_RETURN_IF_ERROR(expectShape(operand(0), operand(s)));
  return {};
}

Status Exec::run() {
  TRNSIM_RETURN_IF_ERROR(prepareOperands());
  if (opts_.threads != 1 && splitsByPartition()) return runByPartition();
  return dispatch();
}

namespace {

/// Instructions whose handlers compute each partition of their outputs from the same partition
/// of their inputs (once splitsByPartition has checked that all have as many). A shape check
/// that fails fails in every slice, before anything is written; the instruction then runs
/// whole to report it as it always did.
bool partitionLocal(const Instruction& in) {
  switch (in.opcode) {
    case Opcode::kTensorTensor:
    case Opcode::kTensorScalar:
    case Opcode::kScalarTensorTensor:
    case Opcode::kTensorCopy:
    case Opcode::kTensorReduce:
    case Opcode::kReciprocal:
    case Opcode::kTensorCopyPredicated:
    case Opcode::kTensorTensorScan:  // along the free dims of each partition
    case Opcode::kMemset:
    case Opcode::kBnStats:
    case Opcode::kBnAggr:
    case Opcode::kActivation:  // these three with their reductions: one value per partition
    case Opcode::kSelectReduce:
    case Opcode::kRangeSelect:
      return true;
    case Opcode::kDmaCopy:  // row p of dst from row p of src when their partitions match
      return !in.has(isa::kFlagIndirectSrc) && !in.has(isa::kFlagIndirectDst);
    default:
      return false;
  }
}

/// Whether on-chip views `a` and `b` share no byte (their bounding boxes do not meet).
bool disjoint(const View& a, const View& b) {
  return a.mem != b.mem || a.row0 + a.P <= b.row0 || b.row0 + b.P <= a.row0 || a.hi <= b.lo ||
         b.hi <= a.lo;
}

/// Elements below which an instruction is not worth splitting over threads.
constexpr int64_t kMinSplitElements = int64_t(1) << 16;

}  // namespace

bool Exec::splitsByPartition() const {
  if (!partitionLocal(in_) || opts_.rounding != numerics::Rounding::kNearestEven) return false;
  const View& dst = operand(0);
  // On chip, partitions are rows far apart, so slices never share a word of the written bits.
  if (!dst.onChip || dst.P < 2) return false;
  int64_t elements = 0;
  for (uint8_t s = 0; s < views_.size(); ++s) {
    if (!has(s)) continue;
    const View& v = views_[s];
    if (v.P != dst.P) return false;
    elements += v.numElements();
    // Another written operand (activation's reduction) gets its own slice of partitions too:
    // it must be on chip and share no byte with dst.
    if (s > 0 && info_.operands[s].access != isa::Access::kRead &&
        (!v.onChip || !disjoint(v, dst))) {
      return false;
    }
  }
  if (elements < kMinSplitElements) return false;
  // A read of memory nothing wrote fails the same way as in one piece: the whole instruction
  // then runs in one piece and names the element.
  for (uint8_t s = 1; s < views_.size(); ++s) {
    if (has(s) && info_.operands[s].access == isa::Access::kRead && !checkInit(views_[s]).isOk())
      return false;
  }
  return true;
}

Status Exec::runByPartition() {
  // The verifier lets a written operand share memory with a read one only as the identical
  // in-place operand of an elementwise instruction (never for a DMA), so slices of partitions
  // read and write disjoint memory, and each element is computed as in one piece: the bits do
  // not depend on the thread count.
  const uint32_t P = operand(0).P;
  const size_t pieces = support::workersFor(P, opts_.threads);
  std::vector<Status> status(pieces);
  support::parallelFor(pieces, opts_.threads, [&](size_t k) {
    const uint32_t p0 = uint32_t(P * k / pieces), p1 = uint32_t(P * (k + 1) / pieces);
    Exec slice(*this);
    slice.inputsChecked_ = true;
    for (uint8_t s = 0; s < views_.size(); ++s) {
      View& v = slice.views_[s];
      if (!has(s)) continue;
      v.base += int64_t(p0) * v.rowStride;
      v.row0 += p0;
      v.P = p1 - p0;
    }
    status[k] = slice.dispatch();
  });
  for (const Status& st : status) {
    if (!st.isOk()) return dispatch();  // the error as the whole instruction words it
  }
  return {};
}

Status Exec::dispatch() {
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

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The run loop

namespace {

/// HBM chunks [first, last] (Memory::kChunkBytes each).
struct ChunkRange {
  uint64_t first = 0, last = 0;
  bool operator<(const ChunkRange& o) const { return first < o.first; }
};

/// Sorts `rs` and merges the ranges that overlap or touch.
void mergeRanges(std::vector<ChunkRange>& rs) {
  std::sort(rs.begin(), rs.end());
  size_t keep = 0;
  for (const ChunkRange& r : rs) {
    if (keep > 0 && r.first <= rs[keep - 1].last + 1) {
      rs[keep - 1].last = std::max(rs[keep - 1].last, r.last);
    } else {
      rs[keep++] = r;
    }
  }
  rs.resize(keep);
}

bool intersect(const std::vector<ChunkRange>& a, const std::vector<ChunkRange>& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i].last < b[j].first) {
      ++i;
    } else if (b[j].last < a[i].first) {
      ++j;
    } else {
      return true;
    }
  }
  return false;
}

/// When the cores' programs can run at the same time with the results of running them one
/// after another: no core writes an HBM chunk that another reads or writes (the cores share
/// nothing else), and no program holds a collective. Returns the HBM chunks any core touches
/// (so that they can be given their sentinel before the threads start: Memory::touch is not
/// thread-safe), or nothing when the cores must run in order. Tensors stand for every access
/// through them: the verifier keeps access patterns inside their tensors.
std::optional<std::vector<ChunkRange>> independentCores(std::span<const Program> programs) {
  std::vector<std::vector<ChunkRange>> writes(programs.size()), touches(programs.size());
  for (size_t core = 0; core < programs.size(); ++core) {
    const Program& prog = programs[core];
    std::vector<uint8_t> access(prog.tensors.size(), 0);  // isa::Access bits per tensor
    for (const isa::Instruction& inst : prog.instructions) {
      if (isa::isCollective(inst.opcode)) return std::nullopt;
      const isa::OpInfo& info = isa::opInfo(inst.opcode);
      for (const isa::Operand& o : inst.operands) {
        if (o.ap.tensor < access.size() && o.slot < info.numOperands)
          access[o.ap.tensor] |= uint8_t(info.operands[o.slot].access);
      }
    }
    for (size_t t = 0; t < prog.tensors.size(); ++t) {
      const TensorDecl& d = prog.tensors[t];
      const uint64_t bytes = uint64_t(std::max<int64_t>(0, d.numElements())) *
                             numerics::dtypeSize(d.dtype);
      if (access[t] == 0 || d.space != MemSpace::kHbm || bytes == 0) continue;
      const ChunkRange r{d.byteOffset / Memory::kChunkBytes,
                         (d.byteOffset + bytes - 1) / Memory::kChunkBytes};
      touches[core].push_back(r);
      if (access[t] & uint8_t(isa::Access::kWrite)) writes[core].push_back(r);
    }
    mergeRanges(writes[core]);
    mergeRanges(touches[core]);
  }
  std::vector<ChunkRange> all;
  for (size_t a = 0; a < programs.size(); ++a) {
    for (size_t b = 0; b < programs.size(); ++b) {
      if (a != b && intersect(writes[a], touches[b])) return std::nullopt;
    }
    all.insert(all.end(), touches[a].begin(), touches[a].end());
  }
  mergeRanges(all);
  return all;
}

/// Executes instructions [begin, end) of `prog` on `core`; the first error stops it.
Status execute(FunctionalChip::Impl& impl, const Program& prog, uint32_t core, size_t begin,
               size_t end, const RunOptions& opts, bool multiCore) {
  for (size_t i = begin; i < end; ++i) {
    detail::Exec ex(impl, prog, core, i, opts, multiCore);
    TRNSIM_RETURN_IF_ERROR(ex.run());
  }
  return {};
}

}  // namespace

bool FunctionalChip::coresIndependent(std::span<const Program> programs) {
  return independentCores(programs).has_value();
}

Expected<uint64_t> FunctionalChip::run(std::span<const Program> programs, const RunOptions& opts) {
  impl_->resetRandom(opts.seed);
  if (programs.size() > impl_->cores.size())
    return Status(ErrorCode::kCapacity,
                  fmt::format("{} programs for {} cores", programs.size(), impl_->cores.size()));
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm(programs));
  const bool multiCore = programs.size() > 1;
  auto runCore = [&](uint32_t core) {
    const Program& prog = programs[core];
    return execute(*impl_, prog, core, 0, prog.instructions.size(), opts, multiCore);
  };
  uint64_t executed = 0;
  for (const Program& p : programs) executed += p.instructions.size();
  std::optional<std::vector<ChunkRange>> touched;  // by any core, when they are independent
  if (multiCore && support::workersFor(programs.size(), opts.threads) > 1)
    touched = independentCores(programs);
  if (!touched) {
    for (uint32_t core = 0; core < programs.size(); ++core) TRNSIM_RETURN_IF_ERROR(runCore(core));
    return executed;
  }
  // Independent cores, one per thread. Each has its own SBUF, PSUM and random state; in HBM
  // they share only chunks nobody writes, given their sentinel here, so no thread changes
  // state another reads. A failing core reports what it would have in order (the first
  // failure by core index); the other cores' work is then done too.
  Memory& hbm = impl_->hbm;
  for (const ChunkRange& r : *touched) {
    const uint64_t begin = r.first * Memory::kChunkBytes;
    const uint64_t end = std::min(hbm.size(), (r.last + 1) * Memory::kChunkBytes);
    if (begin < end) hbm.touch(begin, end - begin);  // (size 0 when HBM is not allocated)
  }
  std::vector<Status> status(programs.size());
  support::parallelFor(programs.size(), opts.threads,
                       [&](size_t core) { status[core] = runCore(uint32_t(core)); });
  for (const Status& s : status) TRNSIM_RETURN_IF_ERROR(s);
  return executed;
}

Expected<uint64_t> FunctionalChip::runRange(const Program& program, uint32_t core, size_t begin,
                                            size_t end, const RunOptions& opts, bool startOfRun) {
  if (startOfRun) impl_->resetRandom(opts.seed);
  if (core >= impl_->cores.size())
    return Status(ErrorCode::kInvalidArgument, fmt::format("core {} does not exist", core));
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  end = std::min(end, program.instructions.size());
  TRNSIM_RETURN_IF_ERROR(execute(*impl_, program, core, begin, end, opts, false));
  return uint64_t(end > begin ? end - begin : 0);
}

}  // namespace trnsim::sim
