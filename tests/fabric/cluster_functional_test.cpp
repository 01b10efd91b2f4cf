// Functional multi-chip runs: every collective's values on 2..64 chips against host references
// (plain loops, fp32 accumulation in rank-list order, one rounding), bf16 and fp32, several
// replica groups, permute and sendrecv pairings; the same bits and times on 1 or many threads.

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "cluster_test_util.h"
#include "trnsim/sim/chip.h"
#include "trnsim/sim/functional.h"

namespace trnsim::fabric {
namespace {

using isa::AluOp;
using isa::Opcode;
using numerics::DType;
using testing::expandLists;
using testing::inputValues;
using testing::oneCollective;
using testing::referenceReduce;
using testing::rounded;
using testing::toBytes;
using testing::trn2Config;

struct Outcome {
  std::vector<std::vector<std::byte>> y;  ///< per rank
  ClusterResult result;
};

/// Runs `program` on n chips with seeded x (and y) per rank.
Outcome runOn(uint32_t n, const isa::Program& program, DType dt, uint32_t threads = 4) {
  Outcome o;
  ClusterOptions copts;
  copts.threads = threads;
  copts.transport = TransportKind::kLocal;
  auto c = Cluster::create(trn2Config(), nullptr, n, copts);
  EXPECT_TRUE(c.hasValue()) << (c.hasValue() ? "" : c.status().toString());
  if (!c.hasValue()) return o;
  Status s = c->loadAll(program);
  EXPECT_TRUE(s.isOk()) << s.toString();
  const int64_t nx = program.tensors[program.findTensor("x")].numElements();
  const int64_t ny = program.tensors[program.findTensor("y")].numElements();
  for (uint32_t r = 0; r < n; ++r) {
    EXPECT_TRUE(c->write(r, "x", toBytes(inputValues(r, nx, dt), dt)).isOk());
    EXPECT_TRUE(c->write(r, "y", toBytes(inputValues(r, ny, dt, 99), dt)).isOk());
  }
  auto res = c->run();
  EXPECT_TRUE(res.hasValue()) << (res.hasValue() ? "" : res.status().toString());
  if (!res.hasValue()) return o;
  o.result = std::move(*res);
  for (uint32_t r = 0; r < n; ++r) {
    auto y = c->read(r, "y");
    EXPECT_TRUE(y.hasValue());
    o.y.push_back(y.hasValue() ? *y : std::vector<std::byte>{});
  }
  return o;
}

std::vector<std::vector<float>> allInputs(uint32_t n, int64_t elems, DType dt) {
  std::vector<std::vector<float>> x;
  for (uint32_t r = 0; r < n; ++r) x.push_back(inputValues(r, elems, dt));
  return x;
}

struct Case {
  uint32_t chips;
  DType dt;
  std::vector<std::vector<uint32_t>> lists;
};

std::string caseName(const Case& c) {
  return fmt::format("{} chips, {}, {} lists", c.chips, numerics::dtypeName(c.dt), c.lists.size());
}

const std::vector<Case>& cases() {
  static const std::vector<Case> k = {
      {2, DType::kFP32, {}},
      {3, DType::kBF16, {}},
      {8, DType::kBF16, {{0, 1, 2, 3}, {4, 5, 6, 7}}},
      {8, DType::kFP32, {{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
      {6, DType::kBF16, {{3, 0, 5}, {1, 4, 2}}},  // list order is not rank order
      {16, DType::kFP32, {}},
      {64, DType::kBF16, {}},
  };
  return k;
}

TEST(ClusterFunctional, AllReduceMatchesHostReference) {
  for (const Case& c : cases()) {
    for (AluOp op : {AluOp::kAdd, AluOp::kMax}) {
      SCOPED_TRACE(caseName(c) + (op == AluOp::kAdd ? " add" : " max"));
      const int64_t elems = 300;
      auto p = oneCollective(Opcode::kAllReduce, c.dt, elems, elems, c.lists, op);
      Outcome o = runOn(c.chips, p, c.dt);
      ASSERT_EQ(o.y.size(), c.chips);
      auto x = allInputs(c.chips, elems, c.dt);
      for (const auto& list : expandLists(c.lists, c.chips)) {
        auto want = rounded(referenceReduce(x, list, op, 0, size_t(elems)), c.dt);
        for (uint32_t r : list) EXPECT_EQ(o.y[r], want) << "rank " << r;
      }
    }
  }
}

TEST(ClusterFunctional, AllGatherMatchesHostReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(caseName(c));
    const int64_t elems = 40;
    const size_t n = expandLists(c.lists, c.chips)[0].size();
    auto p = oneCollective(Opcode::kAllGather, c.dt, elems, elems * int64_t(n), c.lists);
    Outcome o = runOn(c.chips, p, c.dt);
    ASSERT_EQ(o.y.size(), c.chips);
    auto x = allInputs(c.chips, elems, c.dt);
    for (const auto& list : expandLists(c.lists, c.chips)) {
      std::vector<float> cat;
      for (uint32_t m : list) cat.insert(cat.end(), x[m].begin(), x[m].end());
      for (uint32_t r : list) EXPECT_EQ(o.y[r], rounded(cat, c.dt)) << "rank " << r;
    }
  }
}

TEST(ClusterFunctional, ReduceScatterMatchesHostReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(caseName(c));
    const int64_t chunk = 24;
    const size_t n = expandLists(c.lists, c.chips)[0].size();
    auto p = oneCollective(Opcode::kReduceScatter, c.dt, chunk * int64_t(n), chunk, c.lists,
                           AluOp::kAdd);
    Outcome o = runOn(c.chips, p, c.dt);
    ASSERT_EQ(o.y.size(), c.chips);
    auto x = allInputs(c.chips, chunk * int64_t(n), c.dt);
    for (const auto& list : expandLists(c.lists, c.chips))
      for (size_t k = 0; k < list.size(); ++k) {
        auto want = referenceReduce(x, list, AluOp::kAdd, k * size_t(chunk), size_t(chunk));
        EXPECT_EQ(o.y[list[k]], rounded(want, c.dt)) << "rank " << list[k];
      }
  }
}

TEST(ClusterFunctional, AllToAllMatchesHostReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(caseName(c));
    const int64_t chunk = 5;
    const size_t n = expandLists(c.lists, c.chips)[0].size();
    const int64_t elems = chunk * int64_t(n);
    auto p = oneCollective(Opcode::kAllToAll, c.dt, elems, elems, c.lists);
    Outcome o = runOn(c.chips, p, c.dt);
    ASSERT_EQ(o.y.size(), c.chips);
    auto x = allInputs(c.chips, elems, c.dt);
    for (const auto& list : expandLists(c.lists, c.chips))
      for (size_t k = 0; k < list.size(); ++k) {
        // Member k's chunk j comes from member j's chunk k.
        std::vector<float> want;
        for (size_t j = 0; j < list.size(); ++j)
          want.insert(want.end(), x[list[j]].begin() + int64_t(k) * chunk,
                      x[list[j]].begin() + int64_t(k + 1) * chunk);
        EXPECT_EQ(o.y[list[k]], rounded(want, c.dt)) << "rank " << list[k];
      }
  }
}

TEST(ClusterFunctional, CollectivePermutePairings) {
  const int64_t elems = 33;
  struct P {
    uint32_t chips;
    std::vector<std::vector<uint32_t>> pairs;
  };
  const std::vector<P> ps = {
      {5, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 0}}},  // ring shift
      {4, {{0, 1}, {1, 0}, {2, 3}, {3, 2}}},          // swaps
      {6, {{5, 0}, {2, 4}}},                          // partial: others keep their y
  };
  for (const P& pc : ps) {
    for (DType dt : {DType::kFP32, DType::kBF16}) {
      SCOPED_TRACE(fmt::format("{} chips, {} pairs", pc.chips, pc.pairs.size()));
      auto p = oneCollective(Opcode::kCollectivePermute, dt, elems, elems, pc.pairs);
      Outcome o = runOn(pc.chips, p, dt);
      ASSERT_EQ(o.y.size(), pc.chips);
      for (uint32_t r = 0; r < pc.chips; ++r) {
        std::vector<float> want = inputValues(r, elems, dt, 99);  // untouched
        for (const auto& pr : pc.pairs)
          if (pr[1] == r) want = inputValues(pr[0], elems, dt);
        EXPECT_EQ(o.y[r], rounded(want, dt)) << "rank " << r;
      }
    }
  }
}

