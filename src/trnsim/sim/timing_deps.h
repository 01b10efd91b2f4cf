#pragma once
// Dependencies between instructions of one core, derived from the memory each one touches
// (the semaphores a compiler would insert): read-after-write, write-after-read and
// write-after-write on bounding boxes of SBUF, PSUM and HBM.

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"

namespace trnsim::sim::detail {

/// A half-open rectangle of memory: rows x bytes. On-chip rows are partitions and bytes are
/// offsets inside a partition; in HBM rows are rows of the root tensor (its last dim) and
/// bytes are offsets inside a row.
struct Box {
  uint64_t r0 = 0, r1 = 0, b0 = 0, b1 = 0;
  bool overlaps(const Box& o) const { return r0 < o.r1 && o.r0 < r1 && b0 < o.b1 && o.b0 < b1; }
  bool covers(const Box& o) const { return r0 <= o.r0 && o.r1 <= r1 && b0 <= o.b0 && o.b1 <= b1; }
};

/// An instruction that must finish before another may start: the unit it runs on (engine
/// index 0..4, or kFirstQueueUnit + DMA queue) and its index in the program.
struct Dep {
  uint32_t unit = 0;
  uint32_t inst = 0;
};
inline constexpr uint32_t kFirstQueueUnit = 5;

/// Where one operand lives: which memory, which rectangle, which buckets of that memory.
/// Depends only on the program and the chip, so it is computed once per program.
struct OperandBox {
  Box box;
  uint32_t memory = 0;  ///< 0 = SBUF, 1 = PSUM, 2 + i = the i-th HBM root tensor
  uint32_t firstBucket = 0, lastBucket = 0;
  bool write = false;  ///< written (else only read)
};

/// How the memories of one program are cut into address buckets (see DependencyTracker).
class MemoryMap {
 public:
  struct Memory {
    bool byRow = false;    ///< bucket on rows (HBM matrices) instead of bytes
    uint32_t shift = 9;    ///< the grid: chunk = coordinate >> shift
    uint32_t buckets = 1;  ///< the last one also takes every coordinate beyond
    /// On chip, the grid's chunks are cut further where a tensor starts or ends, so that small
    /// tensors side by side (per-row statistics, say) get a bucket each: `lows` holds each
    /// bucket's first coordinate and `chunkFirst` the first bucket of each chunk. Empty: one
    /// bucket per chunk.
    std::vector<uint64_t> lows;
    std::vector<uint32_t> chunkFirst;

    uint32_t bucketOf(uint64_t c) const {
      if (lows.empty()) return uint32_t(std::min<uint64_t>(c >> shift, buckets - 1));
      // The last bucket of c's chunk that starts at or before c.
      const uint64_t chunk = std::min<uint64_t>(c >> shift, chunkFirst.size() - 1);
      const uint32_t end = chunk + 1 < chunkFirst.size() ? chunkFirst[chunk + 1] : buckets;
      const auto first = lows.begin() + chunkFirst[chunk];
      return uint32_t(std::upper_bound(first, lows.begin() + end, c) - lows.begin() - 1);
    }
    /// Bucket b stands for coordinates [low(b), high(b)).
    uint64_t low(uint32_t b) const { return lows.empty() ? uint64_t(b) << shift : lows[b]; }
    uint64_t high(uint32_t b) const { return b + 1 == buckets ? UINT64_MAX : low(b + 1); }
  };
  void init(const arch::ChipConfig& chip, const isa::Program& program);
  /// The rectangle and buckets of an operand; false for an empty access (touches nothing).
  bool place(const isa::AccessPattern& ap, isa::Access access, OperandBox& out) const;
  const std::vector<Memory>& memories() const { return memories_; }

 private:
  /// What place() needs of a tensor, without walking its declaration.
  struct TensorPlace {
    uint64_t base = 0;      ///< on chip: byte offset in a partition; HBM: offset in its root
    uint64_t rowBytes = 1;  ///< HBM: row bytes of its root (at least 1)
    uint32_t memory = 0;    ///< 0 = SBUF, 1 = PSUM, 2 + i = HBM root i
    uint32_t partitionStart = 0;
    uint32_t elemBytes = 1;
    bool onChip = true;
  };
  std::vector<Memory> memories_;
  std::vector<TensorPlace> tensors_;  ///< per tensor of the program
};

/// Tracks which instruction last wrote and which ones read each region, per memory.
/// Each memory is cut into address buckets; an access is recorded in every bucket it spans,
/// so a lookup scans only the few entries near its own addresses. Writers and readers are
/// kept apart (a read only looks at writers). Entries leave a bucket when a later write covers
/// them (their order is then implied) or, once the bucket grows, when they finished before
/// `floorNs` (their end then lives on as the bucket's `prunedEnd`, a lower bound for later
/// accesses).
class DependencyTracker {
 public:
  void init(const MemoryMap& map);

  /// Dependencies of instruction `inst` running on `unit` with operands `boxes`: appends at
  /// most one Dep per other unit (the latest instruction of that unit it must wait for) to
  /// `deps`, raises `lowerBoundNs` to the end of pruned accesses it overlaps, then records its
  /// accesses. `endNs[i]` is the end of instruction i, or negative while unknown.
  void access(uint32_t inst, uint32_t unit, std::span<const OperandBox> boxes,
              std::vector<Dep>& deps, double& lowerBoundNs, const double* endNs, double floorNs);

 private:
  struct Entry {
    Box box;
    uint32_t inst;
    uint32_t unit;
  };
  struct Bucket {
    std::vector<Entry> writes;
    std::vector<Entry> reads;
    uint64_t lo = 0, hi = 0;  ///< the part of its memory it stands for (MemoryMap::Memory)
    double prunedEnd = 0;
    uint32_t pruneAt = 16;
  };
  struct Memory {
    bool byRow = false;
    uint32_t firstBucket = 0;  ///< into buckets_
  };

  void prune(Bucket& bucket, const double* endNs, double floorNs);

  std::vector<Memory> memories_;
  std::vector<Bucket> buckets_;  ///< of every memory, one flat array
};

}  // namespace trnsim::sim::detail
