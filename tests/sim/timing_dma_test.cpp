// Timing model: DMA queues, the shared-bandwidth (fluid) model of DMA engines and HBM, several
// cores, the TensorE throttle, a well-pipelined large matmul, determinism and errors. Expected
// times are derived by hand from trn1Like()/trn2Like() (timing_test_util.h) in the comments.

#include <gtest/gtest.h>

#include "timing_test_util.h"

namespace trnsim::sim {
namespace {

using isa::DType;
using isa::Slice;
using namespace testing;  // timing_test_util.h

/// One HBM -> SBUF load of a [128, 2048] bf16 tile (4 KiB contiguous per row, 512 KiB) on
/// `queue`, optionally followed by a second one on `queue2`.
isa::Program loads(const arch::ChipConfig& chip, int queue, int queue2 = -1) {
  isa::KernelBuilder b(chip, "loads");
  auto src = b.hbm("src", DType::kBF16, {2, 128, 2048}, isa::TensorKind::kInput);
  auto dst = b.sbuf("dst", DType::kBF16, {128, 2, 2048});
  isa::DmaOptions o;
  o.queue = queue;
  EXPECT_TRUE(b.dmaCopy(dst({Slice::all(), Slice::at(0), Slice::all()}),
                        src({Slice::at(0), Slice::all(), Slice::all()}), o)
                  .isOk());
  if (queue2 >= 0) {
    o.queue = queue2;
    EXPECT_TRUE(b.dmaCopy(dst({Slice::all(), Slice::at(1), Slice::all()}),
                          src({Slice::at(1), Slice::all(), Slice::all()}), o)
                    .isOk());
  }
  return finishOrFail(b);
}

// 512 KiB at the core's sustained 272 GB/s (16 engines x 27.2 = 435 GB/s would allow more;
// HBM 820 GB/s too): 524288 / 272 = 1927.5294 ns, after the fixed 1300 ns.
constexpr double kTileBytes = 524288;
constexpr double kAloneNs = 1300 + kTileBytes / 272;  // 3227.5294 ns

TEST(TimingDma, LoneLoadIsLatencyPlusBytesOverBandwidth) {
  const arch::ChipConfig chip = trn1Like();
  isa::Program p = loads(chip, 0);
  Timeline t = timeOrFail(chip, p);
  EXPECT_NEAR(t.endNs, kAloneNs, 1e-6);
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[0]), kAloneNs, 1e-6);
  EXPECT_EQ(t.events[0].hbmBytes, 524288u);
  EXPECT_EQ(t.cores[0].hbmReadBytes, 524288u);
  EXPECT_EQ(t.cores[0].hbmWriteBytes, 0u);
  EXPECT_NEAR(t.cores[0].busyNs[static_cast<int>(arch::Engine::kDma)], kAloneNs, 1e-6);
}

TEST(TimingDma, OneQueueIsFifoTwoQueuesShareTheEngines) {
  const arch::ChipConfig chip = trn1Like();
  // Same queue: the data of the second load flows after the first's (its fixed latency
  // overlaps the first transfer): first [1300, 3227.5294], second [3227.5294, 5155.0588].
  isa::Program fifo = loads(chip, 3, 3);
  Timeline tf = timeOrFail(chip, fifo);
  EXPECT_NEAR(eventOf(tf, 0).endNs, kAloneNs, 1e-6);
  EXPECT_NEAR(eventOf(tf, 1).startNs, kAloneNs, 1e-6);
  EXPECT_NEAR(eventOf(tf, 1).endNs, kAloneNs + kTileBytes / 272, 1e-6);
  // Two queues: both start at 0 and split the core's 272 GB/s: 1300 + 2 x 1927.5294 =
  // 5155.0588 ns for both.
  isa::Program par = loads(chip, 3, 4);
  Timeline tp = timeOrFail(chip, par);
  EXPECT_DOUBLE_EQ(eventOf(tp, 1).startNs, 0.0);
  EXPECT_NEAR(eventOf(tp, 0).endNs, 1300 + 2 * kTileBytes / 272, 1e-6);
  EXPECT_NEAR(eventOf(tp, 1).endNs, 1300 + 2 * kTileBytes / 272, 1e-6);
}

