// Each class of bad chip config gives the right error code and a message that names the file,
// the dotted key and what was expected.

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"

namespace trnsim::arch {
namespace {

using nlohmann::ordered_json;
const std::string kOrigin = "configs/chips/x.json";

/// The built-in trn2 file as an editable DOM.
ordered_json trn2() {
  for (const auto& [name, text] : detail::builtinChipFiles()) {
    if (name == "trn2") return ordered_json::parse(text);
  }
  ADD_FAILURE() << "no builtin trn2";
  return {};
}

Status parseDom(const ordered_json& j) {
  auto chip = parseChipConfig(j.dump(2), kOrigin);
  return chip ? Status::ok() : chip.status();
}

void expectError(const Status& s, ErrorCode code, const std::string& key,
                 const std::string& fragment) {
  ASSERT_FALSE(s.isOk()) << "accepted a bad config (key " << key << ")";
  EXPECT_EQ(s.code(), code) << s.toString();
  EXPECT_EQ(s.where(), kOrigin + ": key '" + key + "'") << s.toString();
  EXPECT_NE(s.message().find(fragment), std::string::npos)
      << "'" << fragment << "' not in: " << s.toString();
}

TEST(ChipErrors, TheBuiltinDomParses) { EXPECT_TRUE(parseDom(trn2()).isOk()); }

TEST(ChipErrors, WrongTypeNamesFileKeyAndExpectation) {
  auto j = trn2();
  j["pe"]["clock_ghz"]["value"] = "fast";
  Status s = parseDom(j);
  EXPECT_EQ(s.code(), ErrorCode::kConfig);
  EXPECT_EQ(s.toString(),
            "configs/chips/x.json: key 'pe.clock_ghz': expected a number in [0.1, 10] GHz with a "
            "source, got \"fast\"");
}

TEST(ChipErrors, MissingKey) {
  auto j = trn2();
  j["dma"].erase("fixed_latency_ns");
  expectError(parseDom(j), ErrorCode::kConfig, "dma.fixed_latency_ns", "missing");
  auto k = trn2();
  k.erase("memory");
  expectError(parseDom(k), ErrorCode::kConfig, "memory",
              "missing; expected an object with keys sbuf_partitions");
  auto n = trn2();
  n.erase("name");
  expectError(parseDom(n), ErrorCode::kConfig, "name", "missing");
}

TEST(ChipErrors, MisspeltKeySuggestsTheRightOne) {
  auto j = trn2();
  j["pe"]["clock_gz"] = j["pe"]["clock_ghz"];
  j["pe"].erase("clock_ghz");
  expectError(parseDom(j), ErrorCode::kConfig, "pe.clock_gz",
              "unknown key (did you mean 'pe.clock_ghz'?)");
  auto k = trn2();
  k["pe"]["throttle"]["ramp_us"] = k["pe"]["throttle"]["ramp_ns"];
  k["pe"]["throttle"].erase("ramp_ns");
  expectError(parseDom(k), ErrorCode::kConfig, "pe.throttle.ramp_us",
              "did you mean 'pe.throttle.ramp_ns'");
}

TEST(ChipErrors, UnknownKeyListsTheValidOnes) {
  auto j = trn2();
  j["frequency_plan"] = 3;
  expectError(parseDom(j), ErrorCode::kConfig, "frequency_plan",
              "unknown key; expected one of: schema_version");
  auto k = trn2();
  k["vector"]["lanes"]["unit"] = "lanes";
  expectError(parseDom(k), ErrorCode::kConfig, "vector.lanes.unit", "a value object has only");
}

TEST(ChipErrors, NumbersNeedSources) {
  auto plain = trn2();
  plain["pe"]["clock_ghz"] = 2.4;
  expectError(parseDom(plain), ErrorCode::kConfig, "pe.clock_ghz", "every number needs its source");
  for (const ordered_json& src :
       {ordered_json(""), ordered_json("   "), ordered_json(42), ordered_json(nullptr)}) {
    auto j = trn2();
    j["memory"]["hbm_gbps"]["source"] = src;
    expectError(parseDom(j), ErrorCode::kConfig, "memory.hbm_gbps", "non-empty \"source\"");
  }
  auto missing = trn2();
  missing["memory"]["hbm_gbps"].erase("source");
  expectError(parseDom(missing), ErrorCode::kConfig, "memory.hbm_gbps", "non-empty \"source\"");
  auto noValue = trn2();
  noValue["memory"]["hbm_gbps"].erase("value");
  expectError(parseDom(noValue), ErrorCode::kConfig, "memory.hbm_gbps", "missing \"value\"");
}

TEST(ChipErrors, OutOfRangeValues) {
  struct Case {
    const char* section;
    const char* key;
    ordered_json value;
    const char* expected;
  };
  const Case cases[] = {
      {"memory", "sbuf_partitions", 0, "a whole number in 1..128 partitions"},
      {"memory", "sbuf_partitions", 129, "a whole number in 1..128 partitions"},
      {"memory", "sbuf_partitions", 64.5, "a whole number in 1..128"},
      {"memory", "sbuf_partitions", -1, "a whole number in 1..128"},
      {"pe", "clock_ghz", 0, "a number in [0.1, 10] GHz"},
      {"pe", "clock_ghz", -2.4, "a number in [0.1, 10] GHz"},
      {"pe", "clock_ghz", 11, "a number in [0.1, 10] GHz"},
      {"pe", "clock_ghz", 2400, "a number in [0.1, 10] GHz"},
      {"vector", "lanes", 200, "a whole number in 1..128 lanes"},
      {"vector", "elems_per_cycle_16", 0, "a number in [0.01, 64]"},
      {"dma", "engine_gbps", true, "a number in [0.1, 10000] GB/s"},
      {"dma", "transpose_efficiency", 1.5, "0 or a number in [0.01, 1]"},
      {"dma", "transpose_efficiency", 1e-9, "0 or a number in [0.01, 1]"},
      {"memory", "hbm_bytes", 1e300, "a whole number in 1048576..1125899906842624 bytes"},
      {"memory", "hbm_gbps", 0.5, "a number in [1, 1000000] GB/s"},
      {"dma", "queues_per_engine", 1024, "a whole number in 1..256 queues"},
      {"memory", "psum_banks", "8", "a whole number in 1..64 banks"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.section) + "." + c.key + " = " + c.value.dump());
    auto j = trn2();
    j[c.section][c.key]["value"] = c.value;
    expectError(parseDom(j), ErrorCode::kConfig, std::string(c.section) + "." + c.key,
                std::string("expected ") + c.expected);
  }
  auto flag = trn2();
  flag["pe"]["throttle"]["enabled"]["value"] = 1;
  expectError(parseDom(flag), ErrorCode::kConfig, "pe.throttle.enabled", "expected true or false");
}

TEST(ChipErrors, ExtremeRatesOfIssue14AreRangeErrors) {
  // A clock or data-path rate of 1e-20 used to load, and made `trnsim run`, `demo` and
  // `cluster run` spin for ever in the timing model. The loader refuses it, naming the key, the
  // value, the range and what to do.
  auto j = trn2();
  j["vector"]["clock_ghz"]["value"] = 1e-20;
  EXPECT_EQ(parseDom(j).toString(),
            "configs/chips/x.json: key 'vector.clock_ghz': expected a number in [0.1, 10] GHz "
            "with a source, got 1e-20; clocks are in GHz: 2.4 means 2.4 GHz, and real engines "
            "run at 0.5-3 GHz (every key's range: docs/configs.md)");
  struct Case {
    const char* section;
    const char* key;
    const char* range;
  };
  const Case cases[] = {
      {"pe", "clock_ghz", "[0.1, 10] GHz"},
      {"vector", "clock_ghz", "[0.1, 10] GHz"},
      {"scalar", "clock_ghz", "[0.1, 10] GHz"},
      {"gpsimd", "clock_ghz", "[0.1, 10] GHz"},
      {"sync", "clock_ghz", "[0.1, 10] GHz"},
      {"vector", "elems_per_cycle_32", "[0.01, 64] elements/lane/cycle"},
      {"scalar", "elems_per_cycle_16", "[0.01, 64] elements/lane/cycle"},
      {"gpsimd", "elems_per_cycle_8", "[0.01, 64] elements/lane/cycle"},
      {"dma", "engine_gbps", "[0.1, 10000] GB/s"},
      {"dma", "sustained_gbps_per_core", "[0.1, 1000000] GB/s"},
      {"memory", "hbm_gbps", "[1, 1000000] GB/s"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.section) + "." + c.key);
    for (double bad : {1e-20, 1e20}) {
      auto k = trn2();
      k[c.section][c.key]["value"] = bad;
      Status s = parseDom(k);
      expectError(s, ErrorCode::kConfig, std::string(c.section) + "." + c.key,
                  std::string("expected a number in ") + c.range + " with a source, got " +
                      ordered_json(bad).dump());
      EXPECT_NE(s.message().find("docs/configs.md"), std::string::npos) << s.toString();
    }
  }
  auto start = trn2();
  start["pe"]["throttle"]["start_fraction"]["value"] = 1e-20;
  expectError(parseDom(start), ErrorCode::kConfig, "pe.throttle.start_fraction",
              "expected a number in [0.01, 1]");
  auto wait = trn2();
  wait["semaphore_wait_cycles"]["value"] = 1e9;
  expectError(parseDom(wait), ErrorCode::kConfig, "semaphore_wait_cycles",
              "expected a whole number in 0..100000 cycles");
  // The ends of a range are valid.
  auto ends = trn2();
  ends["vector"]["clock_ghz"]["value"] = 0.1;
  ends["pe"]["clock_ghz"]["value"] = 10;
  ends["vector"]["elems_per_cycle_32"]["value"] = 0.01;
  ends["dma"]["sbuf_transpose_efficiency"]["value"] = 0;
  EXPECT_TRUE(parseDom(ends).isOk()) << parseDom(ends).toString();
}

