#pragma once
// The one entry for JSON read from users (chip, system, price, model and Hugging Face configs,
// the planner's tuning files, caches): bounded size, bounded nesting, no duplicate keys.
// Parsing is iterative (nlohmann's SAX parser with an explicit stack), so no input can grow the
// C++ stack; the depth check refuses a deeply nested file before a DOM of that depth exists.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "trnsim/support/status.h"

namespace trnsim::support {

/// Deepest nesting of arrays and objects accepted; trnsim's configs need fewer than 10 levels.
inline constexpr size_t kMaxJsonDepth = 64;
/// Largest JSON text accepted; configs are a few KiB, so anything near this is the wrong file.
inline constexpr uint64_t kMaxJsonBytes = uint64_t{64} << 20;

/// The limits one parse enforces (tests lower them).
struct JsonLimits {
  size_t maxDepth = kMaxJsonDepth;
  uint64_t maxBytes = kMaxJsonBytes;
};

/// Parses `text`, whose errors name `origin` (a path or "<builtin>/x.json"):
///  - invalid JSON: kParse, "invalid JSON: parse error at line L, column C: ...";
///  - nesting deeper than limits.maxDepth: kParse, naming the line and column;
///  - text longer than limits.maxBytes: kConfig;
///  - a key twice in one object: kConfig whose place is "<origin>: key 'a.0.b'" (dotted path,
///    array elements by index) and whose message names the line and column.
Expected<nlohmann::json> parseJsonText(std::string_view text, std::string_view origin,
                                       const JsonLimits& limits = {});

/// Reads the file at `path` (its size checked before reading) without parsing it; errors name
/// the path. For loaders that keep the text (parseChipConfig(text, path)).
Expected<std::string> readJsonFile(const std::string& path, const JsonLimits& limits = {});

/// readJsonFile then parseJsonText, with `path` as the origin.
Expected<nlohmann::json> parseJsonFile(const std::string& path, const JsonLimits& limits = {});

}  // namespace trnsim::support
