// The analytical network back end: static fair share. Every flow of a phase starts together;
// a link crossed by k flows gives each of them 1/k of its bandwidth; a flow's rate is the
// smallest share on its route, and it takes hops * hop latency + bytes / rate. (No max-min
// redistribution: a flow held back elsewhere does not free bandwidth for the others. For the
// symmetric phases of collectives every flow on a link sees the same bottleneck, so the two
// agree.)

#include <algorithm>
#include <unordered_map>

#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/topology.h"

namespace trnsim::fabric {

namespace {

class AnalyticalBackend final : public NetworkBackend {
 public:
  std::string_view name() const override { return "analytical"; }

  Expected<std::vector<FlowTiming>> flowTimings(const Topology& topo,
                                                const std::vector<Flow>& flows) const override {
    // Routes of every distinct (src, dst) pair, flattened; flows of the same pair (ranks of one
    // chip talking to ranks of another) share one route.
    std::vector<LinkRef> links;
    std::vector<size_t> begin, end;
    std::vector<double> latencyNs;
    std::vector<size_t> routeOf(flows.size());
    std::unordered_map<uint64_t, size_t> routeIndex;
    routeIndex.reserve(flows.size());
    Route route;
    uint64_t maxId = 0;
    for (size_t f = 0; f < flows.size(); ++f) {
      uint64_t key = flows[f].src * topo.chips() + flows[f].dst;
      auto [it, inserted] = routeIndex.emplace(key, begin.size());
      routeOf[f] = it->second;
      if (!inserted) continue;
      TRNSIM_RETURN_IF_ERROR(
          topo.route(flows[f].src, flows[f].dst, route).withContext("flow " + std::to_string(f)));
      begin.push_back(links.size());
      latencyNs.push_back(route.latencyNs);
      for (const LinkRef& l : route.links) {
        links.push_back(l);
        maxId = std::max(maxId, l.id);
      }
      end.push_back(links.size());
    }

    // Flows per link: a dense array when the ids are few (one domain), a hash map otherwise.
    std::vector<uint32_t> dense;
    std::unordered_map<uint64_t, uint32_t> sparse;
    const bool useDense = maxId < (uint64_t(1) << 22);
    std::vector<uint32_t> flowsPerRoute(begin.size(), 0);
    for (size_t r : routeOf) ++flowsPerRoute[r];
    if (useDense) {
      dense.assign(maxId + 1, 0);
      for (size_t r = 0; r < begin.size(); ++r) {
        for (size_t i = begin[r]; i < end[r]; ++i) dense[links[i].id] += flowsPerRoute[r];
      }
    } else {
      sparse.reserve(links.size());
      for (size_t r = 0; r < begin.size(); ++r) {
        for (size_t i = begin[r]; i < end[r]; ++i) sparse[links[i].id] += flowsPerRoute[r];
      }
    }

    // Every flow of a route gets the same rate.
    std::vector<FlowTiming> perRoute(begin.size());
    for (size_t r = 0; r < begin.size(); ++r) {
      double rate = 0;  // bytes/s
      bool any = false;
      for (size_t i = begin[r]; i < end[r]; ++i) {
        uint32_t n = useDense ? dense[links[i].id] : sparse[links[i].id];
        double share = links[i].gbps * 1e9 / n;
        if (!any || share < rate) rate = share;
        any = true;
      }
      if (!any || !(rate > 0)) {
        return Status(ErrorCode::kConfig, "a flow crosses a link with no bandwidth",
                      "fabric analytical back end");
      }
      perRoute[r] = {latencyNs[r] * 1e-9, rate};
    }
    std::vector<FlowTiming> out(flows.size());
    for (size_t f = 0; f < flows.size(); ++f) out[f] = perRoute[routeOf[f]];
    return out;
  }

  Expected<double> phaseSeconds(const Topology& topo,
                                const std::vector<Flow>& flows) const override {
    TRNSIM_ASSIGN_OR_RETURN(std::vector<FlowTiming> timings, flowTimings(topo, flows));
    double t = 0;
    for (size_t f = 0; f < flows.size(); ++f) {
      t = std::max(t, timings[f].latencyS + double(flows[f].bytes) / timings[f].bytesPerS);
    }
    return t;
  }
};

}  // namespace

std::unique_ptr<NetworkBackend> makeAnalyticalBackend() {
  return std::make_unique<AnalyticalBackend>();
}

}  // namespace trnsim::fabric