TEST(ChipErrors, WholeNumbersWrittenAsFloatsAreAccepted) {
  auto j = trn2();
  j["memory"]["sbuf_partitions"]["value"] = 128.0;
  EXPECT_TRUE(parseDom(j).isOk());
}

TEST(ChipErrors, RulesBetweenKeys) {
  auto rows = trn2();
  rows["memory"]["sbuf_partitions"]["value"] = 64;
  expectError(parseDom(rows), ErrorCode::kConfig, "pe.rows", "exceed memory.sbuf_partitions (64)");
  auto bank = trn2();
  bank["pe"]["max_moving_free"]["value"] = 1024;
  expectError(parseDom(bank), ErrorCode::kConfig, "pe.max_moving_free", "do not fit one PSUM bank");
  auto dma = trn2();
  dma["dma"]["sustained_gbps_per_core"]["value"] = 500;
  expectError(parseDom(dma), ErrorCode::kConfig, "dma.sustained_gbps_per_core",
              "exceeds the peak of all engines");
  auto ramp = trn2();
  ramp["pe"]["throttle"]["ramp_ns"]["value"] = 0;
  expectError(parseDom(ramp), ErrorCode::kConfig, "pe.throttle.ramp_ns", "must be positive when");
}

TEST(ChipErrors, StructureAndHeaderFields) {
  auto v2 = trn2();
  v2["schema_version"] = 2;
  expectError(parseDom(v2), ErrorCode::kConfig, "schema_version", "expected 1");
  auto name = trn2();
  name["name"] = "";
  expectError(parseDom(name), ErrorCode::kConfig, "name", "expected a non-empty string");
  auto section = trn2();
  section["dma"] = 16;
  expectError(parseDom(section), ErrorCode::kConfig, "dma",
              "expected an object with keys engines_per_core");

  auto array = parseChipConfig("[1, 2]", kOrigin);
  ASSERT_FALSE(array.hasValue());
  EXPECT_EQ(array.status().code(), ErrorCode::kConfig);
  EXPECT_EQ(array.status().where(), kOrigin);
}

