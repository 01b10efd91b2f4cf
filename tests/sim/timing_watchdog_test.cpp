// The timing model cannot stall (issue 14): a chip whose rates make an instruction absurdly
// slow (a clock of 1e-20 GHz, built in code so that the loader's ranges do not stop it first)
// gives a clear error naming the engine, the instruction and the simulated time, in well under
// a second; a DMA that starts far out in simulated time, where a double no longer resolves a
// picosecond, still finishes; and every value the chip loader accepts, down to the ends of its
// ranges, times a small program without stalling.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <string>
#include <variant>
#include <vector>

#include "timing_test_util.h"
#include "trnsim/arch/chip_schema.h"
#include "trnsim/sim/timing_fluid.h"

namespace trnsim::sim {
namespace {

using isa::DType;
using isa::Slice;
using testing::finishOrFail;
using testing::trn2Like;

/// Runs `f`, failing (and ending the test binary, since a spinning thread cannot be stopped)
/// when it takes longer than `seconds`: a hang fails the test instead of hanging it.
template <typename F>
auto withinSeconds(double seconds, F f) -> decltype(f()) {
  auto fut = std::async(std::launch::async, std::move(f));
  if (fut.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "timing model did not finish within %g s: it stalls\n", seconds);
    std::fflush(stderr);
    std::_Exit(1);
  }
  return fut.get();
}

/// x (HBM) -> t (SBUF) by DMA; ScalarE exp; VectorE x2 (fp32); a bf16 matmul on TensorE; a
/// PSUM evacuation on VectorE; t -> y (HBM) by DMA.
isa::Program smallProgram(const arch::ChipConfig& chip) {
  isa::KernelBuilder b(chip, "watchdog");
  auto x = b.hbm("x", DType::kFP32, {128, 512}, isa::TensorKind::kInput);
  auto y = b.hbm("y", DType::kFP32, {128, 512}, isa::TensorKind::kOutput);
  auto t = b.sbuf("t", DType::kFP32, {128, 512});
  auto e = b.sbuf("e", DType::kBF16, {128, 512});
  auto ps = b.psum("ps", DType::kFP32, {128, 512});
  EXPECT_TRUE(b.dmaCopy(t.ap(), x.ap()).isOk());                                             // 0
  EXPECT_TRUE(b.activation(e.ap(), isa::ActFunc::kExp, t.ap()).isOk());                      // 1
  EXPECT_TRUE(b.tensorScalar(t.ap(), t.ap(), isa::AluOp::kMultiply, 2.0f).isOk());           // 2
  EXPECT_TRUE(b.ncMatmul(ps.ap(), e({Slice::all(), Slice::range(0, 128)}), e.ap()).isOk());  // 3
  EXPECT_TRUE(b.tensorCopy(t.ap(), ps.ap()).isOk());                                         // 4
  EXPECT_TRUE(b.dmaCopy(y.ap(), t.ap()).isOk());                                             // 5
  return finishOrFail(b);
}

Expected<Timeline> timeWithin(const arch::ChipConfig& chip, const isa::Program& p) {
  return withinSeconds(20, [&] { return simulateTiming(chip, std::vector{&p}); });
}

TEST(TimingWatchdog, TheSmallProgramTimesOnTheReferenceChip) {
  const arch::ChipConfig chip = trn2Like();
  isa::Program p = smallProgram(chip);
  ASSERT_EQ(p.instructions.size(), 6u);
  auto t = timeWithin(chip, p);
  ASSERT_TRUE(t.hasValue()) << t.status().toString();
  EXPECT_GT(t->endNs, 1000);
  EXPECT_LT(t->endNs, 1e5);
}

struct Extreme {
  const char* what;
  std::function<void(arch::ChipConfig&)> set;
  const char* engine;    ///< as the message names it
  uint32_t instruction;  ///< the first instruction the rate makes absurd
  const char* rateKey;   ///< a key the message quotes with its value
};

TEST(TimingWatchdog, AbsurdRatesAreAClearErrorNotAHang) {
  // Issue 14's cases (vector.clock_ghz, pe.clock_ghz, vector.elems_per_cycle_32 at 1e-20
  // used to make `trnsim run` spin for ever), and the DMA and HBM rates (which used to
  // print 6e23 us with exit 0).
  const Extreme cases[] = {
      {"vector.clock_ghz", [](arch::ChipConfig& c) { c.vector.clockGhz = 1e-20; }, "vector", 2,
       "vector.clock_ghz = 1e-20"},
      {"pe.clock_ghz", [](arch::ChipConfig& c) { c.pe.clockGhz = 1e-20; }, "tensor", 3,
       "pe.clock_ghz = 1e-20"},
      {"vector.elems_per_cycle_32", [](arch::ChipConfig& c) { c.vector.elemsPerCycle32 = 1e-20; },
       "vector", 2, "vector.elems_per_cycle_32/16/8 = 1e-20/"},
      {"scalar.clock_ghz", [](arch::ChipConfig& c) { c.scalar.clockGhz = 1e-20; }, "scalar", 1,
       "scalar.clock_ghz = 1e-20"},
      {"memory.hbm_gbps", [](arch::ChipConfig& c) { c.mem.hbmGbps = 1e-20; }, "dma queue", 0,
       "memory.hbm_gbps = 1e-20"},
      {"dma.engine_gbps",
       [](arch::ChipConfig& c) {
         c.dma.engineGbps = 1e-20;
         c.dma.sustainedGbpsPerCore = 1e-20;
       },
       "dma queue", 0, "dma.engine_gbps = 1e-20"},
      {"dma.fixed_latency_ns", [](arch::ChipConfig& c) { c.dma.fixedLatencyNs = 1e30; },
       "dma queue", 0, "dma.fixed_latency_ns = 1e+30"},
  };
  const isa::Program p = smallProgram(trn2Like());
  for (const Extreme& x : cases) {
    SCOPED_TRACE(x.what);
    arch::ChipConfig chip = trn2Like();
    chip.sourceFile = "bad.json";
    x.set(chip);
    const auto start = std::chrono::steady_clock::now();
    auto t = timeWithin(chip, p);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 5);
    ASSERT_FALSE(t.hasValue()) << "timed an absurd chip: endNs = " << t->endNs;
    const Status& s = t.status();
    EXPECT_EQ(s.code(), ErrorCode::kConfig) << s.toString();
    const std::string msg = s.toString();
    const std::string head = std::string("timing watchdog: ") + x.engine + " ";
    EXPECT_NE(msg.find(head), std::string::npos) << msg;
    EXPECT_NE(msg.find("instruction " + std::to_string(x.instruction) + " "), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("starting at simulated time "), std::string::npos) << msg;
    EXPECT_NE(msg.find(x.rateKey), std::string::npos) << msg;
    EXPECT_NE(msg.find("docs/configs.md"), std::string::npos) << msg;
    // The place: the chip file, the core and the instruction.
    EXPECT_EQ(
        s.where().rfind("bad.json: core 0: instruction " + std::to_string(x.instruction) + " (", 0),
        0u)
        << s.where();
  }
}

