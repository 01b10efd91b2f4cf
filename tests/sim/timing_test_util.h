#pragma once
// Helpers of the timing tests: fixed trn1-/trn2-like chips whose numbers the tests' hand
// derivations quote (so a change to configs/chips/*.json cannot silently move them), and a
// well-pipelined tiled matmul kernel.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/sim/timing.h"

namespace trnsim::sim::testing {

/// Trainium1-like numbers from the NeuronCore-v2 documents of docs/sources.md ([A2], [T1]).
inline arch::ChipConfig trn1Like() {
  arch::ChipConfig c;
  c.name = "trn1-test";
  c.coresPerChip = 2;
  c.pe.clockGhz = 2.8;
  c.pe.mmMinCycles = 64;
  c.pe.loadStationarySpeedup = 4;
  c.pe.fp32Slowdown = 4;
  c.pe.fp8Speedup = 1;
  c.pe.fixedOverheadCycles = 0;
  c.vector = {1.12, 128, 1, 1, 1, 64, 0};
  c.scalar = {1.4, 128, 1, 1, 1, 64, 0};
  c.gpsimd = {1.4, 128, 1, 1, 1, 64, 150};
  c.sync = {1.4, 128, 1, 1, 1, 64, 0};
  c.dma.enginesPerCore = 16;
  c.dma.queuesPerEngine = 16;
  c.dma.engineGbps = 27.2;
  c.dma.sustainedGbpsPerCore = 272;
  c.dma.fixedLatencyNs = 1300;
  c.dma.minEfficientBytes = 2048;
  c.dma.transposeEfficiency = 0;
  c.dma.sbufTransposeEfficiency = 0;
  c.mem.sbufPartitions = 128;
  c.mem.sbufBytesPerPartition = 192 * 1024;
  c.mem.psumBanks = 8;
  c.mem.psumBankBytesPerPartition = 2048;
  c.mem.hbmBytes = 32ull << 30;
  c.mem.hbmGbps = 820;
  c.mem.hbmStacks = 2;
  c.semaphoreWaitCycles = 100;
  return c;
}

/// Trainium2-like numbers (NeuronCore-v3), with the TensorE throttle on.
inline arch::ChipConfig trn2Like() {
  arch::ChipConfig c = trn1Like();
  c.name = "trn2-test";
  c.coresPerChip = 8;
  c.pe.clockGhz = 2.4;
  c.pe.fp8Speedup = 2;
  c.pe.throttle.enabled = true;
  c.pe.throttle.startFraction = 0.5;
  c.pe.throttle.rampNs = 3000;
  c.pe.throttle.rearmIdleNs = 3000;
  c.pe.throttle.rearmThreshold = 0.5;
  c.vector = {0.96, 128, 2, 4, 4, 64, 0};
  c.scalar = {1.2, 128, 1, 1, 1, 64, 0};
  c.gpsimd = {1.2, 128, 1, 1, 1, 64, 150};
  c.sync = {1.2, 128, 1, 1, 1, 64, 0};
  c.dma.sustainedGbpsPerCore = 368;
  c.dma.transposeEfficiency = 0.9;
  c.dma.sbufTransposeEfficiency = 0.5;
  c.mem.sbufBytesPerPartition = 224 * 1024;
  c.mem.hbmGbps = 2900;
  return c;
}

/// The operands of one bf16 nc_matmul as the timing tests declare them, in this order:
/// stationary "st" [128, 128], moving "mv" [128, movingCols] and PSUM "ps" [128, 512] fp32.
struct MatmulTiles {
  isa::Tensor st, mv, ps;
};

inline MatmulTiles matmulTiles(isa::KernelBuilder& b, int64_t movingCols = 512) {
  return {b.sbuf("st", isa::DType::kBF16, {128, 128}),
          b.sbuf("mv", isa::DType::kBF16, {128, movingCols}),
          b.psum("ps", isa::DType::kFP32, {128, 512})};
}

/// Unwraps a builder result inside a test.
inline isa::Program finishOrFail(isa::KernelBuilder& b) {
  auto p = b.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? std::move(p).value() : isa::Program{};
}

/// Times programs (one per core) and fails the test on an error.
inline Timeline timeOrFail(const arch::ChipConfig& chip, const std::vector<const isa::Program*>& ps,
                           bool record = true) {
  TimingOptions opts;
  opts.recordEvents = record;
  auto t = simulateTiming(chip, ps, opts);
  EXPECT_TRUE(t.hasValue()) << (t.hasValue() ? "" : t.status().toString());
  return t.hasValue() ? std::move(t).value() : Timeline{};
}

inline Timeline timeOrFail(const arch::ChipConfig& chip, const isa::Program& p, bool record = true) {
  return timeOrFail(chip, std::vector<const isa::Program*>{&p}, record);
}

/// The event of instruction `inst` of core `core`.
inline const TimelineEvent& eventOf(const Timeline& t, uint32_t inst, uint32_t core = 0) {
  for (const TimelineEvent& e : t.events) {
    if (e.core == core && e.instruction == inst) return e;
  }
  static TimelineEvent none;
  ADD_FAILURE() << "no event for instruction " << inst << " of core " << core;
  return none;
}

/// C[M, N] = A[M, K] @ B[K, N] in bf16 with fp32 PSUM accumulation, the way a tuned NKI
/// kernel does it on one core: A arrives transposed (At[K, M], the stationary layout); B stays
/// resident in SBUF ([128, K/128, N]), loaded one 128-row K tile per DMA; At is loaded 512
/// columns at a time, double-buffered (needs M a multiple of 512, K of 128, N of 512); for each 128-row block of C the K tiles run outermost
/// so each stationary tile serves N/512 matmuls into N/512 PSUM banks (two sets of banks
/// alternate so the evacuation of one block overlaps the matmuls of the next); Vector and
/// Scalar take turns copying PSUM to SBUF (bf16) and DMAs store C.
inline isa::Program pipelinedMatmul(const arch::ChipConfig& chip, int64_t m, int64_t k, int64_t n) {
  using isa::DType;
  using isa::Slice;
  isa::KernelBuilder b(chip, "matmul");
  const int64_t kt = k / 128, nt = n / 512, mGroup = 512, groups = m / mGroup;
  isa::Tensor at = b.hbm("at", DType::kBF16, {k, m}, isa::TensorKind::kInput);
  isa::Tensor bm = b.hbm("b", DType::kBF16, {k, n}, isa::TensorKind::kInput);
  isa::Tensor cm = b.hbm("c", DType::kBF16, {m, n}, isa::TensorKind::kOutput);
  isa::Tensor bRes = b.sbuf("b_res", DType::kBF16, {128, kt, n});
  isa::Tensor aBuf[2] = {b.sbuf("a0", DType::kBF16, {128, kt, mGroup}),
                         b.sbuf("a1", DType::kBF16, {128, kt, mGroup})};
  isa::Tensor cOut[2] = {b.sbuf("c0", DType::kBF16, {128, n}), b.sbuf("c1", DType::kBF16, {128, n})};
  std::vector<isa::Tensor> acc;
  for (int64_t i = 0; i < 2 * nt; ++i) {
    acc.push_back(b.psum("acc" + std::to_string(i), DType::kFP32, {128, 512}));
  }
  // Queues: At on 0, B on 1 (each FIFO, so tiles arrive in K order), C stores round-robin on
  // 2..15.
  auto loadA = [&](int64_t g) {
    isa::DmaOptions o;
    o.queue = 0;
    for (int64_t t = 0; t < kt; ++t) {
      (void)b.dmaCopy(aBuf[g % 2]({Slice::all(), Slice::at(t), Slice::all()}),
                      at({Slice::range(t * 128, (t + 1) * 128), Slice::range(g * mGroup, (g + 1) * mGroup)}), o);
    }
  };
  // Prologue: the first group of At and every K tile of B.
  loadA(0);
  for (int64_t t = 0; t < kt; ++t) {
    isa::DmaOptions o;
    o.queue = 1;
    (void)b.dmaCopy(bRes({Slice::all(), Slice::at(t), Slice::all()}),
                    bm({Slice::range(t * 128, (t + 1) * 128), Slice::all()}), o);
  }
  int64_t block = 0;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t mb = 0; mb < mGroup / 128; ++mb, ++block) {
      const int64_t set = block % 2;
      for (int64_t t = 0; t < kt; ++t) {
        for (int64_t j = 0; j < nt; ++j) {
          isa::MatmulOptions o;
          o.accumulate = t > 0;
          (void)b.ncMatmul(acc[set * nt + j].ap(),
                           aBuf[g % 2]({Slice::all(), Slice::at(t), Slice::range(mb * 128, (mb + 1) * 128)}),
                           bRes({Slice::all(), Slice::at(t), Slice::range(j * 512, (j + 1) * 512)}), o);
        }
      }
      // Prefetch the next group of At into the other buffer once the first block of this
      // group has its data (so the prologue's loads are not slowed by it).
      if (mb == 0 && g + 1 < groups) loadA(g + 1);
      for (int64_t j = 0; j < nt; ++j) {
        (void)b.tensorCopy(cOut[set]({Slice::all(), Slice::range(j * 512, (j + 1) * 512)}),
                           acc[set * nt + j].ap(), j % 2 == 0 ? arch::Engine::kVector : arch::Engine::kScalar);
      }
      isa::DmaOptions o;
      o.queue = int(2 + block % 14);
      (void)b.dmaCopy(cm({Slice::range(block * 128, (block + 1) * 128), Slice::all()}), cOut[set].ap(), o);
    }
  }
  return finishOrFail(b);
}

}  // namespace trnsim::sim::testing
