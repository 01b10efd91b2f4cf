#pragma once
// What bind_fabric.cpp shares with the other binding files: the Python-side holder of a
// fabric::Cluster (bind_nki.cpp loads NKI programs into it).
#include <pybind11/pybind11.h>

#include <optional>

#include "trnsim/fabric/cluster.h"

namespace trnsim::pybind {

/// trnsim._trnsim.fabric.Cluster: the cluster plus its last run (for traces and summaries).
struct PyCluster {
  fabric::Cluster cluster;
  std::optional<fabric::ClusterResult> last;
};

}  // namespace trnsim::pybind
