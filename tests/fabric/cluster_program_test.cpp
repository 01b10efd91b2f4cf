// Collective instructions as programs: text and binary round trips (and version-1 files), the
// verifier's rules, run-time errors that name the rank and the instruction (never a hang),
// and the timing of a run against the fabric model and the chip's timing model.

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "cluster_test_util.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/text.h"
#include "trnsim/isa/verify.h"
#include "trnsim/sim/timing.h"

namespace trnsim::fabric {
namespace {

using isa::AluOp;
using isa::Opcode;
using numerics::DType;
using testing::oneCollective;
using testing::toBytes;
using testing::inputValues;
using testing::trn2Config;
using isa::Slice;

isa::Program everyCollective() {
  isa::KernelBuilder kb(trn2Config(), "every_collective");
  auto x = kb.hbm("x", DType::kBF16, {64}, isa::TensorKind::kInput);
  auto y = kb.hbm("y", DType::kBF16, {256}, isa::TensorKind::kOutput);
  const uint32_t all = kb.replicaGroup({});
  const uint32_t quads = kb.replicaGroup({{0, 1, 2, 3}, {4, 5, 6, 7}});
  EXPECT_EQ(kb.replicaGroup({{0, 1, 2, 3}, {4, 5, 6, 7}}), quads);  // found, not added twice
  const uint32_t pairs = kb.permutePairs({{0, 1}, {1, 0}});
  EXPECT_TRUE(kb.allReduce(y({Slice::range(0, 64)}), x.ap(), AluOp::kMax, all).isOk());
  EXPECT_TRUE(kb.allGather(y.ap(), x.ap(), quads).isOk());
  EXPECT_TRUE(kb.reduceScatter(y({Slice::range(0, 16)}), x.ap(), AluOp::kAdd, quads).isOk());
  EXPECT_TRUE(kb.allToAll(y({Slice::range(0, 64)}), x.ap(), quads).isOk());
  EXPECT_TRUE(kb.collectivePermute(y({Slice::range(0, 64)}), x.ap(), pairs).isOk());
  EXPECT_TRUE(kb.sendRecv(y({Slice::range(64, 128)}), x.ap(), 3, 5, 1).isOk());
  EXPECT_TRUE(kb.coreBarrier(quads, y.ap()).isOk());
  EXPECT_TRUE(kb.coreBarrier(all).isOk());
  auto p = kb.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? *p : isa::Program{};
}

TEST(ClusterProgram, TextAndBinaryRoundTrip) {
  isa::Program p = everyCollective();
  ASSERT_EQ(p.replicaGroups.size(), 3u);
  const std::string text = isa::printProgram(p);
  EXPECT_NE(text.find("replica_group 1 [[0, 1, 2, 3], [4, 5, 6, 7]]"), std::string::npos) << text;
  EXPECT_NE(text.find("sendrecv.dma"), std::string::npos);
  auto back = isa::parseProgram(text, "t.tsim");
  ASSERT_TRUE(back.hasValue()) << back.status().toString();
  EXPECT_EQ(back->replicaGroups, p.replicaGroups);
  EXPECT_EQ(back->instructions, p.instructions);
  auto bin = isa::decodeProgram(isa::encodeProgram(p), "t.bin");
  ASSERT_TRUE(bin.hasValue()) << bin.status().toString();
  EXPECT_EQ(bin->replicaGroups, p.replicaGroups);
  EXPECT_EQ(bin->instructions, p.instructions);
  EXPECT_TRUE(isa::checkProgram(*bin, trn2Config()).isOk());
}

TEST(ClusterProgram, VersionOneFilesStillLoad) {
  // A version-1 file is a version-2 file without the trailing RGRP section: cut it off
  // (tag 4 + length 8 + an empty table 4 = 16 bytes), set version 1 and reseal.
  isa::Program p = oneCollective(Opcode::kAllReduce, DType::kFP32, 4, 4, {});
  p.instructions.clear();
  p.replicaGroups.clear();
  std::vector<uint8_t> b = isa::encodeProgram(p);
  ASSERT_GT(b.size(), 48u);
  b.resize(b.size() - 16);
  b[8] = 1;
  const uint64_t payload = b.size() - 32;
  const uint64_t sum = isa::payloadChecksum(std::span<const uint8_t>(b).subspan(32));
  for (int i = 0; i < 8; ++i) {
    b[16 + size_t(i)] = uint8_t(payload >> (8 * i));
    b[24 + size_t(i)] = uint8_t(sum >> (8 * i));
  }
  auto back = isa::decodeProgram(b, "v1.bin");
  ASSERT_TRUE(back.hasValue()) << back.status().toString();
  EXPECT_EQ(back->tensors.size(), 2u);
  b[8] = uint8_t(isa::kBinaryFormatVersion + 1);
  auto newer = isa::decodeProgram(b, "v3.bin");
  ASSERT_FALSE(newer.hasValue());
  EXPECT_NE(newer.status().message().find("newer trnsim"), std::string::npos);
}

TEST(ClusterProgram, VerifierRules) {
  auto expectError = [](const std::function<Status(isa::KernelBuilder&, isa::Tensor&,
                                                   isa::Tensor&)>& body,
                        const std::string& needle) {
    isa::KernelBuilder kb(trn2Config(), "bad");
    auto x = kb.hbm("x", DType::kFP32, {64}, isa::TensorKind::kInput);
    auto y = kb.hbm("y", DType::kFP32, {128}, isa::TensorKind::kOutput);
    Status s = body(kb, x, y);
    ASSERT_FALSE(s.isOk()) << needle;
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.toString();
    EXPECT_NE(s.where().find("instruction 0"), std::string::npos) << s.toString();
  };
  expectError([](auto& kb, auto& x, auto& y) {
    return kb.allReduce(y({Slice::range(0, 64)}), x.ap(), AluOp::kMultiply, kb.replicaGroup({}));
  }, "add, max or min");
  expectError([](auto& kb, auto& x, auto& y) {
    return kb.allReduce(y({Slice::range(0, 64)}), x.ap(), AluOp::kAdd, 7);
  }, "replica-group table");
  expectError([](auto& kb, auto& x, auto& y) {
    return kb.allGather(y.ap(), x.ap(), kb.replicaGroup({{0, 1, 2}}));
  }, "3 x 64 = 192");
  expectError([](auto& kb, auto& x, auto& y) {
    return kb.allReduce(y({Slice::range(0, 64)}), x.ap(), AluOp::kAdd,
                        kb.replicaGroup({{0, 1}, {1, 2}}));
  }, "rank 1 appears twice");
  expectError([](auto& kb, auto& x, auto& y) {
    return kb.allReduce(y.ap(), x.ap(), AluOp::kAdd, kb.replicaGroup({}));
  }, "dst has 128 elements but src has 64");
  expectError([](auto& kb, auto& x, auto& y) {
    return kb.collectivePermute(y({Slice::range(0, 64)}), x.ap(), kb.permutePairs({{0, 1}, {2, 1}}));
  }, "repeats a source or a target");
}

TEST(ClusterProgram, BuilderProgramsAreNotVerifiedAgainAtLoad) {
  // Issue 13, verification once: the builder stamped the program for this chip, so neither
  // load nor loadAll runs the verifier again; a program changed after it was built is checked.
  const isa::Program p = oneCollective(isa::Opcode::kAllReduce, DType::kFP32, 64, 64, {{0, 1}});
  ClusterOptions copts;
  copts.transport = TransportKind::kLocal;
  auto c = Cluster::create(trn2Config(), nullptr, 2, copts);
  ASSERT_TRUE(c.hasValue()) << c.status().toString();
  const uint64_t before = isa::programVerificationCount();
  ASSERT_TRUE(c->loadAll(p).isOk());
  ASSERT_TRUE(c->load(0, p).isOk());
  ASSERT_TRUE(c->load(1, p).isOk());
  EXPECT_EQ(isa::programVerificationCount(), before);
  isa::Program changed = p;
  changed.instructions[0].operands[0].ap.offset = 1 << 20;  // y out of bounds
  Status s = c->load(0, changed);
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(isa::programVerificationCount(), before + 1);
  EXPECT_FALSE(c->loadAll(changed).isOk());
  EXPECT_EQ(isa::programVerificationCount(), before + 2);
}

/// Runs per-rank programs on n chips; returns the run's status.
Status runPrograms(const std::vector<isa::Program>& programs) {
  ClusterOptions copts;
  copts.transport = TransportKind::kLocal;
  auto c = Cluster::create(trn2Config(), nullptr, uint32_t(programs.size()), copts);
  if (!c.hasValue()) return c.status();
  for (uint32_t r = 0; r < programs.size(); ++r) {
    TRNSIM_RETURN_IF_ERROR(c->load(r, programs[r]));
    const auto& x = programs[r].tensors[programs[r].findTensor("x")];
    TRNSIM_RETURN_IF_ERROR(c->write(r, "x", toBytes(inputValues(r, x.numElements(), x.dtype), x.dtype)));
  }
  auto res = c->run();
  return res.hasValue() ? Status::ok() : res.status();
}

TEST(ClusterErrors, MismatchedSizesAcrossRanks) {
  auto a = oneCollective(Opcode::kAllReduce, DType::kFP32, 16, 16, {});
  auto b = oneCollective(Opcode::kAllReduce, DType::kFP32, 32, 32, {});
  Status s = runPrograms({a, a, b});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("ranks 0 and 2 disagree on all_reduce"), std::string::npos)
      << s.toString();
  EXPECT_NE(s.where().find("rank 2 instruction 0 (all_reduce)"), std::string::npos)
      << s.toString();
}

TEST(ClusterErrors, RankOutsideTheGroup) {
  auto p = oneCollective(Opcode::kAllReduce, DType::kFP32, 8, 8, {{0, 1}});
  Status s = runPrograms({p, p, p});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("rank 2 is not in replica group 0"), std::string::npos)
      << s.toString();
  EXPECT_NE(s.where().find("rank 2 instruction 0"), std::string::npos) << s.toString();

