// Collective times against the alpha-beta formulas, derived by hand on hand-built systems.
// alpha = one hop's latency, beta = 1 / link bandwidth (s per byte), n = bytes per rank buffer,
// p = ranks. With one flow per link every step of an algorithm costs alpha + bytes * beta.

#include <gtest/gtest.h>

#include <cmath>

#include "fabric_test_util.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/topology.h"

namespace trnsim::fabric {
namespace {

using arch::LinkKind;
using testing::dim;
using testing::domainSystem;
using testing::kGiB;

constexpr double kGbps = 100;      // link bandwidth, GB/s per direction
constexpr double kAlphaNs = 1000;  // hop latency
constexpr double kAlpha = kAlphaNs * 1e-9;
constexpr double kBeta = 1.0 / (kGbps * 1e9);

CollectiveModel makeModel(const arch::SystemConfig& s, uint64_t chips = 0) {
  uint64_t n = chips ? chips : s.chipsPerNode;
  auto m = CollectiveModel::create(s, n);
  EXPECT_TRUE(m.hasValue()) << m.status().toString();
  return std::move(m).value();
}

CollectiveCost run(const CollectiveModel& m, CollectiveOp op, Algorithm a, double bytes,
                   GroupSpec g = {}) {
  CollectiveRequest r;
  r.op = op;
  r.algorithm = a;
  r.bytes = static_cast<uint64_t>(bytes);
  r.group = g;
  auto c = m.estimate(r);
  EXPECT_TRUE(c.hasValue()) << c.status().toString();
  return c.hasValue() ? c.value() : CollectiveCost{};
}

// A 1D ring of p chips: a ring all-reduce step sends n/p from each chip to its + neighbour,
// one flow per + link, so each step is alpha + (n/p) beta; RS and AG take p-1 steps each:
//   T = 2(p-1) alpha + 2 (p-1)/p n beta.
TEST(CollectiveAlphaBeta, RingAllReduceOnARing) {
  for (uint32_t p : {2u, 3u, 8u, 16u}) {
    CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, p, kGbps, kAlphaNs)}));
    for (double n : {8.0, 1e6, 1 * kGiB}) {
      double expected = 2 * (p - 1) * kAlpha + 2.0 * (p - 1) / p * n * kBeta;
      CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kRing, n);
      EXPECT_NEAR(c.timeS, expected, 1e-9 * expected) << "p=" << p << " n=" << n;
      EXPECT_EQ(c.ranks, p);
      // nccl-tests: busbw = algbw * 2(p-1)/p, so at large n busbw -> link bandwidth.
      EXPECT_NEAR(c.busbwGbps, n / c.timeS / 1e9 * 2.0 * (p - 1) / p, 1e-9 * c.busbwGbps);
    }
  }
}

// Reduce-scatter and all-gather alone: (p-1) alpha + (p-1)/p n beta each.
TEST(CollectiveAlphaBeta, RingReduceScatterAndAllGather) {
  const uint32_t p = 8;
  CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, p, kGbps, kAlphaNs)}));
  const double n = 64e6;
  double expected = (p - 1) * kAlpha + double(p - 1) / p * n * kBeta;
  for (CollectiveOp op : {CollectiveOp::kReduceScatter, CollectiveOp::kAllGather}) {
    CollectiveCost c = run(m, op, Algorithm::kRing, n);
    EXPECT_NEAR(c.timeS, expected, 1e-9 * expected) << opName(op);
    ASSERT_EQ(c.phases.size(), 1u);
    EXPECT_EQ(c.phases[0].steps, p - 1);
  }
}

// Bidirectional ring: both directions of every link, n/(2p) per flow per step:
//   T = 2(p-1) alpha + (p-1)/p n beta (half the ring's bandwidth term).
TEST(CollectiveAlphaBeta, BidirectionalRingHalvesTheBandwidthTerm) {
  const uint32_t p = 8;
  CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, p, kGbps, kAlphaNs)}));
  const double n = 256e6;
  double expected = 2 * (p - 1) * kAlpha + double(p - 1) / p * n * kBeta;
  CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kBidirectionalRing, n);
  EXPECT_NEAR(c.timeS, expected, 1e-9 * expected);
}

