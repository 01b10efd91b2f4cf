// parseChipConfig: JSON text -> validated ChipConfig. Every failure becomes a Status naming the
// origin (file), the dotted key and what was expected; no exception leaves this file.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"

namespace trnsim::arch {
namespace {

using detail::Field;
using detail::FieldKind;
using detail::FieldSpec;
using nlohmann::json;

constexpr size_t kMaxShownChars = 60;

/// A short, ASCII-safe rendering of a JSON value for error messages.
std::string shown(const json& j) {
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > kMaxShownChars) s = s.substr(0, kMaxShownChars - 3) + "...";
  return s;
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
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

/// The nested key structure implied by the field table: for each object path (root = ""),
/// its child keys in file order.
struct KeyTree {
  std::vector<std::pair<std::string, std::vector<std::string>>> children;
  std::set<std::string> leaves;

  std::vector<std::string>& childrenOf(const std::string& prefix) {
    for (auto& [p, c] : children)
      if (p == prefix) return c;
    children.emplace_back(prefix, std::vector<std::string>{});
    return children.back().second;
  }
  const std::vector<std::string>* find(const std::string& prefix) const {
    for (const auto& [p, c] : children)
      if (p == prefix) return &c;
    return nullptr;
  }
  void add(std::string_view path, bool leaf) {
    std::string prefix;
    size_t start = 0;
    while (true) {
      size_t dot = path.find('.', start);
      std::string part(
          path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
      std::vector<std::string>& kids = childrenOf(prefix);
      if (std::find(kids.begin(), kids.end(), part) == kids.end()) kids.push_back(part);
      prefix = joinPath(prefix, part);
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    if (leaf) leaves.insert(std::string(path));
  }
};

class Parser {
 public:
  Parser(std::string_view text, const std::string& origin) : text_(text), origin_(origin) {}

  Expected<ChipConfig> run() {
    json root;
    TRNSIM_RETURN_IF_ERROR(parseJson(root));
    if (!root.is_object()) {
      return Status(ErrorCode::kConfig,
                    "expected a JSON object at the top level, got " + shown(root), origin_);
    }
    TRNSIM_RETURN_IF_ERROR(checkSchemaVersion(root));

    ChipConfig chip;
    std::vector<Field> fields = detail::chipFields(chip);
    KeyTree tree;
    tree.add("schema_version", false);
    tree.add("name", false);
    tree.add("description", false);
    for (const Field& f : fields) tree.add(f.spec.path, true);
    TRNSIM_RETURN_IF_ERROR(checkKeys(root, "", tree, fields));

    TRNSIM_ASSIGN_OR_RETURN(chip.name, readText(root, "name"));
    TRNSIM_ASSIGN_OR_RETURN(chip.description, readText(root, "description"));
    for (const Field& f : fields) TRNSIM_RETURN_IF_ERROR(readField(root, f, chip));
    chip.sourceFile = origin_;
    TRNSIM_RETURN_IF_ERROR(checkConsistency(chip));
    return chip;
  }

 private:
  Status error(std::string_view path, std::string message) const {
    return Status(ErrorCode::kConfig, std::move(message),
                  fmt::format("{}: key '{}'", origin_, path));
  }

  Status parseJson(json& out) {
    // Duplicate keys are almost always a copy-paste slip; nlohmann keeps the last silently, so
    // track the keys of every open object.
    struct Frame {
      std::set<std::string> seen;
      std::string lastKey;
    };
    std::vector<Frame> stack;
    std::string duplicate;
    auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
      switch (event) {
        case json::parse_event_t::object_start:
          stack.emplace_back();
          break;
        case json::parse_event_t::object_end:
          if (!stack.empty()) stack.pop_back();
          break;
        case json::parse_event_t::key: {
          if (stack.empty() || !parsed.is_string()) break;
          const std::string& key = parsed.get_ref<const std::string&>();
          stack.back().lastKey = key;
          if (!stack.back().seen.insert(key).second && duplicate.empty()) {
            for (const Frame& f : stack) duplicate = joinPath(duplicate, f.lastKey);
          }
          break;
        }
        default:
          break;
      }
      return true;
    };
    try {
      out = json::parse(text_.begin(), text_.end(), callback, /*allow_exceptions=*/true,
                        /*ignore_comments=*/false);
    } catch (const json::exception& e) {
      return Status(ErrorCode::kParse, "invalid JSON: " + stripExceptionPrefix(e.what()), origin_);
    }
    if (!duplicate.empty()) {
      return error(duplicate, "appears twice in the same object; keep one");
    }
    return Status::ok();
  }

  /// nlohmann messages start with "[json.exception.parse_error.101] "; users need the rest
  /// ("parse error at line 3, column 7: ...").
  static std::string stripExceptionPrefix(std::string_view what) {
    if (!what.empty() && what.front() == '[') {
      size_t close = what.find("] ");
      if (close != std::string_view::npos) what.remove_prefix(close + 2);
    }
    return std::string(what);
  }

  Status checkSchemaVersion(const json& root) const {
    auto it = root.find("schema_version");
    if (it == root.end()) {
      return error("schema_version",
                   fmt::format("missing; expected {} (the format version)", kChipSchemaVersion));
    }
    if (!it->is_number_integer() || it->get<int64_t>() != kChipSchemaVersion) {
      return error("schema_version",
                   fmt::format("expected {} (the only format this trnsim reads), got {}",
                               kChipSchemaVersion, shown(*it)));
    }
    return Status::ok();
  }

  /// What the object at `prefix` should look like, for "missing" and "expected" messages.
  static std::string describeObject(const std::string& prefix, const KeyTree& tree) {
    const std::vector<std::string>* kids = tree.find(prefix);
    std::string list;
    if (kids != nullptr) {
      for (const std::string& k : *kids) list += (list.empty() ? "" : ", ") + k;
    }
    return "an object with keys " + list;
  }

  static const FieldSpec* specOf(std::string_view path, const std::vector<Field>& fields) {
    for (const Field& f : fields)
      if (f.spec.path == path) return &f.spec;
    return nullptr;
  }

  /// Unknown keys first (a misspelt key also shows up as a missing one, and the misspelling
  /// is the useful message), then missing keys, then recursion into sub-objects.
  Status checkKeys(const json& node, const std::string& prefix, const KeyTree& tree,
                   const std::vector<Field>& fields) const {
    const std::vector<std::string>* kids = tree.find(prefix);
    if (kids == nullptr) return Status::ok();
    if (!node.is_object()) {
      return error(prefix, "expected " + describeObject(prefix, tree) + ", got " + shown(node));
    }
    for (const auto& [key, value] : node.items()) {
      if (std::find(kids->begin(), kids->end(), key) != kids->end()) continue;
      std::string best;
      size_t bestDistance = std::string::npos;
      for (const std::string& k : *kids) {
        size_t d = editDistance(key, k);
        if (d < bestDistance) {
          bestDistance = d;
          best = k;
        }
      }
      std::string hint;
      if (bestDistance <= std::max<size_t>(2, best.size() / 3) && node.find(best) == node.end()) {
        hint = fmt::format(" (did you mean '{}'?)", joinPath(prefix, best));
      } else {
        std::string list;
        for (const std::string& k : *kids) list += (list.empty() ? "" : ", ") + k;
        hint = "; expected one of: " + list;
      }
      return error(joinPath(prefix, key), "unknown key" + hint);
    }
    for (const std::string& k : *kids) {
      std::string path = joinPath(prefix, k);
      if (node.contains(k)) continue;
      if (tree.find(path) != nullptr) {
        return error(path, "missing; expected " + describeObject(path, tree));
      }
      if (const FieldSpec* spec = specOf(path, fields)) {
        return error(path, "missing; expected {\"value\": " + spec->expected() +
                               ", \"source\": \"<public source>\"}");
      }
      return error(path, "missing; expected a non-empty string");
    }
    for (const std::string& k : *kids) {
      std::string path = joinPath(prefix, k);
      TRNSIM_RETURN_IF_ERROR(checkKeys(node.at(k), path, tree, fields));
    }
    return Status::ok();
  }

  Expected<std::string> readText(const json& root, const char* key) const {
    const json& v = root.at(key);
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return error(key, "expected a non-empty string, got " + shown(v));
    }
    return v.get<std::string>();
  }

