// nc_matmul's values against a reference loop written here the way the model defines the
// arithmetic: inputs rounded to their dtype, each output element summed in increasing k from
// 0.0f, one fp32 multiply then one fp32 add per term (rounded separately), accumulate adds the
// old PSUM value last. The comparison is bit for bit, so any change of the fast kernel
// (blocking, FMA, threads, ISA) that moves a single bit fails here.

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "functional_test_util.h"
#include "trnsim/numerics/dtype.h"

namespace trnsim::sim {
namespace {

using isa::MemSpace;
using numerics::DType;
using testing::OpTest;

/// `v` rounded to `t` (nearest even) and back: the value the chip holds after a host write.
std::vector<float> quantized(DType t, const std::vector<float>& v) {
  std::vector<std::byte> raw(v.size() * numerics::dtypeSize(t));
  numerics::convertFromFloat(t, v.data(), raw.data(), v.size());
  std::vector<float> out(v.size());
  numerics::convertToFloat(t, raw.data(), out.data(), v.size());
  return out;
}

/// Separate multiply and add: the product goes through a volatile so no compiler contracts it
/// into a fused multiply-add.
float mulAdd(float acc, float x, float y) {
  volatile float p = x * y;
  return acc + p;
}

/// c[m][n] = sum_k a[k][m] * b[k][n] (a: [K, M], b: [K, N] in contraction order).
std::vector<float> reference(const std::vector<float>& a, const std::vector<float>& b, int K, int M,
                             int N) {
  std::vector<float> c(size_t(M) * size_t(N));
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) acc = mulAdd(acc, a[size_t(k) * M + m], b[size_t(k) * N + n]);
      c[size_t(m) * N + n] = acc;
    }
  return c;
}

/// Normal values; with `wide`, exponents over +-80 so that products overflow and underflow.
std::vector<float> randomValues(size_t n, uint32_t seed, bool wide) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-80, 80);
  std::vector<float> v(n);
  for (float& x : v) x = wide ? std::ldexp(normal(gen), exponent(gen)) : normal(gen);
  return v;
}

void expectSameBits(const std::vector<float>& got, const std::vector<float>& want, int M, int N) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i])) {
      ADD_FAILURE() << "element [" << i / size_t(N) << ", " << i % size_t(N) << "] of " << M
                    << " x " << N << ": got " << got[i] << " want " << want[i];
      ++bad;
    }
  }
}

struct Case {
  int K, M, N;
  DType st, mv;
  bool accumulate = false;
  bool wide = false;
};

/// Runs one nc_matmul (twice with accumulate) through a kernel and compares bit for bit.
void checkCase(const Case& c) {
  SCOPED_TRACE(::testing::Message()
               << "K=" << c.K << " M=" << c.M << " N=" << c.N << " st=" << numerics::dtypeName(c.st)
               << " mv=" << numerics::dtypeName(c.mv) << " acc=" << c.accumulate
               << " wide=" << c.wide);
  const auto a = quantized(c.st, randomValues(size_t(c.K) * c.M, 11u + c.K + c.M, c.wide));
  const auto b = quantized(c.mv, randomValues(size_t(c.K) * c.N, 23u + c.N, c.wide));
  OpTest t;
  auto st = t.in("st", c.st, {c.K, c.M}, a);
  auto mv = t.in("mv", c.mv, {c.K, c.N}, b);
  auto ps = t.out("ps", DType::kFP32, {c.M, c.N}, MemSpace::kPsum);
  ASSERT_TRUE(t.kb().ncMatmul(ps.ap(), st.ap(), mv.ap()).isOk()) << t.kb().status().toString();
  std::vector<float> want = reference(a, b, c.K, c.M, c.N);
  if (c.accumulate) {
    // Second product with the operands' roles kept and moving reversed along k.
    std::vector<float> b2(b.size());
    for (int k = 0; k < c.K; ++k)
      for (int n = 0; n < c.N; ++n) b2[size_t(k) * c.N + n] = b[size_t(c.K - 1 - k) * c.N + n];
    auto mv2 = t.in("mv2", c.mv, {c.K, c.N}, b2);
    isa::MatmulOptions acc;
    acc.accumulate = true;
    ASSERT_TRUE(t.kb().ncMatmul(ps.ap(), st.ap(), mv2.ap(), acc).isOk());
    const std::vector<float> second = reference(a, b2, c.K, c.M, c.N);
    for (size_t i = 0; i < want.size(); ++i) want[i] = want[i] + second[i];
  }
  t.runOk();
  expectSameBits(t.get("ps"), want, c.M, c.N);
}

