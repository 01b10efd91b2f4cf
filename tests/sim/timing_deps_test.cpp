// The timing model's address buckets (sim/timing_deps.h): on-chip grids are cut where tensors
// start and end, so neighbouring small tensors land in buckets of their own, and the
// dependencies found do not depend on where the cuts fall.

#include "trnsim/sim/timing_deps.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "timing_test_util.h"

namespace trnsim::sim::detail {
namespace {

using testing::trn2Like;

/// Eight [128, 8] fp32 SBUF tensors side by side (32 bytes a partition each) from byte 0x8b00,
/// as the flash-attention kernel lays out its running statistics, and one HBM matrix.
isa::Program statsProgram() {
  isa::Program p;
  for (int k = 0; k < 8; ++k) {
    isa::TensorDecl d;
    d.name = "stats" + std::to_string(k);
    d.space = isa::MemSpace::kSbuf;
    d.dtype = numerics::DType::kFP32;
    d.shape = {128, 8};
    d.byteOffset = 0x8b00 + 32 * uint64_t(k);
    p.tensors.push_back(d);
  }
  isa::TensorDecl h;
  h.name = "hbm";
  h.space = isa::MemSpace::kHbm;
  h.dtype = numerics::DType::kBF16;
  h.shape = {1024, 1024};
  p.tensors.push_back(h);
  return p;
}

/// Column `col` of tensor `t` on all 128 partitions, or `cols` columns from it.
isa::AccessPattern column(uint32_t t, int64_t col, int64_t cols = 1) {
  isa::AccessPattern ap;
  ap.tensor = t;
  ap.partitions = 128;
  ap.offset = col;
  ap.numFree = 1;
  ap.free[0] = {1, cols};
  return ap;
}

TEST(TimingBuckets, SmallTensorsSideBySideGetABucketEach) {
  const arch::ChipConfig chip = trn2Like();
  const isa::Program p = statsProgram();
  MemoryMap map;
  map.init(chip, p);
  const MemoryMap::Memory& sbuf = map.memories()[0];
  // The plain 1 KiB grid plus a cut at each tensor's start and end (0x8b00..0x8c00: the
  // grid already cuts at 0x8c00).
  EXPECT_EQ(sbuf.buckets, (chip.mem.sbufBytesPerPartition >> 10) + 8);
  std::vector<uint32_t> seen;
  for (uint32_t t = 0; t < 8; ++t) {
    OperandBox box;
    ASSERT_TRUE(map.place(column(t, 0, 8), isa::Access::kWrite, box));
    EXPECT_EQ(box.firstBucket, box.lastBucket) << "tensor " << t;
    EXPECT_EQ(sbuf.low(box.firstBucket), p.tensors[t].byteOffset);
    EXPECT_EQ(sbuf.high(box.firstBucket), p.tensors[t].byteOffset + 32);
    for (uint32_t s : seen) EXPECT_NE(s, box.firstBucket);
    seen.push_back(box.firstBucket);
  }
  // A column range reaching past its tensor spans the buckets of the next.
  isa::AccessPattern wide = column(2, 0, 24);  // tensors 2, 3 and 4
  OperandBox box;
  ASSERT_TRUE(map.place(wide, isa::Access::kRead, box));
  EXPECT_EQ(box.firstBucket, seen[2]);
  EXPECT_EQ(box.lastBucket, seen[4]);
  // HBM keeps its uniform grid.
  EXPECT_TRUE(map.memories()[2].lows.empty());
  // An address before every tensor is in the grid's chunk.
  EXPECT_EQ(sbuf.bucketOf(0), 0u);
  EXPECT_EQ(sbuf.bucketOf(0x8aff), sbuf.bucketOf(0x8a00));
  EXPECT_EQ(sbuf.bucketOf(0x8b1f), seen[0]);
}

TEST(TimingBuckets, DependenciesFollowOverlapAcrossCuts) {
  const arch::ChipConfig chip = trn2Like();
  const isa::Program p = statsProgram();
  MemoryMap map;
  map.init(chip, p);
  DependencyTracker tracker;
  tracker.init(map);
  std::vector<double> endNs(8, -1.0);
  auto access = [&](uint32_t inst, uint32_t unit, isa::AccessPattern ap, isa::Access acc) {
    OperandBox box;
    EXPECT_TRUE(map.place(ap, acc, box));
    std::vector<Dep> deps;
    double lower = 0;
    tracker.access(inst, unit, {&box, 1}, deps, lower, endNs.data(), 0);
    return deps;
  };
  constexpr uint32_t kVector = 1, kScalar = 2, kGpSimd = 3;
  EXPECT_TRUE(access(0, kVector, column(1, 5), isa::Access::kWrite).empty());
  EXPECT_TRUE(access(1, kVector, column(2, 5), isa::Access::kWrite).empty());
  // Another tensor's column: no dependency.
  EXPECT_TRUE(access(2, kScalar, column(3, 5), isa::Access::kRead).empty());
  // The written column: waits for its writer only.
  auto deps = access(3, kScalar, column(2, 5), isa::Access::kRead);
  ASSERT_EQ(deps.size(), 1u);
  EXPECT_EQ(deps[0].unit, kVector);
  EXPECT_EQ(deps[0].inst, 1u);
  // A write over tensors 1..3 waits for the latest Vector writer and the Scalar readers.
  deps = access(4, kGpSimd, column(1, 0, 24), isa::Access::kWrite);
  std::sort(deps.begin(), deps.end(), [](const Dep& a, const Dep& b) { return a.unit < b.unit; });
  ASSERT_EQ(deps.size(), 2u);
  EXPECT_EQ(deps[0].unit, kVector);
  EXPECT_EQ(deps[0].inst, 1u);
  EXPECT_EQ(deps[1].unit, kScalar);
  EXPECT_EQ(deps[1].inst, 3u);
}

}  // namespace
}  // namespace trnsim::sim::detail