TEST(TimingWatchdog, TheFirstMessageReadsWell) {
  arch::ChipConfig chip = trn2Like();
  chip.sourceFile = "bad.json";
  chip.vector.clockGhz = 1e-20;
  const isa::Program p = smallProgram(trn2Like());
  auto t = timeWithin(chip, p);
  ASSERT_FALSE(t.hasValue());
  // tensor_scalar fp32 [128, 512]: 512 / 2 elements per cycle = 256 cycles at 1e-20 GHz =
  // 2.56e22 ns = 2.56e13 s (it starts after a 100-cycle semaphore wait on the DMA: 1e13 s).
  EXPECT_NE(t.status().message().find("would take 2.56e+13 simulated seconds (the bound is "
                                      "1e+06 s per instruction)"),
            std::string::npos)
      << t.status().toString();
}

TEST(TimingWatchdog, ADmaFarOutInSimulatedTimeStillFinishes) {
  // A transfer whose remaining time is below what the current time resolves (0.05 ns left at
  // t = 1e15 ns, where a double's step is 0.125 ns): the bandwidth model cannot move time
  // forward, so it must count the transfer as finished (it used to spin on that instant).
  detail::FluidDma fluid;
  fluid.init(1, 368, 2900);
  fluid.advanceTo(1e15);
  detail::FluidDma::Transfer tr;
  tr.remainingBytes = 0.05 * 23;
  tr.capGbps = 23;
  tr.hbmPerMovedByte = 1;
  fluid.add(tr);
  fluid.recomputeRates();
  ASSERT_EQ(fluid.active()[0].rateGbps, 23);
  EXPECT_EQ(fluid.nextCompletionNs(), 1e15);  // 1e15 + 0.05 rounds to 1e15
  std::vector<detail::FluidDma::Transfer> done;
  fluid.takeFinished(done);
  EXPECT_EQ(done.size(), 1u);
  EXPECT_TRUE(fluid.empty());
}

