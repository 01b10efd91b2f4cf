// The summary of the hand-made timeline in profile_fixture.h, against values derived by hand
// from its events and the test chip (bf16 peak 32768e9 FLOP/s per core, 400 GB/s HBM).

#include "trnsim/profile/summary.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "profile_fixture.h"

namespace trnsim::profile {
namespace {

using arch::Engine;
using nlohmann::json;
using namespace testing;

const EngineSummary& engine(const CoreSummary& core, Engine e) {
  return core.engines[static_cast<size_t>(e)];
}

TEST(Summary, TimeBusyUtilizationAndBandwidthMatchHandValues) {
  SummaryOptions opts;
  opts.hostSeconds = 0.5;
  auto r = summarize(testChip(), testTimeline(), opts);
  ASSERT_TRUE(r) << r.status().toString();
  const Summary& s = *r;

  EXPECT_EQ(s.chip, "testchip");
  EXPECT_EQ(s.cores, 2u);
  EXPECT_DOUBLE_EQ(s.simulatedNs, 2000);
  EXPECT_DOUBLE_EQ(s.simulatedUs, 2);
  EXPECT_DOUBLE_EQ(s.simulatedCycles, 2000);  // 1 GHz
  EXPECT_EQ(s.instructions, 6u);

  // Tensor: (16777216 + 8388608) FLOP / (32768e9 FLOP/s x 2 cores x 2e-6 s) = 19.2 %.
  EXPECT_DOUBLE_EQ(s.peakFlopsPerCore, 32768e9);
  EXPECT_DOUBLE_EQ(s.tensorFlops, 25165824);
  EXPECT_NEAR(s.tensorUtilizationPercent, 19.2, 1e-9);
  // At each dtype's peak: (512 + 256) ns / (2 cores x 2000 ns) = 19.2 % as well (bf16).
  EXPECT_NEAR(s.tensorDtypeUtilizationPercent, 19.2, 1e-9);
  EXPECT_FALSE(s.modelFlopsFromCaller);
  EXPECT_DOUBLE_EQ(s.modelFlops, s.tensorFlops);
  EXPECT_NEAR(s.mfuPercent, 19.2, 1e-9);

  // HBM: 131072 + 65536 B over 2000 ns = 98.304 GB/s, 24.576 % of 400.
  EXPECT_EQ(s.hbmReadBytes, 131072u);
  EXPECT_EQ(s.hbmWriteBytes, 65536u);
  EXPECT_EQ(s.hbmBytes, 196608u);
  EXPECT_NEAR(s.hbmAchievedGbps, 98.304, 1e-9);
  EXPECT_DOUBLE_EQ(s.hbmPeakGbps, 400);
  EXPECT_NEAR(s.hbmUtilizationPercent, 24.576, 1e-9);

  // Simulator speed: 6 instructions and 2000 cycles in 0.5 host seconds.
  EXPECT_DOUBLE_EQ(s.hostSeconds, 0.5);
  EXPECT_DOUBLE_EQ(s.instructionsPerHostSecond, 12);
  EXPECT_DOUBLE_EQ(s.simulatedCyclesPerHostSecond, 4000);

  ASSERT_EQ(s.perCore.size(), 2u);
  const CoreSummary& c0 = s.perCore[0];
  EXPECT_EQ(c0.core, 0u);
  EXPECT_DOUBLE_EQ(c0.endNs, 2000);
  EXPECT_EQ(c0.instructions, 5u);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kTensor).busyPercent, 50);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kScalar).busyPercent, 25);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kVector).busyPercent, 25);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kGpSimd).busyPercent, 0);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kDma).busyPercent, 60);
  EXPECT_EQ(engine(c0, Engine::kDma).instructions, 2u);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kVector).waitNs, 250);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kDma).waitNs, 300);
  // 16777216 / (32768e9 x 2e-6) = 25.6 %.
  EXPECT_NEAR(c0.tensorUtilizationPercent, 25.6, 1e-9);
  ASSERT_EQ(c0.dmaQueues.size(), 2u);
  EXPECT_EQ(c0.dmaQueues[0].queue, 3);
  EXPECT_DOUBLE_EQ(c0.dmaQueues[0].busyNs, 800);
  EXPECT_DOUBLE_EQ(c0.dmaQueues[0].busyPercent, 40);
  EXPECT_EQ(c0.dmaQueues[0].hbmBytes, 131072u);
  EXPECT_EQ(c0.dmaQueues[1].queue, 17);
  EXPECT_EQ(c0.dmaQueues[1].transfers, 1u);
  EXPECT_DOUBLE_EQ(c0.dmaAnyBusyNs, 1200);  // [0, 800) u [400, 1200)
  EXPECT_DOUBLE_EQ(c0.dmaAnyBusyPercent, 60);

  const CoreSummary& c1 = s.perCore[1];
  EXPECT_DOUBLE_EQ(engine(c1, Engine::kTensor).busyPercent, 25);
  EXPECT_NEAR(c1.tensorUtilizationPercent, 12.8, 1e-9);
  EXPECT_TRUE(c1.dmaQueues.empty());
}