// Recursive halving-doubling on a switch (any-to-any, one up and one down port per chip):
// step k exchanges n/2^(k+1) with the partner at distance 2^k, one flow per port:
//   T = 2 log2(p) alpha + 2 (p-1)/p n beta.
TEST(CollectiveAlphaBeta, HalvingDoublingOnASwitch) {
  for (uint32_t p : {2u, 4u, 8u, 32u}) {
    CollectiveModel m = makeModel(domainSystem({dim("sw", LinkKind::kSwitch, p, kGbps, kAlphaNs)}));
    const double n = 1e8;
    double expected = 2 * std::log2(double(p)) * kAlpha + 2.0 * (p - 1) / p * n * kBeta;
    CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kHalvingDoubling, n);
    EXPECT_NEAR(c.timeS, expected, 1e-9 * expected) << "p=" << p;
  }
}

// Direct on a switch: one step in which every chip sends n/p to each of p-1 peers; p-1 flows
// share each port, so a flow gets B/(p-1): alpha + (p-1)/p n beta per half.
TEST(CollectiveAlphaBeta, DirectOnASwitch) {
  const uint32_t p = 8;
  CollectiveModel m = makeModel(domainSystem({dim("sw", LinkKind::kSwitch, p, kGbps, kAlphaNs)}));
  const double n = 1e8;
  double expected = 2 * kAlpha + 2.0 * (p - 1) / p * n * kBeta;
  CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kDirect, n);
  EXPECT_NEAR(c.timeS, expected, 1e-9 * expected);
  // All-to-all direct: the same one step with n/p per peer.
  CollectiveCost a = run(m, CollectiveOp::kAllToAll, Algorithm::kDirect, n);
  EXPECT_NEAR(a.timeS, kAlpha + (p - 1.0) / p * n * kBeta, 1e-9 * a.timeS);
}

// Torus all-reduce on a 4x4 torus: the data is cut in two halves, one doing x then y, the
// other y then x, so both dimensions' links work at once (bidirectional rings per dimension).
// Stage 1 (RS): each half n/2 over its first dimension: 3 steps of n/(2*2*4) per direction:
// 3 alpha + 3 n/16 beta; stage 2 (RS) on the n/8 left: 3 alpha + 3 n/64 beta; the all-gathers
// mirror them:  T = 12 alpha + 2 (3/16 + 3/64) n beta = 12 alpha + 15/32 n beta,
// half the bandwidth term of doing the dimensions one after the other (15/16 n beta).
TEST(CollectiveAlphaBeta, TorusAllReduceOn4x4) {
  CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                              dim("y", LinkKind::kRing, 4, kGbps, kAlphaNs)}));
  const double n = 1e9;
  double expected = 12 * kAlpha + 15.0 / 32.0 * n * kBeta;
  CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kTorus, n);
  EXPECT_NEAR(c.timeS, expected, 1e-9 * expected);
  EXPECT_EQ(c.phases.size(), 4u);  // RS stage 1, RS stage 2, AG stage 2, AG stage 1

  // 3D torus 4x4x4: thirds n/3, each stage j (sizes 4) on n/(3 * 4^j):
  //   T = 2 * sum_j [3 alpha + 3 n/(3 * 8 * 4^j) beta] = 18 alpha + (1/4)(1 + 1/4 + 1/16) n beta.
  CollectiveModel m3 = makeModel(domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                               dim("y", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                               dim("z", LinkKind::kRing, 4, kGbps, kAlphaNs)}));
  double expected3 = 18 * kAlpha + 0.25 * (1 + 0.25 + 0.0625) * n * kBeta;
  CollectiveCost c3 = run(m3, CollectiveOp::kAllReduce, Algorithm::kTorus, n);
  EXPECT_NEAR(c3.timeS, expected3, 1e-9 * expected3);

  // Uneven dimensions (y links at half the rate): a stage lasts as long as its slower part.
  // Stage 1: x half 3 alpha + 3 n/16 beta, y half 3 alpha + 2 * 3 n/16 beta -> the y half;
  // stage 2: x on n/8 after y: 3 alpha + 3 n/64 beta, y on n/8 after x: 3 alpha + 6 n/64 beta.
  //   T = 12 alpha + 2 (6/16 + 6/64) n beta = 12 alpha + 15/16 n beta.
  CollectiveModel mu = makeModel(domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                               dim("y", LinkKind::kRing, 4, kGbps / 2, kAlphaNs)}));
  double expectedU = 12 * kAlpha + 15.0 / 16.0 * n * kBeta;
  CollectiveCost cu = run(mu, CollectiveOp::kAllReduce, Algorithm::kTorus, n);
  EXPECT_NEAR(cu.timeS, expectedU, 1e-9 * expectedU);
}