  auto q = oneCollective(Opcode::kAllReduce, DType::kFP32, 8, 8, {{0, 5}});
  s = runPrograms({q, q});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("names rank 5, but the cluster has 2 ranks"), std::string::npos)
      << s.toString();
}

TEST(ClusterErrors, DifferentCollectivesDeadlockIsAnErrorNotAHang) {
  auto reduce = oneCollective(Opcode::kAllReduce, DType::kFP32, 8, 8, {});
  auto gather = oneCollective(Opcode::kAllGather, DType::kFP32, 4, 8, {});
  Status s = runPrograms({reduce, gather});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("deadlock"), std::string::npos) << s.toString();
  EXPECT_NE(s.message().find("rank 0 waits at instruction 0 (all_reduce)"), std::string::npos)
      << s.toString();
  EXPECT_NE(s.message().find("rank 1 waits at instruction 0 (all_gather)"), std::string::npos)
      << s.toString();

  // A sendrecv whose peer never answers, and a rank that finished early.
  auto lonely = oneCollective(Opcode::kSendRecv, DType::kFP32, 8, 8, {}, AluOp::kAdd, 1, 1);
  isa::KernelBuilder kb(trn2Config(), "nothing");
  kb.hbm("x", DType::kFP32, {8}, isa::TensorKind::kInput);
  auto done = kb.finish();
  ASSERT_TRUE(done.hasValue());
  s = runPrograms({lonely, *done});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("rank 0 waits at instruction 0 (sendrecv) (send to 1, receive "
                             "from 1)"),
            std::string::npos)
      << s.toString();
  EXPECT_NE(s.message().find("rank 1 has finished its program"), std::string::npos)
      << s.toString();
}

