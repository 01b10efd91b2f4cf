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
#include <string>
#include <utility>

#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional_detail.h"

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

Expected<uint64_t> FunctionalChip::run(std::span<const Program> programs, const RunOptions& opts) {
  impl_->resetRandom(opts.seed);
  if (programs.size() > impl_->cores.size())
    return Status(ErrorCode::kCapacity,
                  fmt::format("{} programs for {} cores", programs.size(), impl_->cores.size()));
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm(programs));
  uint64_t executed = 0;
  const bool multiCore = programs.size() > 1;
  for (uint32_t core = 0; core < programs.size(); ++core) {
    const Program& prog = programs[core];
    for (size_t i = 0; i < prog.instructions.size(); ++i) {
      detail::Exec ex(*impl_, prog, core, i, opts, multiCore);
      TRNSIM_RETURN_IF_ERROR(ex.run());
      ++executed;
    }
  }
  return executed;
}

Expected<uint64_t> FunctionalChip::runRange(const Program& program, uint32_t core, size_t begin,
                                            size_t end, const RunOptions& opts, bool startOfRun) {
  if (startOfRun) impl_->resetRandom(opts.seed);
  if (core >= impl_->cores.size())
    return Status(ErrorCode::kInvalidArgument, fmt::format("core {} does not exist", core));
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  end = std::min(end, program.instructions.size());
  for (size_t i = begin; i < end; ++i) {
    detail::Exec ex(*impl_, program, core, i, opts, false);
    TRNSIM_RETURN_IF_ERROR(ex.run());
  }
  return uint64_t(end > begin ? end - begin : 0);
}

}  // namespace trnsim::sim
