#pragma once
// Hand-built systems for the fabric tests: small, with round numbers, so that every expected
// time can be derived by hand in the test's comments.

#include <cstdint>
#include <string>

#include "trnsim/arch/system_config.h"

namespace trnsim::fabric::testing {

inline arch::FabricDim dim(std::string name, arch::LinkKind kind, uint32_t size, double gbps,
                           double latencyNs, bool inNetwork = false) {
  arch::FabricDim d;
  d.name = std::move(name);
  d.kind = kind;
  d.size = size;
  d.linkGbps = gbps;
  d.hopLatencyNs = latencyNs;
  d.inNetworkReduction = inNetwork;
  return d;
}

/// One scale-up domain of `dims`, one rank per chip, one node = the whole domain, no scale-out.
inline arch::SystemConfig domainSystem(std::vector<arch::FabricDim> dims) {
  arch::SystemConfig s;
  s.name = "test";
  s.accel.name = "test-chip";
  s.accel.ranksPerChip = 1;
  s.accel.memoryGbps = 1000;
  uint32_t chips = 1;
  for (const auto& d : dims) chips *= d.size;
  s.chipsPerNode = chips;
  s.scaleUp = std::move(dims);
  return s;
}

/// `domains`... scale-out added: NIC GB/s per chip, hop latency, tiers, oversubscription.
inline arch::SystemConfig withScaleOut(arch::SystemConfig s, double nicGbps, double hopNs,
                                       uint32_t tiers, double oversub = 1, uint64_t maxChips = 0) {
  s.scaleOut.name = "test-clos";
  s.scaleOut.nicGbpsPerChip = nicGbps;
  s.scaleOut.hopLatencyNs = hopNs;
  s.scaleOut.tiers = tiers;
  s.scaleOut.oversubscription = oversub;
  s.scaleOut.maxChips = maxChips;
  s.scaleOut.rails = 1;
  return s;
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace trnsim::fabric::testing
