#pragma once
// Mutation helpers shared by the config fuzz tests (chips, systems, prices).

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace trnsim::arch::testing {

/// Applies 1-4 random byte-level edits to `text`: truncate, flip a bit, a random byte, a
/// JSON-ish byte, or delete a span.
inline void mutateText(std::string& text, std::mt19937_64& rng) {
  auto pos = [&] { return std::uniform_int_distribution<size_t>(0, text.size() - 1)(rng); };
  int edits = 1 + int(rng() % 4);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    switch (rng() % 5) {
      case 0:
        text.resize(pos());
        break;
      case 1:
        text[pos()] ^= char(1u << (rng() % 8));
        break;
      case 2:
        text[pos()] = char(rng() % 256);
        break;
      case 3:
        text.insert(pos(), 1, "{}[]\",:0123456789-.eE \\"[rng() % 23]);
        break;
      case 4: {
        size_t at = pos();
        text.erase(at, std::min<size_t>(text.size() - at, 1 + rng() % 40));
        break;
      }
    }
  }
}

/// JSON pointers of every node of `j`.
inline void collectPointers(const nlohmann::json& j, const nlohmann::json::json_pointer& here,
                            std::vector<nlohmann::json::json_pointer>& out) {
  out.push_back(here);
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) collectPointers(v, here / k, out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) collectPointers(j[i], here / i, out);
  }
}

}  // namespace trnsim::arch::testing