// A flat ring over the 16 ranks of a 4x4 torus, in rank order: inside a row a step is one x
// hop; the last chip of a row reaches the next row's first chip by the x wrap-around link and
// one y link (2 hops). No link carries two flows, so a step is 2 alpha + (n/16) beta:
//   T = 2 * 15 * (2 alpha + n/16 beta).
TEST(CollectiveAlphaBeta, FlatRingOnATorusPaysTheLongestHop) {
  CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                              dim("y", LinkKind::kRing, 4, kGbps, kAlphaNs)}));
  const double n = 1.6e7;
  double expected = 30 * (2 * kAlpha + n / 16 * kBeta);
  CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kRing, n);
  EXPECT_NEAR(c.timeS, expected, 1e-9 * expected);
}

// In-network reduction on a switch that reduces: each port carries n (p+1)/p each way in one
// pass (plus a hop up and a hop down): T = 2 alpha + (p+1)/p n beta, so
// busbw = algbw * 2(p-1)/p -> 2 (p-1)/(p+1) B at large n.
TEST(CollectiveAlphaBeta, InNetworkAllReduce) {
  const uint32_t p = 8;
  CollectiveModel m =
      makeModel(domainSystem({dim("sw", LinkKind::kSwitch, p, kGbps, kAlphaNs, true)}));
  const double n = 4 * kGiB;
  double expected = 2 * kAlpha + (p + 1.0) / p * n * kBeta;
  CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kInNetwork, n);
  EXPECT_NEAR(c.timeS, expected, 1e-9 * expected);
  EXPECT_NEAR(c.busbwGbps, 2.0 * (p - 1) / (p + 1) * kGbps, 0.01 * kGbps);
  // Auto prefers it at large sizes (its bandwidth term is about half the ring's).
  CollectiveCost a = run(m, CollectiveOp::kAllReduce, Algorithm::kAuto, n);
  EXPECT_EQ(a.algorithm, Algorithm::kInNetwork);
}

// Broadcast as a pipelined chain with m chunks: (p - 2 + m) steps of alpha + (n/m) beta; the
// model picks m among powers of two, so it is no slower than any m it could have picked and
// no faster than the optimum over real m: 2 sqrt((p-2) alpha n beta) + (p-2) alpha + n beta.
TEST(CollectiveAlphaBeta, PipelinedBroadcast) {
  const uint32_t p = 8;
  CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, p, kGbps, kAlphaNs)}));
  const double n = 1e8;
  CollectiveCost c = run(m, CollectiveOp::kBroadcast, Algorithm::kRing, n);
  double lowerBound = 2 * std::sqrt((p - 2) * kAlpha * n * kBeta) + (p - 2) * kAlpha + n * kBeta;
  EXPECT_GE(c.timeS, lowerBound * (1 - 1e-9));
  for (double chunks : {1.0, 16.0, 256.0}) {
    EXPECT_LE(c.timeS, (p - 2 + chunks) * (kAlpha + n / chunks * kBeta) * (1 + 1e-9));
  }
}

