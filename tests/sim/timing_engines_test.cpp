// Timing model on one core: TensorE LoadStationary/MultiplyMoving, streaming engines,
// dependencies derived from addresses, semaphore costs. Every expected time is derived by hand
// from the numbers of trn1Like()/trn2Like() (timing_test_util.h) in the comment above it.

#include <gtest/gtest.h>

#include "timing_test_util.h"

namespace trnsim::sim {
namespace {

using isa::DType;
using isa::Slice;
using namespace testing;  // timing_test_util.h

TEST(TimingTensor, LoneMatmulIsLoadStationaryPlusMultiplyMoving) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "lone");
  auto [st, mv, ps] = matmulTiles(b);
  ASSERT_TRUE(b.ncMatmul(ps.ap(), st.ap(), mv.ap()).isOk());
  isa::Program p = finishOrFail(b);
  // LoadStationary: 128 stationary columns / speedup 4 = 32 cycles; MultiplyMoving:
  // max(N = 512, 64) = 512 cycles. 544 cycles at 2.8 GHz = 194.2857 ns.
  Timeline t = timeOrFail(chip, p);
  ASSERT_EQ(t.events.size(), 1u);
  EXPECT_DOUBLE_EQ(t.events[0].startNs, 0.0);
  EXPECT_NEAR(t.events[0].endNs, 544 / 2.8, 1e-9);
  EXPECT_NEAR(t.endNs, 194.2857142857, 1e-6);
  // 2 * K * M * N = 2 * 128 * 128 * 512.
  EXPECT_DOUBLE_EQ(t.events[0].flops, 16777216.0);
  EXPECT_DOUBLE_EQ(t.cores[0].tensorFlops, 16777216.0);
  // At the peak 2 * 128 * 128 * 2.8e9 FLOP/s the flops take exactly the 512 MM cycles.
  EXPECT_NEAR(t.cores[0].tensorFlopsAtPeakNs, 512 / 2.8, 1e-9);
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[0]), 544 / 2.8, 1e-9);
}

TEST(TimingTensor, SmallMovingFloorAndFp32Passes) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "small");
  auto [st, mv, ps] = matmulTiles(b, 32);
  auto st32 = b.sbuf("st32", DType::kFP32, {128, 128});
  auto mv32 = b.sbuf("mv32", DType::kFP32, {128, 512});
  ASSERT_TRUE(b.ncMatmul(ps({Slice::all(), Slice::range(0, 32)}), st.ap(), mv.ap()).isOk());
  ASSERT_TRUE(b.ncMatmul(ps.ap(), st32.ap(), mv32.ap()).isOk());
  isa::Program p = finishOrFail(b);
  // N = 32 < mm_min_cycles: MM = 64 cycles, plus LS 32 = 96 cycles.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[0]), 96 / 2.8, 1e-9);
  // fp32: 4 passes of both stages: LS 4 * 32 = 128, MM 4 * 512 = 2048 -> 2176 cycles.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[1]), 2176 / 2.8, 1e-9);
}

TEST(TimingTensor, BackgroundLoadStationaryHidesBehindMultiplyMoving) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "pipe");
  auto st = b.sbuf("st", DType::kBF16, {128, 4, 128});
  auto mv = b.sbuf("mv", DType::kBF16, {128, 512});
  auto ps0 = b.psum("ps0", DType::kFP32, {128, 512});
  // Four matmuls, each with a new stationary, into four PSUM banks.
  for (int64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.ncMatmul(ps0.ap(), st({Slice::all(), Slice::at(i), Slice::all()}), mv.ap(),
                           isa::MatmulOptions{i > 0})
                    .isOk());
  }
  isa::Program p = finishOrFail(b);
  // LS0 [0, 32], MM0 [32, 544]; LS1 starts when MM0 starts (background buffer) and ends at 64,
  // MM1 follows MM0 at once: [544, 1056]; so on. End = 32 + 4 * 512 = 2080 cycles. The
  // accumulation into one PSUM tile adds no wait beyond TensorE's own order.
  Timeline t = timeOrFail(chip, p);
  EXPECT_NEAR(t.endNs, 2080 / 2.8, 1e-9);
  EXPECT_NEAR(eventOf(t, 1).startNs, 32 / 2.8, 1e-9);  // LS1 in the background
  EXPECT_NEAR(eventOf(t, 3).endNs, 2080 / 2.8, 1e-9);
  EXPECT_NEAR(t.cores[0].busyNs[0], 2080 / 2.8, 1e-9);
  // Flops at peak: 4 * 512 cycles of 2080: 98.5 % of the peak.
  EXPECT_NEAR(t.cores[0].tensorFlopsAtPeakNs / t.endNs, 2048.0 / 2080.0, 1e-12);
}

