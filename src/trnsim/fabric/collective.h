#pragma once
// Collective operations and their cost model: one model for the `trnsim collective` command,
// the functional multi-chip runs and the planner. A collective call is an operation, a size
// and a group of chips; the model picks (or is told) an algorithm, decomposes it into phases of
// point-to-point flows over the topology, and a NetworkBackend times each phase.
//
// Sizes follow nccl-tests (NVIDIA/nccl-tests doc/PERFORMANCE.md): `bytes` is the size of the
// per-rank buffer (all-reduce: the vector; all-gather: the gathered output; reduce-scatter: the
// input; all-to-all: the whole send buffer); algbw = bytes / time and busbw = algbw * factor.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/system_config.h"
#include "trnsim/support/status.h"

namespace trnsim::fabric {

enum class CollectiveOp : uint8_t {
  kAllReduce,
  kReduceScatter,
  kAllGather,
  kAllToAll,
  kBroadcast,
  kSendRecv,  ///< each rank sends `bytes` to the next rank of the group (a shift by one)
  kPermute,   ///< collective_permute: each rank sends `bytes` to one peer (a pairing)
  kBarrier,
};
std::string_view opName(CollectiveOp op);  ///< "all_reduce", "reduce_scatter", ...
Expected<CollectiveOp> parseOp(std::string_view name);
/// nccl-tests bus bandwidth factor for a group of n ranks (2(n-1)/n for all-reduce, ...).
double busBandwidthFactor(CollectiveOp op, uint64_t n);

enum class Algorithm : uint8_t {
  kAuto,  ///< the model picks the fastest for the size and topology
  kRing,
  kBidirectionalRing,  ///< two rings in opposite directions, half the data each
  kTorus,              ///< dimension-wise over a 2D/3D torus (RS per dim, then AG per dim)
  kHalvingDoubling,    ///< recursive halving-doubling
  kDirect,             ///< direct / mesh: every rank sends to every other at once
  kHierarchical,       ///< inside the scale-up domain, then across it (scale-out), then back
  kInNetwork,          ///< reduction in the switch (only where a FabricDim allows it)
};
std::string_view algorithmName(Algorithm a);  ///< "ring", "bidirectional_ring", "torus", ...
Expected<Algorithm> parseAlgorithm(std::string_view name);

/// Which chips form the communicator. Ranks are numbered over the whole system
/// (rank r lives on chip r / ranksPerChip; chips are numbered domain by domain, dimension 0 of
/// the scale-up fabric fastest). The group is {first + i * stride : i < size}; every other
/// group of the same shape (first shifted) runs the same collective at the same time, as the
/// tensor-parallel or data-parallel groups of a training step do, and shares links with it.
struct GroupSpec {
  uint64_t size = 0;             ///< ranks in the group; 0 = every rank of the system
  uint64_t stride = 1;           ///< rank distance between consecutive members
  bool concurrentGroups = true;  ///< false: this group runs alone (a single benchmark call)
};

struct CollectiveRequest {
  CollectiveOp op = CollectiveOp::kAllReduce;
  uint64_t bytes = 0;
  GroupSpec group;
  Algorithm algorithm = Algorithm::kAuto;
  /// all_to_all(v) only: bytes of the busiest rank / mean bytes per rank (>= 1; 1 = uniform).
  double skew = 1.0;
};

/// One phase of an algorithm as timed: e.g. "reduce-scatter over x (ring, 3 steps)".
struct PhaseCost {
  std::string name;
  double timeS = 0;
  uint64_t steps = 0;
  uint64_t bytesPerRank = 0;  ///< bytes each rank sends in this phase
};

struct CollectiveCost {
  double timeS = 0;
  Algorithm algorithm = Algorithm::kRing;
  uint64_t ranks = 0;
  double algbwGbps = 0;
  double busbwGbps = 0;
  std::vector<PhaseCost> phases;
  /// Every algorithm considered, with its time (empty when the caller named one).
  std::vector<std::pair<Algorithm, double>> candidates;
};

/// The system's chips and links for a given number of chips: scale-up domains of the system's
/// FabricDims, joined by its scale-out Clos when there is more than one domain.
class Topology;

/// Times one phase: a set of point-to-point flows started together. The analytical back end
/// gives each flow latency(hops) + bytes / rate, with rate the smallest fair share of a link on
/// its route; a packet-level back end can replace it without touching callers.
struct Flow {
  uint64_t src = 0;  ///< chip
  uint64_t dst = 0;  ///< chip
  uint64_t bytes = 0;
};
/// Latency and steady rate of one flow of a phase (analytical back ends).
struct FlowTiming {
  double latencyS = 0;
  double bytesPerS = 0;
};
class NetworkBackend {
 public:
  virtual ~NetworkBackend() = default;
  virtual std::string_view name() const = 0;
  virtual Expected<double> phaseSeconds(const Topology& topo,
                                        const std::vector<Flow>& flows) const = 0;
  /// Per flow, its latency and rate, so that a flow of b bytes takes latencyS + b / bytesPerS
  /// (bytes of the given flows are ignored). Lets the model time one phase shape once for every
  /// size. Back ends whose time is not of that form return kUnsupported (the default) and are
  /// asked phaseSeconds() for every size instead.
  virtual Expected<std::vector<FlowTiming>> flowTimings(const Topology& topo,
                                                        const std::vector<Flow>& flows) const {
    (void)topo;
    (void)flows;
    return Status(ErrorCode::kUnsupported, "this back end has no per-flow rates");
  }
};
std::unique_ptr<NetworkBackend> makeAnalyticalBackend();

/// The collective cost model of one system at one size. Cheap to query (the planner calls it
/// thousands of times per search; 100,000 chips answer in well under 100 ms).
class CollectiveModel {
 public:
  /// `chips` chips of `system` (must be a whole number of nodes and at most scaleOut.maxChips).
  static Expected<CollectiveModel> create(const arch::SystemConfig& system, uint64_t chips,
                                          std::unique_ptr<NetworkBackend> backend = nullptr);
  ~CollectiveModel();
  CollectiveModel(CollectiveModel&&) noexcept;
  CollectiveModel& operator=(CollectiveModel&&) noexcept;

  const arch::SystemConfig& system() const;
  uint64_t chips() const;
  uint64_t ranks() const;  ///< chips * accel.ranksPerChip
  const Topology& topology() const;

  Expected<CollectiveCost> estimate(const CollectiveRequest& request) const;

 private:
  struct Impl;
  explicit CollectiveModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace trnsim::fabric
