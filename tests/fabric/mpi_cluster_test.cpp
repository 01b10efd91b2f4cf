// The simulator spread over MPI processes gives the bits and times of one process.
// MpiCluster.* skip unless started by mpirun: ctest runs them as fabric_mpi_np2 and
// fabric_mpi_np4 (`mpirun -np K test_fabric --gtest_filter=MpiCluster.*`). Each process runs
// the 8-rank program twice: spread over the K processes (MPI transport), and whole in this
// process (local transport), and compares output hashes, clocks and collective records.
// ClusterMultiStep.* run the same program in one process on 1 and on many threads.

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <set>

#include "cluster_test_util.h"
#include "trnsim/fabric/transport.h"

namespace trnsim::fabric {
namespace {

using isa::AluOp;
using isa::Slice;
using numerics::DType;
using testing::inputValues;
using testing::toBytes;
using testing::trn2Config;

constexpr uint32_t kRanks = 8;

/// Compute, then a chain of every collective; rank r's sendrecv goes to r+1.
isa::Program multiStep(uint32_t rank) {
  isa::KernelBuilder kb(trn2Config(), "multi_step");
  auto x = kb.hbm("x", DType::kFP32, {128 * 64}, isa::TensorKind::kInput);
  auto id = kb.hbm(kRankTensorName, DType::kFP32, {128}, isa::TensorKind::kInput);
  auto t = kb.hbm("t", DType::kBF16, {128 * 64});
  auto u = kb.hbm("u", DType::kBF16, {128 * 64}, isa::TensorKind::kOutput);
  auto g = kb.hbm("g", DType::kBF16, {4096}, isa::TensorKind::kOutput);
  auto v = kb.hbm("v", DType::kBF16, {4096}, isa::TensorKind::kOutput);
  auto w = kb.hbm("w", DType::kBF16, {2048}, isa::TensorKind::kOutput);
  auto z = kb.hbm("z", DType::kBF16, {2048}, isa::TensorKind::kOutput);
  auto s = kb.sbuf("s", DType::kFP32, {128, 64});
  auto r = kb.sbuf("r", DType::kFP32, {128, 1});
  auto sb = kb.sbuf("sb", DType::kBF16, {128, 64});
  auto ok = [&](Status x2) { EXPECT_TRUE(x2.isOk()) << x2.toString(); };
  ok(kb.dmaCopy(s.ap(), x.pattern({{64, 128}, {1, 64}})));
  ok(kb.dmaCopy(r.ap(), id.pattern({{1, 128}, {1, 1}})));
  // s = s * rank_id + 0.5: the ranks differ through the rank tensor.
  ok(kb.tensorScalar(sb.ap(), s.ap(), AluOp::kMultiply, r.ap(), AluOp::kAdd, 0.5f));
  ok(kb.dmaCopy(t.pattern({{64, 128}, {1, 64}}), sb.ap()));
  ok(kb.allReduce(u.ap(), t.ap(), AluOp::kAdd, kb.replicaGroup({{0, 1}, {2, 3}, {4, 5}, {6, 7}})));
  ok(kb.allGather(g.ap(), u({Slice::range(0, 1024)}), kb.replicaGroup({{0, 1, 2, 3}, {4, 5, 6, 7}})));
  ok(kb.sendRecv(v.ap(), g.ap(), (rank + 1) % kRanks, (rank + kRanks - 1) % kRanks));
  ok(kb.reduceScatter(w.ap(), v.ap(), AluOp::kMax, kb.replicaGroup({{0, 4}, {1, 5}, {2, 6}, {3, 7}})));
  std::vector<std::pair<uint32_t, uint32_t>> shift;
  for (uint32_t k = 0; k < kRanks; ++k) shift.emplace_back(k, (k + 3) % kRanks);
  ok(kb.collectivePermute(z.ap(), w.ap(), kb.permutePairs(shift)));
  ok(kb.coreBarrier(kb.replicaGroup({})));
  auto p = kb.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? *p : isa::Program{};
}

struct RunOutput {
  std::vector<uint64_t> hashes;
  ClusterResult result;
};

RunOutput runMultiStep(TransportKind transport, uint32_t threads) {
  RunOutput out;
  ClusterOptions copts;
  copts.transport = transport;
  copts.threads = threads;
  auto c = Cluster::create(trn2Config(), nullptr, kRanks, copts);
  EXPECT_TRUE(c.hasValue()) << (c.hasValue() ? "" : c.status().toString());
  if (!c.hasValue()) return out;
  for (uint32_t r = 0; r < kRanks; ++r) EXPECT_TRUE(c->load(r, multiStep(r)).isOk());
  for (uint32_t r = c->firstLocalRank(); r < c->endLocalRank(); ++r)
    EXPECT_TRUE(c->write(r, "x", toBytes(inputValues(r, 128 * 64, DType::kFP32), DType::kFP32))
                    .isOk());
  ClusterRunOptions ropts;
  ropts.seed = 7;
  auto res = c->run(ropts);
  EXPECT_TRUE(res.hasValue()) << (res.hasValue() ? "" : res.status().toString());
  if (!res.hasValue()) return out;
  out.result = std::move(*res);
  auto h = c->outputHashes();
  EXPECT_TRUE(h.hasValue());
  if (h.hasValue()) out.hashes = *h;
  return out;
}

void expectSame(const RunOutput& a, const RunOutput& b) {
  ASSERT_EQ(a.hashes.size(), size_t(kRanks));
  EXPECT_EQ(a.hashes, b.hashes);
  EXPECT_EQ(a.result.simulatedNs, b.result.simulatedNs);
  EXPECT_EQ(a.result.exposedCommNs, b.result.exposedCommNs);
  ASSERT_EQ(a.result.collectives.size(), b.result.collectives.size());
  for (size_t i = 0; i < a.result.collectives.size(); ++i) {
    EXPECT_EQ(a.result.collectives[i].ranks, b.result.collectives[i].ranks);
    EXPECT_EQ(a.result.collectives[i].startNs, b.result.collectives[i].startNs);
    EXPECT_EQ(a.result.collectives[i].endNs, b.result.collectives[i].endNs);
  }
  for (uint32_t r = 0; r < kRanks; ++r)
    EXPECT_EQ(a.result.ranks[r].run.simulatedNs, b.result.ranks[r].run.simulatedNs) << r;
}

TEST(ClusterMultiStep, SameBitsAndTimesOnOneOrManyThreads) {
  RunOutput one = runMultiStep(TransportKind::kLocal, 1);
  RunOutput many = runMultiStep(TransportKind::kLocal, 6);
  expectSame(one, many);
  // 6 collective instructions: 4 all_reduce lists, 2 all_gather lists, 1 sendrecv ring,
  // 4 reduce_scatter lists, the permute, the barrier.
  EXPECT_EQ(one.result.collectives.size(), 4u + 2u + 1u + 4u + 1u + 1u);
  std::set<uint64_t> distinct(one.hashes.begin(), one.hashes.end());
  EXPECT_GT(distinct.size(), 1u);  // the ranks' outputs differ (sendrecv, permute)
}

TEST(MpiCluster, SameBitsAndTimesAsOneProcess) {
  if (!launchedByMpi() || !mpiBuiltIn()) GTEST_SKIP() << "runs under mpirun (ctest fabric_mpi_np*)";
  RunOutput spread = runMultiStep(TransportKind::kMpi, 2);
  RunOutput whole = runMultiStep(TransportKind::kLocal, 2);
  expectSame(spread, whole);
}

TEST(MpiCluster, ErrorsReachEveryProcess) {
  if (!launchedByMpi() || !mpiBuiltIn()) GTEST_SKIP() << "runs under mpirun (ctest fabric_mpi_np*)";
  // Rank 7 calls all_gather where the others call all_reduce: every process reports the
  // same deadlock instead of hanging.
  ClusterOptions copts;
  copts.transport = TransportKind::kMpi;
  auto c = Cluster::create(trn2Config(), nullptr, kRanks, copts);
  ASSERT_TRUE(c.hasValue());
  auto reduce = testing::oneCollective(isa::Opcode::kAllReduce, DType::kFP32, 8, 8, {});
  auto gather = testing::oneCollective(isa::Opcode::kAllGather, DType::kFP32, 1, 8, {});
  for (uint32_t r = 0; r < kRanks; ++r) ASSERT_TRUE(c->load(r, r == 7 ? gather : reduce).isOk());
  for (uint32_t r = c->firstLocalRank(); r < c->endLocalRank(); ++r) {
    const auto& x = c->program(r).tensors[c->program(r).findTensor("x")];
    ASSERT_TRUE(c->write(r, "x", toBytes(inputValues(r, x.numElements(), DType::kFP32),
                                         DType::kFP32))
                    .isOk());
  }
  auto res = c->run();
  ASSERT_FALSE(res.hasValue());
  EXPECT_NE(res.status().message().find("rank 7 waits at instruction 0 (all_gather)"),
            std::string::npos)
      << res.status().toString();
}

}  // namespace
}  // namespace trnsim::fabric
