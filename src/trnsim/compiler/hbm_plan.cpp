#include "trnsim/compiler/hbm_plan.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string>

namespace trnsim::compiler {

namespace {

bool isGraphOutput(const Graph& g, uint32_t v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

uint64_t alignedBytes(const TensorType& t) {
  const uint64_t b = std::max<uint64_t>(t.bytes(), numerics::dtypeSize(t.dtype));
  return (b + 63) & ~uint64_t(63);
}

}  // namespace

bool isViewNode(const Graph& g, const Node& n) {
  static const std::set<std::string> kViews = {"view",      "reshape",        "_unsafe_view",
                                               "unsqueeze", "squeeze",        "alias",
                                               "detach",    "lift_fresh_copy"};
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || isGraphOutput(g, n.outputs[0])) return false;
  if (kViews.count(n.op)) return true;
  return n.op == "expand" &&
         g.type(n.outputs[0]).numElements() == g.type(n.inputs[0]).numElements();
}

HbmPlan planHbm(const Graph& g) {
  HbmPlan plan;
  const size_t nv = g.values.size();
  plan.arenaOffset.assign(nv, -1);
  plan.storage.resize(nv);
  for (uint32_t v = 0; v < nv; ++v) plan.storage[v] = v;
  for (const Node& n : g.nodes)
    if (isViewNode(g, n)) plan.storage[n.outputs[0]] = plan.storage[n.inputs[0]];

  // Arena values: node results that are not graph outputs and own their storage.
  std::vector<bool> inArena(nv, false);
  for (const Node& n : g.nodes)
    for (uint32_t v : n.outputs)
      inArena[v] = plan.storage[v] == v && !isGraphOutput(g, v) && !isViewNode(g, n);
  for (uint32_t v : g.inputs) plan.ioBytes += alignedBytes(g.type(v));
  for (uint32_t v : g.outputs)
    if (g.values[v].kind == ValueKind::kNode) plan.ioBytes += alignedBytes(g.type(v));

  // A storage is live from its producer to the last node that reads it or any view of it.
  std::vector<size_t> lastUse(nv, 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (uint32_t v : g.nodes[i].inputs) lastUse[plan.storage[v]] = i;
    for (uint32_t v : g.nodes[i].outputs)
      lastUse[plan.storage[v]] = std::max(lastUse[plan.storage[v]], i);
  }

  std::map<uint64_t, uint64_t> live;  // offset -> size
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    // A node's results are placed while its inputs are still live, so they never overlap.
    for (uint32_t v : g.nodes[i].outputs) {
      if (!inArena[v]) continue;
      const uint64_t size = alignedBytes(g.type(v));
      plan.packedBytes += size;
      uint64_t at = 0;
      for (const auto& [off, len] : live) {
        if (off >= at + size) break;
        at = std::max(at, off + len);
      }
      live.emplace(at, size);
      plan.arenaOffset[v] = int64_t(at);
      plan.arenaBytes = std::max(plan.arenaBytes, at + size);
    }
    for (uint32_t v : g.nodes[i].outputs)
      if (inArena[v] && lastUse[v] <= i) live.erase(uint64_t(plan.arenaOffset[v]));
    for (uint32_t v : g.nodes[i].inputs) {
      const uint32_t s = plan.storage[v];
      if (inArena[s] && lastUse[s] == i) live.erase(uint64_t(plan.arenaOffset[s]));
    }
  }
  return plan;
}

}  // namespace trnsim::compiler
