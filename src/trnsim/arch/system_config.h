#pragma once
// A system (a cluster of accelerator chips) described as data: the accelerator, the building
// block it is sold in (a server, an UltraServer, an NVLink domain), the scale-up fabric that
// joins the chips of a building block, and the scale-out network that joins building blocks.
// Loaded from configs/systems/<name>.json; like the chip configs every number is
// {"value": ..., "source": ...} (docs/configs.md). The fabric layer builds its topology and
// collective model from this; the planner adds the accelerator rates, power and prices.
//
// Units: bandwidths in GB/s (1e9 bytes/s) PER DIRECTION, latencies in ns, power in W.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/support/status.h"

namespace trnsim::arch {

/// The version of the configs/systems/*.json format this library reads ("schema_version").
inline constexpr int kSystemSchemaVersion = 1;

/// How the chips along one dimension of a fabric are joined.
enum class LinkKind : uint8_t {
  kRing,    ///< a ring (a torus dimension): each chip links to its two neighbours
  kSwitch,  ///< every chip has one port into a switch (NVSwitch, NeuronSwitch): any-to-any
  kFullyConnected,  ///< a direct link between every pair of chips
};
std::string_view linkKindName(LinkKind k);

/// One dimension of the scale-up fabric (a torus has 2 or 3 ring dimensions; an NVLink node
/// has one switch dimension). Chips are numbered with dimension 0 varying fastest.
struct FabricDim {
  std::string name;        ///< "x", "y", "z", "nvlink", ...
  LinkKind kind = LinkKind::kRing;
  uint32_t size = 1;       ///< chips along this dimension
  /// kRing: bandwidth of the link(s) from a chip to ONE neighbour, per direction.
  /// kSwitch: bandwidth of a chip's port into the switch, per direction.
  /// kFullyConnected: bandwidth to ONE peer, per direction.
  double linkGbps = 0;
  double hopLatencyNs = 0;  ///< one traversal (chip to neighbour, or chip to switch to chip)
  bool inNetworkReduction = false;  ///< kSwitch only: the switch can reduce (NVLS/SHARP-like)
};

/// The network between building blocks (EFA, InfiniBand, RoCE, ICI): a multi-rail Clos.
struct ScaleOutConfig {
  std::string name;          ///< "EFAv3", "InfiniBand NDR", ...
  double nicGbpsPerChip = 0;  ///< network bandwidth of one chip (its rail), per direction
  uint32_t rails = 1;        ///< parallel planes; chip i of every node sits on rail i % rails
  uint32_t tiers = 3;        ///< switch tiers of the Clos (hops up and down)
  double hopLatencyNs = 0;   ///< one network hop (NIC or switch traversal)
  double oversubscription = 1;  ///< above the first tier (1 = non-blocking)
  uint64_t maxChips = 0;     ///< largest cluster this network builds
};

/// One accelerator chip as the planner and fabric see it.
struct AcceleratorConfig {
  std::string name;      ///< "Trainium2", "H100 SXM5 80GB"
  /// A trnsim chip config ("trn2") when the chip is simulated by trnsim; empty for chips the
  /// planner models with a roofline (GPUs, TPUs).
  std::string simChip;
  /// Ranks per chip: logical NeuronCores on Trainium (the vendor's training libraries run one
  /// rank per logical core), 1 on GPUs and TPUs.
  uint32_t ranksPerChip = 1;
  double peakTflopsBf16 = 0;  ///< dense
  double peakTflopsFp8 = 0;   ///< dense; 0 = no fp8
  double peakTflopsFp32 = 0;
  uint64_t memoryBytes = 0;   ///< HBM per chip
  double memoryGbps = 0;      ///< HBM bandwidth per chip
  double powerWatts = 0;      ///< per chip, including its share of the host, network and cooling
};

/// Per-system reliability overrides; zeros mean "use the planner's defaults".
struct ReliabilityConfig {
  double chipMtbfHours = 0;  ///< mean time between unexpected interruptions caused per chip
  double restartSeconds = 0;  ///< detect, reschedule and restart after an interruption
};

struct SystemConfig {
  std::string name;         ///< "trn2-ultraserver"
  std::string description;
  std::string sourceFile;
  AcceleratorConfig accel;
  /// Chips in the unit that is bought, priced and fails together (an instance or server).
  uint32_t chipsPerNode = 1;
  /// The scale-up fabric; the product of the sizes is the chips of one scale-up domain, a
  /// whole number of nodes (e.g. 64 chips = 4 trn2u.48xlarge nodes in a Trn2 UltraServer).
  std::vector<FabricDim> scaleUp;
  ScaleOutConfig scaleOut;
  double checkpointGbpsPerNode = 0;  ///< storage write/read bandwidth of one node
  ReliabilityConfig reliability;
  /// Dotted config key ("scale_up.0.link_gbps") -> the public source of its value.
  std::map<std::string, std::string> sources;

  /// Chips in one scale-up domain (the product of scaleUp sizes; 1 when there is none).
  uint32_t chipsPerDomain() const;
};

/// A system by name (built in: configs/systems/*.json) or by path to a JSON file. Errors name
/// the file, the key and what was expected.
Expected<SystemConfig> loadSystem(const std::string& nameOrPath);
Expected<SystemConfig> parseSystemConfig(std::string_view jsonText, const std::string& origin);
std::vector<std::string> builtinSystemNames();
/// The system as JSON (plain values, like `trnsim info --json` for chips).
std::string systemToJson(const SystemConfig& system);
/// The system as text for people (`trnsim info SYSTEM`): each number with its unit and source.
std::string describeSystem(const SystemConfig& system);

/// Hourly prices of systems, from configs/prices/<catalog>.json ("default" built in).
struct PriceEntry {
  double usdPerNodeHour = 0;
  std::string source;
};
struct PriceCatalog {
  std::string name;
  std::map<std::string, PriceEntry> bySystem;  ///< system name -> price of one node-hour
};
/// A price catalog by name (built in: configs/prices/*.json, "default") or by path to a JSON
/// file: {"schema_version": 1, "name", "description", "usd_per_node_hour": {SYSTEM: {"value",
/// "source"}}}.
Expected<PriceCatalog> loadPrices(const std::string& nameOrPath = "default");
Expected<PriceCatalog> parsePriceCatalog(std::string_view jsonText, const std::string& origin);
std::vector<std::string> builtinPriceCatalogNames();

}  // namespace trnsim::arch