  static const json& at(const json& root, std::string_view path) {
    const json* node = &root;
    size_t start = 0;
    while (true) {
      size_t dot = path.find('.', start);
      std::string part(
          path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
      node = &node->at(part);
      if (dot == std::string_view::npos) return *node;
      start = dot + 1;
    }
  }

  static bool blank(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
  }

  Status readField(const json& root, const Field& field, ChipConfig& chip) const {
    const FieldSpec& spec = field.spec;
    const json& node = at(root, spec.path);
    const std::string expected = spec.expected();
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

    switch (spec.kind) {
      case FieldKind::kFlag:
        if (!val->is_boolean()) return error(spec.path, got);
        *std::get<bool*>(field.ref) = val->get<bool>();
        break;
      case FieldKind::kReal: {
        if (!val->is_number()) return error(spec.path, got);
        double v = val->get<double>();
        if (!spec.inRange(v)) return error(spec.path, got);
        *std::get<double*>(field.ref) = v;
        break;
      }
      case FieldKind::kCount: {
        if (!val->is_number()) return error(spec.path, got);
        double v = val->get<double>();
        if (val->is_number_unsigned()) v = static_cast<double>(val->get<uint64_t>());
        if (!std::isfinite(v) || std::floor(v) != v || !spec.inRange(v))
          return error(spec.path, got);
        uint64_t whole =
            val->is_number_unsigned() ? val->get<uint64_t>() : static_cast<uint64_t>(v);
        if (auto* p32 = std::get_if<uint32_t*>(&field.ref)) {
          **p32 = static_cast<uint32_t>(whole);  // the range check keeps it below 2^32
        } else {
          *std::get<uint64_t*>(field.ref) = whole;
        }
        break;
      }
    }
    chip.sources[std::string(spec.path)] = src->get<std::string>();
    return Status::ok();
  }

  /// Rules between keys that a per-key range cannot express.
  Status checkConsistency(const ChipConfig& c) const {
    const uint32_t parts = c.mem.sbufPartitions;
    if (c.pe.rows > parts) {
      return error(
          "pe.rows",
          fmt::format(
              "{} rows exceed memory.sbuf_partitions ({}): TensorE contracts over partitions",
              c.pe.rows, parts));
    }
    if (c.pe.cols > parts) {
      return error(
          "pe.cols",
          fmt::format("{} columns exceed memory.sbuf_partitions ({}): each column writes one "
                      "PSUM partition",
                      c.pe.cols, parts));
    }
    const std::pair<const char*, const StreamEngineConfig*> engines[] = {
        {"vector.lanes", &c.vector},
        {"scalar.lanes", &c.scalar},
        {"gpsimd.lanes", &c.gpsimd},
        {"sync.lanes", &c.sync}};
    for (const auto& [key, e] : engines) {
      if (e->lanes > parts) {
        return error(key,
                     fmt::format("{} lanes exceed memory.sbuf_partitions ({})", e->lanes, parts));
      }
    }
    if (uint64_t(c.pe.maxMovingFree) * 4 > c.mem.psumBankBytesPerPartition) {
      return error("pe.max_moving_free",
                   fmt::format("{} fp32 results per partition do not fit one PSUM bank "
                               "(memory.psum_bank_bytes_per_partition = {} bytes)",
                               c.pe.maxMovingFree, c.mem.psumBankBytesPerPartition));
    }
    if (c.dma.sustainedGbpsPerCore > c.dma.peakGbpsPerCore() * (1 + 1e-9)) {
      return error("dma.sustained_gbps_per_core",
                   fmt::format("{} GB/s exceeds the peak of all engines (dma.engines_per_core x "
                               "dma.engine_gbps = {} GB/s)",
                               c.dma.sustainedGbpsPerCore, c.dma.peakGbpsPerCore()));
    }
    if (c.dma.sbufTransposeEfficiency > 0 && c.dma.transposeEfficiency == 0) {
      return error("dma.sbuf_transpose_efficiency",
                   "is non-zero but dma.transpose_efficiency is 0 (no DMA transpose on this chip)");
    }
    if (c.pe.throttle.enabled) {
      if (c.pe.throttle.rampNs <= 0) {
        return error("pe.throttle.ramp_ns", "must be positive when pe.throttle.enabled is true");
      }
      if (c.pe.throttle.rearmIdleNs <= 0) {
        return error("pe.throttle.rearm_idle_ns",
                     "must be positive when pe.throttle.enabled is true");
      }
    }
    return Status::ok();
  }

  std::string_view text_;
  const std::string& origin_;
};

}  // namespace

Expected<ChipConfig> parseChipConfig(std::string_view jsonText, const std::string& origin) {
  try {
    return Parser(jsonText, origin).run();
  } catch (const std::exception& e) {
    // Every nlohmann call above is guarded; reaching here is a trnsim bug (or out of memory).
    return Status(ErrorCode::kInternal,
                  std::string("unexpected failure while reading the chip config: ") + e.what(),
                  origin);
  } catch (...) {
    return Status(ErrorCode::kInternal, "unexpected failure while reading the chip config", origin);
  }
}

}  // namespace trnsim::arch
