#include "trnsim/sim/timing_deps.h"

#include <algorithm>
#include <bit>

namespace trnsim::sim::detail {
namespace {

/// Smallest shift that maps `extent` coordinates onto at most `maxBuckets` buckets, but never
/// finer than 2^minShift.
uint32_t shiftFor(uint64_t extent, uint64_t maxBuckets, uint32_t minShift) {
  uint32_t s = minShift;
  while ((extent >> s) >= maxBuckets && s < 62) ++s;
  return s;
}

/// Smallest and largest free-dim offset (in elements) an access pattern reaches.
void freeSpan(const isa::AccessPattern& ap, int64_t& lo, int64_t& hi) {
  lo = 0;
  hi = 0;
  for (int d = 0; d < ap.numFree; ++d) {
    int64_t reach = ap.free[d].stride * (ap.free[d].count - 1);
    if (reach < 0) lo += reach; else hi += reach;
  }
}

}  // namespace

void MemoryMap::init(const arch::ChipConfig& chip, const isa::Program& program) {
  memories_.clear();
  memories_.resize(2);
  memories_[0].shift = 9;
  memories_[0].buckets =
      uint32_t(std::max<uint64_t>(1, (chip.mem.sbufBytesPerPartition + 511) >> 9));
  // PSUM: one bucket per 2 KiB bank (engine operands stay inside a bank).
  memories_[1].shift = 11;
  memories_[1].buckets =
      uint32_t(std::max<uint64_t>(1, (chip.psumBytesPerPartition() + 2047) >> 11));

  // Cut the on-chip grids where tensors start and end.
  for (uint32_t mi = 0; mi < 2; ++mi) {
    Memory& m = memories_[mi];
    const uint64_t extent = uint64_t(m.buckets) << m.shift;
    std::vector<uint64_t> cuts;
    for (uint32_t b = 0; b < m.buckets; ++b) cuts.push_back(uint64_t(b) << m.shift);
    for (const isa::TensorDecl& decl : program.tensors) {
      if (!decl.onChip() || (decl.space == isa::MemSpace::kSbuf) != (mi == 0)) continue;
      for (uint64_t c : {decl.byteOffset, decl.byteOffset + decl.bytesPerPartition()}) {
        if (c < extent) cuts.push_back(c);
      }
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    if (cuts.size() == m.buckets) continue;  // no tensor inside a chunk: the plain grid
    m.chunkFirst.assign(m.buckets, 0);
    for (uint32_t b = 0; b < cuts.size(); ++b) {
      if ((cuts[b] & ((uint64_t(1) << m.shift) - 1)) == 0) m.chunkFirst[cuts[b] >> m.shift] = b;
    }
    m.buckets = uint32_t(cuts.size());
    m.lows = std::move(cuts);
  }

  const size_t n = program.tensors.size();
  tensors_.assign(n, TensorPlace{});
  std::vector<uint32_t> rootMemory(n, UINT32_MAX);
  for (size_t t = 0; t < n; ++t) {
    const isa::TensorDecl& decl = program.tensors[t];
    TensorPlace& tp = tensors_[t];
    tp.elemBytes = uint32_t(numerics::dtypeSize(decl.dtype));
    tp.onChip = decl.onChip();
    if (decl.onChip()) {
      tp.memory = decl.space == isa::MemSpace::kSbuf ? 0 : 1;
      tp.partitionStart = decl.partitionStart;
      tp.base = decl.byteOffset;
      continue;
    }
    // Follow views to the tensor that owns the memory (a bounded walk: cycles are bad input).
    uint32_t root = uint32_t(t);
    for (int hops = 0; hops < 16; ++hops) {
      uint32_t next = program.tensors[root].aliasOf;
      if (next >= n || program.tensors[next].onChip()) break;
      root = next;
    }
    const isa::TensorDecl& rootDecl = program.tensors[root];
    uint64_t elemBytes = numerics::dtypeSize(rootDecl.dtype);
    uint64_t total = uint64_t(std::max<int64_t>(1, rootDecl.numElements())) * elemBytes;
    uint64_t rowBytes = total;
    if (rootDecl.shape.size() >= 2 && rootDecl.shape.back() > 0) {
      rowBytes = uint64_t(rootDecl.shape.back()) * elemBytes;
    }
    if (rootMemory[root] == UINT32_MAX) {
      rootMemory[root] = uint32_t(memories_.size());
      Memory m;
      uint64_t rows = total / std::max<uint64_t>(1, rowBytes);
      m.byRow = rows >= 2;
      m.shift = m.byRow ? shiftFor(rows, 64, 0) : shiftFor(total, 256, 9);
      uint64_t extent = m.byRow ? rows : total;
      m.buckets = uint32_t((extent >> m.shift) + 1);
      memories_.push_back(std::move(m));
    }
    tp.memory = rootMemory[root];
    tp.rowBytes = std::max<uint64_t>(1, rowBytes);
    tp.base = decl.byteOffset >= rootDecl.byteOffset ? decl.byteOffset - rootDecl.byteOffset : 0;
  }
}

bool MemoryMap::place(const isa::AccessPattern& ap, isa::Access access, OperandBox& out) const {
  if (ap.partitions == 0) return false;
  for (int d = 0; d < ap.numFree; ++d) {
    if (ap.free[d].count <= 0) return false;
  }
  const TensorPlace& tp = tensors_[ap.tensor];
  const uint64_t es = tp.elemBytes;
  int64_t lo, hi;
  freeSpan(ap, lo, hi);
  Box box;
  out.memory = tp.memory;
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
  const Memory& m = memories_[out.memory];
  out.firstBucket = m.bucketOf(m.byRow ? box.r0 : box.b0);
  out.lastBucket = m.bucketOf(m.byRow ? box.r1 - 1 : box.b1 - 1);
  out.write = access != isa::Access::kRead;
  return true;
}

void DependencyTracker::init(const MemoryMap& map) {
  memories_.clear();
  uint32_t total = 0;
  for (const MemoryMap::Memory& m : map.memories()) {
    memories_.push_back(Memory{m.byRow, total});
    total += m.buckets;
  }
  buckets_.clear();
  buckets_.resize(total);
  Bucket* b = buckets_.data();
  for (const MemoryMap::Memory& m : map.memories()) {
    for (uint32_t k = 0; k < m.buckets; ++k, ++b) {
      b->lo = m.low(k);
      b->hi = m.high(k);
    }
  }
}

namespace {

/// Drops the entries that ended before `floorNs`, raising `prunedEnd` to their latest end.
template <typename E>
void pruneList(std::vector<E>& es, double& prunedEnd, const double* endNs, double floorNs) {
  E* d = es.data();
  const size_t n = es.size();
  size_t keep = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = endNs[d[i].inst];
    if (e >= 0 && e <= floorNs) {
      prunedEnd = std::max(prunedEnd, e);
    } else {
      d[keep++] = d[i];
    }
  }
  es.resize(keep);
}

/// Removes the entries `implied(entry)` holds for, keeping the order of the rest.
template <typename E, typename F>
inline void dropIf(std::vector<E>& es, F implied) {
  // Pointers rather than indices: a vector's size is a division by sizeof(E) (40 here).
  E* keep = es.data();
  for (E *d = keep, *end = d + (es.end() - es.begin()); d != end; ++d) {
    if (!implied(*d)) {
      if (keep != d) *keep = *d;
      ++keep;
    }
  }
  es.erase(es.begin() + (keep - es.data()), es.end());
}

/// Records a dependency on `e` unless it runs on `unit` itself (its order already holds).
template <typename E>
inline void addDep(std::vector<Dep>& deps, uint32_t unit, const E& e) {
  if (e.unit == unit) return;
  for (Dep& d : deps) {
    if (d.unit == e.unit) {
      d.inst = std::max(d.inst, e.inst);
      return;
    }
  }
  deps.push_back(Dep{e.unit, e.inst});
}

/// The part of `box` inside [lo, hi) along the bucketed coordinate.
inline Box clip(Box box, bool byRow, uint64_t lo, uint64_t hi) {
  if (byRow) {
    box.r0 = std::max(box.r0, lo);
    box.r1 = std::min(box.r1, hi);
  } else {
    box.b0 = std::max(box.b0, lo);
    box.b1 = std::min(box.b1, hi);
  }
  return box;
}

}  // namespace

void DependencyTracker::prune(Bucket& bucket, const double* endNs, double floorNs) {
  pruneList(bucket.writes, bucket.prunedEnd, endNs, floorNs);
  pruneList(bucket.reads, bucket.prunedEnd, endNs, floorNs);
  bucket.pruneAt = std::max<uint32_t>(16, uint32_t(2 * (bucket.writes.size() + bucket.reads.size())));
}

void DependencyTracker::access(uint32_t inst, uint32_t unit, std::span<const OperandBox> boxes,
                               std::vector<Dep>& deps, double& lowerBoundNs, const double* endNs,
                               double floorNs) {
  // 1. Dependencies on earlier accesses: a read waits for writers, a write for everyone.
  for (const OperandBox& p : boxes) {
    const Memory& m = memories_[p.memory];
    Bucket* first = buckets_.data() + m.firstBucket;
    for (uint32_t b = p.firstBucket; b <= p.lastBucket; ++b) {
      Bucket& bucket = first[b];
      lowerBoundNs = std::max(lowerBoundNs, bucket.prunedEnd);
      for (const Entry& e : bucket.writes) {
        if (e.unit != unit && e.box.overlaps(p.box)) addDep(deps, unit, e);
      }
      if (p.write) {
        for (const Entry& e : bucket.reads) {
          if (e.unit != unit && e.box.overlaps(p.box)) addDep(deps, unit, e);
        }
      }
    }
  }
  // 2. Record this instruction's accesses; drop entries whose order it now implies.
  for (const OperandBox& p : boxes) {
    const Memory& m = memories_[p.memory];
    Bucket* first = buckets_.data() + m.firstBucket;
    for (uint32_t b = p.firstBucket; b <= p.lastBucket; ++b) {
      Bucket& bucket = first[b];
      const uint64_t lo = bucket.lo, hi = bucket.hi;
      if (p.write) {
        // A write covering an entry's part here orders it for every later access.
        auto covered = [&](const Entry& e) { return p.box.covers(clip(e.box, m.byRow, lo, hi)); };
        dropIf(bucket.writes, covered);
        dropIf(bucket.reads, covered);
        bucket.writes.push_back(Entry{p.box, inst, unit});
      } else {
        // A read by the same unit covering an earlier read of that unit supersedes it.
        dropIf(bucket.reads, [&](const Entry& e) {
          return e.unit == unit && p.box.covers(clip(e.box, m.byRow, lo, hi));
        });
        bucket.reads.push_back(Entry{p.box, inst, unit});
      }
      if (bucket.writes.size() + bucket.reads.size() > bucket.pruneAt) {
        prune(bucket, endNs, floorNs);
      }
    }
  }
}

}  // namespace trnsim::sim::detail