TEST(FunctionalMatmulBits, MatchesReferenceLoop) {
  const DType bf = DType::kBF16, f32 = DType::kFP32, f16 = DType::kFP16, e4 = DType::kFP8E4M3,
              e5 = DType::kFP8E5M2;
  const std::vector<Case> cases = {
      {1, 1, 1, bf, bf},
      {3, 5, 7, bf, bf},
      {128, 128, 512, bf, bf},
      {128, 128, 512, bf, bf, true},
      {77, 33, 100, bf, bf, true},
      {128, 6, 16, bf, bf},
      {128, 7, 17, bf, bf},
      {64, 12, 48, bf, bf},
      {128, 128, 200, f32, f32},
      {100, 50, 37, f32, f32, true},
      {128, 96, 64, f16, f16},
      {128, 128, 512, e4, e4, true},
      {40, 9, 300, e5, e4},
      {128, 64, 128, bf, f32},
      {128, 128, 512, bf, bf, true, true},
      {31, 13, 29, bf, bf, false, true},
      {128, 64, 96, f16, f16, true, true},
      {128, 64, 96, f32, f32, false, true},
  };
  for (const Case& c : cases) checkCase(c);
}

TEST(FunctionalMatmulBits, DoubleRowFp8MatchesReferenceLoop) {
  // fp8 double_row: row r of stationary/moving partition p is contraction row r * P + p.
  const int P = 128, M = 64, N = 256;
  const DType e4 = DType::kFP8E4M3;
  const auto a = quantized(e4, randomValues(size_t(P) * 2 * M, 5, false));
  const auto b = quantized(e4, randomValues(size_t(P) * 2 * N, 6, false));
  OpTest t;
  auto st = t.in("st", e4, {P, 2, M}, a);
  auto mv = t.in("mv", e4, {P, 2, N}, b);
  auto ps = t.out("ps", DType::kFP32, {M, N}, MemSpace::kPsum);
  isa::MatmulOptions o;
  o.doubleRow = true;
  ASSERT_TRUE(t.kb().ncMatmul(ps.ap(), st.ap(), mv.ap(), o).isOk()) << t.kb().status().toString();
  t.runOk();
  std::vector<float> ak(size_t(2 * P) * M), bk(size_t(2 * P) * N);
  for (int p = 0; p < P; ++p)
    for (int r = 0; r < 2; ++r) {
      for (int m = 0; m < M; ++m) ak[size_t(r * P + p) * M + m] = a[size_t(p) * 2 * M + r * M + m];
      for (int n = 0; n < N; ++n) bk[size_t(r * P + p) * N + n] = b[size_t(p) * 2 * N + r * N + n];
    }
  expectSameBits(t.get("ps"), reference(ak, bk, 2 * P, M, N), M, N);
}

