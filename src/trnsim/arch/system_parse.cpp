// parseSystemConfig: JSON text -> validated SystemConfig. Every failure becomes a Status naming
// the origin (file), the dotted key ("scale_up.1.link_gbps") and what was expected; no
// exception leaves this file. The number reading and the "did you mean" hints are shared with
// the chip parser (json_util.h).

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"
#include "trnsim/arch/json_util.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/support/json_load.h"

namespace trnsim::arch {
namespace {

using detail::FieldKind;
using detail::FieldRef;
using detail::FieldSpec;
using detail::joinPath;
using detail::shown;
using nlohmann::json;

/// What one key of an object holds, for "missing" messages and for reading it.
enum class Slot : uint8_t { kNumber, kText, kOptionalText, kObject, kList };

struct KeyDesc {
  std::string key;
  Slot slot = Slot::kNumber;
  FieldSpec spec{};      ///< kNumber only; spec.path is filled in when read
  std::string expected;  ///< kObject / kList: what the value should look like
};

constexpr std::string_view kBandwidthHint =
    "bandwidths are in GB/s, 1e9 bytes/s, per direction: divide a Gb/s datasheet figure by 8";
constexpr std::string_view kTflopsHint = "dense peak in TFLOPS, 1e12 FLOP/s: 989.4 for an H100";
constexpr std::string_view kNsHint = "latencies are in ns: 1500 for 1.5 us";

KeyDesc number(std::string key, FieldKind kind, double lo, double hi, std::string_view unit,
               std::string_view hint, bool orZero = false) {
  return {std::move(key),
          Slot::kNumber,
          FieldSpec{{}, kind, lo, hi, false, false, unit, orZero, hint},
          {}};
}
KeyDesc real(std::string key, double lo, double hi, std::string_view unit, std::string_view hint) {
  return number(std::move(key), FieldKind::kReal, lo, hi, unit, hint);
}
/// A real in [lo, hi] or exactly 0 (0 means "none" or "the planner's default").
KeyDesc realOrZero(std::string key, double lo, double hi, std::string_view unit,
                   std::string_view hint) {
  return number(std::move(key), FieldKind::kReal, lo, hi, unit, hint, true);
}
KeyDesc count(std::string key, double lo, double hi, std::string_view unit = {}) {
  return number(std::move(key), FieldKind::kCount, lo, hi, unit, {});
}
KeyDesc flag(std::string key) { return number(std::move(key), FieldKind::kFlag, 0, 1, {}, {}); }
KeyDesc text(std::string key) { return {std::move(key), Slot::kText, {}, {}}; }
KeyDesc optionalText(std::string key) { return {std::move(key), Slot::kOptionalText, {}, {}}; }

std::string keyList(const std::vector<KeyDesc>& keys) {
  std::string list;
  for (const KeyDesc& k : keys) list += (list.empty() ? "" : ", ") + k.key;
  return list;
}

KeyDesc object(std::string key, const std::vector<KeyDesc>& inner) {
  return {std::move(key), Slot::kObject, {}, "an object with keys " + keyList(inner)};
}

// The keys of each object, in file order: the one table of system keys and their ranges
// (docs/configs.md writes the same ranges; a test compares them). Ranges are wide physical
// sanity bounds: they catch unit slips (Gb/s typed as GB/s, TFLOPS as FLOPS, a negative
// number) and near-zero rates that would make the planner print "inf days", without judging
// plausible hardware.
const std::vector<KeyDesc>& accelKeys() {
  static const std::vector<KeyDesc> keys = {
      text("name"),
      optionalText("sim_chip"),
      count("ranks_per_chip", 1, 64, "ranks"),
      real("peak_tflops_bf16", 1, 1e5, "TFLOPS", kTflopsHint),
      realOrZero("peak_tflops_fp8", 1, 1e5, "TFLOPS", kTflopsHint),
      real("peak_tflops_fp32", 0.1, 1e5, "TFLOPS", kTflopsHint),
      count("memory_bytes", 1e9, 1e15, "bytes"),
      real("memory_gbps", 10, 1e6, "GB/s", kBandwidthHint),
      real("power_watts", 10, 1e5, "W", "all-in watts per chip: 1275 for a DGX H100 GPU"),
  };
  return keys;
}
const std::vector<KeyDesc>& dimKeys() {
  static const std::vector<KeyDesc> keys = {
      text("name"),
      text("kind"),
      count("size", 1, 1e6, "chips"),
      real("link_gbps", 0.1, 1e5, "GB/s", kBandwidthHint),
      real("hop_latency_ns", 0, 1e7, "ns", kNsHint),
      flag("in_network_reduction"),
  };
  return keys;
}
const std::vector<KeyDesc>& scaleOutKeys() {
  static const std::vector<KeyDesc> keys = {
      text("name"),
      real("nic_gbps_per_chip", 0.1, 1e5, "GB/s", kBandwidthHint),
      count("rails", 1, 1024, "rails"),
      count("tiers", 1, 8, "tiers"),
      real("hop_latency_ns", 0, 1e7, "ns", kNsHint),
      real("oversubscription", 1, 1000, {}, "a ratio: 1 is non-blocking, 2 is 2:1"),
      count("max_chips", 1, 1e9, "chips"),
  };
  return keys;
}
const std::vector<KeyDesc>& reliabilityKeys() {
  static const std::vector<KeyDesc> keys = {
      realOrZero("chip_mtbf_hours", 1, 1e9, "hours", "hours per chip; 0 for the planner's default"),
      real("restart_seconds", 0, 1e6, "s", "seconds; 0 for the planner's default"),
  };
  return keys;
}
const std::vector<KeyDesc>& rootKeys() {
  static const std::vector<KeyDesc> keys = {
      {"schema_version", Slot::kNumber, {}, {}},  // checked first, on its own
      text("name"),
      text("description"),
      object("accel", accelKeys()),
      count("chips_per_node", 1, 1e6, "chips"),
      {"scale_up",
       Slot::kList,
       {},
       "a list of fabric dimensions, each an object with keys " + keyList(dimKeys())},
      object("scale_out", scaleOutKeys()),
      real("checkpoint_gbps_per_node", 0.1, 1e5, "GB/s", kBandwidthHint),
      object("reliability", reliabilityKeys()),
  };
  return keys;
}

class SystemParser {
 public:
  SystemParser(std::string_view jsonText, const std::string& origin)
      : text_(jsonText), origin_(origin) {}

