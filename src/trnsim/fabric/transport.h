#pragma once
// How the processes of a functional multi-chip run (fabric::Cluster) exchange data: one
// process (local: threads share memory, nothing to exchange) or several started by mpirun
// (MPI). The cluster needs one operation: every process contributes bytes and receives every
// process's bytes, in process order.

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "trnsim/support/status.h"

namespace trnsim::fabric {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string_view name() const = 0;  ///< "local", "mpi"
  virtual int process() const = 0;            ///< this process, 0..processes()-1
  virtual int processes() const = 0;
  /// Every process passes its bytes; every process gets all of them, in process order.
  virtual Expected<std::vector<std::vector<std::byte>>> allGather(
      std::span<const std::byte> mine) = 0;
};

/// One process: allGather returns {mine}.
std::unique_ptr<Transport> makeLocalTransport();

/// Whether this trnsim was built with MPI (find_package(MPI) found OpenMPI).
bool mpiBuiltIn();
/// Whether this process was started by mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK
/// in the environment).
bool launchedByMpi();
/// This process's index among those mpirun started (OMPI_COMM_WORLD_RANK, PMI_RANK or
/// PMIX_RANK), or -1 when not started by mpirun. Known before any Cluster exists.
int launchedProcessIndex();
/// MPI_COMM_WORLD as a transport; initializes MPI on first use (MPI_Finalize runs at exit).
/// kUnsupported when MPI is not built in.
Expected<std::unique_ptr<Transport>> makeMpiTransport();

}  // namespace trnsim::fabric
