// Timing of the kernel library against published figures.
#include <gtest/gtest.h>

#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/sim/chip.h"

namespace trnsim {
namespace {

// The NKI matmul tutorial's optimized kernel runs 4096x8192x8192 bf16 on one trn1 NeuronCore in
// 6.97 ms, 85% of Tensor Engine peak ([MM] in docs/sources.md). A well-pipelined
// tiling on the simulated trn1 core must land in 80-95% of peak, and so within about 10% of
// the published time.
TEST(MatmulKernelTiming, Trn1LargeBf16MatmulNearPublishedUtilization) {
  auto chip = arch::loadChip("trn1");
  ASSERT_TRUE(chip.hasValue()) << chip.status().toString();
  auto prog = kernels::matmulProgram(*chip, 4096, 8192, 8192);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  sim::Chip c(*chip);
  ASSERT_TRUE(c.load({std::move(*prog)}).isOk());
  auto run = c.run({.computeValues = false, .recordEvents = false});
  ASSERT_TRUE(run.hasValue()) << run.status().toString();
  const double flops = 2.0 * 4096 * 8192 * 8192;
  ASSERT_EQ(run->timeline.cores.size(), 1u);
  EXPECT_DOUBLE_EQ(run->timeline.cores[0].tensorFlops, flops);
  const double utilization = flops / (chip->peakBf16FlopsPerCore() * run->simulatedNs * 1e-9);
  RecordProperty("simulated_ms", std::to_string(run->simulatedNs * 1e-6));
  RecordProperty("pe_utilization", std::to_string(utilization));
  EXPECT_GE(utilization, 0.80) << "simulated " << run->simulatedNs * 1e-6 << " ms";
  EXPECT_LE(utilization, 0.95) << "simulated " << run->simulatedNs * 1e-6 << " ms";
}

}  // namespace
}  // namespace trnsim