/// Two single-row loads (one partition, 4 KiB contiguous): one descriptor each, so one DMA
/// engine (27.2 GB/s) each.
isa::Program rowLoads(const arch::ChipConfig& chip, int queue0, int queue1) {
  isa::KernelBuilder b(chip, "rows");
  auto src = b.hbm("src", DType::kBF16, {2, 2048}, isa::TensorKind::kInput);
  auto dst = b.sbuf("dst", DType::kBF16, {1, 2, 2048});
  isa::DmaOptions o;
  for (int i = 0; i < 2; ++i) {
    o.queue = i == 0 ? queue0 : queue1;
    EXPECT_TRUE(b.dmaCopy(dst({Slice::all(), Slice::at(i), Slice::all()}),
                          src({Slice::range(i, i + 1), Slice::all()}), o)
                    .isOk());
  }
  return finishOrFail(b);
}

TEST(TimingDma, NarrowTransfersUseOneEngineEach) {
  const arch::ChipConfig chip = trn1Like();
  // 4096 B at 27.2 GB/s = 150.5882 ns after 1300 ns.
  const double alone = 1300 + 4096 / 27.2;
  // Two queues: both engine-limited, far below the core's 272 GB/s: they run side by side.
  Timeline par = timeOrFail(chip, rowLoads(chip, 0, 1));
  EXPECT_NEAR(eventOf(par, 0).endNs, alone, 1e-6);
  EXPECT_NEAR(eventOf(par, 1).endNs, alone, 1e-6);
  // One queue: the second transfer follows the first: 1450.5882 + 150.5882 = 1601.1765.
  Timeline fifo = timeOrFail(chip, rowLoads(chip, 2, 2));
  EXPECT_NEAR(eventOf(fifo, 1).endNs, alone + 4096 / 27.2, 1e-6);
}

TEST(TimingDma, SmallRowsLoseEfficiency) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "small");
  auto src = b.hbm("src", DType::kBF16, {128, 64}, isa::TensorKind::kInput);
  auto dst = b.sbuf("dst", DType::kBF16, {128, 64});
  ASSERT_TRUE(b.dmaCopy(dst.ap(), src.ap()).isOk());
  isa::Program p = finishOrFail(b);
  // Rows of 128 B: each descriptor carries an overhead worth 2048 / 8 = 256 B, normalised so
  // 2 KiB rows run at full rate: (128 / 384) / (2048 / 2304) = 0.375 -> 102 GB/s;
  // 16384 B / 102 = 160.6275 ns after the 1300 ns latency.
  EXPECT_NEAR(instructionCostNs(chip, p, p.instructions[0]), 1300 + 16384 / 102.0, 1e-6);
}

TEST(TimingDma, IndirectScatterCostsTheRowsItWrites) {
  // 128 rows of 64 bf16 (128 B each) scattered into a table of 4096 or 65536 rows: the same
  // 16 KiB move, so the same cost as the SmallRowsLoseEfficiency copy whatever the table's
  // size (the destination view spans the whole table; only the indexed rows are written).
  const arch::ChipConfig chip = trn1Like();
  for (int64_t tableRows : {4096, 65536}) {
    isa::KernelBuilder b(chip, "scatter");
    auto table = b.hbm("table", DType::kBF16, {tableRows, 64}, isa::TensorKind::kOutput);
    auto rows = b.sbuf("rows", DType::kBF16, {128, 64});
    auto idx = b.sbuf("idx", DType::kInt32, {128, 1});
    isa::DmaOptions o;
    o.indirectDst = true;
    o.index = idx.ap();
    ASSERT_TRUE(b.dmaCopy(table.ap(), rows.ap(), o).isOk()) << b.status().toString();
    isa::Program p = finishOrFail(b);
    EXPECT_NEAR(instructionCostNs(chip, p, p.instructions.back()), 1300 + 16384 / 102.0, 1e-6)
        << tableRows << " table rows";
  }
}

