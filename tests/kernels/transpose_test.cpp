// Transpose and reductions against host references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "kernel_test_util.h"
#include "trnsim/kernels/transpose.h"

namespace trnsim {
namespace {

using numerics::DType;

void checkTranspose(DType dtype, int64_t R, int64_t C) {
  auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::transposeProgram(cfg, R, C, dtype);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto x = kernels::testing::randomValues(size_t(R * C), 31, dtype);
  auto out = kernels::testing::runFunctional(cfg, *prog, {{"x", &x}}, "out");
  ASSERT_EQ(out.size(), x.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(out[c * R + r], x[r * C + c]) << r << "," << c;
}

// 600 rows: one full group of 512 and a partial one (88 rows); 200 columns: a partial block.
TEST(TransposeKernel, Fp32IsExact) { checkTranspose(DType::kFP32, 600, 200); }
TEST(TransposeKernel, Bf16IsExact) { checkTranspose(DType::kBF16, 256, 384); }

void checkReduce(kernels::ReduceOp op, int axis, int64_t R, int64_t C) {
  auto cfg = kernels::testing::chip("trn1");
  auto prog = kernels::reduceProgram(cfg, R, C, op, axis, DType::kFP32, DType::kFP32);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto x = kernels::testing::randomValues(size_t(R * C), 41, DType::kFP32, -3.f, 2.f);
  auto out = kernels::testing::runFunctional(cfg, *prog, {{"x", &x}}, "out");
  const int64_t n = axis == 1 ? R : C, m = axis == 1 ? C : R;
  ASSERT_EQ(out.size(), size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    double ref = op == kernels::ReduceOp::kSum ? 0.0 : -INFINITY;
    for (int64_t j = 0; j < m; ++j) {
      const double v = axis == 1 ? x[i * C + j] : x[j * C + i];
      ref = op == kernels::ReduceOp::kSum ? ref + v : std::max(ref, v);
    }
    ASSERT_NEAR(out[i], ref, 1e-5 * m) << "axis " << axis << " index " << i;
  }
}

TEST(ReduceKernel, SumAlongRows) { checkReduce(kernels::ReduceOp::kSum, 1, 300, 130); }
// More than 256 elements per output (a functional tensor_reduce once restarted there).
TEST(ReduceKernel, SumAlongLongRows) { checkReduce(kernels::ReduceOp::kSum, 1, 128, 700); }
TEST(ReduceKernel, MaxAlongRows) { checkReduce(kernels::ReduceOp::kMax, 1, 128, 64); }
// 700 rows: two row groups (512 + 188) folded into the running result; 300 columns: 3 blocks,
// the last partial.
TEST(ReduceKernel, SumDownColumns) { checkReduce(kernels::ReduceOp::kSum, 0, 700, 300); }
TEST(ReduceKernel, MaxDownColumns) { checkReduce(kernels::ReduceOp::kMax, 0, 600, 100); }

TEST(TransposeKernelTiming, Trn2Bf16IsDmaBound) {
  auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::transposeProgram(cfg, 4096, 4096, DType::kBF16);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto run = kernels::testing::runTiming(cfg, std::move(*prog));
  const auto& core = run.timeline.cores.at(0);
  const double gbps = double(core.hbmReadBytes + core.hbmWriteBytes) / run.simulatedNs;
  std::printf("transpose 4096x4096 bf16 trn2: %.1f us, %.1f GB/s of HBM traffic\n",
              run.simulatedNs * 1e-3, gbps);
  // Output rows are written in runs of 512 x 2 = 1 KiB, below the 2 KiB DMA efficiency knee
  // (efficiency (1024 / 1280) / (2048 / 2304) = 0.9 of 368 GB/s for the writes).
  EXPECT_GE(gbps, 0.5 * cfg.dma.sustainedGbpsPerCore);
}

}  // namespace
}  // namespace trnsim
