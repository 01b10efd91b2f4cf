// Regression guard for speed work on the timing model: the full timeline (every event field and
// every per-core statistic, bit for bit) of a mixed five-core program on trn2Like() hashes to a
// value recorded with the straightforward scheduler of commit a85aaf5, before the precomputed
// per-program tables. A change of the model's behaviour must update kExpectedHash on purpose
// (and say why in the commit); an optimisation must leave it alone.
//
// Regenerate: build and run `test_sim --gtest_filter='TimingHash.*'`; the failure message
// prints the new hash.

#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "timing_test_util.h"
#include "trnsim/kernels/attention.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/sim/timing_program.h"
#include "trnsim/support/hash.h"

namespace trnsim::sim {
namespace {

using isa::DType;
using isa::Slice;
using testing::finishOrFail;
using testing::timeOrFail;
using testing::trn2Like;

/// FNV-1a over raw bytes: a double hashes by its bit pattern, so any change shows. It starts
/// from 1469598103934665603, not FNV's offset basis (a digit short of support::kFnvOffset): the
/// values pinned below were made so and must not move.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) { h = support::fnv1a64(p, n, h); }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  void f64(double v) { u64(std::bit_cast<uint64_t>(v)); }
};

uint64_t hashStats(const Timeline& t) {
  Hasher h;
  h.f64(t.endNs);
  h.u64(t.cores.size());
  for (const CoreTimingStats& c : t.cores) {
    for (double b : c.busyNs) h.f64(b);
    h.f64(c.endNs);
    h.f64(c.tensorFlops);
    h.f64(c.tensorFlopsAtPeakNs);
    h.u64(c.hbmReadBytes);
    h.u64(c.hbmWriteBytes);
    h.u64(c.instructions);
    h.f64(c.throttledNs);
  }
  return h.h;
}

uint64_t hashTimeline(const Timeline& t) {
  Hasher h;
  h.u64(hashStats(t));
  h.u64(t.events.size());
  for (const TimelineEvent& e : t.events) {
    h.u64(e.core);
    h.u64(static_cast<uint64_t>(e.engine));
    h.u64(e.queue);
    h.u64(e.instruction);
    h.f64(e.startNs);
    h.f64(e.endNs);
    h.f64(e.readyNs);
    h.u64(e.hbmBytes);
    h.f64(e.flops);
  }
  return h.h;
}

/// A deterministic pseudo-random mix of every kind of work the model times differently: DMAs
/// in and out of HBM (row tiles, column tiles with short runs, HBM->HBM, SBUF->SBUF, DMA
/// transposes, many queues), matmuls with and without stationary reuse (bf16, fp32,
/// transposed), PE transposes, Vector/Scalar/GpSimd work reading PSUM and SBUF, with
/// dependencies through SBUF, PSUM and HBM.
isa::Program mixedProgram(const arch::ChipConfig& chip, uint32_t seed) {
  isa::KernelBuilder b(chip, "mixed");
  auto in = b.hbm("in", DType::kBF16, {1024, 1024}, isa::TensorKind::kInput);
  auto out = b.hbm("out", DType::kBF16, {1024, 1024}, isa::TensorKind::kOutput);
  auto scratch = b.hbm("scratch", DType::kFP32, {64, 4096});
  auto a = b.sbuf("a", DType::kBF16, {128, 8, 512});
  auto w = b.sbuf("w", DType::kBF16, {128, 4, 128});
  auto w32 = b.sbuf("w32", DType::kFP32, {128, 128});
  auto m32 = b.sbuf("m32", DType::kFP32, {128, 512});
  auto o = b.sbuf("o", DType::kBF16, {128, 4, 512});
  auto f = b.sbuf("f", DType::kFP32, {128, 2, 512});
  auto red = b.sbuf("red", DType::kFP32, {128, 8});
  std::vector<isa::Tensor> ps;
  for (int i = 0; i < 8; ++i) ps.push_back(b.psum("ps" + std::to_string(i), DType::kFP32, {128, 512}));
  uint32_t state = seed;
  auto next = [&](uint32_t n) {
    state = state * 1664525u + 1013904223u;
    return (state >> 8) % n;
  };
  for (int step = 0; step < 600; ++step) {
    const uint32_t kind = next(16);
    const int64_t r = next(8), c = next(2), s = next(4), bank = next(8);
    isa::DmaOptions dq;
    dq.queue = int(next(20));
    switch (kind) {
      case 0:
      case 1:  // a row tile of `in` into a slice of `a`
        (void)b.dmaCopy(a({Slice::all(), Slice::at(r), Slice::all()}),
                        in({Slice::range(r * 128, r * 128 + 128), Slice::range(c * 512, c * 512 + 512)}), dq);
        break;
      case 2:  // a narrow column tile: 64 B runs
        (void)b.dmaCopy(a({Slice::all(), Slice::at(r), Slice::range(0, 32)}),
                        in({Slice::range(128 * s, 128 * s + 128), Slice::range(32 * r, 32 * r + 32)}), dq);
        break;
      case 3:  // a result out to HBM
        (void)b.dmaCopy(out({Slice::range(r * 128, r * 128 + 128), Slice::range(c * 512, c * 512 + 512)}),
                        o({Slice::all(), Slice::at(s), Slice::all()}), dq);
        break;
      case 4:  // HBM -> HBM
        (void)b.dmaCopy(scratch({Slice::range(8 * r, 8 * r + 8), Slice::all()}),
                        scratch({Slice::range(8 * ((r + 1) % 8), 8 * ((r + 1) % 8) + 8), Slice::all()}), dq);
        break;
      case 5:  // SBUF -> SBUF, and a DMA transpose from HBM
        (void)b.dmaCopy(w({Slice::all(), Slice::at(s), Slice::all()}),
                        a({Slice::all(), Slice::at(r), Slice::range(0, 128)}), dq);
        if (next(2) == 0) {
          (void)b.dmaTranspose(w({Slice::all(), Slice::at((s + 1) % 4), Slice::all()}),
                               in({Slice::range(128 * r, 128 * r + 128), Slice::range(0, 128)}),
                               int(next(20)));
        }
        break;
      case 6:
      case 7:
      case 8: {  // a few matmuls sharing a stationary, accumulating in one bank
        const int64_t count = 1 + next(4);
        for (int64_t j = 0; j < count; ++j) {
          (void)b.ncMatmul(ps[bank].ap(), w({Slice::all(), Slice::at(s), Slice::all()}),
                           a({Slice::all(), Slice::at((r + j) % 8), Slice::all()}),
                           isa::MatmulOptions{j > 0});
        }
        break;
      }
      case 9:  // fp32 matmul, and a PE transpose
        (void)b.ncMatmul(ps[bank].ap(), w32.ap(), m32.ap());
        (void)b.ncTranspose(ps[(bank + 1) % 8]({Slice::all(), Slice::range(0, 128)}),
                            w({Slice::all(), Slice::at(s), Slice::all()}));
        break;
      case 10:  // evacuate PSUM on Vector or Scalar
        (void)b.tensorCopy(o({Slice::all(), Slice::at(s), Slice::all()}), ps[bank].ap(),
                           next(2) ? arch::Engine::kVector : arch::Engine::kScalar);
        break;
      case 11:
        (void)b.tensorTensor(f({Slice::all(), Slice::at(c), Slice::all()}),
                             f({Slice::all(), Slice::at(c), Slice::all()}), ps[bank].ap(),
                             isa::AluOp::kAdd);
        break;
      case 12:
        (void)b.activation(o({Slice::all(), Slice::at(s), Slice::all()}), isa::ActFunc::kExp,
                           f({Slice::all(), Slice::at(c), Slice::all()}));
        break;
      case 13:
        (void)b.tensorReduce(red({Slice::all(), Slice::range(r, r + 1)}), isa::AluOp::kMax,
                             a({Slice::all(), Slice::at(r), Slice::all()}), 1);
        break;
      case 14:
        (void)b.iota(f({Slice::all(), Slice::at(c), Slice::range(0, 64)}), {1}, 0.0f, 1.0f);
        (void)b.memset(o({Slice::all(), Slice::at(s), Slice::all()}), 0.0f);
        break;
      default:
        (void)b.reciprocal(f({Slice::all(), Slice::at(c), Slice::all()}),
                           f({Slice::all(), Slice::at(1 - c), Slice::all()}));
        break;
    }
  }
  return finishOrFail(b);
}

// Recorded with the scheduler of commit a85aaf5 (see the file comment).
constexpr uint64_t kExpectedHash = 0x59dc3e08a1842998ull;

TEST(TimingHash, MixedFiveCoreTimelineIsBitIdentical) {
  const arch::ChipConfig chip = trn2Like();
  isa::Program p0 = mixedProgram(chip, 1);
  isa::Program p1 = mixedProgram(chip, 7);
  isa::Program p2 = testing::pipelinedMatmul(chip, 1024, 1024, 2048);
  auto p3 = kernels::matmulProgram(chip, 512, 2048, 1024);
  ASSERT_TRUE(p3.hasValue()) << p3.status().toString();
  const std::vector<const isa::Program*> perCore{&p0, &p1, &p2, &*p3, &p0};
  Timeline t = timeOrFail(chip, perCore);
  ASSERT_EQ(t.events.size(), 2 * p0.instructions.size() + p1.instructions.size() +
                                 p2.instructions.size() + p3->instructions.size());
  EXPECT_EQ(hashTimeline(t), kExpectedHash) << "timeline hash 0x" << std::hex << hashTimeline(t);
  // Without events the statistics are the same.
  Timeline quiet = timeOrFail(chip, perCore, false);
  EXPECT_TRUE(quiet.events.empty());
  EXPECT_EQ(hashStats(quiet), hashStats(t));
}

/// Cores that run one program share the dependencies the program table finds once, ahead of
/// the run; cores that run copies each track their own while running. Both give the same
/// timeline, bit for bit, whether the table's pass covered the whole program (matmul,
/// attention) or gave up where a bucket outgrew its bound and left the run to track them
/// (the mixed program: many DMA queues read the same tiles).
TEST(TimingHash, SharedProgramGivesTheTimelineOfSeparateCopies) {
  const arch::ChipConfig chip = trn2Like();
  std::vector<std::pair<isa::Program, bool>> cases;  // program, whole pass expected
  cases.emplace_back(mixedProgram(chip, 1), false);
  auto mm = kernels::matmulProgram(chip, 512, 2048, 1024);
  ASSERT_TRUE(mm.hasValue()) << mm.status().toString();
  cases.emplace_back(std::move(mm).value(), true);
  auto attn = kernels::attentionProgram(chip, 2, 2, 1024, 128);
  ASSERT_TRUE(attn.hasValue()) << attn.status().toString();
  cases.emplace_back(std::move(attn).value(), true);
  for (const auto& [p, whole] : cases) {
    SCOPED_TRACE(p.name);
    detail::ProgramTable table;
    ASSERT_TRUE(table.build(chip, p, true).isOk());
    EXPECT_EQ(table.staticDeps, whole);
    const isa::Program copy1 = p, copy2 = p;
    const Timeline shared = timeOrFail(chip, {&p, &p, &p});
    const Timeline own = timeOrFail(chip, {&p, &copy1, &copy2});
    ASSERT_EQ(shared.events.size(), 3 * p.instructions.size());
    ASSERT_EQ(own.events.size(), shared.events.size());
    EXPECT_EQ(hashTimeline(shared), hashTimeline(own));
    for (size_t i = 0; i < own.events.size(); ++i) {
      ASSERT_EQ(shared.events[i].after, own.events[i].after) << "event " << i;
    }
  }
}

}  // namespace
}  // namespace trnsim::sim