  Expected<SystemConfig> run() {
    TRNSIM_ASSIGN_OR_RETURN(json root, support::parseJsonText(text_, origin_));
    if (!root.is_object()) {
      return Status(ErrorCode::kConfig,
                    "expected a JSON object at the top level, got " + shown(root), origin_);
    }
    TRNSIM_RETURN_IF_ERROR(detail::checkSchemaVersion(root, kSystemSchemaVersion, origin_));
    TRNSIM_RETURN_IF_ERROR(checkKeys(root, "", rootKeys()));

    SystemConfig& s = sys_;
    s.sourceFile = origin_;
    TRNSIM_ASSIGN_OR_RETURN(s.name, readText(root, "", "name", false));
    TRNSIM_ASSIGN_OR_RETURN(s.description, readText(root, "", "description", false));

    const json& accel = root.at("accel");
    TRNSIM_RETURN_IF_ERROR(checkKeys(accel, "accel", accelKeys()));
    AcceleratorConfig& a = s.accel;
    TRNSIM_ASSIGN_OR_RETURN(a.name, readText(accel, "accel", "name", false));
    TRNSIM_ASSIGN_OR_RETURN(a.simChip, readText(accel, "accel", "sim_chip", true));
    TRNSIM_RETURN_IF_ERROR(checkSimChip(a.simChip));
    const std::vector<KeyDesc>& ak = accelKeys();
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[2], &a.ranksPerChip));
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[3], &a.peakTflopsBf16));
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[4], &a.peakTflopsFp8));
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[5], &a.peakTflopsFp32));
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[6], &a.memoryBytes));
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[7], &a.memoryGbps));
    TRNSIM_RETURN_IF_ERROR(readNumber(accel, "accel", ak[8], &a.powerWatts));

    const std::vector<KeyDesc>& rk = rootKeys();
    TRNSIM_RETURN_IF_ERROR(readNumber(root, "", rk[4], &s.chipsPerNode));
    TRNSIM_RETURN_IF_ERROR(readScaleUp(root.at("scale_up")));

    const json& out = root.at("scale_out");
    TRNSIM_RETURN_IF_ERROR(checkKeys(out, "scale_out", scaleOutKeys()));
    ScaleOutConfig& o = s.scaleOut;
    const std::vector<KeyDesc>& ok = scaleOutKeys();
    TRNSIM_ASSIGN_OR_RETURN(o.name, readText(out, "scale_out", "name", false));
    TRNSIM_RETURN_IF_ERROR(readNumber(out, "scale_out", ok[1], &o.nicGbpsPerChip));
    TRNSIM_RETURN_IF_ERROR(readNumber(out, "scale_out", ok[2], &o.rails));
    TRNSIM_RETURN_IF_ERROR(readNumber(out, "scale_out", ok[3], &o.tiers));
    TRNSIM_RETURN_IF_ERROR(readNumber(out, "scale_out", ok[4], &o.hopLatencyNs));
    TRNSIM_RETURN_IF_ERROR(readNumber(out, "scale_out", ok[5], &o.oversubscription));
    TRNSIM_RETURN_IF_ERROR(readNumber(out, "scale_out", ok[6], &o.maxChips));

    TRNSIM_RETURN_IF_ERROR(readNumber(root, "", rk[7], &s.checkpointGbpsPerNode));

    const json& rel = root.at("reliability");
    TRNSIM_RETURN_IF_ERROR(checkKeys(rel, "reliability", reliabilityKeys()));
    const std::vector<KeyDesc>& lk = reliabilityKeys();
    TRNSIM_RETURN_IF_ERROR(readNumber(rel, "reliability", lk[0], &s.reliability.chipMtbfHours));
    TRNSIM_RETURN_IF_ERROR(readNumber(rel, "reliability", lk[1], &s.reliability.restartSeconds));

    TRNSIM_RETURN_IF_ERROR(checkConsistency());
    return std::move(sys_);
  }

 private:
  Status error(std::string_view path, std::string message) const {
    return detail::keyError(origin_, path, std::move(message));
  }

  static std::string missingMessage(const KeyDesc& k) {
    switch (k.slot) {
      case Slot::kNumber:
        return "missing; expected {\"value\": " + k.spec.expected() +
               ", \"source\": \"<public source>\"}";
      case Slot::kText:
        return "missing; expected a non-empty string";
      case Slot::kOptionalText:
        return "missing; expected a string (may be empty)";
      case Slot::kObject:
      case Slot::kList:
        break;
    }
    return "missing; expected " + k.expected;
  }

  /// Unknown keys first (a misspelt key also shows up as a missing one, and the misspelling is
  /// the useful message), then missing keys.
  Status checkKeys(const json& node, const std::string& prefix,
                   const std::vector<KeyDesc>& keys) const {
    if (!node.is_object()) {
      return error(prefix,
                   "expected an object with keys " + keyList(keys) + ", got " + shown(node));
    }
    std::vector<std::string> known;
    for (const KeyDesc& k : keys) known.push_back(k.key);
    for (const auto& [key, value] : node.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      return error(joinPath(prefix, key),
                   "unknown key" + detail::unknownKeyHint(key, prefix, known, node));
    }
    for (const KeyDesc& k : keys) {
      if (!node.contains(k.key)) return error(joinPath(prefix, k.key), missingMessage(k));
    }
    return Status::ok();
  }

  Expected<std::string> readText(const json& obj, const std::string& prefix, const char* key,
                                 bool mayBeEmpty) const {
    const json& v = obj.at(key);
    if (!v.is_string() || (!mayBeEmpty && detail::blank(v.get_ref<const std::string&>()))) {
      return error(joinPath(prefix, key),
                   std::string(mayBeEmpty ? "expected a string" : "expected a non-empty string") +
                       ", got " + shown(v));
    }
    return v.get<std::string>();
  }

  Status readNumber(const json& obj, const std::string& prefix, const KeyDesc& desc, FieldRef ref) {
    const std::string path = joinPath(prefix, desc.key);
    FieldSpec spec = desc.spec;
    spec.path = path;
    std::string source;
    TRNSIM_RETURN_IF_ERROR(detail::readValueObject(obj.at(desc.key), spec, ref, origin_, source));
    sys_.sources[path] = std::move(source);
    return Status::ok();
  }

  Status checkSimChip(const std::string& simChip) const {
    if (simChip.empty()) return Status::ok();
    std::vector<std::string> chips = builtinChipNames();
    if (std::find(chips.begin(), chips.end(), simChip) != chips.end()) return Status::ok();
    std::string list;
    for (const std::string& c : chips) list += (list.empty() ? "" : ", ") + c;
    return error("accel.sim_chip",
                 fmt::format("'{}' is not a built-in trnsim chip; expected one of {}, or \"\" for "
                             "a chip the planner models with a roofline",
                             simChip, list));
  }

  static Expected<LinkKind> kindOf(const std::string& s) {
    if (s == "ring") return LinkKind::kRing;
    if (s == "switch") return LinkKind::kSwitch;
    if (s == "fully_connected") return LinkKind::kFullyConnected;
    return Status(ErrorCode::kConfig, "");
  }

  Status readScaleUp(const json& list) {
    if (!list.is_array()) {
      return error("scale_up", "expected " + rootKeys()[5].expected + ", got " + shown(list));
    }
    const std::vector<KeyDesc>& dk = dimKeys();
    std::set<std::string> names;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string prefix = fmt::format("scale_up.{}", i);
      const json& d = list[i];
      TRNSIM_RETURN_IF_ERROR(checkKeys(d, prefix, dk));
      FabricDim dim;
      TRNSIM_ASSIGN_OR_RETURN(dim.name, readText(d, prefix, "name", false));
      if (!names.insert(dim.name).second) {
        return error(
            joinPath(prefix, "name"),
            fmt::format("'{}' names two scale_up dimensions; give each its own name", dim.name));
      }
      TRNSIM_ASSIGN_OR_RETURN(std::string kind, readText(d, prefix, "kind", false));
      Expected<LinkKind> k = kindOf(kind);
      if (!k) {
        std::string hint;
        for (const char* known : {"ring", "switch", "fully_connected"}) {
          if (detail::editDistance(kind, known) <= 2)
            hint = fmt::format(" (did you mean \"{}\"?)", known);
        }
        return error(joinPath(prefix, "kind"),
                     fmt::format("expected \"ring\", \"switch\" or \"fully_connected\", got {}{}",
                                 shown(d.at("kind")), hint));
      }
      dim.kind = *k;
      TRNSIM_RETURN_IF_ERROR(readNumber(d, prefix, dk[2], &dim.size));
      TRNSIM_RETURN_IF_ERROR(readNumber(d, prefix, dk[3], &dim.linkGbps));
      TRNSIM_RETURN_IF_ERROR(readNumber(d, prefix, dk[4], &dim.hopLatencyNs));
      TRNSIM_RETURN_IF_ERROR(readNumber(d, prefix, dk[5], &dim.inNetworkReduction));
      if (dim.inNetworkReduction && dim.kind != LinkKind::kSwitch) {
        return error(joinPath(prefix, "in_network_reduction"),
                     fmt::format("is true but kind is \"{}\"; only a switch can reduce in the "
                                 "network",
                                 linkKindName(dim.kind)));
      }
      sys_.scaleUp.push_back(std::move(dim));
    }
    return Status::ok();
  }

  /// Rules between keys that a per-key range cannot express.
  Status checkConsistency() const {
    const SystemConfig& s = sys_;
    uint64_t domain = 1;
    for (size_t i = 0; i < s.scaleUp.size(); ++i) {
      domain *= s.scaleUp[i].size;
      if (domain > 1000000) {
        return error(fmt::format("scale_up.{}.size", i),
                     "the scale-up domain (the product of the scale_up sizes) exceeds 1,000,000 "
                     "chips; scale-up fabrics join a rack or a few, scale_out joins the rest");
      }
    }
    if (domain % s.chipsPerNode != 0) {
      return error("chips_per_node",
                   fmt::format("{} chips per node do not divide the scale-up domain of {} chips "
                               "(the product of the scale_up sizes); a domain is a whole number "
                               "of nodes",
                               s.chipsPerNode, domain));
    }
    if (s.scaleOut.maxChips < domain) {
      return error("scale_out.max_chips",
                   fmt::format("{} is smaller than one scale-up domain ({} chips)",
                               s.scaleOut.maxChips, domain));
    }
    if (s.scaleOut.rails > s.chipsPerNode) {
      return error("scale_out.rails",
                   fmt::format("{} rails exceed chips_per_node ({}); chip i of a node sits on rail "
                               "i % rails",
                               s.scaleOut.rails, s.chipsPerNode));
    }
    if (s.accel.peakTflopsFp32 > s.accel.peakTflopsBf16 * (1 + 1e-9)) {
      return error("accel.peak_tflops_fp32",
                   fmt::format("{} TFLOPS exceeds accel.peak_tflops_bf16 ({}); fp32 is never the "
                               "faster dense rate",
                               s.accel.peakTflopsFp32, s.accel.peakTflopsBf16));
    }
    return Status::ok();
  }

  std::string_view text_;
  const std::string& origin_;
  SystemConfig sys_;
};

}  // namespace