TEST(Summary, ModelFlopsFromTheCallerGiveMfu) {
  SummaryOptions opts;
  opts.modelFlops = 13107200;  // / (32768e9 x 2 x 2e-6) = 10 %
  auto s = summarize(testChip(), testTimeline(), opts);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->modelFlopsFromCaller);
  EXPECT_NEAR(s->mfuPercent, 10, 1e-9);
  EXPECT_NEAR(s->tensorUtilizationPercent, 19.2, 1e-9);
}

TEST(Summary, EventsAloneGiveTheSameBusyTimes) {
  auto s = summarize(testChip(), testTimeline(/*withStats=*/false));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->instructions, 6u);
  EXPECT_NEAR(s->tensorUtilizationPercent, 19.2, 1e-9);
  EXPECT_EQ(s->hbmBytes, 196608u);  // direction unknown without stats
  EXPECT_EQ(s->hbmReadBytes, 0u);
  const CoreSummary& c0 = s->perCore[0];
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kTensor).busyPercent, 50);
  EXPECT_DOUBLE_EQ(engine(c0, Engine::kDma).busyNs, 1200);
  EXPECT_DOUBLE_EQ(c0.endNs, 2000);
  EXPECT_DOUBLE_EQ(s->perCore[1].endNs, 500);
  EXPECT_DOUBLE_EQ(s->instructionsPerHostSecond, 0);  // no host time given
}

TEST(Summary, RunResultSuppliesHostTimeAndInstructionCount) {
  sim::RunResult run;
  run.timeline = testTimeline();
  run.simulatedNs = run.timeline.endNs;
  run.instructions = 8;
  run.hostSeconds = 2;
  auto s = summarize(testChip(), run);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->instructions, 8u);
  EXPECT_DOUBLE_EQ(s->instructionsPerHostSecond, 4);
  EXPECT_DOUBLE_EQ(s->simulatedCyclesPerHostSecond, 1000);
}

TEST(Summary, EmptyTimelineIsAllZeros) {
  auto s = summarize(testChip(), sim::Timeline{});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cores, 0u);
  EXPECT_EQ(s->simulatedNs, 0);
  EXPECT_EQ(s->tensorUtilizationPercent, 0);
  EXPECT_EQ(s->hbmAchievedGbps, 0);
  EXPECT_FALSE(formatSummary(*s).empty());
  EXPECT_FALSE(json::parse(summaryJson(*s), nullptr, false).is_discarded());
}

TEST(Summary, BadTimesAreErrorValues) {
  sim::Timeline t = testTimeline();
  t.events[1].endNs = 10;  // before its start
  auto s = summarize(testChip(), t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.status().where().find("event 1"), std::string::npos);

  t = testTimeline();
  t.cores[0].busyNs[0] = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(summarize(testChip(), t));
}

