#pragma once
// Internal to the fabric layer: the collective algorithms as sequences of phases, and the
// symmetric step timer under them. Callers use CollectiveModel (collective.h).
//
// How a 100,000-chip collective is timed in microseconds: every algorithm is a few kinds of
// step (each member of every concurrent group sends to the member k places on, to its XOR
// partner, to all members, ...). All scale-up domains are alike, so one step is timed from the
// flows that start in domain 0 only: flows that stay inside the domain go to the back end
// (routes and link sharing); flows that leave it cross the Clos, where the only shared
// resource is each chip's NIC, so they get the closed form latency + bytes * k / NIC rate
// (k = such flows per NIC). A step's time is max over flows of latency + bytes / rate, so the
// (latency, rate) pairs of one step shape are kept (memoized) and reused for every size.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/topology.h"

namespace trnsim::fabric::detail {

/// A group pattern over ranks: {block + residue + i * stride : i < size}, tiling the ranks.
struct SubGroup {
  uint64_t size = 1;
  uint64_t stride = 1;
};

/// One level of a group: the members that differ only in one part of the hierarchy.
struct GroupLevel {
  SubGroup sub;          ///< the level's own sub-group (size = members along it)
  std::string name;      ///< "chip" (ranks of one chip), a FabricDim name, "scale-out" or "mixed"
  bool inDomain = true;  ///< all members of the level's sub-group are in one scale-up domain
  bool switchInNetwork = false;  ///< a switch dimension that reduces in the network
};

enum class StepKind : uint8_t {
  kShift,      ///< member i sends to i + param (mod size)
  kShiftPair,  ///< member i sends to i + param and to i - param (bidirectional)
  kXor,        ///< member i sends to i ^ param (skipped when outside the group)
  kAll,        ///< member i sends to every other member
  kFromRoot,   ///< member 0 sends to every other member
};

/// The result of an algorithm: its time and its phases.
struct Plan {
  double timeS = 0;
  std::vector<PhaseCost> phases;
};

class Engine {
 public:
  Engine(const Topology& topo, const NetworkBackend& backend) : topo_(topo), backend_(backend) {}

  /// Time of one step in which every sending member sends `bytes` per flow.
  /// `active`: the whole group pattern when every group runs (concurrent), else only group 0.
  Expected<double> stepSeconds(StepKind kind, uint64_t param, const SubGroup& sub,
                               const SubGroup& active, bool concurrent, double bytes) const;

  /// The levels of `sub` along the hierarchy (chip, scale-up dims, scale-out), innermost first.
  std::vector<GroupLevel> levels(const SubGroup& sub) const;

  const Topology& topology() const { return topo_; }

 private:
  using Envelope = std::vector<std::pair<double, double>>;  // (latency s, bytes/s)
  using Key = std::tuple<uint8_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, bool>;
  Status enumerate(StepKind kind, uint64_t param, const SubGroup& sub, const SubGroup& active,
                   bool concurrent, double bytes, std::vector<Flow>& flows,
                   uint64_t& maxOutPerChip) const;

  const Topology& topo_;
  const NetworkBackend& backend_;
  mutable std::mutex mutex_;
  mutable std::map<Key, Envelope> cache_;
};

/// The cost of `request` over the (validated) group `group` with the given algorithm (not
/// kAuto); kUnsupported when the algorithm does not apply to this op or group.
Expected<Plan> planCollective(const Engine& engine, CollectiveOp op, Algorithm algorithm,
                              const SubGroup& group, const SubGroup& active, bool concurrent,
                              double bytes);

/// The algorithms worth trying for `op` (in a fixed order).
std::vector<Algorithm> candidateAlgorithms(CollectiveOp op);

}  // namespace trnsim::fabric::detail
