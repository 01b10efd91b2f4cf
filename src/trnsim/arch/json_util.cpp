#include "trnsim/arch/json_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace trnsim::arch::detail {
namespace {

using nlohmann::json;

constexpr size_t kMaxShownChars = 60;

}  // namespace

std::string shown(const json& j) {
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > kMaxShownChars) s = s.substr(0, kMaxShownChars - 3) + "...";
  return s;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string joinPath(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
}

Status keyError(const std::string& origin, std::string_view path, std::string message) {
  return Status(ErrorCode::kConfig, std::move(message), fmt::format("{}: key '{}'", origin, path));
}

Status checkSchemaVersion(const json& root, int version, const std::string& origin) {
  auto it = root.find("schema_version");
  if (it == root.end()) {
    return keyError(origin, "schema_version",
                    fmt::format("missing; expected {} (the format version)", version));
  }
  if (!it->is_number_integer() || it->get<int64_t>() != version) {
    return keyError(origin, "schema_version",
                    fmt::format("expected {} (the only format this trnsim reads), got {}", version,
                                shown(*it)));
  }
  return Status::ok();
}

std::string unknownKeyHint(std::string_view key, std::string_view prefix,
                           const std::vector<std::string>& known, const json& node) {
  std::string best;
  size_t bestDistance = std::string::npos;
  for (const std::string& k : known) {
    size_t d = editDistance(key, k);
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  if (!best.empty() && bestDistance <= std::max<size_t>(2, best.size() / 3) &&
      (!node.is_object() || node.find(best) == node.end())) {
    return fmt::format(" (did you mean '{}'?)", joinPath(prefix, best));
  }
  std::string list;
  for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
  return "; expected one of: " + list;
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

Status readValueObject(const json& node, const FieldSpec& spec, const FieldRef& ref,
                       const std::string& origin, std::string& source) {
  const std::string expected = spec.expected();
  auto error = [&](std::string_view path, std::string message) {
    return keyError(origin, path, std::move(message));
  };
  if (!node.is_object()) {
    return error(
        spec.path,
        fmt::format("expected {{\"value\": {}, \"source\": \"<public source>\"}}, got {}{}",
                    expected, shown(node),
                    node.is_primitive() ? " (every number needs its source)" : ""));
  }
  for (const auto& [key, value] : node.items()) {
    if (key != "value" && key != "source") {
      return error(joinPath(spec.path, key),
                   "unknown key; a value object has only \"value\" and \"source\"");
    }
  }
  auto src = node.find("source");
  if (src == node.end() || !src->is_string() || blank(src->get_ref<const std::string&>())) {
    return error(spec.path,
                 "needs a non-empty \"source\" string naming where the number comes from "
                 "(a reference key such as \"[A3] ...\", or \"assumption: ...\")");
  }
  auto val = node.find("value");
  if (val == node.end()) {
    return error(spec.path, "missing \"value\"; expected " + expected);
  }
  const std::string got = fmt::format("expected {} with a source, got {}", expected, shown(*val));
  // A number of the right type but outside the range: say what to do about it.
  const std::string outOfRange =
      got + (spec.hint.empty() ? std::string("") : "; " + std::string(spec.hint)) +
      " (every key's range: docs/configs.md)";

  switch (spec.kind) {
    case FieldKind::kFlag:
      if (!val->is_boolean()) return error(spec.path, got);
      *std::get<bool*>(ref) = val->get<bool>();
      break;
    case FieldKind::kReal: {
      if (!val->is_number()) return error(spec.path, got);
      double v = val->get<double>();
      if (!spec.inRange(v)) return error(spec.path, outOfRange);
      *std::get<double*>(ref) = v;
      break;
    }
    case FieldKind::kCount: {
      if (!val->is_number()) return error(spec.path, got);
      double v = val->get<double>();
      if (val->is_number_unsigned()) v = static_cast<double>(val->get<uint64_t>());
      if (!std::isfinite(v) || std::floor(v) != v || !spec.inRange(v)) {
        return error(spec.path, outOfRange);
      }
      uint64_t whole = val->is_number_unsigned() ? val->get<uint64_t>() : static_cast<uint64_t>(v);
      if (auto* p32 = std::get_if<uint32_t*>(&ref)) {
        **p32 = static_cast<uint32_t>(whole);  // the range check keeps it below 2^32
      } else {
        *std::get<uint64_t*>(ref) = whole;
      }
      break;
    }
  }
  source = src->get<std::string>();
  return Status::ok();
}

}  // namespace trnsim::arch::detail