TEST(TimingTensor, SameStationaryLoadsOnce) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "reuse");
  auto st = b.sbuf("st", DType::kBF16, {128, 128});
  auto mv = b.sbuf("mv", DType::kBF16, {128, 64});
  auto ps = b.psum("ps", DType::kFP32, {128, 8, 64});
  for (int64_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(b.ncMatmul(ps({Slice::all(), Slice::at(i), Slice::all()}), st.ap(), mv.ap()).isOk());
  }
  isa::Program p = finishOrFail(b);
  // One LS (32 cycles) and eight MM of max(64, 64) = 64 cycles: 32 + 512 = 544 cycles.
  Timeline t = timeOrFail(chip, p);
  EXPECT_NEAR(t.endNs, 544 / 2.8, 1e-9);
}

TEST(TimingEngines, VectorWaitsForTensorPlusSemaphore) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "evac");
  auto [st, mv, ps] = matmulTiles(b);
  auto out = b.sbuf("out", DType::kBF16, {128, 512});
  ASSERT_TRUE(b.ncMatmul(ps.ap(), st.ap(), mv.ap()).isOk());
  ASSERT_TRUE(b.tensorCopy(out.ap(), ps.ap()).isOk());
  isa::Program p = finishOrFail(b);
  Timeline t = timeOrFail(chip, p);
  // Matmul ends at 544 cycles / 2.8 GHz = 194.2857 ns. The copy waits on a semaphore:
  // + 100 cycles at the Vector clock 1.12 GHz = 89.2857 ns -> starts at 283.5714 ns.
  // It streams F = 512 fp32 elements at 1 element/cycle: 512 / 1.12 = 457.1429 ns.
  const TimelineEvent& copy = eventOf(t, 1);
  EXPECT_NEAR(copy.readyNs, 194.2857142857, 1e-6);
  EXPECT_NEAR(copy.startNs, 283.5714285714, 1e-6);
  EXPECT_NEAR(copy.endNs, 740.7142857143, 1e-6);
  EXPECT_EQ(copy.engine, arch::Engine::kVector);
  EXPECT_NEAR(t.cores[0].busyNs[1], 457.1428571429, 1e-6);
}

TEST(TimingEngines, StreamingCostShapes) {
  const arch::ChipConfig chip = trn1Like();
  const arch::ChipConfig chip2 = trn2Like();
  isa::KernelBuilder b(chip, "shapes");
  auto x = b.sbuf("x", DType::kFP32, {128, 1024});
  auto y = b.sbuf("y", DType::kFP32, {128, 1024});
  auto z = b.sbuf("z", DType::kFP32, {128, 1024});
  auto h = b.sbuf("h", DType::kBF16, {128, 1024});
  auto s = b.sbuf("s", DType::kFP32, {128, 1});
  ASSERT_TRUE(b.tensorTensor(z.ap(), x.ap(), y.ap(), isa::AluOp::kMultiply).isOk());      // 0
  ASSERT_TRUE(b.activation(z.ap(), isa::ActFunc::kExp, x.ap()).isOk());                   // 1
  ASSERT_TRUE(b.reciprocal(z.ap(), x.ap()).isOk());                                       // 2
  ASSERT_TRUE(b.iota(z({Slice::all(), Slice::range(0, 16)}), {1}, 0.0f, 0.0f).isOk());   // 3
  ASSERT_TRUE(b.tensorScalar(h.ap(), h.ap(), isa::AluOp::kAdd, 1.0f).isOk());             // 4
  ASSERT_TRUE(b.tensorReduce(s.ap(), isa::AluOp::kAdd, x.ap(), 1).isOk());                // 5
  isa::Program p = finishOrFail(b);
  // tensor_tensor fp32: 2 inputs x 1024 = 2048 cycles at 1.12 GHz.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[0]), 2048 / 1.12, 1e-9);
  // activation: 1024 cycles at the ScalarE clock 1.4 GHz.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[1]), 1024 / 1.4, 1e-9);
  // reciprocal: 8N = 8192 cycles on VectorE.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[2]), 8192 / 1.12, 1e-9);
  // iota on GpSimd: fixed 150 + max(64, 16) = 214 cycles at 1.4 GHz.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[3]), 214 / 1.4, 1e-9);
  // tensor_scalar bf16 on trn2's VectorE: 1024 / 4 elements per cycle = 256 cycles at 0.96 GHz;
  // on trn1 1024 cycles at 1.12 GHz.
  EXPECT_NEAR(instructionCostNs(chip2, p, p.instructions[4]), 256 / 0.96, 1e-9);
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[4]), 1024 / 1.12, 1e-9);
  // tensor_reduce of fp32: N = 1024 cycles.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[5]), 1024 / 1.12, 1e-9);
}

