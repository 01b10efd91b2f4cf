// The model against published measurements, with the shipped system configs (numbers from
// datasheets, not tuned to these figures).

#include <gtest/gtest.h>

#include "trnsim/arch/system_config.h"
#include "trnsim/fabric/collective.h"

namespace trnsim::fabric {
namespace {

// nccl-tests all_reduce_perf on 8x H100 SXM (NVLink4 + NVSwitch) reaches 460-480 GB/s bus
// bandwidth at large sizes (Alaya NeW's nccl-tests report, docs/sources.md). The config gives
// 450 GB/s per direction per GPU into the switch (half the datasheet's 900 GB/s bidirectional)
// and no in-network reduction, so the model's best is the 2(p-1)/p ring/direct bound: busbw ->
// 450 GB/s, 2-6% under the measured range (NCCL's NVLS path reduces in the switch).
TEST(CollectivePublished, DgxH100AllReduceBusBandwidth) {
  auto system = arch::loadSystem("dgx-h100");
  ASSERT_TRUE(system.hasValue()) << system.status().toString();
  auto model = CollectiveModel::create(*system, 8);
  ASSERT_TRUE(model.hasValue()) << model.status().toString();
  CollectiveRequest r;
  r.op = CollectiveOp::kAllReduce;
  r.bytes = uint64_t(8) << 30;
  auto c = model->estimate(r);
  ASSERT_TRUE(c.hasValue()) << c.status().toString();
  EXPECT_EQ(c->ranks, 8u);
  EXPECT_GE(c->busbwGbps, 460 * 0.9);
  EXPECT_LE(c->busbwGbps, 480 * 1.1);
}

// The shipped Trainium systems at their largest size answer (and quickly enough for a test
// under sanitizers): all-reduce over every rank of 100,000 chips.
TEST(CollectivePublished, HundredThousandChips) {
  for (const char* name : {"trn2.48xlarge", "trn2-ultraserver"}) {
    auto system = arch::loadSystem(name);
    ASSERT_TRUE(system.hasValue()) << system.status().toString();
    auto model = CollectiveModel::create(*system, 100000);
    ASSERT_TRUE(model.hasValue()) << model.status().toString();
    CollectiveRequest r;
    r.bytes = uint64_t(1) << 30;
    auto c = model->estimate(r);
    ASSERT_TRUE(c.hasValue()) << c.status().toString();
    EXPECT_EQ(c->ranks, model->ranks());
    EXPECT_GT(c->timeS, 0);
    for (const auto& [a, t] : c->candidates) EXPECT_GE(t, c->timeS) << algorithmName(a);
    // The cross-domain part alone: each chip's NIC must carry at least its share of the
    // reduced data twice, 2 (1 - 1/domains) * n / (ranks per domain) per rank, times the ranks
    // of a chip, at the NIC's rate.
    const double domains = 100000.0 / system->chipsPerDomain();
    const double perChip = 2 * (1 - 1 / domains) * double(r.bytes) / system->chipsPerDomain();
    EXPECT_GE(c->timeS, perChip / (system->scaleOut.nicGbpsPerChip * 1e9) * 0.999) << name;
  }
}

}  // namespace
}  // namespace trnsim::fabric