TEST(ChipErrors, DuplicateKeysAreRejected) {
  std::string text = trn2().dump(2);
  std::string dup = "\"clock_ghz\": {\"value\": 3.0, \"source\": \"x\"},\n    \"clock_ghz\"";
  text.replace(text.find("\"clock_ghz\""), std::string("\"clock_ghz\"").size(), dup);
  auto chip = parseChipConfig(text, kOrigin);
  ASSERT_FALSE(chip.hasValue());
  EXPECT_EQ(chip.status().where(), kOrigin + ": key 'pe.clock_ghz'");
  EXPECT_NE(chip.status().message().find("appears twice"), std::string::npos);
}

TEST(ChipErrors, InvalidJsonGivesLineAndColumn) {
  // Line 3 has a stray comma before the closing brace.
  std::string text = "{\n  \"schema_version\": 1,\n  \"name\": \"x\",\n}\n";
  auto chip = parseChipConfig(text, kOrigin);
  ASSERT_FALSE(chip.hasValue());
  EXPECT_EQ(chip.status().code(), ErrorCode::kParse);
  EXPECT_EQ(chip.status().where(), kOrigin);
  EXPECT_NE(chip.status().message().find("line 4, column 1"), std::string::npos)
      << chip.status().toString();
  EXPECT_EQ(chip.status().message().find("[json.exception"), std::string::npos);

  auto empty = parseChipConfig("", kOrigin);
  ASSERT_FALSE(empty.hasValue());
  EXPECT_EQ(empty.status().code(), ErrorCode::kParse);
}

