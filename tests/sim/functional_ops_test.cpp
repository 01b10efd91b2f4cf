// Functional semantics of each opcode on small inputs, against values derived by hand.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "functional_test_util.h"

namespace trnsim::sim {
namespace {

using isa::ActFunc;
using isa::AluOp;
using isa::Dim;
using isa::MemSpace;
using isa::Slice;
using numerics::DType;
using testing::OpTest;

constexpr DType F32 = DType::kFP32;
constexpr DType BF16 = DType::kBF16;

TEST(FunctionalOps, TensorTensorArithmetic) {
  OpTest t;
  auto a = t.in("a", F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto b = t.in("b", F32, {2, 3}, {6, 5, 4, 3, 2, 1});
  auto sum = t.out("sum", F32, {2, 3});
  auto mx = t.out("mx", F32, {2, 3});
  auto gt = t.out("gt", F32, {2, 3});
  ASSERT_TRUE(t.kb().tensorTensor(sum.ap(), a.ap(), b.ap(), AluOp::kSubtract).isOk());
  ASSERT_TRUE(t.kb().tensorTensor(mx.ap(), a.ap(), b.ap(), AluOp::kMax).isOk());
  ASSERT_TRUE(t.kb().tensorTensor(gt.ap(), a.ap(), b.ap(), AluOp::kIsGt).isOk());
  t.runOk();
  EXPECT_EQ(t.get("sum"), (std::vector<float>{-5, -3, -1, 1, 3, 5}));
  EXPECT_EQ(t.get("mx"), (std::vector<float>{6, 5, 4, 4, 5, 6}));
  EXPECT_EQ(t.get("gt"), (std::vector<float>{0, 0, 0, 1, 1, 1}));
}

TEST(FunctionalOps, TensorTensorBitwiseAndGpSimdIntegers) {
  OpTest t;
  auto a = t.in("a", DType::kInt32, {1, 3}, {12, 16777216.0f, -1});
  auto b = t.in("b", DType::kInt32, {1, 3}, {10, 1, 5});
  auto andv = t.out("andv", DType::kInt32, {1, 3});
  auto add = t.out("add", DType::kInt32, {1, 3});
  ASSERT_TRUE(t.kb().tensorTensor(andv.ap(), a.ap(), b.ap(), AluOp::kBitwiseAnd).isOk());
  ASSERT_TRUE(
      t.kb().tensorTensor(add.ap(), a.ap(), b.ap(), AluOp::kAdd, arch::Engine::kGpSimd).isOk());
  // The host write goes through fp32, so 16777217 is stored as 16777216; write it raw instead.
  ASSERT_TRUE(t.run().isOk());
  testing::writeRaw<int32_t>(t.chip(), "a_in", {12, 16777217, -1});
  testing::runOk(t.chip());
  EXPECT_EQ(t.getRaw<int32_t>("andv"), (std::vector<int32_t>{8, 1, 5}));
  // GpSimd adds int32 natively: 16777217 + 1 is exact (fp32 would give 16777216).
  EXPECT_EQ(t.getRaw<int32_t>("add"), (std::vector<int32_t>{22, 16777218, 4}));
}

TEST(FunctionalOps, TensorScalarImmediateTileAndReverse) {
  OpTest t;
  auto x = t.in("x", F32, {2, 2}, {1, 2, 3, 4});
  auto s = t.in("s", F32, {2, 1}, {10, 100});
  auto y = t.out("y", F32, {2, 2});
  auto z = t.out("z", F32, {2, 2});
  // y = x * 2 + 1;  z = s - x (reverse0), then * 0.5
  ASSERT_TRUE(t.kb().tensorScalar(y.ap(), x.ap(), AluOp::kMultiply, 2.0f, AluOp::kAdd, 1.0f).isOk());
  ASSERT_TRUE(t.kb()
                  .tensorScalar(z.ap(), x.ap(), AluOp::kSubtract, s.ap(), AluOp::kMultiply, 0.5f,
                                /*reverse0=*/true)
                  .isOk());
  t.runOk();
  EXPECT_EQ(t.get("y"), (std::vector<float>{3, 5, 7, 9}));
  EXPECT_EQ(t.get("z"), (std::vector<float>{4.5f, 4, 48.5f, 48}));
}

TEST(FunctionalOps, TensorScalarShiftOnIntegers) {
  OpTest t;
  auto x = t.in("x", DType::kInt32, {1, 3}, {1, 8, -16});
  auto y = t.out("y", DType::kInt32, {1, 3});
  ASSERT_TRUE(t.kb().tensorScalar(y.ap(), x.ap(), AluOp::kShiftLeft, 2.0f, AluOp::kBitwiseOr, 1.0f)
                  .isOk());
  t.runOk();
  EXPECT_EQ(t.getRaw<int32_t>("y"), (std::vector<int32_t>{5, 33, -63}));
}

TEST(FunctionalOps, ScalarTensorTensor) {
  OpTest t;
  auto x = t.in("x", F32, {1, 3}, {5, 6, 7});
  auto y = t.in("y", F32, {1, 3}, {2, 3, 4});
  auto o = t.out("o", F32, {1, 3});
  ASSERT_TRUE(
      t.kb().scalarTensorTensor(o.ap(), x.ap(), AluOp::kSubtract, 1.0f, AluOp::kMultiply, y.ap())
          .isOk());
  t.runOk();
  EXPECT_EQ(t.get("o"), (std::vector<float>{8, 15, 24}));
}

TEST(FunctionalOps, ActivationScaleBiasAndReduce) {
  OpTest t;
  auto x = t.in("x", F32, {2, 3}, {-1, 0, 2, 3, -4, 5});
  auto bias = t.in("bias", F32, {2, 1}, {1, -1});
  auto y = t.out("y", F32, {2, 3});
  auto r = t.out("r", F32, {2, 1});
  // relu(2x + bias), summed per partition.
  ASSERT_TRUE(t.kb()
                  .activation(y.ap(), ActFunc::kRelu, x.ap(), bias.ap(), 2.0f, AluOp::kAdd, r.ap())
                  .isOk());
  t.runOk();
  EXPECT_EQ(t.get("y"), (std::vector<float>{0, 1, 5, 5, 0, 9}));
  EXPECT_EQ(t.get("r"), (std::vector<float>{6, 14}));
}

TEST(FunctionalOps, ActivationFunctions) {
  OpTest t;
  auto x = t.in("x", F32, {1, 2}, {0.0f, 1.0f});
  auto e = t.out("e", F32, {1, 2});
  auto g = t.out("g", F32, {1, 2});
  auto s = t.out("s", F32, {1, 2});
  ASSERT_TRUE(t.kb().activation(e.ap(), ActFunc::kExp, x.ap()).isOk());
  ASSERT_TRUE(t.kb().activation(g.ap(), ActFunc::kGeluApproxTanh, x.ap()).isOk());
  ASSERT_TRUE(t.kb().activation(s.ap(), ActFunc::kSigmoid, x.ap()).isOk());
  t.runOk();
  EXPECT_FLOAT_EQ(t.get("e")[1], 2.7182817f);
  // 0.5 * (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.841192
  EXPECT_NEAR(t.get("g")[1], 0.841192f, 1e-6);
  EXPECT_EQ(t.get("g")[0], 0.0f);
  EXPECT_NEAR(t.get("s")[1], 0.7310586f, 1e-7);
}

TEST(FunctionalOps, TensorReduceAxesAndNegate) {
  OpTest t;
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[size_t(i)] = float(i);
  auto x = t.in("x", F32, {2, 3, 4}, v);
  auto inner = t.out("inner", F32, {2, 3});
  auto outer = t.out("outer", F32, {2, 4});
  auto all = t.out("all", F32, {2, 1});
  ASSERT_TRUE(t.kb().tensorReduce(inner.ap(), AluOp::kAdd, x.ap(), 0b10).isOk());
  ASSERT_TRUE(t.kb().tensorReduce(outer.ap(), AluOp::kMax, x.ap(), 0b01).isOk());
  ASSERT_TRUE(t.kb().tensorReduce(all.ap(), AluOp::kAdd, x.ap(), 0b11, /*negate=*/true).isOk());
  t.runOk();
  EXPECT_EQ(t.get("inner"), (std::vector<float>{6, 22, 38, 54, 70, 86}));
  EXPECT_EQ(t.get("outer"), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_EQ(t.get("all"), (std::vector<float>{-66, -210}));
}

// More than 256 elements fold into one output: sum 0..999 = 499500, max 999 (a narrow
// "first element" counter would wrap at 256 and restart the sum).
TEST(FunctionalOps, TensorReduceOverLongRows) {
  OpTest t;
  std::vector<float> v(2000);
  for (int i = 0; i < 2000; ++i) v[size_t(i)] = float(i % 1000);
  auto x = t.in("x", F32, {2, 1000}, v);
  auto sum = t.out("sum", F32, {2, 1});
  auto mx = t.out("mx", F32, {2, 1});
  ASSERT_TRUE(t.kb().tensorReduce(sum.ap(), AluOp::kAdd, x.ap(), 0b1).isOk());
  ASSERT_TRUE(t.kb().tensorReduce(mx.ap(), AluOp::kMax, x.ap(), 0b1).isOk());
  t.runOk();
  EXPECT_EQ(t.get("sum"), (std::vector<float>{499500, 499500}));
  EXPECT_EQ(t.get("mx"), (std::vector<float>{999, 999}));
}

TEST(FunctionalOps, TensorPartitionReduce) {
  OpTest t;
  auto x = t.in("x", F32, {3, 2}, {1, 2, 3, 4, 5, 6});
  auto o = t.out("o", F32, {1, 2});
  ASSERT_TRUE(t.kb().tensorPartitionReduce(o.ap(), AluOp::kAdd, x.ap()).isOk());
  t.runOk();
  EXPECT_EQ(t.get("o"), (std::vector<float>{9, 12}));
}

TEST(FunctionalOps, TensorCopyCastsAndCopiesBits) {
  OpTest t;
  // 1 + 2^-8 ties to 1.0 (even); 1 + 3 * 2^-8 ties to 1 + 2^-6 (even).
  auto x = t.in("x", F32, {1, 3}, {1.00390625f, 1.01171875f, -2.5f});
  auto i = t.in("i", DType::kInt32, {1, 1}, {0});
  auto b = t.out("b", BF16, {1, 3});
  auto j = t.out("j", DType::kInt32, {1, 1});
  ASSERT_TRUE(t.kb().tensorCopy(b.ap(), x.ap()).isOk());
  ASSERT_TRUE(t.kb().tensorCopy(j.ap(), i.ap()).isOk());
  ASSERT_TRUE(t.run().isOk());
  testing::writeRaw<int32_t>(t.chip(), "i_in", {2147483647});
  testing::runOk(t.chip());
  EXPECT_EQ(t.getRaw<uint16_t>("b"), (std::vector<uint16_t>{0x3F80, 0x3F82, 0xC020}));
  EXPECT_EQ(t.getRaw<int32_t>("j"), (std::vector<int32_t>{2147483647}));
}

TEST(FunctionalOps, TensorCopyPredicated) {
  OpTest t;
  auto d = t.in("d", F32, {1, 4}, {1, 2, 3, 4});
  auto s = t.in("s", F32, {1, 4}, {10, 20, 30, 40});
  auto p = t.in("p", DType::kUInt8, {1, 4}, {1, 0, 0, 1});
  ASSERT_TRUE(t.kb().tensorCopyPredicated(d.ap(), s.ap(), p.ap()).isOk());
  t.outputsFor(d);
  t.runOk();
  EXPECT_EQ(t.get("d"), (std::vector<float>{10, 2, 3, 40}));
}

TEST(FunctionalOps, TensorTensorScanLinearRecurrence) {
  OpTest t;
  // r_i = a_i * r_{i-1} + b_i, r_{-1} = 1
  auto a = t.in("a", F32, {1, 4}, {2, 2, 0.5f, 1});
  auto b = t.in("b", F32, {1, 4}, {1, 0, 1, -3});
  auto o = t.out("o", F32, {1, 4});
  ASSERT_TRUE(
      t.kb().tensorTensorScan(o.ap(), a.ap(), b.ap(), 1.0f, AluOp::kMultiply, AluOp::kAdd).isOk());
  t.runOk();
  EXPECT_EQ(t.get("o"), (std::vector<float>{3, 6, 4, 1}));
}

TEST(FunctionalOps, MemsetIotaAffineSelect) {
  OpTest t;
  auto m = t.out("m", BF16, {2, 2});
  auto io = t.out("io", DType::kInt32, {3, 2, 2});
  auto ones = t.in("ones", F32, {3, 3}, std::vector<float>(9, 1.0f));
  auto causal = t.out("causal", F32, {3, 3});
  ASSERT_TRUE(t.kb().memset(m.ap(), 1.5f).isOk());
  // io[p, a, b] = 100 + 10 p + 3 a + b
  ASSERT_TRUE(t.kb().iota(io.ap(), {3, 1}, 100.0f, 10.0f).isOk());
  // keep where p - j >= 0 (lower triangle), else -9
  ASSERT_TRUE(
      t.kb().affineSelect(causal.ap(), {-1}, 1.0f, 0.0f, AluOp::kIsGe, ones.ap(), -9.0f).isOk());
  t.runOk();
  EXPECT_EQ(t.get("m"), (std::vector<float>{1.5f, 1.5f, 1.5f, 1.5f}));
  EXPECT_EQ(t.getRaw<int32_t>("io"),
            (std::vector<int32_t>{100, 101, 103, 104, 110, 111, 113, 114, 120, 121, 123, 124}));
  EXPECT_EQ(t.get("causal"), (std::vector<float>{1, -9, -9, 1, 1, -9, 1, 1, 1}));
}

TEST(FunctionalOps, RangeSelectAndSelectReduce) {
  OpTest t;
  auto x = t.in("x", F32, {2, 4}, {1, 5, 3, 7, 2, 8, 6, 4});
  auto lo = t.in("lo", F32, {2, 1}, {1, 0});
  auto hi = t.in("hi", F32, {2, 1}, {3, 2});
  auto pred = t.in("pred", DType::kUInt8, {2, 4}, {1, 0, 1, 0, 0, 0, 1, 1});
  auto rs = t.out("rs", F32, {2, 4});
  auto rsmax = t.out("rsmax", F32, {2, 1});
  auto sr = t.out("sr", F32, {2, 4});
  auto srmax = t.out("srmax", F32, {2, 1});
  // keep free index i with lo <= i < hi
  ASSERT_TRUE(t.kb()
                  .rangeSelect(rs.ap(), x.ap(), AluOp::kIsGe, AluOp::kIsLt, lo.ap(), hi.ap(), 0.0f,
                               -100.0f, AluOp::kMax, rsmax.ap())
                  .isOk());
  ASSERT_TRUE(
      t.kb().selectReduce(sr.ap(), pred.ap(), x.ap(), -1.0f, AluOp::kMax, srmax.ap()).isOk());
  t.runOk();
  EXPECT_EQ(t.get("rs"), (std::vector<float>{-100, 5, 3, -100, 2, 8, -100, -100}));
  EXPECT_EQ(t.get("rsmax"), (std::vector<float>{5, 8}));
  EXPECT_EQ(t.get("sr"), (std::vector<float>{1, -1, 3, -1, -1, -1, 6, 4}));
  EXPECT_EQ(t.get("srmax"), (std::vector<float>{3, 6}));
}

TEST(FunctionalOps, BnStatsAndAggr) {
  OpTest t;
  // Partition 0: 1..6 -> mean 3.5, population variance 35/12.
  auto x = t.in("x", F32, {1, 6}, {1, 2, 3, 4, 5, 6});
  auto st = t.out("st", F32, {1, 6});
  auto ag = t.out("ag", F32, {1, 2});
  ASSERT_TRUE(t.kb().bnStats(st.ap(), x.ap()).isOk());
  ASSERT_TRUE(t.kb().bnAggr(ag.ap(), st.ap()).isOk());
  t.runOk();
  // even elements 1, 3, 5: mean 3, M2 = 8; odd elements 2, 4, 6: mean 4, M2 = 8.
  EXPECT_EQ(t.get("st"), (std::vector<float>{3, 3, 8, 3, 4, 8}));
  auto ag_ = t.get("ag");
  EXPECT_FLOAT_EQ(ag_[0], 3.5f);
  EXPECT_FLOAT_EQ(ag_[1], 35.0f / 12.0f);
}

TEST(FunctionalOps, Reciprocal) {
  OpTest t;
  auto x = t.in("x", F32, {1, 3}, {2, -4, 0});
  auto y = t.out("y", F32, {1, 3});
  ASSERT_TRUE(t.kb().reciprocal(y.ap(), x.ap()).isOk());
  t.runOk();
  auto r = t.get("y");
  EXPECT_EQ(r[0], 0.5f);
  EXPECT_EQ(r[1], -0.25f);
  EXPECT_TRUE(std::isinf(r[2]));
}

TEST(FunctionalOps, Max8FindIndex8MatchReplace8) {
  OpTest t;
  auto x = t.in("x", F32, {1, 11}, {1, 2, 3, 4, 8, 8, 8, 8, 8, 8, 8});
  auto v = t.in("v", F32, {1, 8}, {3, 8, 8, 8, 8, 8, 8, 8});
  auto m = t.out("m", F32, {1, 8});
  auto fi = t.out("fi", DType::kUInt32, {1, 8});
  auto rep = t.out("rep", F32, {1, 11});
  auto ri = t.out("ri", DType::kUInt32, {1, 8});
  ASSERT_TRUE(t.kb().max8(m.ap(), x.ap()).isOk());
  ASSERT_TRUE(t.kb().ncFindIndex8(fi.ap(), x.ap(), v.ap()).isOk());
  ASSERT_TRUE(t.kb().ncMatchReplace8(rep.ap(), x.ap(), v.ap(), -1.0f, ri.ap()).isOk());
  t.runOk();
  EXPECT_EQ(t.get("m"), (std::vector<float>{8, 8, 8, 8, 8, 8, 8, 4}));
  // find_index8 pairs duplicates with occurrences in ascending slot order...
  EXPECT_EQ(t.getRaw<uint32_t>("fi"), (std::vector<uint32_t>{2, 4, 5, 6, 7, 8, 9, 10}));
  // ...match_replace8 in descending slot order (the vendor's documented example).
  EXPECT_EQ(t.getRaw<uint32_t>("ri"), (std::vector<uint32_t>{2, 10, 9, 8, 7, 6, 5, 4}));
  EXPECT_EQ(t.get("rep"), (std::vector<float>{1, 2, -1, 4, -1, -1, -1, -1, -1, -1, -1}));
}

TEST(FunctionalOps, LocalGatherWithinGroupsOf16) {
  OpTest t;
  std::vector<float> src(32 * 8), idx(32 * 2);
  for (int p = 0; p < 32; ++p)
    for (int f = 0; f < 8; ++f) src[size_t(p * 8 + f)] = float(p * 100 + f);
  // Partition p gathers blocks (p % 16) and (p % 16) * 3 + 1 of 2 elements from its group's
  // 16 x 8 elements (64 blocks), flattened partition by partition.
  for (int p = 0; p < 32; ++p) {
    idx[size_t(p * 2)] = float(p % 16);
    idx[size_t(p * 2 + 1)] = float((p % 16) * 3 + 1);
  }
  auto s = t.in("s", F32, {32, 8}, src);
  auto i = t.in("i", DType::kInt32, {32, 2}, idx);
  auto d = t.out("d", F32, {32, 5});
  ASSERT_TRUE(t.kb().memset(d.ap(), -1.0f).isOk());
  ASSERT_TRUE(t.kb().localGather(d.ap(), s.ap(), i.ap(), 2, 2).isOk()) << t.kb().status().toString();
  t.runOk();
  auto out = t.get("d");
  for (int p = 0; p < 32; ++p) {
    const int g0 = p / 16 * 16;
    auto at = [&](int elem) { return float((g0 + elem / 8) * 100 + elem % 8); };
    const int b0 = p % 16, b1 = (p % 16) * 3 + 1;
    const std::vector<float> want = {at(b0 * 2), at(b0 * 2 + 1), at(b1 * 2), at(b1 * 2 + 1), -1};
    EXPECT_EQ(std::vector<float>(out.begin() + p * 5, out.begin() + p * 5 + 5), want) << p;
  }
}

TEST(FunctionalOps, TransposesOnTensorVectorAndDma) {
  OpTest t;
  auto x = t.in("x", F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto pe = t.out("pe", F32, {3, 2}, MemSpace::kPsum);
  auto ve = t.out("ve", F32, {3, 2});
  auto dm = t.out("dm", F32, {3, 2});
  ASSERT_TRUE(t.kb().ncTranspose(pe.ap(), x.ap()).isOk());
  ASSERT_TRUE(t.kb().ncTranspose(ve.ap(), x.ap(), arch::Engine::kVector).isOk());
  ASSERT_TRUE(t.kb().dmaTranspose(dm.ap(), x.ap()).isOk());
  t.runOk();
  const std::vector<float> want = {1, 4, 2, 5, 3, 6};
  EXPECT_EQ(t.get("pe"), want);
  EXPECT_EQ(t.get("ve"), want);
  EXPECT_EQ(t.get("dm"), want);
}

TEST(FunctionalOps, MatmulAccumulatesInPsum) {
  OpTest t;
  // stationary [K=2, M=2], moving [K=2, N=3]; dst = st^T @ mv, then + again with accumulate.
  auto st = t.in("st", BF16, {2, 2}, {1, 2, 3, 4});
  auto mv = t.in("mv", BF16, {2, 3}, {1, 0, -1, 2, 1, 0.5f});
  auto ps = t.out("ps", F32, {2, 3}, MemSpace::kPsum);
  ASSERT_TRUE(t.kb().ncMatmul(ps.ap(), st.ap(), mv.ap()).isOk());
  isa::MatmulOptions acc;
  acc.accumulate = true;
  ASSERT_TRUE(t.kb().ncMatmul(ps.ap(), st.ap(), mv.ap(), acc).isOk());
  t.runOk();
  // st^T = [[1, 3], [2, 4]]; st^T @ mv = [[7, 3, 0.5], [10, 4, 0]]; twice that.
  EXPECT_EQ(t.get("ps"), (std::vector<float>{14, 6, 1, 20, 8, 0}));
}

TEST(FunctionalOps, DropoutKeepsOrDropsAndRngIsDeterministic) {
  OpTest t;
  auto x = t.in("x", F32, {4, 64}, std::vector<float>(256, 3.0f));
  auto keep = t.out("keep", F32, {4, 64});
  auto drop = t.out("drop", F32, {4, 64});
  auto half = t.out("half", F32, {4, 64});
  auto bits = t.out("bits", DType::kUInt32, {4, 8});
  auto u = t.out("u", F32, {4, 64});
  ASSERT_TRUE(t.kb().dropout(keep.ap(), x.ap(), 0.0f).isOk());
  ASSERT_TRUE(t.kb().dropout(drop.ap(), x.ap(), 1.0f).isOk());
  ASSERT_TRUE(t.kb().dropout(half.ap(), x.ap(), 0.5f).isOk());
  ASSERT_TRUE(t.kb().rng(bits.ap()).isOk());
  ASSERT_TRUE(t.kb().rand2(u.ap(), -2.0f, 2.0f).isOk());
  RunOptions o = testing::valuesOnly();
  o.seed = 7;
  t.runOk(o);
  EXPECT_EQ(t.get("keep"), std::vector<float>(256, 3.0f));
  EXPECT_EQ(t.get("drop"), std::vector<float>(256, 0.0f));
  auto h = t.get("half");
  int zeros = 0;
  for (float v : h) {
    EXPECT_TRUE(v == 0.0f || v == 3.0f);
    zeros += v == 0.0f;
  }
  EXPECT_GT(zeros, 90);
  EXPECT_LT(zeros, 166);
  for (float v : t.get("u")) {
    EXPECT_GE(v, -2.0f);
    EXPECT_LT(v, 2.0f);
  }
  auto b1 = t.getRaw<uint32_t>("bits");
  testing::runOk(t.chip(), o);  // same seed, same bits
  EXPECT_EQ(t.getRaw<uint32_t>("bits"), b1);
  EXPECT_EQ(t.get("half"), h);
  o.seed = 8;
  testing::runOk(t.chip(), o);
  EXPECT_NE(t.getRaw<uint32_t>("bits"), b1);
}

TEST(FunctionalOps, RngStateRoundTripAndReseed) {
  OpTest t;
  auto s0 = t.out("s0", DType::kUInt32, {2, 6});
  auto a = t.out("a", DType::kUInt32, {2, 4});
  auto b = t.out("b", DType::kUInt32, {2, 4});
  auto seeds = t.in("seeds", DType::kUInt32, {2, 1}, {5, 9});
  auto c = t.out("c", DType::kUInt32, {2, 4});
  auto d = t.out("d", DType::kUInt32, {2, 4});
  ASSERT_TRUE(t.kb().randGetState(s0.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().rng(a.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().randSetState(s0.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().rng(b.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().setRngSeed(seeds.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().rng(c.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().setRngSeed(seeds.ap(), arch::Engine::kGpSimd).isOk());
  ASSERT_TRUE(t.kb().rng(d.ap(), arch::Engine::kGpSimd).isOk());
  t.runOk();
  EXPECT_EQ(t.getRaw<uint32_t>("a"), t.getRaw<uint32_t>("b"));
  EXPECT_EQ(t.getRaw<uint32_t>("c"), t.getRaw<uint32_t>("d"));
  EXPECT_NE(t.getRaw<uint32_t>("a"), t.getRaw<uint32_t>("c"));
}

TEST(FunctionalOps, DmaIndirectGatherScatterAndBounds) {
  for (bool skip : {false, true}) {
    OpTest t;
    auto table = t.hbmIn("table", F32, {4, 2}, {0, 1, 10, 11, 20, 21, 30, 31});
    auto idx = t.in("idx", DType::kInt32, {3, 1}, {2, 0, skip ? 7.0f : 3.0f});
    auto rows = t.out("rows", F32, {3, 2});
    ASSERT_TRUE(t.kb().memset(rows.ap(), -1.0f).isOk());
    isa::DmaOptions g;
    g.indirectSrc = true;
    g.index = idx.ap();
    g.oobSkip = skip;
    ASSERT_TRUE(t.kb().dmaCopy(rows.ap(), table.ap(), g).isOk()) << t.kb().status().toString();
    auto scat = t.kb().hbm("scat", F32, {4, 2}, isa::TensorKind::kOutput);
    auto zeros = t.in("zeros", F32, {4, 2}, std::vector<float>(8, 0.0f));
    ASSERT_TRUE(t.kb().dmaCopy(scat.ap(), zeros.ap()).isOk());
    isa::DmaOptions s;
    s.indirectDst = true;
    s.index = idx.ap();
    s.oobSkip = skip;
    ASSERT_TRUE(t.kb().dmaCopy(scat.ap(), rows.ap(), s).isOk());
    t.runOk();
    if (!skip) {
      EXPECT_EQ(t.get("rows"), (std::vector<float>{20, 21, 0, 1, 30, 31}));
      EXPECT_EQ(testing::readF(t.chip(), "scat"), (std::vector<float>{0, 1, 0, 0, 20, 21, 30, 31}));
    } else {
      EXPECT_EQ(t.get("rows"), (std::vector<float>{20, 21, 0, 1, -1, -1}));
    }
  }
  // An out-of-range index without oob skip is an error naming the index.
  OpTest t;
  auto table = t.kb().hbm("table", F32, {4, 2}, isa::TensorKind::kInput);
  auto idx = t.in("idx", DType::kInt32, {2, 1}, {1, 4});
  auto rows = t.out("rows", F32, {2, 2});
  isa::DmaOptions g;
  g.indirectSrc = true;
  g.index = idx.ap();
  ASSERT_TRUE(t.kb().dmaCopy(rows.ap(), table.ap(), g).isOk());
  ASSERT_TRUE(t.run().code() == ErrorCode::kUninitializedRead);  // table not written yet
  testing::writeF(t.chip(), "table", std::vector<float>(8, 1.0f));
  auto r = t.chip().run(testing::valuesOnly());
  ASSERT_FALSE(r.hasValue());
  EXPECT_EQ(r.status().code(), ErrorCode::kOutOfBounds);
  EXPECT_NE(r.status().message().find("index 4"), std::string::npos) << r.status().toString();
  EXPECT_NE(r.status().where().find("dma_copy"), std::string::npos);
}

TEST(FunctionalOps, DmaCopyCastsWithRne) {
  OpTest t;
  auto x = t.in("x", F32, {1, 2}, {1.00390625f, 3.0f});
  auto h = t.kb().hbm("h", BF16, {1, 2}, isa::TensorKind::kOutput);
  ASSERT_TRUE(t.kb().dmaCopy(h.ap(), x.ap()).isOk());
  t.runOk();
  EXPECT_EQ(testing::readRaw<uint16_t>(t.chip(), "h"), (std::vector<uint16_t>{0x3F80, 0x4040}));
}

TEST(FunctionalOps, OverlapRules) {
  {  // in place, element for element: allowed
    OpTest t;
    auto x = t.in("x", F32, {1, 4}, {1, 2, 3, 4});
    ASSERT_TRUE(t.kb().tensorScalar(x.ap(), x.ap(), AluOp::kAdd, 1.0f).isOk());
    t.outputsFor(x);
    t.runOk();
    EXPECT_EQ(t.get("x"), (std::vector<float>{2, 3, 4, 5}));
  }
  {  // shifted by one element: undefined on hardware, an error here
    OpTest t;
    auto x = t.in("x", F32, {1, 5}, {1, 2, 3, 4, 5});
    ASSERT_TRUE(t.kb().tensorCopy(x({Slice::all(), Slice::range(1, 5)}),
                                  x({Slice::all(), Slice::range(0, 4)}))
                    .isOk());
    Status s = t.run();
    EXPECT_EQ(s.code(), ErrorCode::kVerify) << s.toString();
    EXPECT_NE(s.message().find("overlaps"), std::string::npos) << s.toString();
  }
  {  // interleaved halves of one tile do not overlap
    OpTest t;
    auto x = t.in("x", F32, {1, 4}, {1, 2, 3, 4});
    ASSERT_TRUE(t.kb().tensorCopy(x.pattern({{1, 1}, {2, 2}}, 1), x.pattern({{1, 1}, {2, 2}}, 0))
                    .isOk());
    t.outputsFor(x);
    t.runOk();
    EXPECT_EQ(t.get("x"), (std::vector<float>{1, 1, 3, 3}));
  }
}

}  // namespace
}  // namespace trnsim::sim