TEST(TimingDma, DmaOverlapsIndependentMatmul) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "overlap");
  auto src = b.hbm("src", DType::kBF16, {128, 2048}, isa::TensorKind::kInput);
  auto dst = b.sbuf("dst", DType::kBF16, {128, 2048});
  auto [st, mv, ps] = matmulTiles(b);
  ASSERT_TRUE(b.ncMatmul(ps.ap(), st.ap(), mv.ap()).isOk());
  ASSERT_TRUE(b.dmaCopy(dst.ap(), src.ap()).isOk());
  isa::Program p = finishOrFail(b);
  Timeline t = timeOrFail(chip, p);
  // Independent: both start at 0; the end is the longer of 544 / 2.8 = 194.29 ns and the
  // load's 3227.5294 ns.
  EXPECT_DOUBLE_EQ(eventOf(t, 1).startNs, 0.0);
  EXPECT_NEAR(eventOf(t, 0).endNs, 544 / 2.8, 1e-9);
  EXPECT_NEAR(t.endNs, kAloneNs, 1e-6);
}

TEST(TimingDma, MatmulWaitsForItsLoad) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "raw");
  auto src = b.hbm("src", DType::kBF16, {128, 2048}, isa::TensorKind::kInput);
  auto [st, mv, ps] = matmulTiles(b, 2048);
  ASSERT_TRUE(b.dmaCopy(mv.ap(), src.ap()).isOk());
  ASSERT_TRUE(b.ncMatmul(ps.ap(), st.ap(), mv({Slice::all(), Slice::range(0, 512)})).isOk());
  isa::Program p = finishOrFail(b);
  Timeline t = timeOrFail(chip, p);
  // Ready at the load's end 3227.5294, + 100 cycles / 2.8 GHz semaphore = 35.7143 ns, then
  // 544 cycles = 194.2857 ns: end 3457.5294 ns.
  EXPECT_NEAR(eventOf(t, 1).startNs, kAloneNs + 100 / 2.8, 1e-6);
  EXPECT_NEAR(t.endNs, kAloneNs + 644 / 2.8, 1e-6);
}

TEST(TimingDma, HbmWritesAndReadsOfTheSameRowsAreOrdered) {
  const arch::ChipConfig chip = trn1Like();
  isa::KernelBuilder b(chip, "hbm");
  auto c = b.hbm("c", DType::kBF16, {128, 4096}, isa::TensorKind::kOutput);
  auto s = b.sbuf("s", DType::kBF16, {128, 2048});
  auto r = b.sbuf("r", DType::kBF16, {128, 2048});
  isa::DmaOptions o;
  o.queue = 1;
  ASSERT_TRUE(b.dmaCopy(c({Slice::all(), Slice::range(0, 2048)}), s.ap(), o).isOk());   // 0
  o.queue = 2;
  ASSERT_TRUE(b.dmaCopy(r.ap(), c({Slice::all(), Slice::range(2048, 4096)}), o).isOk());  // 1
  o.queue = 3;
  ASSERT_TRUE(b.dmaCopy(r.ap(), c({Slice::all(), Slice::range(0, 2048)}), o).isOk());  // 2
  isa::Program p = finishOrFail(b);
  Timeline t = timeOrFail(chip, p);
  // 1 reads other columns of the same rows: it runs alongside 0 (both start at 0).
  EXPECT_DOUBLE_EQ(eventOf(t, 1).startNs, 0.0);
  // 2 reads what 0 wrote (RAW through HBM) and overwrites r after 1 (WAW): starts at the later
  // of their ends. 0 and 1 share 272 GB/s: both end at 1300 + 2 x 1927.5294 = 5155.0588.
  EXPECT_NEAR(eventOf(t, 2).startNs, 1300 + 2 * kTileBytes / 272, 1e-6);
  EXPECT_NEAR(eventOf(t, 2).endNs, 1300 + 2 * kTileBytes / 272 + kAloneNs, 1e-6);
}

