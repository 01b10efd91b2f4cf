// Topology: dense link ids per chip (ring +/- per torus dimension, switch up/down ports, one
// slot per peer on a full mesh, NIC up/down, Clos share up/down, HBM) and dimension-order
// routes.

#include "trnsim/fabric/topology.h"

#include <fmt/core.h>

#include <algorithm>

namespace trnsim::fabric {

namespace {
constexpr uint32_t kRingPlus = 0, kRingMinus = 1, kSwitchUp = 0, kSwitchDown = 1;

std::string_view kindName(arch::LinkKind k) {
  switch (k) {
    case arch::LinkKind::kRing:
      return "ring";
    case arch::LinkKind::kSwitch:
      return "switch";
    case arch::LinkKind::kFullyConnected:
      return "fully_connected";
  }
  return "?";
}
}  // namespace

Expected<Topology> Topology::create(const arch::SystemConfig& system, uint64_t chips) {
  const std::string where = fmt::format("system '{}'", system.name);
  if (chips == 0) {
    return Status(ErrorCode::kInvalidArgument, "the cluster needs at least one chip", where);
  }
  if (system.chipsPerNode == 0) {
    return Status(ErrorCode::kConfig, "chips_per_node is 0", where);
  }
  if (chips % system.chipsPerNode != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} chips is not a whole number of nodes of {} chips; use a "
                              "multiple of {}",
                              chips, system.chipsPerNode, system.chipsPerNode),
                  where);
  }
  if (system.accel.ranksPerChip == 0) {
    return Status(ErrorCode::kConfig, "accelerator.ranks_per_chip is 0", where);
  }
  uint64_t fullDomain = 1;
  for (size_t d = 0; d < system.scaleUp.size(); ++d) {
    const arch::FabricDim& dim = system.scaleUp[d];
    if (dim.size == 0 || (dim.size > 1 && !(dim.linkGbps > 0))) {
      return Status(
          ErrorCode::kConfig,
          fmt::format("scale_up.{} ('{}') needs size >= 1 and link_gbps > 0", d, dim.name), where);
    }
    fullDomain *= dim.size;
  }

  Topology t;
  t.chips_ = chips;
  t.ranksPerChip_ = system.accel.ranksPerChip;
  t.scaleOut_ = system.scaleOut;
  t.onChipGbps_ = system.accel.memoryGbps / 2;
  t.dims_ = system.scaleUp;
  if (chips < fullDomain) {
    // Keep the fastest dimensions whole, cut the first one that does not fit, drop the rest.
    uint64_t rem = chips;
    for (size_t d = 0; d < t.dims_.size(); ++d) {
      uint32_t size = t.dims_[d].size;
      if (rem >= size && rem % size == 0) {
        rem /= size;
      } else if (rem < size && size % rem == 0) {
        t.dims_[d].size = static_cast<uint32_t>(rem);
        rem = 1;
      } else {
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("{} chips do not form a slice of the {}-chip scale-up domain "
                                  "(dimension '{}' has {} chips); use a divisor of {} that "
                                  "keeps whole dimensions",
                                  chips, fullDomain, t.dims_[d].name, size, fullDomain),
                      where);
      }
    }
    t.chipsPerDomain_ = chips;
  } else {
    t.chipsPerDomain_ = fullDomain;
  }
  t.domains_ = (chips + t.chipsPerDomain_ - 1) / t.chipsPerDomain_;
  if (t.domains_ > 1) {
    if (!(system.scaleOut.nicGbpsPerChip > 0)) {
      return Status(ErrorCode::kConfig,
                    fmt::format("{} chips need {} scale-up domains of {} chips but the system "
                                "has no scale-out network (scale_out.nic_gbps_per_chip is 0)",
                                chips, t.domains_, t.chipsPerDomain_),
                    where);
    }
    if (system.scaleOut.maxChips > 0 && chips > system.scaleOut.maxChips) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("{} chips exceed the largest cluster of this network "
                                "(scale_out.max_chips = {}); use at most {} chips",
                                chips, system.scaleOut.maxChips, system.scaleOut.maxChips),
                    where);
    }
  }

  uint64_t stride = 1;
  uint32_t slot = 0;
  for (const arch::FabricDim& dim : t.dims_) {
    t.dimStride_.push_back(stride);
    t.dimFirstSlot_.push_back(slot);
    stride *= dim.size;
    slot += dim.kind == arch::LinkKind::kFullyConnected ? dim.size : 2;
  }
  t.nicUpSlot_ = slot++;
  t.nicDownSlot_ = slot++;
  t.closUpSlot_ = slot++;
  t.closDownSlot_ = slot++;
  t.hbmSlot_ = slot++;
  t.slotsPerChip_ = slot;
  return t;
}