TEST(ClusterFunctional, SendRecvRingAndPairs) {
  const int64_t elems = 17;
  for (uint32_t n : {2u, 4u, 7u}) {
    SCOPED_TRACE(fmt::format("{} chips, ring", n));
    ClusterOptions copts;
    copts.transport = TransportKind::kLocal;
    auto c = Cluster::create(trn2Config(), nullptr, n, copts);
    ASSERT_TRUE(c.hasValue()) << c.status().toString();
    for (uint32_t r = 0; r < n; ++r) {
      auto p = oneCollective(Opcode::kSendRecv, DType::kBF16, elems, elems, {}, AluOp::kAdd,
                             (r + 1) % n, (r + n - 1) % n);
      ASSERT_TRUE(c->load(r, p).isOk());
      ASSERT_TRUE(c->write(r, "x", toBytes(inputValues(r, elems, DType::kBF16), DType::kBF16))
                      .isOk());
      ASSERT_TRUE(c->write(r, "y", toBytes(inputValues(r, elems, DType::kBF16, 99),
                                           DType::kBF16))
                      .isOk());
    }
    auto res = c->run();
    ASSERT_TRUE(res.hasValue()) << res.status().toString();
    for (uint32_t r = 0; r < n; ++r) {
      auto y = c->read(r, "y");
      ASSERT_TRUE(y.hasValue());
      EXPECT_EQ(*y, rounded(inputValues((r + n - 1) % n, elems, DType::kBF16), DType::kBF16));
    }
    ASSERT_EQ(res->collectives.size(), 1u);  // one ring, one collective
    EXPECT_EQ(res->collectives[0].ranks.size(), n);
  }
}