TEST(TimingChip, TwoCoresShareHbmWhenItIsTheLimit) {
  // Make HBM the bottleneck: the chip's HBM at one core's DMA rate (272 GB/s).
  arch::ChipConfig chip = trn1Like();
  chip.mem.hbmGbps = 272;
  isa::Program a = loads(chip, 0);
  isa::Program b = loads(chip, 0);
  Timeline alone = timeOrFail(chip, a);
  EXPECT_NEAR(alone.endNs, kAloneNs, 1e-6);
  // Both cores stream at once: 136 GB/s each, the data phase takes twice as long:
  // 1300 + 524288 / 136 = 5155.0588 ns on both cores.
  Timeline both = timeOrFail(chip, {&a, &b});
  ASSERT_EQ(both.cores.size(), 2u);
  EXPECT_NEAR(both.cores[0].endNs, 1300 + kTileBytes / 136, 1e-6);
  EXPECT_NEAR(both.cores[1].endNs, 1300 + kTileBytes / 136, 1e-6);
  EXPECT_NEAR((both.cores[1].endNs - 1300) / (alone.endNs - 1300), 2.0, 1e-9);
}

TEST(TimingChip, TwoCoresDoNotContendBelowTheHbmLimit) {
  // trn1: 2 x 272 GB/s = 544 < 820 GB/s of HBM: each core loads as fast as alone.
  const arch::ChipConfig chip = trn1Like();
  isa::Program a = loads(chip, 0);
  isa::Program b = loads(chip, 0);
  Timeline both = timeOrFail(chip, {&a, &b});
  EXPECT_NEAR(both.cores[0].endNs, kAloneNs, 1e-6);
  EXPECT_NEAR(both.cores[1].endNs, kAloneNs, 1e-6);
}

TEST(TimingChip, LateStartingCoreGetsItsShareFromThen) {
  // HBM limit 272 GB/s. Core 0 loads two tiles one after the other on one queue, core 1 one
  // tile: the shares change when core 1's transfer ends.
  arch::ChipConfig chip = trn1Like();
  chip.mem.hbmGbps = 272;
  isa::Program a = loads(chip, 0, 0);
  isa::Program b = loads(chip, 0);
  Timeline t = timeOrFail(chip, {&a, &b});
  // Core 1's tile shares HBM with core 0's first tile: both end at 1300 + 2 x 1927.5294 =
  // 5155.0588. Core 0's second tile (latency already paid) then flows alone at 272 GB/s:
  // + 1927.5294 = 7082.5882.
  EXPECT_NEAR(t.cores[1].endNs, 1300 + 2 * kTileBytes / 272, 1e-6);
  EXPECT_NEAR(t.cores[0].endNs, 1300 + 3 * kTileBytes / 272, 1e-6);
}

/// `count` matmuls 128x128x512 bf16 with one stationary; optionally a second burst that waits
/// for a DMA overwriting the first burst's moving tile (so it starts after the first burst and
/// leaves TensorE idle while it runs).
isa::Program matmulBursts(const arch::ChipConfig& chip, int count, bool secondBurst) {
  isa::KernelBuilder b(chip, "bursts");
  auto st = b.sbuf("st", DType::kBF16, {128, 128});
  auto ps = b.psum("ps", DType::kFP32, {128, 512});
  auto src = b.hbm("src", DType::kBF16, {128, 4096}, isa::TensorKind::kInput);
  auto big = b.sbuf("big", DType::kBF16, {128, 4096});
  auto mv = big({Slice::all(), Slice::range(0, 512)});
  for (int i = 0; i < count; ++i) EXPECT_TRUE(b.ncMatmul(ps.ap(), st.ap(), mv).isOk());
  if (secondBurst) {
    EXPECT_TRUE(b.dmaCopy(big.ap(), src.ap()).isOk());
    for (int i = 0; i < count; ++i) EXPECT_TRUE(b.ncMatmul(ps.ap(), st.ap(), mv).isOk());
  }
  return finishOrFail(b);
}