uint32_t Topology::coordinate(uint64_t chip, size_t dim) const {
  uint64_t local = chip % chipsPerDomain_;
  return static_cast<uint32_t>((local / dimStride_[dim]) % dims_[dim].size);
}

double Topology::scaleOutLatencyNs() const {
  return (2.0 * scaleOut_.tiers + 1.0) * scaleOut_.hopLatencyNs;
}

double Topology::scaleOutGbps() const {
  return scaleOut_.nicGbpsPerChip / std::max(1.0, scaleOut_.oversubscription);
}

Status Topology::route(uint64_t src, uint64_t dst, Route& out) const {
  out.links.clear();
  out.hops = 0;
  out.latencyNs = 0;
  if (src >= chips_ || dst >= chips_) {
    return Status(
        ErrorCode::kOutOfBounds,
        fmt::format("flow {} -> {} names a chip outside the {}-chip cluster", src, dst, chips_),
        "fabric route");
  }
  if (src == dst) {
    out.links.push_back({linkId(src, hbmSlot_), onChipGbps_});
    return Status::ok();
  }
  if (domainOf(src) != domainOf(dst)) {
    double oversub = std::max(1.0, scaleOut_.oversubscription);
    out.links.push_back({linkId(src, nicUpSlot_), scaleOut_.nicGbpsPerChip});
    out.links.push_back({linkId(dst, nicDownSlot_), scaleOut_.nicGbpsPerChip});
    if (oversub > 1) {
      out.links.push_back({linkId(src, closUpSlot_), scaleOut_.nicGbpsPerChip / oversub});
      out.links.push_back({linkId(dst, closDownSlot_), scaleOut_.nicGbpsPerChip / oversub});
    }
    out.hops = 2 * scaleOut_.tiers + 1;
    out.latencyNs = scaleOutLatencyNs();
    return Status::ok();
  }
  // Dimension order: fix dimension 0 first, then 1, ...
  uint64_t cur = src;
  for (size_t d = 0; d < dims_.size(); ++d) {
    const arch::FabricDim& dim = dims_[d];
    uint32_t a = coordinate(cur, d), b = coordinate(dst, d);
    if (a == b) continue;
    uint64_t s = dimStride_[d];
    switch (dim.kind) {
      case arch::LinkKind::kRing: {
        uint32_t n = dim.size;
        uint32_t fwd = (b + n - a) % n, bwd = n - fwd;
        bool plus = fwd <= bwd;
        uint32_t steps = plus ? fwd : bwd;
        uint32_t c = a;
        for (uint32_t k = 0; k < steps; ++k) {
          out.links.push_back(
              {linkId(cur, dimFirstSlot_[d] + (plus ? kRingPlus : kRingMinus)), dim.linkGbps});
          uint32_t next = plus ? (c + 1) % n : (c + n - 1) % n;
          cur = cur - uint64_t(c) * s + uint64_t(next) * s;
          c = next;
          out.hops += 1;
          out.latencyNs += dim.hopLatencyNs;
        }
        break;
      }
      case arch::LinkKind::kSwitch: {
        uint64_t next = cur - uint64_t(a) * s + uint64_t(b) * s;
        out.links.push_back({linkId(cur, dimFirstSlot_[d] + kSwitchUp), dim.linkGbps});
        out.links.push_back({linkId(next, dimFirstSlot_[d] + kSwitchDown), dim.linkGbps});
        cur = next;
        out.hops += 1;
        out.latencyNs += dim.hopLatencyNs;
        break;
      }
      case arch::LinkKind::kFullyConnected: {
        out.links.push_back({linkId(cur, dimFirstSlot_[d] + b), dim.linkGbps});
        cur = cur - uint64_t(a) * s + uint64_t(b) * s;
        out.hops += 1;
        out.latencyNs += dim.hopLatencyNs;
        break;
      }
    }
  }
  return Status::ok();
}

std::string Topology::describe() const {
  std::string shape, kinds;
  for (size_t d = 0; d < dims_.size(); ++d) {
    shape += (d ? "x" : "") + std::to_string(dims_[d].size);
    kinds += fmt::format("{}{} {}", d ? ", " : "", dims_[d].name, kindName(dims_[d].kind));
  }
  if (dims_.empty()) shape = "1";
  std::string text = fmt::format("{} scale-up ({})", shape, kinds);
  if (domains_ > 1) {
    text += fmt::format(" x {} domains over {}", domains_,
                        scaleOut_.name.empty() ? "scale-out" : scaleOut_.name);
  }
  return text;
}

}  // namespace trnsim::fabric