namespace detail {

std::vector<FieldSpec> systemFieldSpecs() {
  // The paths live as long as the program (FieldSpec holds a string_view).
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    auto add = [&](const std::string& prefix, const std::vector<KeyDesc>& keys) {
      for (const KeyDesc& k : keys) {
        if (k.slot == Slot::kNumber && k.key != "schema_version") {
          out.push_back(joinPath(prefix, k.key));
        }
      }
    };
    add("", rootKeys());
    add("accel", accelKeys());
    add("scale_up[i]", dimKeys());
    add("scale_out", scaleOutKeys());
    add("reliability", reliabilityKeys());
    return out;
  }();
  std::vector<FieldSpec> specs;
  size_t next = 0;
  auto add = [&](const std::vector<KeyDesc>& keys) {
    for (const KeyDesc& k : keys) {
      if (k.slot != Slot::kNumber || k.key == "schema_version") continue;
      FieldSpec spec = k.spec;
      spec.path = paths[next++];
      specs.push_back(spec);
    }
  };
  add(rootKeys());
  add(accelKeys());
  add(dimKeys());
  add(scaleOutKeys());
  add(reliabilityKeys());
  return specs;
}

}  // namespace detail

Expected<SystemConfig> parseSystemConfig(std::string_view jsonText, const std::string& origin) {
  try {
    return SystemParser(jsonText, origin).run();
  } catch (const std::exception& e) {
    // Every nlohmann call above is guarded; reaching here is a trnsim bug (or out of memory).
    return Status(ErrorCode::kInternal,
                  std::string("unexpected failure while reading the system config: ") + e.what(),
                  origin);
  } catch (...) {
    return Status(ErrorCode::kInternal, "unexpected failure while reading the system config",
                  origin);
  }
}

}  // namespace trnsim::arch
