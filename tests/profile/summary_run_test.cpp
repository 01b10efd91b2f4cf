// The summary of a real run says the same per engine whether or not the run recorded events:
// instruction counts and stalls come from the timing model's own counters when there are no
// events (`trnsim run` without --trace, `--json`).

#include <gtest/gtest.h>

#include "trnsim/isa/builder.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/softmax.h"
#include "trnsim/profile/summary.h"
#include "trnsim/sim/chip.h"

namespace trnsim::profile {
namespace {

Summary summaryOf(bool events) {
  auto chip = arch::loadChip("trn2");
  EXPECT_TRUE(chip) << chip.status().toString();
  isa::KernelBuilder b(*chip, "mm_softmax");
  using numerics::DType;
  auto lhsT = b.hbm("lhsT", DType::kBF16, {256, 128}, isa::TensorKind::kInput);
  auto rhs = b.hbm("rhs", DType::kBF16, {256, 512}, isa::TensorKind::kInput);
  auto mm = b.hbm("mm", DType::kBF16, {128, 512}, isa::TensorKind::kOutput);
  auto sm = b.hbm("sm", DType::kBF16, {128, 512}, isa::TensorKind::kOutput);
  EXPECT_TRUE(kernels::emitMatmul(b, lhsT, rhs, mm).isOk());
  EXPECT_TRUE(kernels::emitSoftmax(b, mm, sm).isOk());
  auto program = b.finish();
  EXPECT_TRUE(program) << program.status().toString();
  sim::Chip c(*chip);
  EXPECT_TRUE(c.load({*program}).isOk());
  sim::RunOptions opts;
  opts.computeValues = false;
  opts.recordEvents = events;
  auto run = c.run(opts);
  EXPECT_TRUE(run) << run.status().toString();
  EXPECT_EQ(run->timeline.events.empty(), !events);
  auto s = summarize(*chip, *run);
  EXPECT_TRUE(s) << s.status().toString();
  return *s;
}

TEST(SummaryOfARun, EnginesCountTheSameWithAndWithoutEvents) {
  const Summary with = summaryOf(true), without = summaryOf(false);
  ASSERT_EQ(with.perCore.size(), 1u);
  ASSERT_EQ(without.perCore.size(), 1u);
  uint64_t total = 0;
  for (size_t e = 0; e < arch::kNumEngines; ++e) {
    const EngineSummary& a = with.perCore[0].engines[e];
    const EngineSummary& b = without.perCore[0].engines[e];
    SCOPED_TRACE(std::string(arch::engineName(a.engine)));
    EXPECT_EQ(a.instructions, b.instructions);
    EXPECT_NEAR(a.waitNs, b.waitNs, 1e-6 * (1 + a.waitNs));
    total += b.instructions;
  }
  EXPECT_EQ(total, without.instructions);
  EXPECT_GT(without.perCore[0].engines[size_t(arch::Engine::kTensor)].instructions, 0u);
  EXPECT_GT(without.perCore[0].engines[size_t(arch::Engine::kDma)].instructions, 0u);
  EXPECT_NE(formatSummary(without).find("stall us (sum)"), std::string::npos);
}

}  // namespace
}  // namespace trnsim::profile