// Auto picks a latency-light algorithm for small messages and a bandwidth-light one for large
// ones, and its time is the smallest candidate's. On an 8-ring: direct has one step (4 hops at
// most) per half; the bidirectional ring halves the bandwidth term.
TEST(CollectiveAlphaBeta, AutoChoiceChangesWithSize) {
  CollectiveModel m = makeModel(domainSystem({dim("x", LinkKind::kRing, 8, kGbps, kAlphaNs)}));
  CollectiveCost small = run(m, CollectiveOp::kAllReduce, Algorithm::kAuto, 8);
  CollectiveCost large = run(m, CollectiveOp::kAllReduce, Algorithm::kAuto, kGiB);
  EXPECT_NE(small.algorithm, large.algorithm);
  EXPECT_EQ(large.algorithm, Algorithm::kBidirectionalRing);
  // Small: direct, at most 4 hops each way, 2 phases: 8 alpha (+ a few bytes).
  EXPECT_EQ(small.algorithm, Algorithm::kDirect);
  EXPECT_NEAR(small.timeS, 8 * kAlpha, 0.01 * kAlpha);
  for (const CollectiveCost* c : {&small, &large}) {
    ASSERT_GE(c->candidates.size(), 3u);
    for (const auto& [a, t] : c->candidates) EXPECT_GE(t, c->timeS) << algorithmName(a);
  }
}

// nccl-tests (doc/PERFORMANCE.md) bus bandwidth factors.
TEST(CollectiveAlphaBeta, BusBandwidthFactors) {
  for (uint64_t n : {2u, 8u, 64u}) {
    double nd = double(n);
    EXPECT_DOUBLE_EQ(busBandwidthFactor(CollectiveOp::kAllReduce, n), 2 * (nd - 1) / nd);
    EXPECT_DOUBLE_EQ(busBandwidthFactor(CollectiveOp::kReduceScatter, n), (nd - 1) / nd);
    EXPECT_DOUBLE_EQ(busBandwidthFactor(CollectiveOp::kAllGather, n), (nd - 1) / nd);
    EXPECT_DOUBLE_EQ(busBandwidthFactor(CollectiveOp::kAllToAll, n), (nd - 1) / nd);
    EXPECT_DOUBLE_EQ(busBandwidthFactor(CollectiveOp::kBroadcast, n), 1.0);
  }
}

// Ranks of one chip exchange through HBM at memoryGbps / 2 (read + write), shared by the
// chip's on-chip flows. 2 chips x 4 ranks on a 2-ring, groups of 4 ranks (one chip each):
// every rank sends n/4 per ring step, 4 flows share the chip's 500 GB/s, no hop latency:
//   T = 2 * 3 * (n/4) / (500e9 / 4) = 6 n / 500e9.
TEST(CollectiveAlphaBeta, OnChipRanksShareHbm) {
  arch::SystemConfig s = domainSystem({dim("x", LinkKind::kRing, 2, kGbps, kAlphaNs)});
  s.accel.ranksPerChip = 4;
  s.accel.memoryGbps = 1000;
  CollectiveModel m = makeModel(s);
  const double n = 1e8;
  CollectiveCost c = run(m, CollectiveOp::kAllReduce, Algorithm::kRing, n, {4, 1, true});
  EXPECT_NEAR(c.timeS, 6 * n / 500e9, 1e-9 * c.timeS);
  // One group alone: 4 flows on the chip still (the whole group is on it).
  CollectiveCost alone = run(m, CollectiveOp::kAllReduce, Algorithm::kRing, n, {4, 1, false});
  EXPECT_NEAR(alone.timeS, c.timeS, 1e-9 * c.timeS);
}

}  // namespace
}  // namespace trnsim::fabric

