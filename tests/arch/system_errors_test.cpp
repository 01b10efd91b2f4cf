// Each class of bad system or price file gives the right error code and a message that names
// the file, the dotted key and what was expected.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trnsim/arch/system_config.h"
#include "trnsim/arch/system_files.h"

namespace trnsim::arch {
namespace {

using nlohmann::ordered_json;
const std::string kOrigin = "configs/systems/x.json";

ordered_json builtin(const std::string& want) {
  for (const auto& [name, text] : detail::builtinSystemFiles()) {
    if (name == want) return ordered_json::parse(text);
  }
  ADD_FAILURE() << "no builtin " << want;
  return {};
}
ordered_json trn2() { return builtin("trn2.48xlarge"); }

Status parseDom(const ordered_json& j) {
  auto s = parseSystemConfig(j.dump(2), kOrigin);
  return s ? Status::ok() : s.status();
}

void expectError(const Status& s, ErrorCode code, const std::string& key,
                 const std::string& fragment) {
  ASSERT_FALSE(s.isOk()) << "accepted a bad config (key " << key << ")";
  EXPECT_EQ(s.code(), code) << s.toString();
  EXPECT_EQ(s.where(), kOrigin + ": key '" + key + "'") << s.toString();
  EXPECT_NE(s.message().find(fragment), std::string::npos)
      << "'" << fragment << "' not in: " << s.toString();
}

TEST(SystemErrors, TheBuiltinDomParses) { EXPECT_TRUE(parseDom(trn2()).isOk()); }

TEST(SystemErrors, NotJson) {
  auto s = parseSystemConfig("{\"schema_version\": 1,\n \"name\": }", kOrigin);
  ASSERT_FALSE(s.hasValue());
  EXPECT_EQ(s.status().code(), ErrorCode::kParse);
  EXPECT_EQ(s.status().where(), kOrigin);
  EXPECT_NE(s.status().message().find("line 2"), std::string::npos) << s.status().toString();
  auto a = parseSystemConfig("[1, 2]", kOrigin);
  ASSERT_FALSE(a.hasValue());
  EXPECT_EQ(a.status().code(), ErrorCode::kConfig);
}

TEST(SystemErrors, MissingKey) {
  auto j = trn2();
  j["scale_out"].erase("rails");
  expectError(parseDom(j), ErrorCode::kConfig, "scale_out.rails",
              "missing; expected {\"value\": a whole number in 1..1024 rails");
  auto k = trn2();
  k["scale_up"][1].erase("link_gbps");
  expectError(parseDom(k), ErrorCode::kConfig, "scale_up.1.link_gbps", "missing");
  auto n = trn2();
  n.erase("accel");
  expectError(parseDom(n), ErrorCode::kConfig, "accel",
              "missing; expected an object with keys name, sim_chip, ranks_per_chip");
  auto v = trn2();
  v.erase("schema_version");
  expectError(parseDom(v), ErrorCode::kConfig, "schema_version", "missing");
  auto src = trn2();
  src["accel"]["memory_gbps"].erase("source");
  expectError(parseDom(src), ErrorCode::kConfig, "accel.memory_gbps", "non-empty \"source\"");
}

TEST(SystemErrors, UnknownKeySuggestsTheRightOne) {
  auto j = trn2();
  j["scale_out"]["nic_gbps_per_chp"] = j["scale_out"]["nic_gbps_per_chip"];
  j["scale_out"].erase("nic_gbps_per_chip");
  expectError(parseDom(j), ErrorCode::kConfig, "scale_out.nic_gbps_per_chp",
              "unknown key (did you mean 'scale_out.nic_gbps_per_chip'?)");
  auto k = trn2();
  k["scale_up"][0]["hop_latency_us"] = k["scale_up"][0]["hop_latency_ns"];
  k["scale_up"][0].erase("hop_latency_ns");
  expectError(parseDom(k), ErrorCode::kConfig, "scale_up.0.hop_latency_us",
              "did you mean 'scale_up.0.hop_latency_ns'");
  auto far = trn2();
  far["colour"] = "blue";
  expectError(parseDom(far), ErrorCode::kConfig, "colour", "expected one of: schema_version");
}

TEST(SystemErrors, WrongKindString) {
  auto j = trn2();
  j["scale_up"][0]["kind"] = "torus";
  expectError(parseDom(j), ErrorCode::kConfig, "scale_up.0.kind",
              "expected \"ring\", \"switch\" or \"fully_connected\", got \"torus\"");
  auto k = trn2();
  k["scale_up"][1]["kind"] = "swich";
  expectError(parseDom(k), ErrorCode::kConfig, "scale_up.1.kind", "did you mean \"switch\"");
  auto n = trn2();
  n["scale_up"][1]["kind"] = 3;
  expectError(parseDom(n), ErrorCode::kConfig, "scale_up.1.kind", "expected a non-empty string");
}

TEST(SystemErrors, NegativeOrOutOfRangeNumbers) {
  auto j = trn2();
  j["scale_up"][0]["link_gbps"]["value"] = -128;
  expectError(parseDom(j), ErrorCode::kConfig, "scale_up.0.link_gbps",
              "expected a number in [0.1, 100000] GB/s with a source, got -128; bandwidths are "
              "in GB/s");
  auto k = trn2();
  k["scale_out"]["oversubscription"]["value"] = 0.5;
  expectError(parseDom(k), ErrorCode::kConfig, "scale_out.oversubscription",
              "expected a number in [1, 1000]");
  auto n = trn2();
  n["chips_per_node"]["value"] = 2.5;
  expectError(parseDom(n), ErrorCode::kConfig, "chips_per_node", "a whole number");
  auto bare = trn2();
  bare["accel"]["power_watts"] = 500;
  expectError(parseDom(bare), ErrorCode::kConfig, "accel.power_watts",
              "every number needs its source");
}

TEST(SystemErrors, NearZeroRatesAreRangeErrors) {
  // Issue 14: a near-zero bandwidth used to load and make the planner print "inf days" and
  // "-nan%". Each rate the planner divides by has a physical floor; 0 stays valid where it
  // means "none" or "the planner's default".
  struct Case {
    std::vector<std::string> path;
    const char* key;
    const char* range;
  };
  const Case cases[] = {
      {{"scale_up", "0", "link_gbps"}, "scale_up.0.link_gbps", "[0.1, 100000] GB/s"},
      {{"scale_out", "nic_gbps_per_chip"}, "scale_out.nic_gbps_per_chip", "[0.1, 100000] GB/s"},
      {{"checkpoint_gbps_per_node"}, "checkpoint_gbps_per_node", "[0.1, 100000] GB/s"},
      {{"accel", "memory_gbps"}, "accel.memory_gbps", "[10, 1000000] GB/s"},
      {{"accel", "peak_tflops_bf16"}, "accel.peak_tflops_bf16", "[1, 100000] TFLOPS"},
      {{"accel", "peak_tflops_fp8"},
       "accel.peak_tflops_fp8",
       "0 or a number in [1, 100000] TFLOPS"},
      {{"accel", "power_watts"}, "accel.power_watts", "[10, 100000] W"},
      {{"reliability", "chip_mtbf_hours"},
       "reliability.chip_mtbf_hours",
       "0 or a number in [1, 1000000000] hours"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    auto j = trn2();
    ordered_json* node = &j;
    for (const std::string& part : c.path) {
      node = node->is_array() ? &(*node)[std::stoul(part)] : &(*node)[part];
    }
    (*node)["value"] = 1e-20;
    expectError(parseDom(j), ErrorCode::kConfig, c.key,
                std::string("expected ") +
                    (std::string(c.range).rfind("0 or", 0) == 0 ? "" : "a number in ") + c.range +
                    " with a source, got 1e-20");
    expectError(parseDom(j), ErrorCode::kConfig, c.key, "docs/configs.md");
  }
  // 0 where 0 means none / the default.
  auto none = trn2();
  none["accel"]["peak_tflops_fp8"]["value"] = 0;
  none["reliability"]["chip_mtbf_hours"]["value"] = 0;
  none["reliability"]["restart_seconds"]["value"] = 0;
  EXPECT_TRUE(parseDom(none).isOk()) << parseDom(none).toString();
}

TEST(SystemErrors, RulesBetweenKeys) {
  auto j = trn2();
  j["chips_per_node"]["value"] = 5;
  j["scale_out"]["rails"]["value"] = 1;
  expectError(parseDom(j), ErrorCode::kConfig, "chips_per_node",
              "5 chips per node do not divide the scale-up domain of 16 chips");
  auto k = trn2();
  k["scale_up"][0]["in_network_reduction"]["value"] = true;
  expectError(parseDom(k), ErrorCode::kConfig, "scale_up.0.in_network_reduction",
              "only a switch can reduce");
  auto n = trn2();
  n["scale_up"][1]["name"] = "x";
  expectError(parseDom(n), ErrorCode::kConfig, "scale_up.1.name", "names two scale_up");
  auto c = trn2();
  c["accel"]["sim_chip"] = "trn9";
  expectError(parseDom(c), ErrorCode::kConfig, "accel.sim_chip", "not a built-in trnsim chip");
  auto m = trn2();
  m["scale_out"]["max_chips"]["value"] = 8;
  expectError(parseDom(m), ErrorCode::kConfig, "scale_out.max_chips", "smaller than one");
  auto list = trn2();
  list["scale_up"] = ordered_json::object();
  expectError(parseDom(list), ErrorCode::kConfig, "scale_up", "expected a list of fabric");
}

TEST(SystemErrors, DuplicateKeyInsideAListIsNamedByIndex) {
  std::string text = trn2().dump(2);
  // Repeat the "size" key of scale_up[1] by editing the text (a DOM cannot hold duplicates).
  size_t second = text.find("\"size\"", text.find("\"size\"") + 1);
  ASSERT_NE(second, std::string::npos);
  text.insert(second, "\"size\": {\"value\": 4, \"source\": \"dup\"},\n");
  auto s = parseSystemConfig(text, kOrigin);
  ASSERT_FALSE(s.hasValue());
  expectError(s.status(), ErrorCode::kConfig, "scale_up.1.size", "appears twice");
}

TEST(SystemErrors, PriceCatalogErrors) {
  const std::string origin = "configs/prices/p.json";
  auto parse = [&](const std::string& text) {
    auto p = parsePriceCatalog(text, origin);
    return p ? Status::ok() : p.status();
  };
  const std::string head = R"({"schema_version": 1, "name": "p", "description": "d", )";
  EXPECT_TRUE(parse(head + R"("usd_per_node_hour": {"a": {"value": 1.5, "source": "s"}}})").isOk());
  Status neg = parse(head + R"("usd_per_node_hour": {"a": {"value": -1, "source": "s"}}})");
  EXPECT_EQ(neg.where(), origin + ": key 'usd_per_node_hour.a'") << neg.toString();
  Status noSrc = parse(head + R"("usd_per_node_hour": {"a": {"value": 2}}})");
  EXPECT_NE(noSrc.message().find("source"), std::string::npos) << noSrc.toString();
  Status typo = parse(head + R"("usd_per_node_hr": {}})");
  EXPECT_EQ(typo.where(), origin + ": key 'usd_per_node_hr'") << typo.toString();
  EXPECT_NE(typo.message().find("did you mean 'usd_per_node_hour'"), std::string::npos);
  Status missing = parse(R"({"schema_version": 1, "name": "p", "description": "d"})");
  EXPECT_EQ(missing.where(), origin + ": key 'usd_per_node_hour'") << missing.toString();
  Status bad = parse("{");
  EXPECT_EQ(bad.code(), ErrorCode::kParse);
}

}  // namespace
}  // namespace trnsim::arch