TEST(TimingChip, ThrottleRampsOnTrn2AndNotOnTrn1) {
  const arch::ChipConfig trn2 = trn2Like();
  arch::ChipConfig unthrottled = trn2;
  unthrottled.pe.throttle.enabled = false;
  isa::Program p = matmulBursts(trn2, 40, false);
  // Unthrottled: LS 32 cycles + 40 x 512 = 20512 cycles at 2.4 GHz = 8546.6667 ns.
  Timeline fast = timeOrFail(unthrottled, p);
  EXPECT_NEAR(fast.endNs, 20512 / 2.4, 1e-6);
  EXPECT_DOUBLE_EQ(fast.cores[0].throttledNs, 0.0);
  // Throttled: the rate rises linearly from 50 % to 100 % over 3000 ns of busy time, so those
  // 3000 ns do 3000 x (0.5 + 1) / 2 = 2250 ns of work: 750 ns lost (the burst's 8533 ns of
  // MultiplyMoving is longer than the ramp).
  Timeline slow = timeOrFail(trn2, p);
  EXPECT_NEAR(slow.cores[0].throttledNs, 750, 1e-6);
  EXPECT_NEAR(slow.endNs, 20512 / 2.4 + 750, 1e-6);
  // trn1 has no throttle.
  const arch::ChipConfig trn1 = trn1Like();
  isa::Program p1 = matmulBursts(trn1, 40, false);
  Timeline t1 = timeOrFail(trn1, p1);
  EXPECT_DOUBLE_EQ(t1.cores[0].throttledNs, 0.0);
  EXPECT_NEAR(t1.endNs, 20512 / 2.8, 1e-6);
}

TEST(TimingChip, ThrottleRearmsAfterAnIdleWindow) {
  const arch::ChipConfig trn2 = trn2Like();
  isa::Program p = matmulBursts(trn2, 40, true);
  Timeline t = timeOrFail(trn2, p);
  // The DMA waits for the first burst (WAR on its moving tile) and then takes 1300 + 1 MiB /
  // 368 GB/s = 4149.4 ns, more than the 3000 ns window with TensorE idle: the second burst
  // ramps again, 2 x 750 ns lost in all.
  EXPECT_NEAR(t.cores[0].throttledNs, 1500, 1e-6);
  const TimelineEvent& dma = eventOf(t, 40);
  EXPECT_NEAR(dma.startNs, eventOf(t, 39).endNs, 1e-9);
  EXPECT_NEAR(eventOf(t, 41).readyNs, dma.endNs, 1e-9);
  EXPECT_NEAR(dma.endNs - dma.startNs, 1300 + 1048576 / 368.0, 1e-6);
}

TEST(TimingChip, PipelinedLargeMatmulRunsNearPeak) {
  const arch::ChipConfig chip = trn1Like();
  isa::Program p = testing::pipelinedMatmul(chip, 2048, 2048, 2048);
  Timeline t = timeOrFail(chip, p, false);
  // Hand derivation: 2 x 2048^3 flops at 2 x 128 x 128 x 2.8e9 = 91.75 TFLOP/s take 187.2 us.
  // Prologue: B (8 MiB, queue 1) and At group 0 (2 MiB, queue 0) load from t = 0; the group-1
  // prefetch of At (2 MiB) depends on nothing and joins them. The core's DMA is saturated, so
  // the last B tile lands at 1300 + 12 MiB / 272 GB/s = 47560.7 ns; the last 4 matmuls of block
  // 0 follow (+ 35.7 ns semaphore + 4 x 182.86 + LS 11.4) at ~48339 ns. The other 15 blocks run
  // back to back at 64 x 512 cycles = 11702.9 ns each -> last matmul ends ~223882 ns. Then
  // the last PSUM evacuation (Vector: two 512-element fp32 copies of 457.1 ns, the second
  // starting when the first ends) ends at 224337 ns, and the 512 KiB store takes 1300 +
  // 1927.5 ns: 227565 ns in all -> 187.2 / 227.6 = 82 % of peak.
  const double util = t.cores[0].tensorFlopsAtPeakNs / t.endNs;
  EXPECT_NEAR(t.cores[0].tensorFlops, 2.0 * 2048 * 2048 * 2048, 1);
  EXPECT_GE(util, 0.80);
  EXPECT_LE(util, 0.95);
  EXPECT_NEAR(t.endNs, 227565, 100);
  RecordProperty("pe_utilization", std::to_string(util));
}

