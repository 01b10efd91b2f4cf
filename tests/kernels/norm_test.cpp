// RMSNorm and LayerNorm against double-precision host references, and rmsnorm's bandwidth.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "kernel_test_util.h"
#include "trnsim/kernels/norm.h"

namespace trnsim {
namespace {

using numerics::DType;

void checkRmsNorm(DType dtype, int64_t R, int64_t H) {
  auto cfg = kernels::testing::chip("trn2");
  const float eps = 1e-6f;
  auto prog = kernels::rmsNormProgram(cfg, R, H, dtype, eps);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto x = kernels::testing::randomValues(size_t(R * H), 11, dtype, -2.f, 2.f);
  auto w = kernels::testing::randomValues(size_t(H), 12, dtype, 0.5f, 1.5f);
  auto out = kernels::testing::runFunctional(cfg, *prog, {{"x", &x}, {"weight", &w}}, "out");
  ASSERT_EQ(out.size(), x.size());
  const double tol = kernels::testing::dtypeTolerance(dtype);
  for (int64_t r = 0; r < R; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < H; ++j) ss += double(x[r * H + j]) * x[r * H + j];
    const double rstd = 1.0 / std::sqrt(ss / double(H) + eps);
    for (int64_t j = 0; j < H; ++j) {
      const double ref = double(x[r * H + j]) * rstd * w[j];
      ASSERT_NEAR(out[r * H + j], ref, tol * (1.0 + std::abs(ref))) << r << "," << j;
    }
  }
}

TEST(RmsNormKernel, Fp32MatchesHostReference) { checkRmsNorm(DType::kFP32, 200, 384); }
TEST(RmsNormKernel, Bf16MatchesHostReference) { checkRmsNorm(DType::kBF16, 128, 256); }

void checkLayerNorm(DType dtype, int64_t R, int64_t H) {
  auto cfg = kernels::testing::chip("trn2");
  const float eps = 1e-5f;
  auto prog = kernels::layerNormProgram(cfg, R, H, dtype, eps);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto x = kernels::testing::randomValues(size_t(R * H), 21, dtype, -1.f, 3.f);
  auto w = kernels::testing::randomValues(size_t(H), 22, dtype, 0.5f, 1.5f);
  auto bias = kernels::testing::randomValues(size_t(H), 23, dtype, -0.5f, 0.5f);
  auto out = kernels::testing::runFunctional(cfg, *prog, {{"x", &x}, {"weight", &w}, {"bias", &bias}}, "out");
  ASSERT_EQ(out.size(), x.size());
  const double tol = kernels::testing::dtypeTolerance(dtype);
  for (int64_t r = 0; r < R; ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < H; ++j) mean += x[r * H + j];
    mean /= double(H);
    for (int64_t j = 0; j < H; ++j) var += (x[r * H + j] - mean) * (x[r * H + j] - mean);
    var /= double(H);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < H; ++j) {
      const double ref = (x[r * H + j] - mean) * rstd * w[j] + bias[j];
      ASSERT_NEAR(out[r * H + j], ref, tol * (1.0 + std::abs(ref))) << r << "," << j;
    }
  }
}

// 200 rows: a full tile and a partial one; 600 columns: two bn_stats chunks, the last partial.
TEST(LayerNormKernel, Fp32MatchesHostReference) { checkLayerNorm(DType::kFP32, 200, 600); }
TEST(LayerNormKernel, Bf16MatchesHostReference) { checkLayerNorm(DType::kBF16, 128, 256); }

TEST(RmsNormKernel, RejectsMismatchedWeight) {
  isa::KernelBuilder b(kernels::testing::chip("trn2"), "bad");
  auto x = b.hbm("x", DType::kBF16, {128, 256}, isa::TensorKind::kInput);
  auto w = b.hbm("weight", DType::kBF16, {128}, isa::TensorKind::kInput);
  auto out = b.hbm("out", DType::kBF16, {128, 256}, isa::TensorKind::kOutput);
  auto st = kernels::emitRmsNorm(b, x, w, out, 1e-6f);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("hidden = 256"), std::string::npos) << st.message();
}

// Issue 3 target: rmsnorm over 8192x8192 bf16 on one trn2 core at >= 70% of HBM bandwidth.
// One core streaming alone is limited by its DMA engines (dma.sustained_gbps_per_core =
// 368 GB/s), not by the chip's HBM (2900 GB/s); the per-core share of HBM when all 8 cores
// stream (hbmGbpsPerCore() = 362.5 GB/s) is the figure the target refers to. The kernel must
// move 2 x 8192 x 8192 x 2 bytes (read x, write out) at >= 70% of that share.
TEST(RmsNormKernelTiming, Trn2Bf16ReachesSeventyPercentOfHbmShare) {
  auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::rmsNormProgram(cfg, 8192, 8192, DType::kBF16);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto run = kernels::testing::runTiming(cfg, std::move(*prog));
  ASSERT_EQ(run.timeline.cores.size(), 1u);
  const auto& core = run.timeline.cores[0];
  const double bytes = double(core.hbmReadBytes + core.hbmWriteBytes);
  EXPECT_GE(bytes, 2.0 * 8192 * 8192 * 2);
  const double gbps = bytes / run.simulatedNs;
  const double share = cfg.hbmGbpsPerCore(), dmaRate = cfg.dma.sustainedGbpsPerCore;
  std::printf(
      "rmsnorm 8192x8192 bf16 trn2: %.1f us, %.1f GB/s = %.1f%% of the per-core HBM "
      "share (%.1f GB/s), %.1f%% of the core's sustained DMA rate (%.1f GB/s)\n",
      run.simulatedNs * 1e-3, gbps, 100 * gbps / share, share, 100 * gbps / dmaRate, dmaRate);
  RecordProperty("achieved_gbps", std::to_string(gbps));
  EXPECT_GE(gbps / share, 0.70);
  EXPECT_LE(gbps, std::min(dmaRate, cfg.mem.hbmGbps) * 1.001);
}

}  // namespace
}  // namespace trnsim

namespace trnsim {
namespace {

// LayerNorm does more work per byte (bn_stats on VectorE, a normalising activation on ScalarE,
// a multiply on VectorE and an add on GpSimd) but each engine's share of a 128 x 8192 bf16
// tile stays under the tile's 11.4 us of DMA at 368 GB/s, so it stays DMA-bound too.
TEST(LayerNormKernelTiming, Trn2Bf16StaysNearDmaRate) {
  auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::layerNormProgram(cfg, 8192, 8192, numerics::DType::kBF16);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto run = kernels::testing::runTiming(cfg, std::move(*prog));
  ASSERT_EQ(run.timeline.cores.size(), 1u);
  const auto& core = run.timeline.cores[0];
  const double gbps = double(core.hbmReadBytes + core.hbmWriteBytes) / run.simulatedNs;
  std::printf(
      "layernorm 8192x8192 bf16 trn2: %.1f us, %.1f GB/s = %.1f%% of the per-core HBM "
      "share\n",
      run.simulatedNs * 1e-3, gbps, 100 * gbps / cfg.hbmGbpsPerCore());
  EXPECT_GE(gbps / cfg.hbmGbpsPerCore(), 0.70);
}

}  // namespace
}  // namespace trnsim