TEST(FunctionalMatmulBits, OperandsWrittenBetweenMatmulsAreReadAgain) {
  // nc_matmul reads its operands where they lie (no copy of a tile is kept between
  // instructions): a write to them in between (one element of the moving tile, one of the
  // stationary, a new host input and run) shows in the next product.
  const int K = 128, M = 64, N = 96;
  std::vector<float> a = quantized(DType::kBF16, randomValues(size_t(K) * M, 31, false));
  std::vector<float> b = quantized(DType::kBF16, randomValues(size_t(K) * N, 32, false));
  OpTest t;
  auto st = t.in("st", DType::kBF16, {K, M}, a);
  auto mv = t.in("mv", DType::kBF16, {K, N}, b);
  auto patchB = t.hbmIn("patch_b", DType::kBF16, {1, 1}, {3.5f});
  auto patchA = t.hbmIn("patch_a", DType::kBF16, {1, 1}, {-2.25f});
  std::vector<isa::Tensor> ps;
  for (int i = 0; i < 3; ++i)
    ps.push_back(t.out("ps" + std::to_string(i), DType::kFP32, {M, N}, MemSpace::kPsum));
  using isa::Slice;
  auto& kb = t.kb();
  ASSERT_TRUE(kb.ncMatmul(ps[0].ap(), st.ap(), mv.ap()).isOk());
  ASSERT_TRUE(kb.dmaCopy(mv({Slice::range(77, 78), Slice::range(50, 51)}), patchB.ap()).isOk());
  ASSERT_TRUE(kb.ncMatmul(ps[1].ap(), st.ap(), mv.ap()).isOk());
  ASSERT_TRUE(kb.dmaCopy(st({Slice::range(3, 4), Slice::range(10, 11)}), patchA.ap()).isOk());
  ASSERT_TRUE(kb.ncMatmul(ps[2].ap(), st.ap(), mv.ap()).isOk()) << kb.status().toString();
  t.runOk();
  std::vector<float> b1 = b, a2 = a;
  b1[size_t(77) * N + 50] = 3.5f;
  a2[size_t(3) * M + 10] = -2.25f;
  expectSameBits(t.get("ps0"), reference(a, b, K, M, N), M, N);
  expectSameBits(t.get("ps1"), reference(a, b1, K, M, N), M, N);
  expectSameBits(t.get("ps2"), reference(a2, b1, K, M, N), M, N);
  // The same chip again with other inputs: the loads rewrite the tiles.
  std::vector<float> a3 = quantized(DType::kBF16, randomValues(size_t(K) * M, 33, false));
  std::vector<float> b3 = quantized(DType::kBF16, randomValues(size_t(K) * N, 34, false));
  testing::writeF(t.chip(), "st_in", a3);
  testing::writeF(t.chip(), "mv_in", b3);
  testing::runOk(t.chip());
  expectSameBits(t.get("ps0"), reference(a3, b3, K, M, N), M, N);
  b3[size_t(77) * N + 50] = 3.5f;
  a3[size_t(3) * M + 10] = -2.25f;
  expectSameBits(t.get("ps2"), reference(a3, b3, K, M, N), M, N);
}

TEST(FunctionalMatmulBits, TransposeSkipsZerosOfMoving) {
  // is_transpose: terms whose moving value is 0 are left out and the first kept term starts
  // the sum, so NaN and -0.0 in the stationary pass through an identity moving unchanged.
  const int K = 8, M = 5, N = 8;
  std::vector<float> a = quantized(DType::kBF16, randomValues(size_t(K) * M, 9, false));
  a[3] = std::nanf("");
  a[7] = -0.0f;
  std::vector<float> b(size_t(K) * N, 0.0f);
  for (int k = 0; k < K; ++k) b[size_t(k) * N + k] = 1.0f;
  OpTest t;
  auto st = t.in("st", DType::kBF16, {K, M}, a);
  auto mv = t.in("mv", DType::kBF16, {K, N}, b);
  auto ps = t.out("ps", DType::kFP32, {M, N}, MemSpace::kPsum);
  isa::MatmulOptions o;
  o.isTranspose = true;
  ASSERT_TRUE(t.kb().ncMatmul(ps.ap(), st.ap(), mv.ap(), o).isOk()) << t.kb().status().toString();
  t.runOk();
  std::vector<float> want(size_t(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) want[size_t(m) * N + n] = a[size_t(n) * M + m];
  const std::vector<float> got = t.get("ps");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << i;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << i;
    }
  }
}

}  // namespace
}  // namespace trnsim::sim