TEST(ClusterTiming, CollectiveTimeIsTheFabricModels) {
  // A program of dma_copy HBM -> SBUF -> HBM, then an all_reduce of 1 MiB on 8 chips: each
  // rank's time = its segment (the chip's timing model alone) + the model's all-reduce time.
  const int64_t elems = 128 * 2048;  // 1 MiB of fp32
  isa::KernelBuilder kb(trn2Config(), "copy_then_reduce");
  auto x = kb.hbm("x", DType::kFP32, {elems}, isa::TensorKind::kInput);
  auto t = kb.hbm("t", DType::kFP32, {elems});
  auto y = kb.hbm("y", DType::kFP32, {elems}, isa::TensorKind::kOutput);
  auto s = kb.sbuf("s", DType::kFP32, {128, 2048});
  ASSERT_TRUE(kb.dmaCopy(s.ap(), x.pattern({{2048, 128}, {1, 2048}})).isOk());
  ASSERT_TRUE(kb.dmaCopy(t.pattern({{2048, 128}, {1, 2048}}), s.ap()).isOk());
  ASSERT_TRUE(kb.allReduce(y.ap(), t.ap(), AluOp::kAdd, kb.replicaGroup({})).isOk());
  auto p = kb.finish();
  ASSERT_TRUE(p.hasValue()) << p.status().toString();

  ClusterOptions copts;
  copts.transport = TransportKind::kLocal;
  auto c = Cluster::create(trn2Config(), nullptr, 8, copts);
  ASSERT_TRUE(c.hasValue()) << c.status().toString();
  ASSERT_TRUE(c->loadAll(*p).isOk());
  ClusterRunOptions ropts;
  ropts.computeValues = false;
  auto res = c->run(ropts);
  ASSERT_TRUE(res.hasValue()) << res.status().toString();

  isa::Program piece = *p;
  piece.instructions.pop_back();
  const isa::Program* perCore[] = {&piece};
  auto tl = sim::simulateTiming(trn2Config(), perCore);
  ASSERT_TRUE(tl.hasValue());
  auto system = arch::loadSystem("trn2.48xlarge");
  ASSERT_TRUE(system.hasValue());
  auto model = CollectiveModel::create(*system, 16);
  ASSERT_TRUE(model.hasValue()) << model.status().toString();
  CollectiveRequest req;
  req.op = CollectiveOp::kAllReduce;
  req.bytes = uint64_t(elems) * 4;
  req.group.size = 8;
  req.group.stride = system->accel.ranksPerChip;  // one rank per chip, chips 0..7
  req.group.concurrentGroups = false;
  auto cost = model->estimate(req);
  ASSERT_TRUE(cost.hasValue()) << cost.status().toString();

  EXPECT_DOUBLE_EQ(res->simulatedNs, tl->endNs + cost->timeS * 1e9);
  ASSERT_EQ(res->collectives.size(), 1u);
  EXPECT_DOUBLE_EQ(res->collectives[0].startNs, tl->endNs);
  EXPECT_EQ(res->collectives[0].bytes, uint64_t(elems) * 4);
  EXPECT_EQ(res->collectives[0].algorithm, cost->algorithm);
  EXPECT_DOUBLE_EQ(res->computeNs, tl->endNs);
  EXPECT_DOUBLE_EQ(res->exposedCommNs, cost->timeS * 1e9);
  EXPECT_DOUBLE_EQ(res->commTax, cost->timeS * 1e9 / res->simulatedNs);
  EXPECT_EQ(res->overlap, 0.0);
}

