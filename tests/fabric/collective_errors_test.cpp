// Bad input gives a clear error that names the place; edge sizes give defined results.

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

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CollectiveErrors, NamesRoundTripAndBadNames) {
  for (CollectiveOp op :
       {CollectiveOp::kAllReduce, CollectiveOp::kReduceScatter, CollectiveOp::kAllGather,
        CollectiveOp::kAllToAll, CollectiveOp::kBroadcast, CollectiveOp::kSendRecv,
        CollectiveOp::kPermute, CollectiveOp::kBarrier}) {
    auto back = parseOp(opName(op));
    ASSERT_TRUE(back.hasValue());
    EXPECT_EQ(*back, op);
  }
  auto bad = parseOp("allreduce");
  ASSERT_FALSE(bad.hasValue());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(bad.status().message(), "'allreduce'"));
  EXPECT_TRUE(contains(bad.status().message(), "all_reduce"));  // lists what is accepted

  for (std::string name : {"auto", "ring", "bidirectional_ring", "torus", "halving_doubling",
                           "direct", "hierarchical", "in_network"}) {
    auto a = parseAlgorithm(name);
    ASSERT_TRUE(a.hasValue()) << name;
    EXPECT_EQ(algorithmName(*a), name);
  }
  auto badAlgo = parseAlgorithm("tree");
  ASSERT_FALSE(badAlgo.hasValue());
  EXPECT_TRUE(contains(badAlgo.status().message(), "'tree'"));
}

class CollectiveErrorsModel : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = CollectiveModel::create(domainSystem({dim("x", LinkKind::kRing, 4, 100, 500),
                                                   dim("y", LinkKind::kRing, 2, 100, 500)}),
                                     8);
    ASSERT_TRUE(m.hasValue()) << m.status().toString();
    model_ = std::make_unique<CollectiveModel>(std::move(m).value());
  }
  Expected<CollectiveCost> est(CollectiveOp op, uint64_t bytes, GroupSpec g = {},
                               Algorithm a = Algorithm::kAuto) {
    CollectiveRequest r;
    r.op = op;
    r.bytes = bytes;
    r.group = g;
    r.algorithm = a;
    return model_->estimate(r);
  }
  std::unique_ptr<CollectiveModel> model_;
};

TEST_F(CollectiveErrorsModel, GroupsThatDoNotTile) {
  auto c = est(CollectiveOp::kAllReduce, 1024, {3, 1, true});
  ASSERT_FALSE(c.hasValue());
  EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(c.status().where(), "group"));
  EXPECT_TRUE(contains(c.status().message(), "does not divide the 8 ranks"));
  // Alone, a group of 3 is fine.
  EXPECT_TRUE(est(CollectiveOp::kAllReduce, 1024, {3, 1, false}).hasValue());
  // Too large, zero stride.
  EXPECT_FALSE(est(CollectiveOp::kAllReduce, 1024, {16, 1, true}).hasValue());
  EXPECT_FALSE(est(CollectiveOp::kAllReduce, 1024, {4, 0, true}).hasValue());
  EXPECT_FALSE(est(CollectiveOp::kAllReduce, 1024, {4, 4, false}).hasValue());
}

TEST_F(CollectiveErrorsModel, AlgorithmThatDoesNotApply) {
  // Halving-doubling needs a power-of-two group; 6 ranks alone is not.
  auto c = est(CollectiveOp::kAllReduce, 1024, {6, 1, false}, Algorithm::kHalvingDoubling);
  ASSERT_FALSE(c.hasValue());
  EXPECT_EQ(c.status().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(contains(c.status().message(), "power of 2"));
  // In-network needs a reducing switch; hierarchical needs several domains.
  EXPECT_FALSE(est(CollectiveOp::kAllReduce, 1024, {}, Algorithm::kInNetwork).hasValue());
  EXPECT_FALSE(est(CollectiveOp::kAllReduce, 1024, {}, Algorithm::kHierarchical).hasValue());
  // An algorithm an op does not have.
  auto s = est(CollectiveOp::kSendRecv, 1024, {}, Algorithm::kRing);
  ASSERT_FALSE(s.hasValue());
  EXPECT_TRUE(contains(s.status().message(), "send_recv"));
  // Auto still answers where some candidates do not apply, and lists only those that do.
  auto a = est(CollectiveOp::kAllReduce, 1024, {6, 1, false});
  ASSERT_TRUE(a.hasValue());
  for (const auto& [algo, t] : a->candidates) {
    EXPECT_NE(algo, Algorithm::kHalvingDoubling);
    EXPECT_GT(t, 0);
  }
}

TEST_F(CollectiveErrorsModel, ZeroBytesAndSingleRanks) {
  auto z = est(CollectiveOp::kAllReduce, 0);
  ASSERT_TRUE(z.hasValue());
  EXPECT_EQ(z->timeS, 0);
  EXPECT_EQ(z->algbwGbps, 0);
  EXPECT_EQ(z->busbwGbps, 0);
  auto one = est(CollectiveOp::kAllReduce, 1 << 20, {1, 1, true});
  ASSERT_TRUE(one.hasValue());
  EXPECT_EQ(one->timeS, 0);
  // A barrier costs latency whatever its size: 3 dissemination rounds (shifts 1, 2, 4 on the
  // 8 ranks of a 4x2 torus) of at least one hop each.
  auto b = est(CollectiveOp::kBarrier, 0);
  ASSERT_TRUE(b.hasValue());
  EXPECT_GE(b->timeS, 3 * 500e-9);
  EXPECT_EQ(b->busbwGbps, 0);
}

TEST_F(CollectiveErrorsModel, SkewOnlyForAllToAll) {
  CollectiveRequest r;
  r.op = CollectiveOp::kAllToAll;
  r.bytes = 1 << 20;
  r.skew = 2;
  auto skewed = model_->estimate(r);
  ASSERT_TRUE(skewed.hasValue());
  r.skew = 1;
  auto even = model_->estimate(r);
  ASSERT_TRUE(even.hasValue());
  EXPECT_GT(skewed->timeS, even->timeS);
  r.skew = 0.5;
  EXPECT_FALSE(model_->estimate(r).hasValue());
  r.skew = 2;
  r.op = CollectiveOp::kAllReduce;
  EXPECT_FALSE(model_->estimate(r).hasValue());
}

TEST(CollectiveErrors, ClusterSizes) {
  arch::SystemConfig s =
      withScaleOut(domainSystem({dim("x", LinkKind::kRing, 4, 100, 500)}), 50, 100, 3, 1, 64);
  // Not a whole number of nodes (4 chips).
  auto odd = CollectiveModel::create(s, 6);
  ASSERT_FALSE(odd.hasValue());
  EXPECT_TRUE(contains(odd.status().message(), "whole number of nodes"));
  // More than the network's max_chips.
  auto big = CollectiveModel::create(s, 128);
  ASSERT_FALSE(big.hasValue());
  EXPECT_TRUE(contains(big.status().message(), "max_chips"));
  EXPECT_TRUE(CollectiveModel::create(s, 64).hasValue());
  EXPECT_FALSE(CollectiveModel::create(s, 0).hasValue());
  // Several domains but no scale-out network.
  arch::SystemConfig noNet = domainSystem({dim("x", LinkKind::kRing, 4, 100, 500)});
  auto lonely = CollectiveModel::create(noNet, 8);
  ASSERT_FALSE(lonely.hasValue());
  EXPECT_TRUE(contains(lonely.status().message(), "no scale-out network"));
}

}  // namespace
}  // namespace trnsim::fabric
