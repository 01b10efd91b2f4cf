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

void DependencyTracker::init(const arch::ChipConfig& chip, const isa::Program& program) {
  program_ = &program;
  memories_.clear();
  memories_.resize(2);
  memories_[0].shift = 9;
  memories_[0].buckets.resize(std::max<uint64_t>(1, (chip.mem.sbufBytesPerPartition + 511) >> 9));
  // PSUM: one bucket per 2 KiB bank (engine operands stay inside a bank).
  memories_[1].shift = 11;
  memories_[1].buckets.resize(std::max<uint64_t>(1, (chip.psumBytesPerPartition() + 2047) >> 11));

  const size_t n = program.tensors.size();
  hbmMemoryOf_.assign(n, 0);
  hbmBaseOf_.assign(n, 0);
  hbmRowBytesOf_.assign(n, 1);
  std::vector<uint32_t> rootMemory(n, UINT32_MAX);
  for (size_t t = 0; t < n; ++t) {
    const isa::TensorDecl& decl = program.tensors[t];
    if (decl.onChip()) continue;
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
      m.buckets.resize((extent >> m.shift) + 1);
      memories_.push_back(std::move(m));
    }
    hbmMemoryOf_[t] = rootMemory[root];
    hbmRowBytesOf_[t] = rowBytes;
    hbmBaseOf_[t] = decl.byteOffset >= rootDecl.byteOffset ? decl.byteOffset - rootDecl.byteOffset : 0;
  }
}

bool DependencyTracker::place(const isa::AccessPattern& ap, isa::Access access, Place& out) const {
  if (ap.partitions == 0) return false;
  for (int d = 0; d < ap.numFree; ++d) {
    if (ap.free[d].count <= 0) return false;
  }
  const isa::TensorDecl& decl = program_->tensors[ap.tensor];
  const uint64_t es = numerics::dtypeSize(decl.dtype);
  int64_t lo, hi;
  freeSpan(ap, lo, hi);
  Box box;
  if (decl.onChip()) {
    out.memory = decl.space == isa::MemSpace::kSbuf ? 0 : 1;
    box.r0 = uint64_t(decl.partitionStart) + ap.partitionOffset;
    box.r1 = box.r0 + ap.partitions;
    int64_t first = std::max<int64_t>(0, ap.offset + lo);
    int64_t last = std::max<int64_t>(first, ap.offset + hi);
    box.b0 = decl.byteOffset + uint64_t(first) * es;
    box.b1 = decl.byteOffset + uint64_t(last + 1) * es;
  } else {
    out.memory = hbmMemoryOf_[ap.tensor];
    const uint64_t rowBytes = std::max<uint64_t>(1, hbmRowBytesOf_[ap.tensor]);
    const uint64_t base = hbmBaseOf_[ap.tensor];
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
  uint64_t c0 = m.byRow ? box.r0 : box.b0;
  uint64_t c1 = m.byRow ? box.r1 - 1 : box.b1 - 1;
  uint64_t maxBucket = m.buckets.size() - 1;
  out.firstBucket = uint32_t(std::min<uint64_t>(c0 >> m.shift, maxBucket));
  out.lastBucket = uint32_t(std::min<uint64_t>(c1 >> m.shift, maxBucket));
  out.read = access != isa::Access::kWrite;
  out.write = access != isa::Access::kRead;
  return true;
}

void DependencyTracker::prune(Bucket& bucket, const double* endNs, double floorNs) {
  auto& es = bucket.entries;
  size_t keep = 0;
  for (size_t i = 0; i < es.size(); ++i) {
    double e = endNs[es[i].inst];
    if (e >= 0 && e <= floorNs) {
      bucket.prunedEnd = std::max(bucket.prunedEnd, e);
    } else {
      es[keep++] = es[i];
    }
  }
  es.resize(keep);
  bucket.pruneAt = std::max<uint32_t>(16, uint32_t(2 * keep));
}

void DependencyTracker::access(uint32_t inst, uint32_t unit, const isa::Instruction& instruction,
                               std::vector<Dep>& deps, double& lowerBoundNs, const double* endNs,
                               double floorNs) {
  const isa::OpInfo& info = isa::opInfo(instruction.opcode);
  scratch_.clear();
  for (const isa::Operand& o : instruction.operands) {
    Place p;
    if (place(o.ap, info.operands[o.slot].access, p)) scratch_.push_back(p);
  }
  auto addDep = [&](const Entry& e) {
    if (e.unit == unit) return;  // the unit's own order already holds
    for (Dep& d : deps) {
      if (d.unit == e.unit) {
        d.inst = std::max(d.inst, e.inst);
        return;
      }
    }
    deps.push_back(Dep{e.unit, e.inst});
  };
  // 1. Dependencies on earlier accesses.
  for (const Place& p : scratch_) {
    Memory& m = memories_[p.memory];
    for (uint32_t b = p.firstBucket; b <= p.lastBucket; ++b) {
      Bucket& bucket = m.buckets[b];
      lowerBoundNs = std::max(lowerBoundNs, bucket.prunedEnd);
      for (const Entry& e : bucket.entries) {
        if ((e.write || p.write) && e.box.overlaps(p.box)) addDep(e);
      }
    }
  }
  // 2. Record this instruction's accesses; drop entries whose order it now implies.
  for (const Place& p : scratch_) {
    Memory& m = memories_[p.memory];
    for (uint32_t b = p.firstBucket; b <= p.lastBucket; ++b) {
      Bucket& bucket = m.buckets[b];
      // The part of the memory this bucket stands for.
      uint64_t lo = uint64_t(b) << m.shift, hi = (uint64_t(b) + 1) << m.shift;
      if (b == m.buckets.size() - 1) hi = UINT64_MAX;
      auto& es = bucket.entries;
      size_t keep = 0;
      for (size_t i = 0; i < es.size(); ++i) {
        const Entry& e = es[i];
        if (!p.write && (e.write || e.unit != unit)) {  // cannot be superseded by this read
          if (keep != i) es[keep] = e;
          ++keep;
          continue;
        }
        Box part = e.box;
        if (m.byRow) {
          part.r0 = std::max(part.r0, lo);
          part.r1 = std::min(part.r1, hi);
        } else {
          part.b0 = std::max(part.b0, lo);
          part.b1 = std::min(part.b1, hi);
        }
        // A write covering an entry's part here orders it for every later access; a read by
        // the same unit covering an earlier read of that unit supersedes it.
        bool implied = p.write ? p.box.covers(part)
                               : (!e.write && e.unit == unit && p.box.covers(part));
        if (!implied) {
          if (keep != i) es[keep] = e;
          ++keep;
        }
      }
      es.resize(keep);
      es.push_back(Entry{p.box, inst, unit, p.write});
      if (es.size() > bucket.pruneAt) prune(bucket, endNs, floorNs);
    }
  }
}

}  // namespace trnsim::sim::detail
