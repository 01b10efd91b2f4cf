// The kernel library against host references computed independently (double precision on the
// same bf16-rounded inputs), run on the functional simulator.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/softmax.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/chip.h"

namespace trnsim {
namespace {

using numerics::DType;

std::vector<float> randomBf16(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(dist(gen)));
  return v;
}

arch::ChipConfig chip(const char* name) {
  auto c = arch::loadChip(name);
  EXPECT_TRUE(c.hasValue()) << c.status().toString();
  return *c;
}

void checkMatmul(const arch::ChipConfig& cfg, int64_t M, int64_t K, int64_t N,
                 kernels::MatmulTiling tiling) {
  auto prog = kernels::matmulProgram(cfg, M, K, N, DType::kBF16, DType::kFP32, tiling);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto lhsT = randomBf16(size_t(K * M), 1);
  auto rhs = randomBf16(size_t(K * N), 2);
  sim::Chip c(cfg);
  ASSERT_TRUE(c.load({*prog}).isOk());
  ASSERT_TRUE(c.writeFloats("lhsT", lhsT).isOk());
  ASSERT_TRUE(c.writeFloats("rhs", rhs).isOk());
  auto run = c.run({.computeTiming = false});
  ASSERT_TRUE(run.hasValue()) << run.status().toString();
  auto out = c.readFloats("out");
  ASSERT_TRUE(out.hasValue());
  double maxErr = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0;
      for (int64_t k = 0; k < K; ++k) ref += double(lhsT[k * M + m]) * double(rhs[k * N + n]);
      maxErr = std::max(maxErr, std::abs(ref - double((*out)[m * N + n])));
    }
  }
  // fp32 accumulation of K products of magnitude <= 1: error well under K * 2^-24 * |sum|.
  EXPECT_LT(maxErr, 1e-4 * std::sqrt(double(K))) << M << "x" << K << "x" << N;
}

TEST(MatmulKernel, SingleBlockMatchesHostReference) {
  checkMatmul(chip("trn2"), 128, 256, 512, {});
}

TEST(MatmulKernel, MultiBlockAccumulatesAcrossKBlocksInSbuf) {
  // 2 M blocks, 2 N blocks, 3 K blocks: exercises the fp32 partial sums and buffer rotation.
  checkMatmul(chip("trn1"), 256, 384, 1024, {.tilesInBlockM = 1, .tilesInBlockN = 1,
                                             .tilesInBlockK = 1});
}

TEST(MatmulKernel, RejectsShapesItCannotTile) {
  auto prog = kernels::matmulProgram(chip("trn2"), 100, 128, 512);
  ASSERT_FALSE(prog.hasValue());
  EXPECT_EQ(prog.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(prog.status().message().find("multiples of 128"), std::string::npos);
}

TEST(SoftmaxKernel, MatchesHostReference) {
  const int64_t R = 200, C = 384;  // a partial last tile of 72 rows
  auto cfg = chip("trn2");
  auto prog = kernels::softmaxProgram(cfg, R, C, DType::kFP32);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  std::mt19937 gen(7);
  std::normal_distribution<float> dist(0.f, 3.f);
  std::vector<float> x(size_t(R * C));
  for (auto& v : x) v = dist(gen);
  sim::Chip c(cfg);
  ASSERT_TRUE(c.load({*prog}).isOk());
  ASSERT_TRUE(c.writeFloats("x", x).isOk());
  auto run = c.run({.computeTiming = false});
  ASSERT_TRUE(run.hasValue()) << run.status().toString();
  auto out = c.readFloats("out");
  ASSERT_TRUE(out.hasValue());
  for (int64_t r = 0; r < R; ++r) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < C; ++j) mx = std::max(mx, double(x[r * C + j]));
    for (int64_t j = 0; j < C; ++j) sum += std::exp(double(x[r * C + j]) - mx);
    for (int64_t j = 0; j < C; ++j) {
      const double ref = std::exp(double(x[r * C + j]) - mx) / sum;
      ASSERT_NEAR((*out)[r * C + j], ref, 1e-6 + 1e-4 * ref) << r << "," << j;
    }
  }
}

}  // namespace
}  // namespace trnsim
