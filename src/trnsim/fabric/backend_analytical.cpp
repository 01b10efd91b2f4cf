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
    // Routes of every flow, flattened.
    std::vector<LinkRef> links;
    std::vector<size_t> begin(flows.size() + 1, 0);
    std::vector<double> latencyNs(flows.size(), 0);
    Route route;
    uint64_t maxId = 0;
    for (size_t f = 0; f < flows.size(); ++f) {
      TRNSIM_RETURN_IF_ERROR(topo.route(flows[f].src, flows[f].dst, route).withContext(
          "flow " + std::to_string(f)));
      begin[f] = links.size();
      latencyNs[f] = route.latencyNs;
      for (const LinkRef& l : route.links) {
        links.push_back(l);
        maxId = std::max(maxId, l.id);
      }
    }
    begin[flows.size()] = links.size();

    // Flows per link: a dense array when the ids are few (one domain), a hash map otherwise.
    std::vector<uint32_t> dense;
    std::unordered_map<uint64_t, uint32_t> sparse;
    const bool useDense = maxId < (uint64_t(1) << 22);
    if (useDense) {
      dense.assign(maxId + 1, 0);
      for (const LinkRef& l : links) ++dense[l.id];
    } else {
      sparse.reserve(links.size());
      for (const LinkRef& l : links) ++sparse[l.id];
    }

    std::vector<FlowTiming> out(flows.size());
    for (size_t f = 0; f < flows.size(); ++f) {
      double rate = 0;  // bytes/s; a flow with no links (none) gets infinite rate below
      bool any = false;
      for (size_t i = begin[f]; i < begin[f + 1]; ++i) {
        uint32_t n = useDense ? dense[links[i].id] : sparse[links[i].id];
        double share = links[i].gbps * 1e9 / n;
        if (!any || share < rate) rate = share;
        any = true;
      }
      if (!any || !(rate > 0)) {
        return Status(ErrorCode::kConfig,
                      "flow " + std::to_string(f) + " crosses a link with no bandwidth",
                      "fabric analytical back end");
      }
      out[f] = {latencyNs[f] * 1e-9, rate};
    }
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
