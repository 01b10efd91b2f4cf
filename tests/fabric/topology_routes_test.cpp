// Topology routes and the analytical back end's link sharing, derived by hand.

#include <gtest/gtest.h>

#include "fabric_test_util.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/topology.h"

namespace trnsim::fabric {
namespace {

using arch::LinkKind;
using testing::dim;
using testing::domainSystem;
using testing::withScaleOut;

constexpr double kGbps = 100;
constexpr double kAlphaNs = 500;

Topology make(const arch::SystemConfig& s, uint64_t chips) {
  auto t = Topology::create(s, chips);
  EXPECT_TRUE(t.hasValue()) << t.status().toString();
  return std::move(t).value();
}

// Dimension order with the shortest direction on each ring: on a 4x4 torus chip 0 = (0,0) to
// chip 15 = (3,3) is one x hop backwards (0 -> 3) and one y hop backwards: 2 hops.
TEST(TopologyRoutes, TorusDimensionOrderShortestDirection) {
  Topology t = make(domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                  dim("y", LinkKind::kRing, 4, 2 * kGbps, 2 * kAlphaNs)}),
                    16);
  Route r;
  ASSERT_TRUE(t.route(0, 15, r).isOk());
  EXPECT_EQ(r.hops, 2u);
  EXPECT_DOUBLE_EQ(r.latencyNs, kAlphaNs + 2 * kAlphaNs);
  ASSERT_EQ(r.links.size(), 2u);
  EXPECT_DOUBLE_EQ(r.links[0].gbps, kGbps);      // x first
  EXPECT_DOUBLE_EQ(r.links[1].gbps, 2 * kGbps);  // then y
  // (0,0) -> (2,0): 2 hops either way; ties go forward.
  ASSERT_TRUE(t.route(0, 2, r).isOk());
  EXPECT_EQ(r.hops, 2u);
  // Same chip: one HBM link, no hop.
  ASSERT_TRUE(t.route(5, 5, r).isOk());
  EXPECT_EQ(r.hops, 0u);
  ASSERT_EQ(r.links.size(), 1u);
  EXPECT_FALSE(t.route(0, 16, r).isOk());
}

// Switch: chip -> switch -> chip is one hop over the source's up port and the destination's
// down port. Scale-out: NIC, 2 * tiers - 1 switches, NIC = 2 tiers + 1 hops.
TEST(TopologyRoutes, SwitchAndScaleOut) {
  arch::SystemConfig s =
      withScaleOut(domainSystem({dim("nvl", LinkKind::kSwitch, 8, kGbps, kAlphaNs)}), 50, 300, 3);
  Topology t = make(s, 32);
  EXPECT_EQ(t.domains(), 4u);
  Route r;
  ASSERT_TRUE(t.route(1, 6, r).isOk());
  EXPECT_EQ(r.hops, 1u);
  EXPECT_EQ(r.links.size(), 2u);
  ASSERT_TRUE(t.route(1, 9, r).isOk());
  EXPECT_EQ(r.hops, 7u);
  EXPECT_DOUBLE_EQ(r.latencyNs, 7 * 300.0);
  EXPECT_DOUBLE_EQ(r.links[0].gbps, 50.0);
}

// Smaller than one domain: the slowest dimensions are cut (16 chips of 4x4x4 = 4x4x1).
TEST(TopologyRoutes, SliceOfADomain) {
  arch::SystemConfig s = domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                       dim("y", LinkKind::kRing, 4, kGbps, kAlphaNs),
                                       dim("z", LinkKind::kRing, 4, kGbps, kAlphaNs)});
  s.chipsPerNode = 16;
  Topology t = make(s, 16);
  EXPECT_EQ(t.chipsPerDomain(), 16u);
  EXPECT_EQ(t.domains(), 1u);
  EXPECT_EQ(t.dims()[2].size, 1u);
  Topology t32 = make(s, 32);
  EXPECT_EQ(t32.dims()[2].size, 2u);
}

// Link sharing, static fair share: k flows from k different chips into chip 0 through a switch
// all cross chip 0's down port, so each gets B/k and takes alpha + b k / B: k times the
// bandwidth term of one flow alone.
TEST(TopologyRoutes, FlowsSharingOneLinkEachTakeKTimesAsLong) {
  arch::SystemConfig s = domainSystem({dim("sw", LinkKind::kSwitch, 8, kGbps, kAlphaNs)});
  Topology t = make(s, 8);
  auto backend = makeAnalyticalBackend();
  const uint64_t b = 1'000'000'000;
  for (uint64_t k = 1; k <= 7; ++k) {
    std::vector<Flow> flows;
    for (uint64_t i = 1; i <= k; ++i) flows.push_back({i, 0, b});
    auto sec = backend->phaseSeconds(t, flows);
    ASSERT_TRUE(sec.hasValue()) << sec.status().toString();
    EXPECT_NEAR(*sec, kAlphaNs * 1e-9 + double(b) * double(k) / (kGbps * 1e9), 1e-12) << k;
  }
}

