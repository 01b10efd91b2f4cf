// The built-in chips load, carry a source for every number, and reproduce the vendor's
// published per-NeuronCore peaks and chip totals (numbers typed in from trainium.md, not
// computed the way ChipConfig computes them).

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"

namespace trnsim::arch {
namespace {

ChipConfig mustLoad(const std::string& name) {
  auto chip = loadChip(name);
  EXPECT_TRUE(chip.hasValue()) << (chip ? "" : chip.status().toString());
  return chip ? *chip : ChipConfig{};
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(BuiltinChips, NamesAreTrn1To3) {
  EXPECT_EQ(builtinChipNames(), (std::vector<std::string>{"trn1", "trn2", "trn3"}));
}

TEST(BuiltinChips, EveryKeyHasANonEmptySource) {
  for (const std::string& name : builtinChipNames()) {
    ChipConfig chip = mustLoad(name);
    EXPECT_EQ(chip.name, name);
    EXPECT_EQ(chip.sourceFile, "<builtin>/" + name + ".json");
    EXPECT_FALSE(chip.description.empty());
    for (const std::string& key : chipConfigKeys()) {
      auto it = chip.sources.find(key);
      ASSERT_NE(it, chip.sources.end()) << name << ": " << key;
      EXPECT_GT(it->second.size(), 10u) << name << ": " << key;
    }
    EXPECT_EQ(chip.sources.size(), chipConfigKeys().size());
  }
}

// Published per-NC TensorE peaks in TFLOPS: [A2] v2 92 bf16 / 92 cFP8 / 23 fp32;
// [A3] v3 79 bf16 / 158 fp8 / 20 fp32; [NC4] v4 79 bf16 / 315 MXFP8 / 20 fp32.
struct PeakCase {
  const char* chip;
  double bf16, fp8, fp32;
};

TEST(BuiltinChips, DerivedPeaksMatchPublishedPerCorePeaks) {
  for (const PeakCase& c : {PeakCase{"trn1", 92, 92, 23}, PeakCase{"trn2", 79, 158, 20},
                            PeakCase{"trn3", 79, 315, 20}}) {
    SCOPED_TRACE(c.chip);
    ChipConfig chip = mustLoad(c.chip);
    EXPECT_NEAR(chip.peakBf16FlopsPerCore() / 1e12, c.bf16, 0.01 * c.bf16);
    EXPECT_NEAR(chip.peakFp8FlopsPerCore() / 1e12, c.fp8, 0.01 * c.fp8);
    EXPECT_NEAR(chip.peakFp32FlopsPerCore() / 1e12, c.fp32, 0.02 * c.fp32);
  }
}

TEST(BuiltinChips, Trn1PeakIsTwoFlopsPerPePerCycle) {
  // [A2]: 92 TFLOPS = 2 * 128 * 128 * 2.8 GHz.
  EXPECT_DOUBLE_EQ(mustLoad("trn1").peakBf16FlopsPerCore(), 2.0 * 128 * 128 * 2.8e9);
}

TEST(BuiltinChips, ClocksMatchArchitectureGuides) {
  struct Clocks {
    const char* chip;
    double pe, dve, act, pool;
  };
  for (const Clocks& c : {Clocks{"trn1", 2.8, 1.12, 1.4, 1.4}, Clocks{"trn2", 2.4, 0.96, 1.2, 1.2},
                          Clocks{"trn3", 2.4, 1.2, 1.2, 1.2}}) {
    SCOPED_TRACE(c.chip);
    ChipConfig chip = mustLoad(c.chip);
    EXPECT_DOUBLE_EQ(chip.pe.clockGhz, c.pe);
    EXPECT_DOUBLE_EQ(chip.stream(Engine::kVector).clockGhz, c.dve);
    EXPECT_DOUBLE_EQ(chip.stream(Engine::kScalar).clockGhz, c.act);
    EXPECT_DOUBLE_EQ(chip.stream(Engine::kGpSimd).clockGhz, c.pool);
  }
}

TEST(BuiltinChips, ChipTotalsMatchPublishedChipFigures) {
  constexpr double kMiB = 1024.0 * 1024.0;
  constexpr double kGiB = kMiB * 1024.0;
  struct Totals {
    const char* chip;
    int cores;
    double sbufMiB;       // per chip [T2][T3]
    double hbmGiB;        // [T1][T2][T3]
    double hbmTBps;       // [T1][T2][T3]
    int dmaEngines;       // per chip [A2][A3][A4]
    double dmaTBps;       // per chip peak [T2][T3]; trn1 "1 TB/s" [A2]
    double dmaTolerance;  // trn1's "1 TB/s" is a round figure
  };
  for (const Totals& t : {Totals{"trn1", 2, 48, 32, 0.82, 32, 1.0, 0.15},
                          Totals{"trn2", 8, 224, 96, 2.9, 128, 3.5, 0.02},
                          Totals{"trn3", 8, 256, 144, 4.9, 128, 4.9, 0.02}}) {
    SCOPED_TRACE(t.chip);
    ChipConfig chip = mustLoad(t.chip);
    EXPECT_EQ(chip.coresPerChip, uint32_t(t.cores));
    EXPECT_DOUBLE_EQ(double(chip.mem.sbufBytesPerCore()) * chip.coresPerChip / kMiB, t.sbufMiB);
    EXPECT_DOUBLE_EQ(double(chip.mem.hbmBytes) / kGiB, t.hbmGiB);
    EXPECT_DOUBLE_EQ(chip.mem.hbmGbps / 1000, t.hbmTBps);
    EXPECT_EQ(chip.dma.enginesPerCore * chip.coresPerChip, uint32_t(t.dmaEngines));
    EXPECT_NEAR(chip.dma.peakGbpsPerCore() * chip.coresPerChip / 1000, t.dmaTBps,
                t.dmaTolerance * t.dmaTBps);
    // PSUM is 2 MiB per core on every generation [A2][A3][A4].
    EXPECT_EQ(chip.mem.psumBytesPerCore(), uint64_t(2 * kMiB));
  }
}

TEST(BuiltinChips, Fp8AndThrottleFollowTheGeneration) {
  EXPECT_EQ(mustLoad("trn1").pe.fp8Speedup, 1u);
  EXPECT_EQ(mustLoad("trn2").pe.fp8Speedup, 2u);
  EXPECT_EQ(mustLoad("trn3").pe.fp8Speedup, 4u);
  EXPECT_FALSE(mustLoad("trn1").pe.throttle.enabled);
  for (const char* name : {"trn2", "trn3"}) {
    const auto& t = mustLoad(name).pe.throttle;
    EXPECT_TRUE(t.enabled);
    EXPECT_DOUBLE_EQ(t.startFraction, 0.5);
    EXPECT_DOUBLE_EQ(t.rampNs, 3000);
    EXPECT_DOUBLE_EQ(t.rearmIdleNs, 3000);
  }
  EXPECT_FALSE(mustLoad("trn1").dma.supportsTranspose());
  EXPECT_TRUE(mustLoad("trn2").dma.supportsTranspose());
}

TEST(BuiltinChips, StreamRatesPerDtypeWidth) {
  // [A3]: DVE 512 elem/cycle for 16-bit, 256 otherwise; [A4]: FP8 joins the 512 rate; ACT 256 for
  // 16/8-bit.
  ChipConfig t2 = mustLoad("trn2");
  EXPECT_DOUBLE_EQ(t2.vector.elemsPerCycle(2) * t2.vector.lanes, 512);
  EXPECT_DOUBLE_EQ(t2.vector.elemsPerCycle(4) * t2.vector.lanes, 256);
  EXPECT_DOUBLE_EQ(t2.vector.elemsPerCycle(1) * t2.vector.lanes, 256);
  ChipConfig t3 = mustLoad("trn3");
  EXPECT_DOUBLE_EQ(t3.vector.elemsPerCycle(1) * t3.vector.lanes, 512);
  EXPECT_DOUBLE_EQ(t3.scalar.elemsPerCycle(2) * t3.scalar.lanes, 256);
  EXPECT_DOUBLE_EQ(t3.scalar.elemsPerCycle(4) * t3.scalar.lanes, 128);
  ChipConfig t1 = mustLoad("trn1");
  for (uint32_t bytes : {1u, 2u, 4u})
    EXPECT_DOUBLE_EQ(t1.vector.elemsPerCycle(bytes) * t1.vector.lanes, 128);
}

TEST(BuiltinChips, FilesOnDiskMatchTheEmbeddedCopies) {
  for (const std::string& name : builtinChipNames()) {
    std::string path = std::string(TRNSIM_SOURCE_DIR) + "/configs/chips/" + name + ".json";
    auto fromFile = loadChip(path);
    ASSERT_TRUE(fromFile.hasValue()) << fromFile.status().toString();
    EXPECT_EQ(fromFile->sourceFile, path);
    ChipConfig builtin = mustLoad(name);
    fromFile->sourceFile = builtin.sourceFile;
    EXPECT_EQ(chipToJson(*fromFile), chipToJson(builtin));
  }
}

TEST(BuiltinChips, ConfigJsonRoundTrips) {
  for (const std::string& name : builtinChipNames()) {
    ChipConfig chip = mustLoad(name);
    auto again = parseChipConfig(chipToConfigJson(chip), chip.sourceFile);
    ASSERT_TRUE(again.hasValue()) << again.status().toString();
    EXPECT_EQ(chipToJson(*again), chipToJson(chip));
    EXPECT_EQ(again->sources, chip.sources);
  }
}

TEST(BuiltinChips, ChipToJsonHasValuesDerivedAndSources) {
  ChipConfig chip = mustLoad("trn2");
  auto j = nlohmann::json::parse(chipToJson(chip));
  EXPECT_EQ(j["name"], "trn2");
  EXPECT_EQ(j["cores_per_chip"], 8);
  EXPECT_DOUBLE_EQ(j["pe"]["clock_ghz"].get<double>(), 2.4);
  EXPECT_EQ(j["pe"]["throttle"]["enabled"], true);
  EXPECT_EQ(j["memory"]["sbuf_bytes_per_partition"], 229376);
  EXPECT_NEAR(j["derived"]["peak_bf16_tflops_per_core"].get<double>(), 78.6432, 1e-9);
  EXPECT_EQ(j["sources"].size(), chipConfigKeys().size());
  EXPECT_NE(j["sources"]["pe.clock_ghz"].get<std::string>().find("[A3]"), std::string::npos);
}

TEST(BuiltinChips, DescribeChipSummarisesTheChip) {
  std::string text = describeChip(mustLoad("trn2"));
  for (const char* want :
       {"trn2: AWS Trainium2", "8 per chip", "78.6 TFLOPS bf16, 157.3 fp8, 19.7 fp32",
        "128 x 128 PE array at 2.40 GHz", "vector", "0.96 GHz", "28 MiB per core",
        "224 MiB per chip", "2 MiB per core", "16 engines x 16 queues", "368 GB/s sustained",
        "1300 ns fixed", "96 GiB in 4 stacks, 2900 GB/s", "starts at 50% of peak"}) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing '" << want << "' in:\n" << text;
  }
  EXPECT_NE(describeChip(mustLoad("trn1")).find("throttle      none"), std::string::npos);
}

TEST(Engines, NamesAndStreamLookup) {
  EXPECT_EQ(engineName(Engine::kTensor), "tensor");
  EXPECT_EQ(engineName(Engine::kGpSimd), "gpsimd");
  EXPECT_EQ(engineName(Engine::kDma), "dma");
  ChipConfig chip = mustLoad("trn1");
  EXPECT_EQ(&chip.stream(Engine::kVector), &chip.vector);
  EXPECT_EQ(&chip.stream(Engine::kScalar), &chip.scalar);
  EXPECT_EQ(&chip.stream(Engine::kGpSimd), &chip.gpsimd);
  EXPECT_EQ(&chip.stream(Engine::kSync), &chip.sync);
}

/// The table row of docs/configs.md whose first cell names `key` in backquotes.
std::string docRowOf(const std::string& doc, const std::string& key) {
  std::istringstream in(doc);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '|') continue;
    const std::string firstCell = line.substr(0, line.find('|', 1));
    if (firstCell.find("`" + key + "`") != std::string::npos) return line;
  }
  return {};
}