TEST(TimingChip, SameProgramsGiveIdenticalTimelines) {
  const arch::ChipConfig chip = trn2Like();
  isa::Program a = testing::pipelinedMatmul(chip, 1024, 1024, 1024);
  isa::Program b = loads(chip, 0, 1);
  Timeline t1 = timeOrFail(chip, {&a, &b, &a});
  Timeline t2 = timeOrFail(chip, {&a, &b, &a});
  ASSERT_EQ(t1.events.size(), t2.events.size());
  for (size_t i = 0; i < t1.events.size(); ++i) {
    EXPECT_EQ(t1.events[i].startNs, t2.events[i].startNs);
    EXPECT_EQ(t1.events[i].endNs, t2.events[i].endNs);
    EXPECT_EQ(t1.events[i].core, t2.events[i].core);
  }
  EXPECT_EQ(t1.endNs, t2.endNs);
  // Recording events does not change the times.
  Timeline t3 = timeOrFail(chip, {&a, &b, &a}, false);
  EXPECT_TRUE(t3.events.empty());
  EXPECT_EQ(t3.endNs, t1.endNs);
  EXPECT_EQ(t3.cores[2].endNs, t1.cores[2].endNs);
}

TEST(TimingErrors, BadInputsAreErrorsNotCrashes) {
  const arch::ChipConfig chip = trn1Like();
  isa::Program p = loads(chip, 0);
  std::vector<const isa::Program*> three{&p, &p, &p};
  auto tooMany = simulateTiming(chip, three);
  ASSERT_FALSE(tooMany.hasValue());
  EXPECT_EQ(tooMany.status().code(), ErrorCode::kInvalidArgument);

  isa::Program badQueue = p;
  badQueue.instructions[0].queue = 999;
  auto q = simulateTiming(chip, std::vector<const isa::Program*>{&badQueue});
  ASSERT_FALSE(q.hasValue());
  EXPECT_NE(q.status().toString().find("queue"), std::string::npos);

  isa::Program badTensor = p;
  badTensor.instructions[0].operands[0].ap.tensor = 77;
  auto bt = simulateTiming(chip, std::vector<const isa::Program*>{&badTensor});
  ASSERT_FALSE(bt.hasValue());

  arch::ChipConfig noClock = chip;
  noClock.pe.clockGhz = 0;
  auto nc = simulateTiming(noClock, std::vector<const isa::Program*>{&p});
  ASSERT_FALSE(nc.hasValue());
  EXPECT_EQ(nc.status().code(), ErrorCode::kConfig);

  std::vector<const isa::Program*> none{nullptr};
  EXPECT_FALSE(simulateTiming(chip, none).hasValue());
}

TEST(TimingChip, EmptyProgramTakesNoTime) {
  const arch::ChipConfig chip = trn1Like();
  isa::Program empty;
  Timeline t = timeOrFail(chip, empty);
  EXPECT_EQ(t.endNs, 0.0);
  ASSERT_EQ(t.cores.size(), 1u);
  EXPECT_EQ(t.cores[0].instructions, 0u);
}

// The table's quick check lets DMA transposes through only when the chip can transpose from
// both HBM and SBUF; otherwise the full check decides from the source. A chip that transposes
// from SBUF but not from HBM refuses a transpose from HBM and says so; one that transposes from
// HBM but not from SBUF times it.
TEST(TimingErrors, DmaTransposeNeedsAPathFromItsSource) {
  const arch::ChipConfig chip = trn2Like();
  isa::KernelBuilder b(chip, "transpose");
  auto src = b.hbm("src", DType::kBF16, {128, 128}, isa::TensorKind::kInput);
  auto dst = b.sbuf("dst", DType::kBF16, {128, 128});
  ASSERT_TRUE(b.dmaTranspose(dst({Slice::all(), Slice::all()}), src({Slice::all(), Slice::all()}))
                  .isOk());
  isa::Program p = finishOrFail(b);
  const std::vector<const isa::Program*> one{&p};
  EXPECT_TRUE(simulateTiming(chip, one).hasValue());

  arch::ChipConfig noSbufPath = chip;
  noSbufPath.dma.sbufTransposeEfficiency = 0;
  EXPECT_TRUE(simulateTiming(noSbufPath, one).hasValue());

  arch::ChipConfig noHbmPath = chip;
  noHbmPath.dma.transposeEfficiency = 0;
  auto refused = simulateTiming(noHbmPath, one);
  ASSERT_FALSE(refused.hasValue());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(refused.status().toString().find("no DMA transpose from HBM"), std::string::npos)
      << refused.status().toString();
}

}  // namespace
}  // namespace trnsim::sim
