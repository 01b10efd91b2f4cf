// Thousands of random mutations of the built-in chip files: parseChipConfig must return either
// a config error / parse error or a config that satisfies the documented ranges, and never
// crash, hang or report an internal error. Runs under ASan/UBSan in `make test`.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "json_mutation.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"

namespace trnsim::arch {
namespace {

using nlohmann::json;

/// Checks what a successful parse promises: every key in range, every source non-empty, and the
/// renderers work on it.
void checkValid(const ChipConfig& c) {
  ASSERT_GT(c.pe.clockGhz, 0);
  ASSERT_LE(c.pe.clockGhz, 10);
  ASSERT_GE(c.mem.sbufPartitions, 1u);
  ASSERT_LE(c.mem.sbufPartitions, 128u);
  ASSERT_LE(c.pe.rows, c.mem.sbufPartitions);
  ASSERT_GE(c.coresPerChip, 1u);
  for (Engine e : {Engine::kVector, Engine::kScalar, Engine::kGpSimd, Engine::kSync}) {
    ASSERT_GT(c.stream(e).clockGhz, 0);
    ASSERT_TRUE(std::isfinite(c.stream(e).elemsPerCycle16));
  }
  ASSERT_EQ(c.sources.size(), chipConfigKeys().size());
  for (const auto& [key, source] : c.sources) ASSERT_FALSE(source.empty()) << key;
  ASSERT_TRUE(std::isfinite(c.peakBf16FlopsPerCore()));
  ASSERT_FALSE(describeChip(c).empty());
  ASSERT_TRUE(json::accept(chipToJson(c)));
}

void checkOutcome(const std::string& text, int& accepted, int& rejected) {
  auto chip = parseChipConfig(text, "fuzz.json");
  if (chip.hasValue()) {
    ++accepted;
    checkValid(*chip);
    return;
  }
  ++rejected;
  const Status& s = chip.status();
  ASSERT_TRUE(s.code() == ErrorCode::kParse || s.code() == ErrorCode::kConfig) << s.toString();
  ASSERT_FALSE(s.message().empty());
  ASSERT_EQ(s.where().rfind("fuzz.json", 0), 0u) << s.toString();
}

std::vector<std::string> seeds() {
  std::vector<std::string> out;
  for (const auto& [name, text] : detail::builtinChipFiles()) out.emplace_back(text);
  return out;
}

TEST(ChipFuzz, TextMutations) {
  std::mt19937_64 rng(20240611);
  int accepted = 0;
  int rejected = 0;
  const std::vector<std::string> base = seeds();
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text = base[iter % base.size()];
    testing::mutateText(text, rng);
    checkOutcome(text, accepted, rejected);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 1200);
  EXPECT_GT(accepted, 0);  // bit flips inside source strings leave valid files
}

json randomValue(std::mt19937_64& rng) {
  switch (rng() % 12) {
    case 0:
      return nullptr;
    case 1:
      return true;
    case 2:
      return "fast";
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
    default:
      return int64_t(rng() % 300);
  }
}

TEST(ChipFuzz, StructuralMutations) {
  std::mt19937_64 rng(7);
  int accepted = 0;
  int rejected = 0;
  std::vector<json> base;
  std::vector<std::vector<json::json_pointer>> basePointers;
  for (const std::string& s : seeds()) {
    base.push_back(json::parse(s));
    testing::collectPointers(base.back(), json::json_pointer(), basePointers.emplace_back());
  }
  for (int iter = 0; iter < 1500; ++iter) {
    json j = base[iter % base.size()];
    const auto& ptrs = basePointers[iter % base.size()];
    int edits = 1 + int(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const json::json_pointer& p = ptrs[rng() % ptrs.size()];
      if (p.empty() || !j.contains(p) || !j.contains(p.parent_pointer()))
        continue;  // gone after an earlier edit
      json& parent = j[p.parent_pointer()];
      const std::string key = p.back();
      switch (rng() % 4) {
        case 0:  // delete the key
          if (parent.is_object()) parent.erase(key);
          break;
        case 1:  // change its type or value
          j[p] = randomValue(rng);
          break;
        case 2:  // rename it (a typo)
          if (parent.is_object()) {
            json v = parent[key];
            parent.erase(key);
            parent[key + (rng() % 2 ? "s" : "_")] = v;
          }
          break;
        case 3:  // scale a number, which may push it out of range
          if (j[p].is_number())
            j[p] = j[p].get<double>() * std::uniform_real_distribution<double>(-3, 3)(rng);
          break;
      }
    }
    checkOutcome(j.dump(), accepted, rejected);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 800);
  EXPECT_GT(accepted, 50);  // scaling a number within range, or editing a source, stays valid
}

}  // namespace
}  // namespace trnsim::arch
