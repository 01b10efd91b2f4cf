// loadSystem, builtinSystemNames, systemToJson and describeSystem.

#include "trnsim/arch/system_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "trnsim/arch/json_util.h"
#include "trnsim/arch/system_files.h"
#include "trnsim/support/json_load.h"

namespace trnsim::arch {
namespace {

using OrderedJson = nlohmann::ordered_json;

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// "96 GiB", "141 GB" style: binary units when the size is a whole number of GiB.
std::string humanBytes(uint64_t bytes) {
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  double gib = static_cast<double>(bytes) / kGiB;
  if (bytes % (uint64_t(1) << 30) == 0) return fmt::format("{:.0f} GiB", gib);
  return fmt::format("{:.1f} GB ({:.1f} GiB)", static_cast<double>(bytes) / 1e9, gib);
}

}  // namespace

std::string_view linkKindName(LinkKind k) {
  switch (k) {
    case LinkKind::kRing:
      return "ring";
    case LinkKind::kSwitch:
      return "switch";
    case LinkKind::kFullyConnected:
      return "fully_connected";
  }
  return "unknown";
}

uint32_t SystemConfig::chipsPerDomain() const {
  uint64_t n = 1;
  for (const FabricDim& d : scaleUp) n *= d.size;
  return static_cast<uint32_t>(n);  // the parser caps the product at 1,000,000
}

std::vector<std::string> builtinSystemNames() {
  std::vector<std::string> names;
  for (const auto& [name, text] : detail::builtinSystemFiles()) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Expected<SystemConfig> loadSystem(const std::string& nameOrPath) {
  for (const auto& [name, text] : detail::builtinSystemFiles()) {
    if (name == nameOrPath) {
      return parseSystemConfig(text, fmt::format("<builtin>/systems/{}.json", name));
    }
  }
  if (endsWith(nameOrPath, ".json")) {
    TRNSIM_ASSIGN_OR_RETURN(std::string text, support::readJsonFile(nameOrPath));
    return parseSystemConfig(text, nameOrPath);
  }
  std::vector<std::string> names = builtinSystemNames();
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  std::string hint;
  size_t best = std::string::npos;
  for (const std::string& n : names) {
    size_t d = detail::editDistance(nameOrPath, n);
    if (d < best && d <= std::max<size_t>(2, n.size() / 3)) {
      best = d;
      hint = fmt::format(" (did you mean '{}'?)", n);
    }
  }
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("unknown system '{}'{}: built-in systems are {}; or give a path to a "
                            ".json system config",
                            nameOrPath, hint, list));
}

std::string systemToJson(const SystemConfig& s) {
  OrderedJson j;
  j["schema_version"] = kSystemSchemaVersion;
  j["name"] = s.name;
  j["description"] = s.description;
  j["source_file"] = s.sourceFile;
  OrderedJson& a = j["accel"];
  a["name"] = s.accel.name;
  a["sim_chip"] = s.accel.simChip;
  a["ranks_per_chip"] = s.accel.ranksPerChip;
  a["peak_tflops_bf16"] = s.accel.peakTflopsBf16;
  a["peak_tflops_fp8"] = s.accel.peakTflopsFp8;
  a["peak_tflops_fp32"] = s.accel.peakTflopsFp32;
  a["memory_bytes"] = s.accel.memoryBytes;
  a["memory_gbps"] = s.accel.memoryGbps;
  a["power_watts"] = s.accel.powerWatts;
  j["chips_per_node"] = s.chipsPerNode;
  OrderedJson& up = j["scale_up"];
  up = OrderedJson::array();
  for (const FabricDim& d : s.scaleUp) {
    OrderedJson dj;
    dj["name"] = d.name;
    dj["kind"] = std::string(linkKindName(d.kind));
    dj["size"] = d.size;
    dj["link_gbps"] = d.linkGbps;
    dj["hop_latency_ns"] = d.hopLatencyNs;
    dj["in_network_reduction"] = d.inNetworkReduction;
    up.push_back(std::move(dj));
  }
  OrderedJson& o = j["scale_out"];
  o["name"] = s.scaleOut.name;
  o["nic_gbps_per_chip"] = s.scaleOut.nicGbpsPerChip;
  o["rails"] = s.scaleOut.rails;
  o["tiers"] = s.scaleOut.tiers;
  o["hop_latency_ns"] = s.scaleOut.hopLatencyNs;
  o["oversubscription"] = s.scaleOut.oversubscription;
  o["max_chips"] = s.scaleOut.maxChips;
  j["checkpoint_gbps_per_node"] = s.checkpointGbpsPerNode;
  j["reliability"]["chip_mtbf_hours"] = s.reliability.chipMtbfHours;
  j["reliability"]["restart_seconds"] = s.reliability.restartSeconds;
  OrderedJson& derived = j["derived"];
  derived["chips_per_domain"] = s.chipsPerDomain();
  derived["nodes_per_domain"] = s.chipsPerNode == 0 ? 0 : s.chipsPerDomain() / s.chipsPerNode;
  derived["ranks_per_domain"] = uint64_t(s.chipsPerDomain()) * s.accel.ranksPerChip;
  OrderedJson& sources = j["sources"];
  sources = OrderedJson::object();
  for (const auto& [key, source] : s.sources) sources[key] = source;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string describeSystem(const SystemConfig& s) {
  std::string out;
  auto line = [&out](const std::string& text) {
    out += text;
    out += '\n';
  };
  const AcceleratorConfig& a = s.accel;
  const uint32_t domain = s.chipsPerDomain();
  const uint32_t nodes = s.chipsPerNode == 0 ? 0 : domain / s.chipsPerNode;
  line(fmt::format("{}: {}", s.name, s.description));
  line(fmt::format("  config        {}", s.sourceFile.empty() ? "(built in code)" : s.sourceFile));
  line(fmt::format("  node          {} chips ({} ranks)", s.chipsPerNode,
                   uint64_t(s.chipsPerNode) * a.ranksPerChip));
  line(fmt::format("  domain        {} chips = {} node{} over the scale-up fabric", domain, nodes,
                   nodes == 1 ? "" : "s"));
  line("");
  line(fmt::format("Accelerator: {}{}", a.name,
                   a.simChip.empty() ? " (roofline model)"
                                     : fmt::format(" (simulated as trnsim chip '{}')", a.simChip)));
  line(fmt::format("  ranks/chip    {}", a.ranksPerChip));
  line(fmt::format("  peak dense    {:g} bf16, {:g} fp8, {:g} fp32 TFLOPS", a.peakTflopsBf16,
                   a.peakTflopsFp8, a.peakTflopsFp32));
  line(fmt::format("  memory        {}, {:g} GB/s", humanBytes(a.memoryBytes), a.memoryGbps));
  line(fmt::format("  power         {:g} W per chip, all-in", a.powerWatts));
  line("");
  line("Scale-up fabric (dimension 0 varies fastest; bandwidths per direction):");
  if (s.scaleUp.empty()) line("  (none)");
  for (size_t i = 0; i < s.scaleUp.size(); ++i) {
    const FabricDim& d = s.scaleUp[i];
    const char* per = d.kind == LinkKind::kSwitch ? "per chip port" : "per neighbour link";
    if (d.kind == LinkKind::kFullyConnected) per = "per peer";
    line(fmt::format("  {} {:<8} {} of {}, {:g} GB/s {}, {:g} ns per hop{}", i, d.name,
                     linkKindName(d.kind), d.size, d.linkGbps, per, d.hopLatencyNs,
                     d.inNetworkReduction ? ", in-network reduction" : ""));
  }
  line("");
  const ScaleOutConfig& o = s.scaleOut;
  line(fmt::format("Scale-out network: {}", o.name));
  line(fmt::format("  per chip      {:g} GB/s per direction ({:g} Gb/s)", o.nicGbpsPerChip,
                   o.nicGbpsPerChip * 8));
  line(fmt::format("  Clos          {} rails, {} tiers, {:g} ns per hop, oversubscription {:g}",
                   o.rails, o.tiers, o.hopLatencyNs, o.oversubscription));
  line(fmt::format("  max cluster   {} chips", o.maxChips));
  line("");
  line(fmt::format("Checkpoint I/O  {:g} GB/s per node", s.checkpointGbpsPerNode));
  line(fmt::format("Reliability     chip MTBF {:g} h, restart {:g} s (0 = planner default)",
                   s.reliability.chipMtbfHours, s.reliability.restartSeconds));
  line("");
  line("Sources:");
  for (const auto& [key, source] : s.sources) line(fmt::format("  {}: {}", key, source));
  return out;
}

}  // namespace trnsim::arch