TEST(LoadChip, UnknownNameListsTheBuiltins) {
  auto chip = loadChip("trn9");
  ASSERT_FALSE(chip.hasValue());
  EXPECT_EQ(chip.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(chip.status().message().find("unknown chip 'trn9'"), std::string::npos);
  EXPECT_NE(chip.status().message().find("trn1, trn2, trn3"), std::string::npos);
}

TEST(LoadChip, UnreadableFilesAreIoErrors) {
  auto missing = loadChip("/nonexistent/dir/chip.json");
  ASSERT_FALSE(missing.hasValue());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  EXPECT_EQ(missing.status().where(), "/nonexistent/dir/chip.json");
  EXPECT_NE(missing.status().message().find("No such file"), std::string::npos)
      << missing.status().toString();

  auto dir = loadChipConfigFile(std::filesystem::temp_directory_path().string());
  ASSERT_FALSE(dir.hasValue());
  EXPECT_EQ(dir.status().code(), ErrorCode::kIo);
}

TEST(LoadChip, AModifiedFileLoadsByPathAndReportsItsName) {
  auto j = trn2();
  j["name"] = "trn2-fast-hbm";
  j["memory"]["hbm_gbps"] = {{"value", 5800},
                             {"source", "assumption: what-if study, twice trn2's HBM"}};
  auto path = std::filesystem::temp_directory_path() / "trnsim_arch_test_chip.json";
  {
    std::ofstream out(path);
    out << j.dump(2);
  }
  auto chip = loadChip(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(chip.hasValue()) << chip.status().toString();
  EXPECT_EQ(chip->name, "trn2-fast-hbm");
  EXPECT_DOUBLE_EQ(chip->mem.hbmGbps, 5800);
  EXPECT_EQ(chip->sourceFile, path.string());
  EXPECT_EQ(chip->sources.at("memory.hbm_gbps"), "assumption: what-if study, twice trn2's HBM");

  // A bad value in a file names that file.
  j["pe"]["rows"]["value"] = 0;
  {
    std::ofstream out(path);
    out << j.dump(2);
  }
  auto bad = loadChip(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(bad.hasValue());
  EXPECT_EQ(bad.status().where(), path.string() + ": key 'pe.rows'");
}

}  // namespace
}  // namespace trnsim::arch
