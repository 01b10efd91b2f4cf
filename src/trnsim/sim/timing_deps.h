#pragma once
// Dependencies between instructions of one core, derived from the memory each one touches
// (the semaphores a compiler would insert): read-after-write, write-after-read and
// write-after-write on bounding boxes of SBUF, PSUM and HBM.

#include <algorithm>
#include <cstdint>
#include <memory>
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

/// Where one operand lives: which rectangle, which buckets of which memory.
/// Depends only on the program and the chip, so it is computed once per program.
struct OperandBox {
  Box box;
  /// Its buckets, numbered across all memories in order (MemoryMap::Memory::firstBucket + the
  /// bucket's number in its memory): SBUF's come first, so for SBUF both numberings agree.
  uint32_t firstBucket = 0, lastBucket = 0;
  bool write = false;  ///< written (else only read)
  bool byRow = false;  ///< its memory is bucketed on rows (MemoryMap::Memory::byRow)
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
    uint32_t firstBucket = 0;  ///< the number of its bucket 0 across all memories

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
///
/// Until a bucket first grows past its bound, nothing depends on time: the dependencies are
/// those of the program alone. So they can be found once per program, before any run, with
/// no end times (`endNs` null); the tracker then prunes nothing and, once a bucket grows past
/// its bound, says so (overflowed()): from there on a run must track dependencies itself.
class DependencyTracker {
 public:
  void init(const MemoryMap& map);
  /// Whether a bucket grew past its bound while `endNs` was null (see above).
  bool overflowed() const { return overflowed_; }

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
  /// A bucket's writers or readers. Buckets hold a handful of entries and the scheduler walks
  /// them for every operand, so this is an array with a 32-bit size rather than a std::vector
  /// (whose size() divides by sizeof(Entry)).
  struct Entries {
    std::unique_ptr<Entry[]> data;
    uint32_t size = 0, capacity = 0;
    Entries() = default;
    Entries(Entries&&) noexcept = default;
    Entries& operator=(Entries&&) noexcept = default;
    Entries(const Entries& o) : size(o.size), capacity(o.size) {
      if (size > 0) data = std::make_unique_for_overwrite<Entry[]>(size);
      std::copy(o.begin(), o.end(), begin());
    }
    Entries& operator=(const Entries& o) { return *this = Entries(o); }
    Entry* begin() const { return data.get(); }
    Entry* end() const { return data.get() + size; }
    void push(const Entry& e) {
      if (size == capacity) grow();
      data[size++] = e;
    }
    void grow();
  };
  struct Bucket {
    Entries writes;
    Entries reads;
    uint64_t lo = 0, hi = 0;  ///< the part of its memory it stands for (MemoryMap::Memory)
    double prunedEnd = 0;
    uint32_t pruneAt = 16;
  };

  /// Finds `p`'s dependencies among `b`'s entries.
  [[gnu::always_inline]] static void check(const OperandBox& p, uint32_t unit, const Bucket& b,
                                           std::vector<Dep>& deps, double& lowerBoundNs);
  /// Records `p` in `b`, dropping the entries whose order it implies.
  [[gnu::always_inline]] void record(const OperandBox& p, uint32_t inst, uint32_t unit, Bucket& b,
                                     const double* endNs, double floorNs);
  void prune(Bucket& bucket, const double* endNs, double floorNs);

  std::vector<Bucket> buckets_;  ///< of every memory, one flat array (OperandBox::firstBucket)
  bool overflowed_ = false;
};

/// Smallest and largest free-dim offset (in elements) an access pattern reaches.
inline void freeSpan(const isa::AccessPattern& ap, int64_t& lo, int64_t& hi) {
  lo = 0;
  hi = 0;
  for (int d = 0; d < ap.numFree; ++d) {
    int64_t reach = ap.free[d].stride * (ap.free[d].count - 1);
    if (reach < 0) lo += reach; else hi += reach;
  }
}

// Inline: the table build calls it for every operand of every instruction.
inline bool MemoryMap::place(const isa::AccessPattern& ap, isa::Access access, OperandBox& out) const {
  if (ap.partitions == 0) return false;
  for (int d = 0; d < ap.numFree; ++d) {
    if (ap.free[d].count <= 0) return false;
  }
  const TensorPlace& tp = tensors_[ap.tensor];
  const uint64_t es = tp.elemBytes;
  int64_t lo, hi;
  freeSpan(ap, lo, hi);
  Box box;
  if (tp.onChip) {
    box.r0 = uint64_t(tp.partitionStart) + ap.partitionOffset;
    box.r1 = box.r0 + ap.partitions;
    int64_t first = std::max<int64_t>(0, ap.offset + lo);
    int64_t last = std::max<int64_t>(first, ap.offset + hi);
    box.b0 = tp.base + uint64_t(first) * es;
    box.b1 = tp.base + uint64_t(last + 1) * es;
  } else {
    const uint64_t rowBytes = tp.rowBytes;
    const uint64_t base = tp.base;
    // Byte range of partition 0 and the step between partitions.
    int64_t first = std::max<int64_t>(0, ap.offset + lo);
    int64_t last = std::max<int64_t>(first, ap.offset + hi);
    uint64_t p0lo = base + uint64_t(first) * es;
    uint64_t p0hi = base + uint64_t(last + 1) * es;  // exclusive
    int64_t stepBytes = ap.partitionStride * int64_t(es);
    bool rowAligned = ap.partitions == 1 ||
                      (stepBytes > 0 && uint64_t(stepBytes) % rowBytes == 0);
    if (rowAligned && p0lo / rowBytes == (p0hi - 1) / rowBytes) {
      // A tile: the same columns of rows spaced by a whole number of rows.
      uint64_t rowStep = ap.partitions == 1 ? 0 : uint64_t(stepBytes) / rowBytes;
      box.r0 = p0lo / rowBytes;
      box.r1 = box.r0 + uint64_t(ap.partitions - 1) * rowStep + 1;
      box.b0 = p0lo % rowBytes;
      box.b1 = box.b0 + (p0hi - p0lo);
    } else {
      // Anything else: every row the flat byte range reaches, whole rows unless it is one.
      int64_t pReach = ap.partitionStride * int64_t(ap.partitions - 1);
      int64_t flo = std::max<int64_t>(0, ap.offset + lo + std::min<int64_t>(0, pReach));
      int64_t fhi = std::max<int64_t>(flo, ap.offset + hi + std::max<int64_t>(0, pReach));
      uint64_t blo = base + uint64_t(flo) * es;
      uint64_t bhi = base + uint64_t(fhi + 1) * es;
      box.r0 = blo / rowBytes;
      box.r1 = (bhi - 1) / rowBytes + 1;
      if (box.r1 - box.r0 == 1) {
        box.b0 = blo % rowBytes;
        box.b1 = box.b0 + (bhi - blo);
      } else {
        box.b0 = 0;
        box.b1 = rowBytes;
      }
    }
  }
  out.box = box;
  const Memory& m = memories_[tp.memory];
  out.firstBucket = m.firstBucket + m.bucketOf(m.byRow ? box.r0 : box.b0);
  out.lastBucket = m.firstBucket + m.bucketOf(m.byRow ? box.r1 - 1 : box.b1 - 1);
  out.write = access != isa::Access::kRead;
  out.byRow = m.byRow;
  return true;
}

}  // namespace trnsim::sim::detail
