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

}  // namespace

void MemoryMap::init(const arch::ChipConfig& chip, const isa::Program& program) {
  memories_.clear();
  memories_.resize(2);
  // SBUF: 1 KiB chunks, the bytes a partition holds of a 512-column bf16 matmul operand (a
  // finer grid splits those operands over more buckets; the grid is cut at tensors below).
  memories_[0].shift = 10;
  memories_[0].buckets =
      uint32_t(std::max<uint64_t>(1, (chip.mem.sbufBytesPerPartition + 1023) >> 10));
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
  uint32_t total = 0;
  for (Memory& m : memories_) {
    m.firstBucket = total;
    total += m.buckets;
  }
}

void DependencyTracker::init(const MemoryMap& map) {
  const std::vector<MemoryMap::Memory>& ms = map.memories();
  overflowed_ = false;
  buckets_.clear();
  buckets_.resize(ms.empty() ? 0 : ms.back().firstBucket + ms.back().buckets);
  for (const MemoryMap::Memory& m : ms) {
    for (uint32_t k = 0; k < m.buckets; ++k) {
      Bucket& b = buckets_[m.firstBucket + k];
      b.lo = m.low(k);
      b.hi = m.high(k);
    }
  }
}

void DependencyTracker::Entries::grow() {
  capacity = std::max<uint32_t>(4, 2 * capacity);
  auto bigger = std::make_unique_for_overwrite<Entry[]>(capacity);
  std::copy(begin(), end(), bigger.get());
  data = std::move(bigger);
}

namespace {

/// Removes the entries `implied(entry)` holds for, keeping the order of the rest.
template <typename L, typename F>
inline void dropIf(L& es, F implied) {
  auto keep = es.begin();
  for (auto d = keep, end = es.end(); d != end; ++d) {
    if (!implied(*d)) {
      if (keep != d) *keep = *d;
      ++keep;
    }
  }
  es.size = uint32_t(keep - es.begin());
}

/// Records a dependency on `e` (of another unit): one Dep per unit, the latest instruction.
template <typename E>
inline void addDep(std::vector<Dep>& deps, const E& e) {
  for (Dep& d : deps) {
    if (d.unit == e.unit) {
      d.inst = std::max(d.inst, e.inst);
      return;
    }
  }
  deps.push_back(Dep{e.unit, e.inst});
}

/// Whether `box` covers the part of `e` inside [lo, hi) along the bucketed coordinate.
inline bool coversClipped(const Box& box, Box e, bool byRow, uint64_t lo, uint64_t hi) {
  if (byRow) {
    e.r0 = std::max(e.r0, lo);
    e.r1 = std::min(e.r1, hi);
  } else {
    e.b0 = std::max(e.b0, lo);
    e.b1 = std::min(e.b1, hi);
  }
  return box.covers(e);
}

}  // namespace

void DependencyTracker::prune(Bucket& bucket, const double* endNs, double floorNs) {
  // Drops the entries that ended before `floorNs`, raising `prunedEnd` to their latest end.
  auto ended = [&](const Entry& e) {
    const double end = endNs[e.inst];
    if (end >= 0 && end <= floorNs) {
      bucket.prunedEnd = std::max(bucket.prunedEnd, end);
      return true;
    }
    return false;
  };
  dropIf(bucket.writes, ended);
  dropIf(bucket.reads, ended);
  bucket.pruneAt = std::max<uint32_t>(16, 2 * (bucket.writes.size + bucket.reads.size));
}

inline void DependencyTracker::check(const OperandBox& p, uint32_t unit, const Bucket& b,
                                     std::vector<Dep>& deps, double& lowerBoundNs) {
  // A read waits for writers, a write for everyone.
  lowerBoundNs = std::max(lowerBoundNs, b.prunedEnd);
  for (const Entry& e : b.writes) {
    if (e.unit != unit && e.box.overlaps(p.box)) addDep(deps, e);
  }
  if (p.write) {
    for (const Entry& e : b.reads) {
      if (e.unit != unit && e.box.overlaps(p.box)) addDep(deps, e);
    }
  }
}

inline void DependencyTracker::record(const OperandBox& p, uint32_t inst, uint32_t unit, Bucket& b,
                                      const double* endNs, double floorNs) {
  const uint64_t lo = b.lo, hi = b.hi;
  if (p.write) {
    // A write covering an entry's part here orders it for every later access.
    auto covered = [&](const Entry& e) { return coversClipped(p.box, e.box, p.byRow, lo, hi); };
    dropIf(b.writes, covered);
    dropIf(b.reads, covered);
    b.writes.push(Entry{p.box, inst, unit});
  } else {
    // A read by the same unit covering an earlier read of that unit supersedes it.
    dropIf(b.reads, [&](const Entry& e) {
      return e.unit == unit && coversClipped(p.box, e.box, p.byRow, lo, hi);
    });
    b.reads.push(Entry{p.box, inst, unit});
  }
  if (b.writes.size + b.reads.size > b.pruneAt) {
    if (endNs == nullptr) {
      overflowed_ = true;
    } else {
      prune(b, endNs, floorNs);
    }
  }
}

void DependencyTracker::access(uint32_t inst, uint32_t unit, std::span<const OperandBox> boxes,
                               std::vector<Dep>& deps, double& lowerBoundNs, const double* endNs,
                               double floorNs) {
  Bucket* const buckets = buckets_.data();
  // Every dependency is found before any access is recorded (recording drops and prunes
  // entries another operand may overlap).
  for (const OperandBox& p : boxes) {
    for (Bucket *b = buckets + p.firstBucket, *last = buckets + p.lastBucket; b <= last; ++b) {
      check(p, unit, *b, deps, lowerBoundNs);
    }
  }
  for (const OperandBox& p : boxes) {
    for (Bucket *b = buckets + p.firstBucket, *last = buckets + p.lastBucket; b <= last; ++b) {
      record(p, inst, unit, *b, endNs, floorNs);
    }
  }
}

}  // namespace trnsim::sim::detail
