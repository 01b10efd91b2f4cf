#pragma once
// What bind_fabric.cpp shares with the other binding files: the Python-side holder of a
// fabric::Cluster (bind_nki.cpp loads NKI programs into it) and the error that cluster calls
// raise.
#include <pybind11/pybind11.h>

#include <optional>

#include "trnsim/fabric/cluster.h"
#include "trnsim/support/status.h"

namespace trnsim::pybind {

/// trnsim._trnsim.fabric.Cluster: the cluster plus its last run (for traces and summaries).
struct PyCluster {
  fabric::Cluster cluster;
  std::optional<fabric::ClusterResult> last;
};

/// Raises trnsim._trnsim.fabric.FabricError (a RuntimeError) with .code (the ErrorCode name),
/// .where and .detail, which trnsim.nki maps to its exception classes with the kernel line.
[[noreturn]] void raiseFabricError(const Status& s);

}  // namespace trnsim::pybind
