#pragma once
// The chips and links of `chips` chips of a system: scale-up domains (the system's FabricDims:
// torus rings, switches, fully connected meshes) joined by the scale-out Clos (one NIC rail per
// chip). Routes are dimension-order on the scale-up fabric (shortest direction on each ring;
// chip -> switch -> chip; one direct link on a full mesh) and NIC -> Clos -> NIC between
// domains. Links are directed and named by dense ids so back ends can count flows per link.
//
// Assumptions (docs/fabric.md):
// - A cluster smaller than one domain keeps the fastest dimensions whole and cuts the slowest
//   (16 chips of a 4x4x4 UltraServer are a 4x4x1 slice); a cluster larger than one domain is
//   whole domains plus possibly one partial domain (it must be a whole number of nodes).
// - Every scale-out flow crosses the whole Clos: NIC, 2 * tiers - 1 switches, NIC; above the
//   first tier a NIC gets 1 / oversubscription of its bandwidth (all NICs busy).
// - Two ranks on the same chip exchange through HBM: each byte is read and written once, so
//   the chip's on-chip exchanges share memoryGbps / 2.

#include <cstdint>
#include <string>
#include <vector>

#include "trnsim/arch/system_config.h"
#include "trnsim/support/status.h"

namespace trnsim::fabric {

/// One directed link on a route: its dense id and bandwidth (GB/s, one direction).
struct LinkRef {
  uint64_t id = 0;
  double gbps = 0;
};

/// A chip-to-chip path: the links in order and the summed hop latency.
struct Route {
  std::vector<LinkRef> links;
  uint32_t hops = 0;
  double latencyNs = 0;
};

class Topology {
 public:
  /// `chips` chips of `system`: a whole number of nodes, at most scaleOut.maxChips when the
  /// cluster needs the scale-out network. Errors name the system and what to change.
  static Expected<Topology> create(const arch::SystemConfig& system, uint64_t chips);

  uint64_t chips() const { return chips_; }
  uint32_t ranksPerChip() const { return ranksPerChip_; }
  uint64_t ranks() const { return chips_ * ranksPerChip_; }
  /// Chips of one (full) scale-up domain, after a cluster smaller than one domain cut it.
  uint64_t chipsPerDomain() const { return chipsPerDomain_; }
  /// Scale-up domains, the last one possibly partial.
  uint64_t domains() const { return domains_; }
  /// The scale-up dimensions as used (sizes cut for a cluster smaller than one domain).
  const std::vector<arch::FabricDim>& dims() const { return dims_; }
  const arch::ScaleOutConfig& scaleOut() const { return scaleOut_; }

  uint64_t domainOf(uint64_t chip) const { return chip / chipsPerDomain_; }
  /// Coordinate of `chip` along scale-up dimension `dim`.
  uint32_t coordinate(uint64_t chip, size_t dim) const;

  /// The links of the path from `src` to `dst` (chips), replacing `out`. src == dst is an
  /// on-chip exchange over the chip's HBM (no hop). Errors: a chip outside the cluster.
  Status route(uint64_t src, uint64_t dst, Route& out) const;

  /// Latency of one scale-out flow: (2 * tiers + 1) hops (NIC, switches, NIC).
  double scaleOutLatencyNs() const;
  /// Bandwidth one NIC gives a flow crossing the Clos: nicGbpsPerChip / max(1, oversubscription).
  double scaleOutGbps() const;
  /// Bandwidth of exchanges between ranks of one chip (memoryGbps / 2: read and write).
  double onChipGbps() const { return onChipGbps_; }

  /// "4x4 torus (x ring, y ring) x 6250 domains over EFAv3".
  std::string describe() const;

 private:
  Topology() = default;
  uint64_t linkId(uint64_t chip, uint32_t slot) const { return chip * slotsPerChip_ + slot; }

  uint64_t chips_ = 0;
  uint32_t ranksPerChip_ = 1;
  uint64_t chipsPerDomain_ = 1;
  uint64_t domains_ = 1;
  std::vector<arch::FabricDim> dims_;
  std::vector<uint64_t> dimStride_;     ///< chips between neighbours along each dimension
  std::vector<uint32_t> dimFirstSlot_;  ///< first link slot of each dimension
  uint32_t slotsPerChip_ = 0;
  uint32_t nicUpSlot_ = 0, nicDownSlot_ = 0, closUpSlot_ = 0, closDownSlot_ = 0, hbmSlot_ = 0;
  arch::ScaleOutConfig scaleOut_;
  double onChipGbps_ = 0;
};

}  // namespace trnsim::fabric