TEST(Summary, JsonHasTheDocumentedKeys) {
  SummaryOptions opts;
  opts.hostSeconds = 0.5;
  auto s = summarize(testChip(), testTimeline(), opts);
  ASSERT_TRUE(s);
  const json j = json::parse(summaryJson(*s));
  EXPECT_EQ(j["schema_version"], kSummarySchemaVersion);
  EXPECT_EQ(j["chip"], "testchip");
  EXPECT_EQ(j["cores"], 2);
  EXPECT_EQ(j["instructions"], 6);
  const std::map<std::string, std::vector<std::string>> groups = {
      {"simulated", {"ns", "us", "cycles", "pe_clock_ghz"}},
      {"tensor",
       {"flops", "peak_flops_per_core", "utilization_percent", "dtype_utilization_percent",
        "throttled_ns"}},
      {"mfu", {"model_flops", "model_flops_from_caller", "percent"}},
      {"hbm",
       {"read_bytes", "write_bytes", "bytes", "achieved_gbps", "peak_gbps", "utilization_percent"}},
      {"host", {"seconds", "instructions_per_second", "simulated_cycles_per_second"}},
  };
  for (const auto& [group, keys] : groups) {
    ASSERT_TRUE(j.contains(group)) << group;
    EXPECT_EQ(j[group].size(), keys.size()) << group;
    for (const auto& k : keys) EXPECT_TRUE(j[group].contains(k)) << group << "." << k;
  }
  EXPECT_EQ(j["simulated"]["ns"].get<double>(), 2000);
  EXPECT_NEAR(j["hbm"]["achieved_gbps"].get<double>(), 98.304, 1e-9);
  EXPECT_EQ(j["host"]["instructions_per_second"].get<double>(), 12);

  ASSERT_EQ(j["per_core"].size(), 2u);
  const json& c0 = j["per_core"][0];
  for (const char* k :
       {"core", "end_ns", "instructions", "tensor_flops", "tensor_utilization_percent",
        "throttled_ns", "hbm_read_bytes", "hbm_write_bytes", "engines", "dma_any_busy_ns",
        "dma_any_busy_percent", "dma_queues"}) {
    EXPECT_TRUE(c0.contains(k)) << k;
  }
  for (const char* e : {"tensor", "vector", "scalar", "gpsimd", "sync", "dma"}) {
    ASSERT_TRUE(c0["engines"].contains(e)) << e;
    for (const char* k : {"busy_ns", "busy_percent", "instructions", "wait_ns"}) {
      EXPECT_TRUE(c0["engines"][e].contains(k)) << e << "." << k;
    }
  }
  EXPECT_EQ(c0["engines"]["tensor"]["busy_percent"].get<double>(), 50);
  ASSERT_EQ(c0["dma_queues"].size(), 2u);
  for (const char* k : {"queue", "busy_ns", "busy_percent", "transfers", "hbm_bytes"}) {
    EXPECT_TRUE(c0["dma_queues"][0].contains(k)) << k;
  }
  EXPECT_EQ(c0["dma_queues"][1]["queue"], 17);
}

TEST(Summary, TableNamesTheHeadlineNumbers) {
  SummaryOptions opts;
  opts.hostSeconds = 0.5;
  auto s = summarize(testChip(), testTimeline(), opts);
  ASSERT_TRUE(s);
  const std::string table = formatSummary(*s);
  for (const char* needle : {"testchip, 2 cores", "2.000 us", "2000 cycles", "19.2%",
                             "98.3 GB/s of 400 GB/s", "simulator speed", "dma q17", "50.0%"}) {
    EXPECT_NE(table.find(needle), std::string::npos) << needle << "\n" << table;
  }
}

}  // namespace
}  // namespace trnsim::profile
