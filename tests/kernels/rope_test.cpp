// RoPE (rotate-half) against a double-precision host reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "kernel_test_util.h"
#include "trnsim/kernels/rope.h"

namespace trnsim {
namespace {

using numerics::DType;

void checkRope(DType dtype, int64_t H, int64_t S, int64_t D) {
  auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::ropeProgram(cfg, H, S, D, dtype);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  const int64_t half = D / 2;
  auto x = kernels::testing::randomValues(size_t(H * S * D), 61, dtype, -2.f, 2.f);
  std::vector<float> cos(size_t(S * half)), sin(size_t(S * half));
  for (int64_t s = 0; s < S; ++s)
    for (int64_t i = 0; i < half; ++i) {
      const double theta = double(s) * std::pow(10000.0, -2.0 * double(i) / double(D));
      cos[size_t(s * half + i)] = float(std::cos(theta));
      sin[size_t(s * half + i)] = float(std::sin(theta));
    }
  auto out = kernels::testing::runFunctional(cfg, *prog, {{"x", &x}, {"cos", &cos}, {"sin", &sin}}, "out");
  ASSERT_EQ(out.size(), x.size());
  const double tol = kernels::testing::dtypeTolerance(dtype);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < half; ++i) {
        const size_t base = size_t((h * S + s) * D);
        const double x1 = x[base + size_t(i)], x2 = x[base + size_t(half + i)];
        const double c = cos[size_t(s * half + i)], sn = sin[size_t(s * half + i)];
        const double r1 = x1 * c - x2 * sn, r2 = x2 * c + x1 * sn;
        ASSERT_NEAR(out[base + size_t(i)], r1, tol * (1 + std::abs(r1)))
            << h << "," << s << "," << i;
        ASSERT_NEAR(out[base + size_t(half + i)], r2, tol * (1 + std::abs(r2)))
            << h << "," << s << "," << i;
      }
}

// 200 positions: one per partition (a full tile and a partial one); 1100 positions: a tile of
// 128 x 8 consecutive positions per partition and a tail of 76.
TEST(RopeKernel, Fp32MatchesHostReference) { checkRope(DType::kFP32, 3, 200, 64); }
TEST(RopeKernel, Bf16MatchesHostReference) { checkRope(DType::kBF16, 2, 128, 128); }
TEST(RopeKernel, Bf16BlockedPositionsMatchHostReference) { checkRope(DType::kBF16, 2, 1100, 64); }

TEST(RopeKernelTiming, Trn2Bf16LlamaShape) {
  // 32 heads x 4096 positions x 128: 32 MiB in, 32 MiB out.
  auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::ropeProgram(cfg, 32, 4096, 128, DType::kBF16);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto run = kernels::testing::runTiming(cfg, std::move(*prog));
  const auto& core = run.timeline.cores.at(0);
  const double gbps = double(core.hbmReadBytes + core.hbmWriteBytes) / run.simulatedNs;
  std::printf(
      "rope 32x4096x128 bf16 trn2: %.1f us, %.1f GB/s of HBM traffic (%.0f%% of the "
      "core's DMA rate); busy ns: dve %.0f pool %.0f dma %.0f\n",
      run.simulatedNs * 1e-3, gbps, 100 * gbps / cfg.dma.sustainedGbpsPerCore,
      core.busyNs[size_t(arch::Engine::kVector)], core.busyNs[size_t(arch::Engine::kGpSimd)],
      core.busyNs[size_t(arch::Engine::kDma)]);
  EXPECT_GT(gbps, 0.0);
}

}  // namespace
}  // namespace trnsim