namespace trnsim::fabric {
namespace {

// Two levels: 4 domains of a 4-chip switch (B = 100 GB/s, alpha = 1 us), joined by a 2-tier
// Clos (NIC N = 25 GB/s, 100 ns per hop -> 5 hops = 500 ns), one rank per chip.
// Hierarchical all-reduce of n over all 16 ranks:
//   RS inside the domain, direct (best on a switch): alpha + (3/4) n / B
//   AR across the 4 domains of the n/4 left, direct: each NIC carries 3 flows of n/16 per
//     half: 2 * (500 ns + 3 (n/16) / N)
//   AG inside the domain: alpha + (3/4) n / B
// A flat ring instead: every step has one flow per NIC (chip 3 of a domain to chip 0 of the
// next) and is bound by it: 30 * (500 ns + (n/16) / N).
TEST(CollectiveAlphaBeta, HierarchicalAcrossDomains) {
  arch::SystemConfig s = testing::withScaleOut(
      testing::domainSystem({testing::dim("sw", arch::LinkKind::kSwitch, 4, 100, 1000)}), 25, 100,
      2);
  auto m = CollectiveModel::create(s, 16);
  ASSERT_TRUE(m.hasValue()) << m.status().toString();
  const double n = 1e9, alpha = 1e-6, B = 100e9, N = 25e9;
  CollectiveRequest r;
  r.bytes = uint64_t(n);
  r.algorithm = Algorithm::kHierarchical;
  auto h = m->estimate(r);
  ASSERT_TRUE(h.hasValue()) << h.status().toString();
  double expected = 2 * (alpha + 0.75 * n / B) + 2 * (500e-9 + 3 * (n / 16) / N);
  EXPECT_NEAR(h->timeS, expected, 1e-9 * expected);
  ASSERT_EQ(h->phases.size(), 4u);  // RS in, RS out, AG out, AG in

  r.algorithm = Algorithm::kRing;
  auto ring = m->estimate(r);
  ASSERT_TRUE(ring.hasValue());
  EXPECT_NEAR(ring->timeS, 30 * (500e-9 + n / 16 / N), 1e-9 * ring->timeS);

  r.algorithm = Algorithm::kAuto;
  auto a = m->estimate(r);
  ASSERT_TRUE(a.hasValue());
  EXPECT_EQ(a->algorithm, Algorithm::kHierarchical);
}

}  // namespace
}  // namespace trnsim::fabric

namespace trnsim::fabric {
namespace {

// Broadcast with halving_doubling on an 8-port switch (alpha = 1 us, B = 100 GB/s): the faster
// of a binomial tree, log2 p (alpha + n beta), and scatter + all-gather (van de Geijn),
// 2 log2 p alpha + 2 (p-1)/p n beta. Small n: the tree (3 alpha + 3 n beta); large n: the
// scatter + all-gather (6 alpha + 1.75 n beta).
TEST(CollectiveAlphaBeta, BroadcastTreeOrScatterAllGather) {
  auto m = CollectiveModel::create(
      testing::domainSystem({testing::dim("sw", arch::LinkKind::kSwitch, 8, 100, 1000)}), 8);
  ASSERT_TRUE(m.hasValue());
  const double alpha = 1e-6, beta = 1 / 100e9;
  CollectiveRequest r;
  r.op = CollectiveOp::kBroadcast;
  r.algorithm = Algorithm::kHalvingDoubling;
  for (double n : {1e3, 1e9}) {
    r.bytes = uint64_t(n);
    auto c = m->estimate(r);
    ASSERT_TRUE(c.hasValue()) << c.status().toString();
    double expected = std::min(3 * (alpha + n * beta), 6 * alpha + 1.75 * n * beta);
    EXPECT_NEAR(c->timeS, expected, 1e-9 * expected) << n;
  }
}

}  // namespace
}  // namespace trnsim::fabric
