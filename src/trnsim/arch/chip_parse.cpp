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
#include "trnsim/arch/json_util.h"
#include "trnsim/support/json_load.h"

namespace trnsim::arch {
namespace {

using detail::Field;
using detail::FieldSpec;
using detail::joinPath;
using detail::shown;
using nlohmann::json;

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
    TRNSIM_ASSIGN_OR_RETURN(json root, support::parseJsonText(text_, origin_));
    if (!root.is_object()) {
      return Status(ErrorCode::kConfig,
                    "expected a JSON object at the top level, got " + shown(root), origin_);
    }
    TRNSIM_RETURN_IF_ERROR(detail::checkSchemaVersion(root, kChipSchemaVersion, origin_));

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
      std::string hint = detail::unknownKeyHint(key, prefix, *kids, node);
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

  Status readField(const json& root, const Field& field, ChipConfig& chip) const {
    std::string source;
    TRNSIM_RETURN_IF_ERROR(
        detail::readValueObject(at(root, field.spec.path), field.spec, field.ref, origin_, source));
    chip.sources[std::string(field.spec.path)] = std::move(source);
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