TEST(ClusterFunctional, BitIdenticalOnOneOrManyThreads) {
  auto p = oneCollective(Opcode::kAllReduce, DType::kBF16, 5000, 5000, {{0, 2, 4, 6}, {1, 3, 5, 7}});
  Outcome one = runOn(8, p, DType::kBF16, 1);
  Outcome many = runOn(8, p, DType::kBF16, 8);
  EXPECT_EQ(one.y, many.y);
  EXPECT_EQ(one.result.simulatedNs, many.result.simulatedNs);
  ASSERT_EQ(one.result.collectives.size(), many.result.collectives.size());
  for (size_t i = 0; i < one.result.collectives.size(); ++i) {
    EXPECT_EQ(one.result.collectives[i].startNs, many.result.collectives[i].startNs);
    EXPECT_EQ(one.result.collectives[i].endNs, many.result.collectives[i].endNs);
  }
}

TEST(ClusterFunctional, HostMemoryForAllLocalChipsIsCheckedBeforeAFunctionalRun) {
  // Each chip alone fits in this machine's available memory, the chips together do not: the
  // ranks would allocate in parallel and the process would be killed part-way. A functional run
  // is refused up front with the sum; timing-only touches no memory and runs.
  const uint64_t available = sim::hostMemoryAvailable();
  if (available == 0) GTEST_SKIP() << "no MemAvailable on this host";
  const int64_t perChip = int64_t(std::min<uint64_t>(available / 10 * 6, uint64_t{48} << 30));
  const uint32_t n = uint32_t(available / uint64_t(perChip)) + 1;
  isa::KernelBuilder kb(trn2Config(), "big_hbm");
  auto big = kb.hbm("big", DType::kFP32, {perChip / 4}, isa::TensorKind::kInternal);
  (void)big;
  auto x = kb.hbm("x", DType::kFP32, {8}, isa::TensorKind::kInput);
  auto y = kb.hbm("y", DType::kFP32, {8}, isa::TensorKind::kInOut);
  ASSERT_TRUE(kb.allReduce(y.ap(), x.ap(), AluOp::kAdd, kb.replicaGroup({})).isOk());
  auto p = kb.finish();
  ASSERT_TRUE(p.hasValue()) << p.status().toString();
  ClusterOptions copts;
  copts.transport = TransportKind::kLocal;
  auto c = Cluster::create(trn2Config(), nullptr, n, copts);
  ASSERT_TRUE(c.hasValue()) << c.status().toString();
  ASSERT_TRUE(c->loadAll(*p).isOk());
  ClusterRunOptions functional;
  functional.detectUninitialized = false;
  auto refused = c->run(functional);
  ASSERT_FALSE(refused.hasValue());
  EXPECT_EQ(refused.status().code(), ErrorCode::kCapacity);
  EXPECT_NE(refused.status().message().find(fmt::format("{} chips needs", n)), std::string::npos)
      << refused.status().toString();
  EXPECT_NE(refused.status().message().find("timing-only"), std::string::npos);
  ClusterRunOptions timing;
  timing.computeValues = false;
  auto ran = c->run(timing);
  EXPECT_TRUE(ran.hasValue()) << ran.status().toString();
}

TEST(ClusterFunctional, LoneChipIsAWorldOfOneRank) {
  // sim::Chip alone: all_reduce over {} (every rank = rank 0) copies; a list naming rank 1
  // needs a cluster.
  auto p = oneCollective(Opcode::kAllReduce, DType::kFP32, 8, 8, {});
  sim::Chip chip(trn2Config());
  ASSERT_TRUE(chip.load({p}).isOk());
  const auto x = inputValues(0, 8, DType::kFP32);
  ASSERT_TRUE(chip.writeFloats("x", x).isOk());
  ASSERT_TRUE(chip.writeFloats("y", x).isOk());
  auto r = chip.run();
  ASSERT_TRUE(r.hasValue()) << r.status().toString();
  EXPECT_EQ(*chip.readFloats("y"), x);

  auto q = oneCollective(Opcode::kAllReduce, DType::kFP32, 8, 8, {{0, 1}});
  sim::Chip chip2(trn2Config());
  ASSERT_TRUE(chip2.load({q}).isOk());
  ASSERT_TRUE(chip2.writeFloats("x", x).isOk());
  auto r2 = chip2.run();
  ASSERT_FALSE(r2.hasValue());
  EXPECT_NE(r2.status().message().find("world of one rank"), std::string::npos)
      << r2.status().toString();
}

}  // namespace
}  // namespace trnsim::fabric
