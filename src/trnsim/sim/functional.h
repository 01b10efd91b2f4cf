#pragma once
// Functional execution: the memories of one chip (per-core SBUF and PSUM, chip-wide HBM) and
// the value semantics of every instruction. Used by the Chip facade (chip.h); timing lives in
// timing.h and never depends on the values computed here. docs/sim.md, "Functional execution".

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/sim/chip.h"
#include "trnsim/sim/written_bits.h"
#include "trnsim/support/status.h"

namespace trnsim::sim {

/// A byte array with a shadow that records which bytes were ever written (one bit per byte).
/// Reads of bytes nothing wrote see the sentinel 0xFF (NaN in every float format, -1 / max in
/// the integer ones). The sentinel is written lazily, one chunk of kChunkBytes at a time, the
/// first time an access touches the chunk (touch(): every view of the memory calls it before
/// it reads or writes), so a 24 MiB SBUF of which a kernel uses a few MiB costs a few MiB of
/// fills and page faults; what any read sees is the same as with a fill at allocation.
struct Memory {
  static constexpr uint64_t kChunkBytes = 4096;

  WrittenBits written;  ///< the bytes a host write or an instruction wrote

  bool allocated() const { return size_ != 0; }
  void allocate(uint64_t size);
  uint64_t size() const { return size_; }
  /// The bytes; only those of touched chunks hold defined values.
  std::byte* data() { return bytes_.get(); }
  const std::byte* data() const { return bytes_.get(); }
  /// Gives the chunks of [offset, offset + count) that nothing touched before the sentinel.
  /// The range must lie inside the memory. Not thread-safe: call it before parallel work.
  void touch(uint64_t offset, uint64_t count) {
    if (count == 0) return;
    const uint64_t first = offset / kChunkBytes, last = (offset + count - 1) / kChunkBytes;
    for (uint64_t c = first; c <= last; ++c)
      if (((filled_[c / 64] >> (c % 64)) & 1u) == 0) fillChunks(c, last);
  }

 private:
  /// The sentinel into the unfilled chunks of [first, last].
  void fillChunks(uint64_t first, uint64_t last);

  std::unique_ptr<std::byte[]> bytes_;  ///< uninitialized until touched
  uint64_t size_ = 0;
  std::vector<uint64_t> filled_;  ///< one bit per chunk: it holds the sentinel or data
};

/// Per-core, per-engine, per-partition xorwow generator state (5 words + Weyl counter).
struct RngState {
  std::array<uint32_t, 6> words{};
  /// Next 32 random bits.
  uint32_t next();
  /// State derived from a 64-bit seed (splitmix64 expansion; never all-zero).
  static RngState fromSeed(uint64_t seed);
};

/// The functional half of a chip: memories allocated lazily (a core's SBUF/PSUM on its first
/// use, HBM on the first host write or run) and the interpreter of instructions. Programs come
/// verified (sim::Chip::load and fabric::Cluster verify them): the interpreter checks each
/// operand against its memory, and leaves the verifier's rules (such as overlapping operands)
/// to the verifier.
class FunctionalChip {
 public:
  /// `hbmBytes`: extent of the loaded programs' HBM tensors (not the chip's capacity).
  FunctionalChip(const arch::ChipConfig& config, uint64_t hbmBytes);
  ~FunctionalChip();
  FunctionalChip(const FunctionalChip&) = delete;
  FunctionalChip& operator=(const FunctionalChip&) = delete;

  /// Host -> tensor `tensor` of `program` (running on `core`): raw bytes of its dtype,
  /// row-major. HBM and on-chip tensors are accepted. Marks the bytes initialized.
  Status writeTensor(const isa::Program& program, uint32_t core, uint32_t tensor,
                     std::span<const std::byte> data);
  /// Tensor -> host (unwritten bytes read as the sentinel).
  Expected<std::vector<std::byte>> readTensor(const isa::Program& program, uint32_t core,
                                              uint32_t tensor) const;

  /// Executes the programs as if in order (core 0's program, then core 1's, ...). Returns the
  /// number of instructions executed, or the first error (naming core, instruction, operand).
  /// Cores whose programs are independent (coresIndependent) run on up to opts.threads host
  /// threads at once, with the same results; after a failure, the other cores' work is done too.
  Expected<uint64_t> run(std::span<const isa::Program> programs, const RunOptions& opts);
  /// True when no program writes an HBM tensor whose bytes (in 4 KiB chunks) another program
  /// reads or writes, and none holds a collective: their cores can run at the same time.
  static bool coresIndependent(std::span<const isa::Program> programs);

  /// Runs instructions [begin, end) of `program` on `core`, for a caller that executes a
  /// program in pieces (fabric::Cluster stops at each collective). `startOfRun` resets the
  /// random state to opts.seed as run() does; later pieces continue it.
  Expected<uint64_t> runRange(const isa::Program& program, uint32_t core, size_t begin,
                              size_t end, const RunOptions& opts, bool startOfRun);
  /// Operand `slot` of instruction `index`: its elements, row-major over the access pattern,
  /// as raw bytes of the tensor's dtype (what a collective sends). Checks bounds and, when
  /// opts.detectUninitialized, that something wrote the bytes.
  Expected<std::vector<std::byte>> readOperand(const isa::Program& program, uint32_t core,
                                               size_t index, uint8_t slot,
                                               const RunOptions& opts);
  /// The same bytes without a copy when the operand is one contiguous run of memory (empty
  /// span otherwise: use readOperand). Valid until the memory is written.
  Expected<std::span<const std::byte>> operandBytesInPlace(const isa::Program& program,
                                                           uint32_t core, size_t index,
                                                           uint8_t slot, const RunOptions& opts);
  /// Writes `data` (raw bytes of the dtype, row-major over the pattern) to operand `slot` of
  /// instruction `index` (what a collective receives).
  Status writeOperand(const isa::Program& program, uint32_t core, size_t index, uint8_t slot,
                      std::span<const std::byte> data, const RunOptions& opts);

  /// Bytes of host memory the simulated memories occupy now (0 before any use).
  uint64_t allocatedBytes() const;
  /// Bytes of host memory the HBM image will take when it is first touched (0 once it is).
  uint64_t pendingHbmHostBytes() const;

  struct Impl;  ///< internal: memories and per-core engine state

 private:
  std::unique_ptr<Impl> impl_;
};

/// Total byte extent of the HBM tensors of `programs` (max of byteOffset + size).
uint64_t hbmExtentBytes(std::span<const isa::Program> programs);
/// Host bytes that simulating `bytes` of memory takes: the values plus one written bit
/// per byte (1.125 per simulated byte).
uint64_t simulatedHostBytes(uint64_t bytes);
/// MemAvailable of /proc/meminfo in bytes; 0 where it cannot be read (then only an allocation
/// itself can fail).
uint64_t hostMemoryAvailable();

}  // namespace trnsim::sim
