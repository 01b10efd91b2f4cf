// Random mutations of the built-in system and price files: the parsers must return either a
// config/parse error naming the origin or a system that satisfies the documented rules, and
// never crash, hang or report an internal error. Runs under ASan/UBSan in `make test`.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "json_mutation.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/arch/system_files.h"

namespace trnsim::arch {
namespace {

using nlohmann::json;

/// What a successful parse promises.
void checkValid(const SystemConfig& s) {
  ASSERT_GE(s.chipsPerNode, 1u);
  ASSERT_EQ(s.chipsPerDomain() % s.chipsPerNode, 0u);
  ASSERT_GE(s.scaleOut.maxChips, s.chipsPerDomain());
  ASSERT_LE(s.scaleOut.rails, s.chipsPerNode);
  ASSERT_GE(s.scaleOut.oversubscription, 1);
  ASSERT_GT(s.accel.peakTflopsBf16, 0);
  ASSERT_TRUE(std::isfinite(s.accel.memoryGbps));
  for (const FabricDim& d : s.scaleUp) {
    ASSERT_GE(d.size, 1u);
    ASSERT_GT(d.linkGbps, 0);
    ASSERT_TRUE(!d.inNetworkReduction || d.kind == LinkKind::kSwitch);
  }
  ASSERT_EQ(s.sources.size(), 17 + 4 * s.scaleUp.size());
  for (const auto& [key, source] : s.sources) ASSERT_FALSE(source.empty()) << key;
  ASSERT_TRUE(json::accept(systemToJson(s)));
  ASSERT_FALSE(describeSystem(s).empty());
}

void checkOutcome(const std::string& text, int& accepted, int& rejected) {
  auto sys = parseSystemConfig(text, "fuzz.json");
  if (sys.hasValue()) {
    ++accepted;
    checkValid(*sys);
    return;
  }
  ++rejected;
  const Status& s = sys.status();
  ASSERT_TRUE(s.code() == ErrorCode::kParse || s.code() == ErrorCode::kConfig) << s.toString();
  ASSERT_FALSE(s.message().empty());
  ASSERT_EQ(s.where().rfind("fuzz.json", 0), 0u) << s.toString();
}

std::vector<std::string> seeds() {
  std::vector<std::string> out;
  for (const auto& [name, text] : detail::builtinSystemFiles()) out.emplace_back(text);
  return out;
}

TEST(SystemFuzz, TextMutations) {
  std::mt19937_64 rng(20261122);
  int accepted = 0;
  int rejected = 0;
  const std::vector<std::string> base = seeds();
  ASSERT_FALSE(base.empty());
  for (int iter = 0; iter < 1000; ++iter) {
    std::string text = base[iter % base.size()];
    testing::mutateText(text, rng);
    checkOutcome(text, accepted, rejected);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 500);
  EXPECT_GT(accepted, 0);  // bit flips inside source strings leave valid files
}

json randomValue(std::mt19937_64& rng) {
  switch (rng() % 13) {
    case 0:
      return nullptr;
    case 1:
      return true;
    case 2:
      return "switch";
    case 3:
      return -1;
    case 4:
      return 0;
    case 5:
      return 1e300;
    case 6:
      return std::numeric_limits<uint64_t>::max();
    case 7:
      return json::array({1, 2});
    case 8:
      return json::object();
    case 9:
      return 0.5;
    case 10:
      return std::uniform_real_distribution<double>(-10, 1000)(rng);
    case 11:
      return json::array();
    default:
      return int64_t(rng() % 300);
  }
}

TEST(SystemFuzz, StructuralMutations) {
  std::mt19937_64 rng(11);
  int accepted = 0;
  int rejected = 0;
  std::vector<json> base;
  std::vector<std::vector<json::json_pointer>> basePointers;
  for (const std::string& s : seeds()) {
    base.push_back(json::parse(s));
    testing::collectPointers(base.back(), json::json_pointer(), basePointers.emplace_back());
  }
  for (int iter = 0; iter < 1000; ++iter) {
    json j = base[iter % base.size()];
    const auto& ptrs = basePointers[iter % base.size()];
    int edits = 1 + int(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const json::json_pointer& p = ptrs[rng() % ptrs.size()];
      if (p.empty() || !j.contains(p) || !j.contains(p.parent_pointer())) continue;
      json& parent = j[p.parent_pointer()];
      const std::string key = p.back();
      switch (rng() % 5) {
        case 0:
          if (parent.is_object()) parent.erase(key);
          break;
        case 1:
          j[p] = randomValue(rng);
          break;
        case 2:
          if (parent.is_object()) {
            json v = parent[key];
            parent.erase(key);
            parent[key + (rng() % 2 ? "s" : "_")] = v;
          }
          break;
        case 3:
          if (j[p].is_number())
            j[p] = j[p].get<double>() * std::uniform_real_distribution<double>(-3, 3)(rng);
          break;
        case 4:  // duplicate a list element (a fabric dimension): sizes multiply
          if (j[p].is_array() && !j[p].empty()) j[p].push_back(j[p][0]);
          break;
      }
    }
    checkOutcome(j.dump(), accepted, rejected);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 400);
  EXPECT_GT(accepted, 30);
}

TEST(SystemFuzz, PriceMutations) {
  std::mt19937_64 rng(5);
  std::vector<std::string> base;
  for (const auto& [name, text] : detail::builtinPriceFiles()) base.emplace_back(text);
  ASSERT_FALSE(base.empty());
  for (int iter = 0; iter < 500; ++iter) {
    std::string text = base[iter % base.size()];
    for (int e = 0; e < 1 + int(rng() % 3) && !text.empty(); ++e) {
      size_t at = std::uniform_int_distribution<size_t>(0, text.size() - 1)(rng);
      if (rng() % 2) {
        text[at] = "{}[]\",:0123456789-.eE \\x"[rng() % 24];
      } else {
        text.erase(at, std::min<size_t>(text.size() - at, 1 + rng() % 20));
      }
    }
    auto p = parsePriceCatalog(text, "fuzz.json");
    if (p.hasValue()) {
      for (const auto& [system, entry] : p->bySystem) {
        ASSERT_GT(entry.usdPerNodeHour, 0) << system;
        ASSERT_FALSE(entry.source.empty()) << system;
      }
    } else {
      ASSERT_TRUE(p.status().code() == ErrorCode::kParse || p.status().code() == ErrorCode::kConfig)
          << p.status().toString();
      ASSERT_EQ(p.status().where().rfind("fuzz.json", 0), 0u) << p.status().toString();
    }
  }
}

}  // namespace
}  // namespace trnsim::arch