TEST(ClusterTiming, CollectiveStartsWhenTheLastMemberArrives) {
  // Rank 1 copies 4x more data before the barrier-like all_reduce than rank 0: both leave
  // at the same time, rank 0 having waited (exposed comm) for rank 1.
  auto build = [](int64_t rows) {
    isa::KernelBuilder kb(trn2Config(), "uneven");
    auto x = kb.hbm("x", DType::kFP32, {128 * 512}, isa::TensorKind::kInput);
    auto y = kb.hbm("y", DType::kFP32, {8}, isa::TensorKind::kOutput);
    auto s = kb.sbuf("s", DType::kFP32, {128, 512});
    for (int64_t i = 0; i < rows; ++i)
      EXPECT_TRUE(kb.dmaCopy(s.ap(), x.pattern({{512, 128}, {1, 512}})).isOk());
    EXPECT_TRUE(kb.allReduce(y.ap(), x({Slice::range(0, 8)}), AluOp::kAdd, kb.replicaGroup({}))
                    .isOk());
    return *kb.finish();
  };
  ClusterOptions copts;
  copts.transport = TransportKind::kLocal;
  auto c = Cluster::create(trn2Config(), nullptr, 2, copts);
  ASSERT_TRUE(c.hasValue());
  ASSERT_TRUE(c->load(0, build(1)).isOk());
  ASSERT_TRUE(c->load(1, build(4)).isOk());
  ClusterRunOptions ropts;
  ropts.computeValues = false;
  auto res = c->run(ropts);
  ASSERT_TRUE(res.hasValue()) << res.status().toString();
  const auto& r0 = res->ranks[0];
  const auto& r1 = res->ranks[1];
  EXPECT_LT(r0.computeNs, r1.computeNs);
  EXPECT_DOUBLE_EQ(r0.run.simulatedNs, r1.run.simulatedNs);
  EXPECT_DOUBLE_EQ(res->collectives[0].startNs, r1.computeNs);
  EXPECT_DOUBLE_EQ(r0.exposedCommNs - r1.exposedCommNs, r1.computeNs - r0.computeNs);
}

}  // namespace
}  // namespace trnsim::fabric
