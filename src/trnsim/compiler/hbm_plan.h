#pragma once
// Where each value of a graph lives in HBM: graph inputs and outputs in tensors of their own
// (the host reads and writes them by name), every other value in one activation arena, placed
// by liveness (first fit, 64-byte aligned), so memory is reused once a value's last reader
// has run. Views (the same elements under another shape) share their input's storage.

#include <cstdint>
#include <vector>

#include "trnsim/compiler/graph.h"

namespace trnsim::compiler {

struct HbmPlan {
  /// Per value: byte offset of its storage in the arena, or -1 (own tensor, or a view).
  std::vector<int64_t> arenaOffset;
  /// Per value: the value whose storage it uses (itself unless it is a view).
  std::vector<uint32_t> storage;
  uint64_t arenaBytes = 0;   ///< the arena's size: the peak of live intermediates
  uint64_t packedBytes = 0;  ///< the intermediates' bytes without reuse (for comparison)
  uint64_t ioBytes = 0;      ///< graph inputs and outputs
};

/// True for a node that lowers to a view of its input (no instructions, shared storage).
bool isViewNode(const Graph& g, const Node& n);

HbmPlan planHbm(const Graph& g);

}  // namespace trnsim::compiler