TEST(Docs, ConfigReferenceGivesTheRangeOfEveryKeyAsTheSchemaHasIt) {
  // The ranges live in one table each (chip_schema.cpp, system_parse.cpp); docs/configs.md
  // must say the same, so that a changed range changes the documentation too.
  std::string doc = readText(std::string(TRNSIM_SOURCE_DIR) + "/docs/configs.md");
  ASSERT_FALSE(doc.empty());
  ChipConfig chip;
  std::vector<detail::FieldSpec> specs;
  for (const detail::Field& f : detail::chipFields(chip)) specs.push_back(f.spec);
  for (const detail::FieldSpec& s : detail::systemFieldSpecs()) specs.push_back(s);
  EXPECT_GT(specs.size(), 60u);
  for (const detail::FieldSpec& s : specs) {
    const std::string key(s.path);
    const std::string row = docRowOf(doc, key);
    ASSERT_FALSE(row.empty()) << key << " has no row in docs/configs.md";
    EXPECT_NE(row.find(s.docRange()), std::string::npos)
        << key << ": docs/configs.md should give the range " << s.docRange() << " in:\n"
        << row;
  }
}

TEST(Docs, ConfigReferenceNamesEveryKey) {
  std::string doc = readText(std::string(TRNSIM_SOURCE_DIR) + "/docs/configs.md");
  ASSERT_FALSE(doc.empty());
  for (const std::string& key : chipConfigKeys()) {
    EXPECT_NE(doc.find("`" + key + "`"), std::string::npos)
        << key << " is not documented in docs/configs.md";
  }
}

}  // namespace
}  // namespace trnsim::arch
