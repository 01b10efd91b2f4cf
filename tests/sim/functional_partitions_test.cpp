// Large elementwise instructions split over host threads by partition (Exec::runByPartition):
// the same bytes with any thread count, for kernels of the library and for the operand shapes
// the split has to get right (a per-partition scalar tile, in-place operands, activation's
// per-partition reduction, odd slice boundaries), and the same error for
// a read of memory nothing wrote.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "functional_test_util.h"
#include "trnsim/kernels/norm.h"
#include "trnsim/kernels/softmax.h"

namespace trnsim::sim {
namespace {

using isa::AluOp;
using isa::DType;
using isa::Slice;

/// Seeded normals for every element of `name`.
void fill(Chip& chip, const std::string& name, uint32_t seed) {
  auto cur = chip.readFloats(name);
  ASSERT_TRUE(cur.hasValue()) << cur.status().toString();
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(cur->size());
  for (float& x : v) x = normal(gen);
  ASSERT_TRUE(chip.writeFloats(name, v).isOk());
}

/// Loads `program`, fills `inputs` (seeded by position), runs values only with `threads` and
/// `rounding`, and returns the bytes of `outputs`, one after the other.
std::vector<std::byte> runWith(const isa::Program& program, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs, uint32_t threads,
                               numerics::Rounding rounding = numerics::Rounding::kNearestEven) {
  Chip chip(testing::trn2());
  Status s = chip.load({program});
  EXPECT_TRUE(s.isOk()) << s.toString();
  for (size_t i = 0; i < inputs.size(); ++i) fill(chip, inputs[i], uint32_t(100 + i));
  RunOptions o = testing::valuesOnly();
  o.threads = threads;
  o.rounding = rounding;
  auto r = chip.run(o);
  EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
  std::vector<std::byte> all;
  for (const std::string& name : outputs) {
    auto out = chip.read(name);
    EXPECT_TRUE(out.hasValue()) << (out.hasValue() ? "" : out.status().toString());
    if (out.hasValue()) all.insert(all.end(), out->begin(), out->end());
  }
  return all;
}

/// A program of every split opcode on [128, 1024] tiles (large enough to split): DMA loads, a
/// tensor_scalar by a [128, 1] tile, in-place ones, an activation with its row sums, a
/// reduction, a reciprocal, a scan, a memset, a predicated copy, copies to bf16, batch-norm
/// statistics, and the two selects with their reductions.
isa::Program everySplitOpcode() {
  const arch::ChipConfig cfg = testing::trn2();
  isa::KernelBuilder b(cfg, "split");
  auto in = b.hbm("in", DType::kFP32, {128, 1024}, isa::TensorKind::kInput);
  auto col = b.hbm("col", DType::kFP32, {128, 1}, isa::TensorKind::kInput);
  auto out = b.hbm("out", DType::kBF16, {128, 1024}, isa::TensorKind::kOutput);
  auto sums = b.hbm("sums", DType::kFP32, {128, 2}, isa::TensorKind::kOutput);
  auto last = b.hbm("last", DType::kFP32, {128, 1024}, isa::TensorKind::kOutput);
  auto stats = b.hbm("stats", DType::kFP32, {128, 12}, isa::TensorKind::kOutput);
  auto stats2 = b.hbm("stats2", DType::kFP32, {128, 2}, isa::TensorKind::kOutput);
  auto selected = b.hbm("selected", DType::kFP32, {128, 1024}, isa::TensorKind::kOutput);
  auto x = b.sbuf("x", DType::kFP32, {128, 1024});
  auto y = b.sbuf("y", DType::kFP32, {128, 1024});
  auto z = b.sbuf("z", DType::kFP32, {128, 1024});
  auto c = b.sbuf("c", DType::kFP32, {128, 1});
  auto r = b.sbuf("r", DType::kFP32, {128, 2});
  auto st = b.sbuf("st", DType::kFP32, {128, 12});
  auto st2 = b.sbuf("st2", DType::kFP32, {128, 2});
  auto o = b.sbuf("o", DType::kBF16, {128, 1024});
  EXPECT_TRUE(b.dmaCopy(x.ap(), in.ap()).isOk());
  EXPECT_TRUE(b.dmaCopy(c.ap(), col.ap()).isOk());
  EXPECT_TRUE(b.tensorScalar(y.ap(), x.ap(), AluOp::kMultiply, c.ap(), AluOp::kAdd, 0.5f).isOk());
  EXPECT_TRUE(b.tensorScalar(y.ap(), y.ap(), AluOp::kSubtract, 0.125f).isOk());
  EXPECT_TRUE(b.tensorTensor(y.ap(), y.ap(), x.ap(), AluOp::kMax).isOk());
  EXPECT_TRUE(b.activation(x.ap(), isa::ActFunc::kExp, y.ap(), {}, 0.25f, AluOp::kAdd,
                           r({Slice::all(), Slice::range(0, 1)}))
                  .isOk());
  EXPECT_TRUE(b.tensorReduce(r({Slice::all(), Slice::range(1, 2)}), AluOp::kMax, x.ap(), 1).isOk());
  EXPECT_TRUE(b.reciprocal(y.ap(), x.ap()).isOk());
  EXPECT_TRUE(b.tensorCopy(o.ap(), y.ap()).isOk());
  EXPECT_TRUE(b.tensorTensorScan(x.ap(), y.ap(), x.ap(), c.ap(), AluOp::kMultiply, AluOp::kAdd)
                  .isOk());
  EXPECT_TRUE(b.tensorScalar(z.ap(), y.ap(), AluOp::kIsGt, 1.0f).isOk());  // a 0/1 mask
  EXPECT_TRUE(b.tensorCopyPredicated(o.ap(), x.ap(), z.ap()).isOk());
  EXPECT_TRUE(b.memset(z.ap(), 3.0f).isOk());
  EXPECT_TRUE(b.tensorTensor(y.ap(), y.ap(), z.ap(), AluOp::kAdd).isOk());
  EXPECT_TRUE(b.dmaCopy(out.ap(), o.ap()).isOk());
  EXPECT_TRUE(b.dmaCopy(sums.ap(), r.ap()).isOk());
  EXPECT_TRUE(b.dmaCopy(last.ap(), y.ap()).isOk());
  // Batch-norm statistics, and selects with their per-partition reductions.
  EXPECT_TRUE(b.bnStats(st.ap(), x.ap()).isOk());
  EXPECT_TRUE(b.selectReduce(z.ap(), y.ap(), x.ap(), -2.0f, AluOp::kAdd,
                             st2({Slice::all(), Slice::range(0, 1)}))
                  .isOk());
  EXPECT_TRUE(b.rangeSelect(y.ap(), z.ap(), AluOp::kIsGe, AluOp::kIsLt, c.ap(), c.ap(), -512.0f,
                            -1.0f, AluOp::kMax, st2({Slice::all(), Slice::range(1, 2)}))
                  .isOk());
  EXPECT_TRUE(b.dmaCopy(stats.ap(), st.ap()).isOk());
  EXPECT_TRUE(b.dmaCopy(stats2.ap(), st2.ap()).isOk());
  EXPECT_TRUE(b.dmaCopy(selected.ap(), y.ap()).isOk());
  auto p = b.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? *p : isa::Program{};
}

TEST(FunctionalPartitions, EverySplitOpcodeGivesTheBytesOfOneThread) {
  const isa::Program p = everySplitOpcode();
  const std::vector<std::string> outputs{"out", "sums", "last", "stats", "stats2", "selected"};
  const auto one = runWith(p, {"in", "col"}, outputs, 1);
  ASSERT_FALSE(one.empty());
  for (uint32_t threads : {2u, 3u, 5u, 0u}) {
    EXPECT_EQ(runWith(p, {"in", "col"}, outputs, threads), one) << threads << " threads";
  }
}

TEST(FunctionalPartitions, KernelsGiveTheBytesOfOneThread) {
  const arch::ChipConfig cfg = testing::trn2();
  auto softmax = kernels::softmaxProgram(cfg, 256, 2048);
  ASSERT_TRUE(softmax.hasValue()) << softmax.status().toString();
  auto rms = kernels::rmsNormProgram(cfg, 256, 2048);
  ASSERT_TRUE(rms.hasValue()) << rms.status().toString();
  for (const isa::Program* p : {&*softmax, &*rms}) {
    std::vector<std::string> inputs, outputs;
    for (const isa::TensorDecl& t : p->tensors) {
      if (t.kind == isa::TensorKind::kInput) inputs.push_back(t.name);
      if (t.kind == isa::TensorKind::kOutput) outputs.push_back(t.name);
    }
    const auto one = runWith(*p, inputs, outputs, 1);
    ASSERT_FALSE(one.empty()) << p->name;
    EXPECT_EQ(runWith(*p, inputs, outputs, 2), one) << p->name;
    EXPECT_EQ(runWith(*p, inputs, outputs, 3), one) << p->name;
  }
}

TEST(FunctionalPartitions, StochasticRoundingGivesTheBytesOfOneThread) {
  // Stochastic rounding draws its bits in element order, so such writes are not split.
  const isa::Program p = everySplitOpcode();
  const auto one = runWith(p, {"in", "col"}, {"out"}, 1, numerics::Rounding::kStochastic);
  EXPECT_EQ(runWith(p, {"in", "col"}, {"out"}, 2, numerics::Rounding::kStochastic), one);
  EXPECT_NE(runWith(p, {"in", "col"}, {"out"}, 2), one);  // it did round differently
}

TEST(FunctionalPartitions, ReadOfUnwrittenMemoryNamesTheSameElement) {
  // Row 77 of x is never written: the error names it whatever the thread count.
  auto build = [](isa::KernelBuilder& b) {
    auto in = b.hbm("in", DType::kFP32, {128, 1024}, isa::TensorKind::kInput);
    auto x = b.sbuf("x", DType::kFP32, {128, 1024});
    auto y = b.sbuf("y", DType::kFP32, {128, 1024});
    ASSERT_TRUE(b.dmaCopy(x({Slice::range(0, 77), Slice::all()}),
                          in({Slice::range(0, 77), Slice::all()}))
                    .isOk());
    ASSERT_TRUE(b.dmaCopy(x({Slice::range(78, 128), Slice::all()}),
                          in({Slice::range(78, 128), Slice::all()}))
                    .isOk());
    ASSERT_TRUE(b.tensorScalar(y.ap(), x.ap(), AluOp::kAdd, 1.0f).isOk());
  };
  std::vector<std::string> messages;
  for (uint32_t threads : {1u, 2u}) {
    Chip chip = testing::loadProgram(build);
    fill(chip, "in", 1);
    RunOptions o = testing::valuesOnly();
    o.threads = threads;
    auto r = chip.run(o);
    ASSERT_FALSE(r.hasValue());
    EXPECT_EQ(r.status().code(), ErrorCode::kUninitializedRead);
    messages.push_back(r.status().toString());
  }
  EXPECT_NE(messages[0].find("[77, 0]"), std::string::npos) << messages[0];
  EXPECT_EQ(messages[1], messages[0]);
}

}  // namespace
}  // namespace trnsim::sim
