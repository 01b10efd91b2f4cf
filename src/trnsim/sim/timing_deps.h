#pragma once
// Dependencies between instructions of one core, derived from the memory each one touches
// (the semaphores a compiler would insert): read-after-write, write-after-read and
// write-after-write on bounding boxes of SBUF, PSUM and HBM.

#include <cstdint>
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

/// Tracks which instruction last wrote and which ones read each region, per memory.
/// Each memory is cut into address buckets; an access is recorded in every bucket it spans,
/// so a lookup scans only the few entries near its own addresses. Entries leave a bucket when
/// a later write covers them (their order is then implied) or, once the bucket grows, when
/// they finished before `floorNs` (their end then lives on as the bucket's `prunedEnd`, a
/// lower bound for later accesses).
class DependencyTracker {
 public:
  void init(const arch::ChipConfig& chip, const isa::Program& program);

  /// Dependencies of instruction `inst` running on `unit`: appends at most one Dep per other
  /// unit (the latest instruction of that unit it must wait for) to `deps`, raises
  /// `lowerBoundNs` to the end of pruned accesses it overlaps, then records its accesses.
  /// `endNs[i]` is the end of instruction i, or negative while unknown.
  void access(uint32_t inst, uint32_t unit, const isa::Instruction& instruction,
              std::vector<Dep>& deps, double& lowerBoundNs, const double* endNs, double floorNs);

 private:
  struct Entry {
    Box box;
    uint32_t inst;
    uint32_t unit;
    bool write;
  };
  struct Bucket {
    std::vector<Entry> entries;
    double prunedEnd = 0;
    uint32_t pruneAt = 16;
  };
  struct Memory {
    bool byRow = false;  ///< bucket on rows (HBM matrices) instead of bytes
    uint32_t shift = 9;  ///< bucket = coordinate >> shift
    std::vector<Bucket> buckets;
  };
  /// Where an operand lives: which memory and which rectangle.
  struct Place {
    uint32_t memory = 0;
    Box box;
    uint32_t firstBucket = 0, lastBucket = 0;
    bool write = false, read = false;
  };

  bool place(const isa::AccessPattern& ap, isa::Access access, Place& out) const;
  void prune(Bucket& bucket, const double* endNs, double floorNs);

  const isa::Program* program_ = nullptr;
  std::vector<Memory> memories_;          ///< 0 = SBUF, 1 = PSUM, 2 + i = HBM root i
  std::vector<uint32_t> hbmMemoryOf_;     ///< per tensor: memory index of its HBM root
  std::vector<uint64_t> hbmBaseOf_;       ///< per tensor: byte offset inside its root
  std::vector<uint64_t> hbmRowBytesOf_;   ///< per tensor: row bytes of its root
  std::vector<Place> scratch_;
};

}  // namespace trnsim::sim::detail
