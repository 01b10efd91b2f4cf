// fp8 weights: a linear layer whose weight is stored fp8 and dequantized in the forward
// (`w.to(bf16) * scale`) compiles to a matmul that reads the fp8 weight (fp8_matmul pass) and
// scales its output columns as PSUM is read; compiled and run on the simulator against a
// double host loop over the same fp8 values, on trn1 (TensorE transposes everything) and trn2
// (bf16 activations by dma_transpose, the fp8 weight on TensorE), with odd sizes, several N and
// K blocks, per-channel and per-tensor scales, e4m3 and e5m2.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "trnsim/compiler/passes.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/runtime/session.h"

namespace trnsim::compiler {
namespace {

using numerics::DType;

std::vector<float> randoms(size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen) * scale;
  return v;
}

/// Rounds `v` to `t` in place and returns the raw bytes.
std::vector<std::byte> rounded(std::vector<float>& v, DType t) {
  std::vector<std::byte> raw(v.size() * numerics::dtypeSize(t));
  numerics::convertFromFloat(t, v.data(), raw.data(), v.size());
  numerics::convertToFloat(t, raw.data(), v.data(), v.size());
  return raw;
}

std::vector<float> readAs(const std::vector<std::byte>& raw, DType t) {
  std::vector<float> v(raw.size() / numerics::dtypeSize(t));
  numerics::convertToFloat(t, raw.data(), v.data(), v.size());
  return v;
}

struct Fp8Case {
  const char* chip;
  int M, K, N;
};

class Fp8Linear : public ::testing::TestWithParam<Fp8Case> {};

// y1 = x @ (w1.to(bf16) * s1).T with an e4m3 weight and an f32 scale per output channel;
// y2 = b + x @ (s2 * w2.to(bf16)).T with an e5m2 weight and one bf16 scale (0-dim).
TEST_P(Fp8Linear, ReadsTheFp8WeightAndScalesTheOutputColumns) {
  const auto [chipName, M, K, N] = GetParam();
  const std::string ir = fmt::format(
      "graph g(%x: bf16[{0}, {1}] input, %w1: f8e4m3[{2}, {1}] param, %s1: f32[{2}, 1] param, "
      "%w2: f8e5m2[{2}, {1}] param, %s2: bf16[] param, %b: bf16[{2}] param) {{\n"
      "  %c1: f32[{2}, {1}] = _to_copy(%w1) {{dtype=\"f32\"}}\n"
      "  %m1: f32[{2}, {1}] = mul(%c1, %s1)\n"
      "  %d1: bf16[{2}, {1}] = _to_copy(%m1) {{dtype=\"bf16\"}}\n"
      "  %t1: bf16[{1}, {2}] = permute(%d1) {{dims=[1, 0]}}\n"
      "  %y1: bf16[{0}, {2}] = mm(%x, %t1)\n"
      "  %c2: bf16[{2}, {1}] = _to_copy(%w2) {{dtype=\"bf16\"}}\n"
      "  %d2: bf16[{2}, {1}] = mul(%s2, %c2)\n"
      "  %t2: bf16[{1}, {2}] = permute(%d2) {{dims=[1, 0]}}\n"
      "  %y2: bf16[{0}, {2}] = addmm(%b, %x, %t2)\n"
      "  return %y1, %y2\n}}\n",
      M, K, N);
  auto chip = arch::loadChip(chipName);
  ASSERT_TRUE(chip.hasValue());
  runtime::Session session;
  auto exe = session.compile(ir, *chip);
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  // Two matmul nodes reading the fp8 params and their scales; nothing dequantizes the weights.
  ASSERT_EQ((*exe)->graph().nodes.size(), 2u);
  for (const Node& n : (*exe)->graph().nodes) {
    const size_t first = n.op == "addmm" ? 1 : 0;
    ASSERT_EQ(n.inputs.size(), first + 3) << n.op;
    const DType w = (*exe)->graph().type(n.inputs[first + 1]).dtype;
    EXPECT_TRUE(w == DType::kFP8E4M3 || w == DType::kFP8E5M2);
  }
  auto x = randoms(size_t(M) * K, 1, 1.0f), w1 = randoms(size_t(N) * K, 2, 50.0f),
       w2 = randoms(size_t(N) * K, 3, 4.0f), s1 = randoms(size_t(N), 4, 0.01f),
       b = randoms(size_t(N), 5, 1.0f);
  std::vector<float> s2 = {0.0123f};
  const auto xr = rounded(x, DType::kBF16), w1r = rounded(w1, DType::kFP8E4M3),
             w2r = rounded(w2, DType::kFP8E5M2), s2r = rounded(s2, DType::kBF16),
             br = rounded(b, DType::kBF16);
  std::vector<std::byte> s1raw(s1.size() * 4);
  std::memcpy(s1raw.data(), s1.data(), s1raw.size());
  const std::vector<std::byte> s1r = s1raw;
  for (auto [name, raw] : {std::pair{"x", &xr}, std::pair{"w1", &w1r}, std::pair{"w2", &w2r},
                           std::pair{"s1", &s1r}, std::pair{"s2", &s2r}, std::pair{"b", &br}})
    ASSERT_TRUE((*exe)->upload(name, *raw).isOk()) << name;
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  const auto y1 = readAs(*(*exe)->read("y1"), DType::kBF16);
  const auto y2 = readAs(*(*exe)->read("y2"), DType::kBF16);
  // One bf16 rounding of the result plus fp32 accumulation: the scale multiplies the fp32 sum.
  int bad = 0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double d1 = 0, d2 = 0, a1 = 0, a2 = 0;
      for (int k = 0; k < K; ++k) {
        const double xv = x[size_t(i) * K + k];
        d1 += xv * w1[size_t(j) * K + k];
        d2 += xv * w2[size_t(j) * K + k];
        a1 += std::abs(xv * w1[size_t(j) * K + k]);
        a2 += std::abs(xv * w2[size_t(j) * K + k]);
      }
      const double r1 = d1 * s1[size_t(j)], r2 = b[size_t(j)] + d2 * s2[0];
      const double t1 = std::ldexp(1.0, -8) * std::abs(r1) + 1e-5 * a1 * std::abs(s1[size_t(j)]);
      const double t2 = std::ldexp(1.0, -8) * std::abs(r2) + 1e-5 * a2 * s2[0] +
                        std::ldexp(1.0, -8) * std::abs(b[size_t(j)]);
      const double g1 = y1[size_t(i) * N + j], g2 = y2[size_t(i) * N + j];
      if (std::abs(g1 - r1) > t1 && bad++ < 5)
        ADD_FAILURE() << "y1[" << i << ", " << j << "] = " << g1 << ", expected " << r1;
      if (std::abs(g2 - r2) > t2 && bad++ < 5)
        ADD_FAILURE() << "y2[" << i << ", " << j << "] = " << g2 << ", expected " << r2;
    }
  EXPECT_EQ(rec->modelFlops, 2.0 * 2.0 * M * N * K);
}

std::string caseName(const ::testing::TestParamInfo<Fp8Case>& p) {
  return fmt::format("{}_{}x{}x{}", p.param.chip, p.param.M, p.param.K, p.param.N);
}

INSTANTIATE_TEST_SUITE_P(Chips, Fp8Linear,
                         ::testing::Values(Fp8Case{"trn2", 130, 300, 600},
                                           Fp8Case{"trn1", 130, 300, 600},
                                           Fp8Case{"trn2", 3, 16500, 70},
                                           Fp8Case{"trn3", 1, 64, 1}),
                         caseName);

}  // namespace
}  // namespace trnsim::compiler
