#pragma once
// Internal helpers shared by the arch layer's JSON config parsers (chips, systems, prices):
// "did you mean" hints and the reading of one {"value": ..., "source": ...} number. Parsing and
// reading the files is support/json_load.h's. Not part of the public API; included by the config
// loaders (src/trnsim/arch/*.cpp, the plan layer's model catalog) and their tests.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/chip_schema.h"
#include "trnsim/support/status.h"

namespace trnsim::arch::detail {

/// A short, ASCII-safe rendering of a JSON value for error messages.
std::string shown(const nlohmann::json& j);

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
size_t editDistance(std::string_view a, std::string_view b);

/// "prefix.key", or "key" when prefix is empty.
std::string joinPath(std::string_view prefix, std::string_view key);

/// A kConfig Status whose place is "<origin>: key '<path>'".
Status keyError(const std::string& origin, std::string_view path, std::string message);

/// Checks root["schema_version"] == version.
Status checkSchemaVersion(const nlohmann::json& root, int version, const std::string& origin);

/// The hint for an unknown key `key` of the object at `prefix` whose known keys are `known`:
/// " (did you mean 'prefix.best'?)" for a near miss, else "; expected one of: a, b, c".
/// `node` is the object itself (a near miss whose intended key is also present gets no hint).
std::string unknownKeyHint(std::string_view key, std::string_view prefix,
                           const std::vector<std::string>& known, const nlohmann::json& node);

/// True when `s` holds only whitespace (or nothing).
bool blank(const std::string& s);

/// Reads the {"value": ..., "source": ...} object `node` found at `spec.path`: checks its keys,
/// the type and range of the value (from `spec`), and that the source is a non-empty string;
/// stores the value through `ref` and the source in `source`.
Status readValueObject(const nlohmann::json& node, const FieldSpec& spec, const FieldRef& ref,
                       const std::string& origin, std::string& source);

}  // namespace trnsim::arch::detail