TEST(TimingDeps, WriteAfterReadAndWriteAfterWrite) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "hazards");
  auto x = b.sbuf("x", DType::kFP32, {128, 512});
  auto y = b.sbuf("y", DType::kFP32, {128, 512});
  auto w = b.sbuf("w", DType::kFP32, {128, 512});
  auto src = b.hbm("src", DType::kFP32, {128, 512}, isa::TensorKind::kInput);
  ASSERT_TRUE(b.tensorCopy(y.ap(), x.ap()).isOk());                           // 0: reads x
  isa::DmaOptions q0;
  q0.queue = 0;
  ASSERT_TRUE(b.dmaCopy(x.ap(), src.ap(), q0).isOk());                          // 1: WAR on x
  ASSERT_TRUE(b.memset(w.ap(), 0.0f).isOk());                                 // 2: writes w
  ASSERT_TRUE(b.tensorCopy(w.ap(), y.ap(), arch::Engine::kScalar).isOk());     // 3: RAW y, WAW w
  ASSERT_TRUE(b.memset(w({Slice::all(), Slice::range(0, 64)}), 1.0f, arch::Engine::kGpSimd).isOk());  // 4
  isa::Program p = finishOrFail(b);
  Timeline t = timeOrFail(chip, p);
  // 0: Vector copy of 512 fp32: 512 cycles / 1.12 GHz = 457.1429 ns.
  EXPECT_NEAR(eventOf(t, 0).endNs, 457.1428571429, 1e-6);
  // 1: the DMA overwrites x only after instruction 0 read it (no extra semaphore for DMA):
  // start 457.1429; 1300 ns fixed + 256 KiB at 272 GB/s (2 KiB rows, full efficiency,
  // 128 rows over 16 engines = 435 GB/s > 272) = 963.7647 ns -> end 2720.9076 ns.
  EXPECT_NEAR(eventOf(t, 1).startNs, 457.1428571429, 1e-6);
  EXPECT_NEAR(eventOf(t, 1).endNs, 457.1428571429 + 1300 + 262144 / 272.0, 1e-6);
  // 2: memset on Vector after instruction 0: [457.1429, 914.2857].
  EXPECT_NEAR(eventOf(t, 2).endNs, 914.2857142857, 1e-6);
  // 3: ScalarE reads y (written by 0) and overwrites w (written by 2): waits for 2's end plus
  // 100 cycles at 1.4 GHz = 71.4286 -> start 985.7143; 512 / 1.4 = 365.7143 -> end 1351.4286.
  EXPECT_NEAR(eventOf(t, 3).startNs, 985.7142857143, 1e-6);
  EXPECT_NEAR(eventOf(t, 3).endNs, 1351.4285714286, 1e-6);
  // 4: GpSimd overwrites part of w after 3 (WAW): 1351.4286 + 100 / 1.4 = 1422.8571.
  EXPECT_NEAR(eventOf(t, 4).startNs, 1422.8571428571, 1e-6);
}

TEST(TimingDeps, IndependentInstructionsDoNotWait) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "indep");
  auto x = b.sbuf("x", DType::kFP32, {128, 512});
  auto y = b.sbuf("y", DType::kFP32, {128, 512});
  auto u = b.sbuf("u", DType::kFP32, {128, 512});
  auto v = b.sbuf("v", DType::kFP32, {128, 512});
  ASSERT_TRUE(b.tensorCopy(y.ap(), x.ap()).isOk());
  ASSERT_TRUE(b.tensorCopy(v.ap(), u.ap(), arch::Engine::kScalar).isOk());
  // Two halves of one tile written by two engines: disjoint partitions.
  ASSERT_TRUE(b.memset(x({Slice::range(0, 64), Slice::all()}), 0.0f, arch::Engine::kGpSimd).isOk());
  isa::Program p = finishOrFail(b);
  Timeline t = timeOrFail(chip, p);
  EXPECT_DOUBLE_EQ(eventOf(t, 1).startNs, 0.0);
  // The GpSimd memset writes x, which instruction 0 reads: WAR -> 457.1429 + 100 / 1.4.
  EXPECT_NEAR(eventOf(t, 2).startNs, 457.1428571429 + 100 / 1.4, 1e-6);
}

}  // namespace
}  // namespace trnsim::sim
