#include "trnsim/sim/timeline.h"

#include <algorithm>

namespace trnsim::sim {

void Timeline::append(const Timeline& later, double offsetNs) {
  events.reserve(events.size() + later.events.size());
  for (TimelineEvent e : later.events) {
    e.startNs += offsetNs;
    e.endNs += offsetNs;
    e.readyNs += offsetNs;
    events.push_back(e);
  }
  if (cores.size() < later.cores.size()) cores.resize(later.cores.size());
  for (size_t i = 0; i < later.cores.size(); ++i) {
    const CoreTimingStats& c = later.cores[i];
    CoreTimingStats& acc = cores[i];
    for (size_t e = 0; e < c.busyNs.size(); ++e) {
      acc.busyNs[e] += c.busyNs[e];
      acc.engineInstructions[e] += c.engineInstructions[e];
      acc.stallNs[e] += c.stallNs[e];
    }
    acc.tensorFlops += c.tensorFlops;
    acc.tensorFlopsAtPeakNs += c.tensorFlopsAtPeakNs;
    acc.hbmReadBytes += c.hbmReadBytes;
    acc.hbmWriteBytes += c.hbmWriteBytes;
    acc.instructions += c.instructions;
    acc.throttledNs += c.throttledNs;
    acc.endNs = std::max(acc.endNs, offsetNs + c.endNs);
  }
  endNs = std::max(endNs, offsetNs + later.endNs);
}

}  // namespace trnsim::sim