TEST(TimingWatchdog, SlowButValidEnginesPushDmasFarOutAndTheyStillTime) {
  // VectorE at 1e-12 GHz: the x2 takes 256 cycles = 2.56e14 ns after a 100-cycle semaphore
  // wait (1e14 ns), so the store DMA starts at ~3.6e14 ns, where a double resolves 0.0625 ns.
  // Each instruction stays below the watchdog's bound; the run must finish, and the store
  // must still take its own time (1300 ns + 256 KiB at 368 GB/s), to the resolution there.
  arch::ChipConfig chip = trn2Like();
  chip.vector.clockGhz = 1e-12;
  isa::KernelBuilder b(chip, "far");
  auto x = b.hbm("x", DType::kFP32, {128, 512}, isa::TensorKind::kInput);
  auto y = b.hbm("y", DType::kFP32, {128, 512}, isa::TensorKind::kOutput);
  auto t = b.sbuf("t", DType::kFP32, {128, 512});
  ASSERT_TRUE(b.dmaCopy(t.ap(), x.ap()).isOk());
  ASSERT_TRUE(b.tensorScalar(t.ap(), t.ap(), isa::AluOp::kMultiply, 2.0f).isOk());
  ASSERT_TRUE(b.dmaCopy(y.ap(), t.ap()).isOk());
  isa::Program p = finishOrFail(b);
  auto tl = timeWithin(chip, p);
  ASSERT_TRUE(tl.hasValue()) << tl.status().toString();
  const TimelineEvent& vec = tl->events[1];
  const TimelineEvent& store = tl->events[2];
  EXPECT_NEAR(vec.endNs - vec.startNs, 256 / 1e-12, 1);
  EXPECT_GT(store.startNs, 3.5e14);
  EXPECT_NEAR(store.endNs - vec.endNs, 1300 + 262144 / 368.0, 0.5);
}

TEST(TimingWatchdog, EveryValueTheLoaderAcceptsTimesWithoutStalling) {
  // The ends of every range of the chip table (chip_schema.cpp), one key at a time, on the
  // built-in trn2: the timing model either times the small program (in bounded simulated
  // time) or refuses it with a non-internal error (e.g. a queue the smaller chip lacks).
  auto base = arch::loadChip("trn2");
  ASSERT_TRUE(base.hasValue()) << base.status().toString();
  const isa::Program p = smallProgram(*base);
  arch::ChipConfig probe = *base;
  const size_t fields = arch::detail::chipFields(probe).size();
  int timed = 0;
  for (size_t k = 0; k < fields; ++k) {
    for (int end = 0; end < 2; ++end) {
      arch::ChipConfig chip = *base;
      arch::detail::Field f = arch::detail::chipFields(chip)[k];
      if (f.spec.kind == arch::detail::FieldKind::kFlag) continue;
      double v = end == 0 ? f.spec.lo : f.spec.hi;
      if (f.spec.loOpen && end == 0) v = std::nextafter(v, 1e300);
      if (f.spec.hiOpen && end == 1) v = std::nextafter(v, -1e300);
      ASSERT_TRUE(f.spec.inRange(v)) << f.spec.path;
      if (auto* d = std::get_if<double*>(&f.ref)) {
        **d = v;
      } else if (auto* u32 = std::get_if<uint32_t*>(&f.ref)) {
        **u32 = uint32_t(v);
      } else if (auto* u64 = std::get_if<uint64_t*>(&f.ref)) {
        **u64 = uint64_t(v);
      }
      SCOPED_TRACE(std::string(f.spec.path) + " = " + std::to_string(v));
      auto t = timeWithin(chip, p);
      if (t.hasValue()) {
        ++timed;
        EXPECT_TRUE(std::isfinite(t->endNs));
        EXPECT_LE(t->endNs, 1e15);
      } else {
        EXPECT_NE(t.status().code(), ErrorCode::kInternal) << t.status().toString();
        EXPECT_EQ(t.status().message().find("timing watchdog"), std::string::npos)
            << t.status().toString();
      }
    }
  }
  EXPECT_GT(timed, int(fields));  // most ends time the program
}

}  // namespace
}  // namespace trnsim::sim