// On a 4-ring, flow 0 -> 2 (2 hops, ties forward: links 0+ and 1+) and flow 1 -> 2 (link 1+)
// share link 1+: each gets B/2. Flow 0 -> 2: 2 alpha + 2b/B; flow 1 -> 2: alpha + 2b/B.
// A third flow 3 -> 0 on its own link keeps the full rate: alpha + b/B.
TEST(TopologyRoutes, PartialSharingOnARing) {
  Topology t = make(domainSystem({dim("x", LinkKind::kRing, 4, kGbps, kAlphaNs)}), 4);
  auto backend = makeAnalyticalBackend();
  const double b = 1e8;
  std::vector<Flow> flows = {{0, 2, uint64_t(b)}, {1, 2, uint64_t(b)}, {3, 0, uint64_t(b)}};
  auto timings = backend->flowTimings(t, flows);
  ASSERT_TRUE(timings.hasValue());
  const double alpha = kAlphaNs * 1e-9, rate = kGbps * 1e9;
  EXPECT_NEAR((*timings)[0].latencyS + b / (*timings)[0].bytesPerS, 2 * alpha + 2 * b / rate,
              1e-12);
  EXPECT_NEAR((*timings)[1].latencyS + b / (*timings)[1].bytesPerS, alpha + 2 * b / rate, 1e-12);
  EXPECT_NEAR((*timings)[2].latencyS + b / (*timings)[2].bytesPerS, alpha + b / rate, 1e-12);
  auto phase = backend->phaseSeconds(t, flows);
  ASSERT_TRUE(phase.hasValue());
  EXPECT_NEAR(*phase, 2 * alpha + 2 * b / rate, 1e-12);
}

// Concurrent groups share links: 4 tensor-parallel groups of 2 chips each on an 8-chip switch
// do not share ports (each chip has its own), but data-parallel groups across domains whose
// members sit on one chip with several ranks share that chip's NIC. 2 domains of 2 chips,
// 2 ranks per chip: groups {r, r + 4} (size 2, stride 4): each chip's 2 ranks each send n over
// the chip's NIC in the one send/recv step: 2 flows per NIC -> n * 2 / NIC.
TEST(TopologyRoutes, ConcurrentGroupsShareTheNic) {
  arch::SystemConfig s =
      withScaleOut(domainSystem({dim("x", LinkKind::kRing, 2, kGbps, kAlphaNs)}), 25, 100, 2);
  s.accel.ranksPerChip = 2;
  auto model = CollectiveModel::create(s, 4);
  ASSERT_TRUE(model.hasValue()) << model.status().toString();
  CollectiveRequest r;
  r.op = CollectiveOp::kSendRecv;
  r.bytes = 1'000'000'000;
  r.group = {2, 4, true};
  auto c = model->estimate(r);
  ASSERT_TRUE(c.hasValue()) << c.status().toString();
  const double hops = 2 * 2 + 1;
  EXPECT_NEAR(c->timeS, hops * 100e-9 + 1e9 * 2 / 25e9, 1e-12);
  // The same group alone: one rank per NIC.
  r.group.concurrentGroups = false;
  auto alone = model->estimate(r);
  ASSERT_TRUE(alone.hasValue());
  EXPECT_NEAR(alone->timeS, hops * 100e-9 + 1e9 / 25e9, 1e-12);
}

// Oversubscription: above the first tier a NIC gets 1/oversubscription of its bandwidth.
// One chip per domain, 4 domains, ring all-reduce over the Clos:
//   T = 2 * 3 * (7 hops * 100 ns + (n/4) * oversub / NIC).
TEST(TopologyRoutes, OversubscribedClos) {
  for (double oversub : {1.0, 2.0, 4.0}) {
    arch::SystemConfig s = withScaleOut(domainSystem({}), 50, 100, 3, oversub);
    s.chipsPerNode = 1;
    auto model = CollectiveModel::create(s, 4);
    ASSERT_TRUE(model.hasValue()) << model.status().toString();
    CollectiveRequest r;
    r.bytes = 400'000'000;
    r.algorithm = Algorithm::kRing;
    auto c = model->estimate(r);
    ASSERT_TRUE(c.hasValue()) << c.status().toString();
    EXPECT_NEAR(c->timeS, 6 * (700e-9 + 1e8 * oversub / 50e9), 1e-12) << oversub;
  }
}

}  // namespace
}  // namespace trnsim::fabric

namespace trnsim::fabric {
namespace {

// A fully connected dimension has a link to every peer: direct all-reduce over 4 chips puts
// one flow of n/4 on each pair link per half, so T = 2 (alpha + (n/4) beta): each chip sends
// on its 3 links at once, a third of the ring's bandwidth term 2 (3/4) n beta.
TEST(TopologyRoutes, FullyConnectedDirect) {
  auto m = CollectiveModel::create(
      testing::domainSystem({testing::dim("fc", arch::LinkKind::kFullyConnected, 4, 100, 500)}), 4);
  ASSERT_TRUE(m.hasValue()) << m.status().toString();
  CollectiveRequest r;
  r.bytes = 400'000'000;
  r.algorithm = Algorithm::kDirect;
  auto c = m->estimate(r);
  ASSERT_TRUE(c.hasValue()) << c.status().toString();
  EXPECT_NEAR(c->timeS, 2 * (500e-9 + 1e8 / 100e9), 1e-12);
  Route route;
  ASSERT_TRUE(m->topology().route(0, 3, route).isOk());
  EXPECT_EQ(route.hops, 1u);
}

}  // namespace
}  // namespace trnsim::fabric
