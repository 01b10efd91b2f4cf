// The built-in system and price catalogs: every file loads, every number has a source, and the
// derived shapes match the vendors' published instance- and UltraServer-level totals (which
// the configs do not contain: they hold per-chip and per-link numbers).

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"

namespace trnsim::arch {
namespace {

SystemConfig load(const std::string& name) {
  auto s = loadSystem(name);
  if (!s) {
    ADD_FAILURE() << s.status().toString();
    return {};
  }
  return *s;
}

/// Numbers a system file holds: accel 7, chips_per_node, checkpoint, scale_out 6,
/// reliability 2, and 4 per scale_up dimension.
size_t expectedSources(const SystemConfig& s) { return 17 + 4 * s.scaleUp.size(); }

TEST(SystemBuiltin, TheCatalogHoldsTheBriefedSystems) {
  std::set<std::string> names;
  for (const std::string& n : builtinSystemNames()) names.insert(n);
  for (const char* want : {"trn1.32xlarge", "trn2.48xlarge", "trn2-ultraserver",
                           "trn3-ultraserver-64", "trn3-ultraserver", "dgx-a100-80gb", "dgx-h100",
                           "dgx-h200", "dgx-b200", "gb200-nvl72", "tpu-v5p"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
}

TEST(SystemBuiltin, EverySystemLoadsWithASourceForEveryNumber) {
  for (const std::string& name : builtinSystemNames()) {
    SCOPED_TRACE(name);
    auto s = loadSystem(name);
    ASSERT_TRUE(s.hasValue()) << s.status().toString();
    EXPECT_EQ(s->name, name) << "file stem and \"name\" differ";
    EXPECT_EQ(s->sources.size(), expectedSources(*s));
    for (const auto& [key, source] : s->sources) EXPECT_GT(source.size(), 10u) << key;
    EXPECT_FALSE(s->scaleUp.empty());
    // A scale-up domain is a whole number of nodes.
    ASSERT_GT(s->chipsPerNode, 0u);
    EXPECT_EQ(s->chipsPerDomain() % s->chipsPerNode, 0u);
    EXPECT_GE(s->scaleOut.maxChips, s->chipsPerDomain());
    EXPECT_TRUE(nlohmann::json::accept(systemToJson(*s)));
    EXPECT_NE(describeSystem(*s).find(name), std::string::npos);
    // Trainium systems name a trnsim chip whose physical cores split evenly into ranks.
    if (!s->accel.simChip.empty()) {
      auto chip = loadChip(s->accel.simChip);
      ASSERT_TRUE(chip.hasValue()) << chip.status().toString();
      EXPECT_EQ(chip->coresPerChip % s->accel.ranksPerChip, 0u);
    }
  }
}

TEST(SystemBuiltin, Trn2InstanceIsA4x4TorusOfOneNode) {
  SystemConfig s = load("trn2.48xlarge");
  ASSERT_EQ(s.scaleUp.size(), 2u);
  for (const FabricDim& d : s.scaleUp) {
    EXPECT_EQ(d.kind, LinkKind::kRing);
    EXPECT_EQ(d.size, 4u);
  }
  EXPECT_EQ(s.chipsPerDomain(), 16u);
  EXPECT_EQ(s.chipsPerNode, 16u);
  // trn2-arch.rst: 1,024 GB/s intra-instance per device over 4 links, both directions counted.
  EXPECT_DOUBLE_EQ(s.scaleUp[0].linkGbps * 4 * 2, 1024);
  // trn2-arch.rst instance totals: 20.8 PF FP8, 10.7 PF BF16, 1,536 GiB, 46.4 TB/s, 3,200 Gbps.
  EXPECT_NEAR(16 * s.accel.peakTflopsFp8 / 1000, 20.8, 0.05);
  EXPECT_NEAR(16 * s.accel.peakTflopsBf16 / 1000, 10.7, 0.05);
  EXPECT_EQ(16 * s.accel.memoryBytes, uint64_t(1536) << 30);
  EXPECT_NEAR(16 * s.accel.memoryGbps / 1000, 46.4, 1e-9);
  EXPECT_DOUBLE_EQ(16 * s.scaleOut.nicGbpsPerChip * 8, 3200);
  EXPECT_EQ(s.accel.ranksPerChip * s.chipsPerNode, 64u);  // best-practices: 64 ranks/instance
}

TEST(SystemBuiltin, Trn2UltraServerIsA4x4x4TorusOfFourNodes) {
  SystemConfig s = load("trn2-ultraserver");
  ASSERT_EQ(s.scaleUp.size(), 3u);
  EXPECT_EQ(s.chipsPerDomain(), 64u);
  EXPECT_EQ(s.chipsPerDomain() / s.chipsPerNode, 4u);
  // The Z ring is the 256 GB/s inter-instance bandwidth over 2 neighbours, both directions.
  EXPECT_EQ(s.scaleUp[2].kind, LinkKind::kRing);
  EXPECT_DOUBLE_EQ(s.scaleUp[2].linkGbps * 2 * 2, 256);
  EXPECT_DOUBLE_EQ((s.scaleUp[0].linkGbps + s.scaleUp[1].linkGbps) * 2 * 2, 1024);
}

TEST(SystemBuiltin, Trn1InstanceMatchesTheVendorTotals) {
  SystemConfig s = load("trn1.32xlarge");
  EXPECT_EQ(s.chipsPerDomain(), 16u);
  // trn1-arch.rst: 3,040 BF16 TFLOPS, 760 FP32, 512 GiB, 800 Gbps EFA, 384 GB/s NeuronLink.
  EXPECT_DOUBLE_EQ(16 * s.accel.peakTflopsBf16, 3040);
  EXPECT_DOUBLE_EQ(16 * s.accel.peakTflopsFp32, 760);
  EXPECT_EQ(16 * s.accel.memoryBytes, uint64_t(512) << 30);
  EXPECT_DOUBLE_EQ(16 * s.scaleOut.nicGbpsPerChip * 8, 800);
  double perChip = 0;
  for (const FabricDim& d : s.scaleUp) perChip += 2 * d.linkGbps * 2;  // 2 neighbours, 2 ways
  EXPECT_DOUBLE_EQ(perChip, 384);
}

TEST(SystemBuiltin, Trn3UltraServersMatchTheVendorTotals) {
  // trn3-arch.rst: Gen1 64 chips (4 x 16), Gen2 144 chips (36 x 4); MXFP8 161,088 / 362,448
  // TFLOPS; BF16 42,944 / 96,624; HBM 9,216 / 20,736 GiB; EFA 12,800 / 28,800 Gbps.
  struct Want {
    const char* name;
    uint32_t chips, perNode;
    double fp8, bf16, hbmGib, efaGbps;
  };
  for (const Want& w : {Want{"trn3-ultraserver-64", 64, 16, 161088, 42944, 9216, 12800},
                        Want{"trn3-ultraserver", 144, 4, 362448, 96624, 20736, 28800}}) {
    SCOPED_TRACE(w.name);
    SystemConfig s = load(w.name);
    EXPECT_EQ(s.chipsPerDomain(), w.chips);
    EXPECT_EQ(s.chipsPerNode, w.perNode);
    for (const FabricDim& d : s.scaleUp) EXPECT_EQ(d.kind, LinkKind::kSwitch);
    EXPECT_DOUBLE_EQ(w.chips * s.accel.peakTflopsFp8, w.fp8);
    EXPECT_DOUBLE_EQ(w.chips * s.accel.peakTflopsBf16, w.bf16);
    EXPECT_DOUBLE_EQ(w.chips * double(s.accel.memoryBytes) / double(1u << 30), w.hbmGib);
    EXPECT_DOUBLE_EQ(w.chips * s.scaleOut.nicGbpsPerChip * 8, w.efaGbps);
  }
}

TEST(SystemBuiltin, NvidiaDomains) {
  SystemConfig h100 = load("dgx-h100");
  ASSERT_EQ(h100.scaleUp.size(), 1u);
  EXPECT_EQ(h100.scaleUp[0].kind, LinkKind::kSwitch);
  EXPECT_EQ(h100.chipsPerDomain(), 8u);
  EXPECT_DOUBLE_EQ(h100.scaleUp[0].linkGbps * 2, 900);      // NVLink4: 900 GB/s bidirectional
  EXPECT_DOUBLE_EQ(h100.scaleOut.nicGbpsPerChip * 8, 400);  // NDR 400 Gb/s per GPU
  EXPECT_FALSE(h100.scaleUp[0].inNetworkReduction);

  SystemConfig a100 = load("dgx-a100-80gb");
  EXPECT_DOUBLE_EQ(a100.scaleUp[0].linkGbps * 2, 600);      // NVLink3: 600 GB/s bidirectional
  EXPECT_DOUBLE_EQ(a100.scaleOut.nicGbpsPerChip * 8, 200);  // HDR 200 Gb/s per GPU

  SystemConfig gb = load("gb200-nvl72");
  EXPECT_EQ(gb.chipsPerDomain(), 72u);
  EXPECT_EQ(gb.chipsPerDomain() / gb.chipsPerNode, 18u);      // 18 compute trays
  EXPECT_DOUBLE_EQ(gb.scaleUp[0].linkGbps * 2 * 72, 129600);  // "130 TB/s" NVLink per rack

  SystemConfig tpu = load("tpu-v5p");
  EXPECT_EQ(tpu.chipsPerDomain(), 64u);
  for (const FabricDim& d : tpu.scaleUp) EXPECT_EQ(d.kind, LinkKind::kRing);
}

TEST(SystemBuiltin, PriceCatalogCoversEverySystemWithSources) {
  auto p = loadPrices();
  ASSERT_TRUE(p.hasValue()) << p.status().toString();
  EXPECT_EQ(p->name, "default");
  std::set<std::string> systems;
  for (const std::string& n : builtinSystemNames()) {
    systems.insert(n);
    EXPECT_TRUE(p->bySystem.count(n)) << "no price for " << n;
  }
  for (const auto& [system, price] : p->bySystem) {
    EXPECT_TRUE(systems.count(system)) << "price for unknown system " << system;
    EXPECT_GT(price.usdPerNodeHour, 0) << system;
    EXPECT_GT(price.source.size(), 10u) << system;
  }
  // trainium.md: trn1.32xlarge $21.50 and p5.48xlarge $98.32 on demand.
  EXPECT_DOUBLE_EQ(p->bySystem.at("trn1.32xlarge").usdPerNodeHour, 21.50);
  EXPECT_DOUBLE_EQ(p->bySystem.at("dgx-h100").usdPerNodeHour, 98.32);
}

TEST(SystemBuiltin, LoadsByPathAndRejectsUnknownNames) {
  auto byPath = loadSystem(std::string(TRNSIM_SOURCE_DIR) + "/configs/systems/dgx-h100.json");
  ASSERT_TRUE(byPath.hasValue()) << byPath.status().toString();
  EXPECT_EQ(byPath->name, "dgx-h100");
  auto prices = loadPrices(std::string(TRNSIM_SOURCE_DIR) + "/configs/prices/default.json");
  ASSERT_TRUE(prices.hasValue()) << prices.status().toString();

  auto typo = loadSystem("dgx-h10");
  ASSERT_FALSE(typo.hasValue());
  EXPECT_EQ(typo.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("did you mean 'dgx-h100'"), std::string::npos)
      << typo.status().toString();
  auto missing = loadSystem("/nonexistent/x.json");
  ASSERT_FALSE(missing.hasValue());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  EXPECT_EQ(missing.status().where(), "/nonexistent/x.json");
  auto noCatalog = loadPrices("aws-spot");
  ASSERT_FALSE(noCatalog.hasValue());
  EXPECT_EQ(noCatalog.status().code(), ErrorCode::kInvalidArgument);
}

TEST(SystemBuiltin, JsonRoundTripsTheValues) {
  SystemConfig s = load("trn2-ultraserver");
  auto j = nlohmann::json::parse(systemToJson(s));
  EXPECT_EQ(j["name"], "trn2-ultraserver");
  EXPECT_EQ(j["accel"]["sim_chip"], "trn2");
  EXPECT_EQ(j["chips_per_node"], s.chipsPerNode);
  EXPECT_EQ(j["scale_up"].size(), 3u);
  EXPECT_EQ(j["scale_up"][2]["kind"], "ring");
  EXPECT_DOUBLE_EQ(j["scale_up"][2]["link_gbps"].get<double>(), s.scaleUp[2].linkGbps);
  EXPECT_EQ(j["derived"]["chips_per_domain"], 64);
  EXPECT_EQ(j["sources"].size(), s.sources.size());
}

}  // namespace
}  // namespace trnsim::arch
