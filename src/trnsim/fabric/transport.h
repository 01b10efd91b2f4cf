#pragma once
// How the processes of a functional multi-chip run (fabric::Cluster) exchange data: one
// process (local: threads share memory, nothing to exchange) or several started by mpirun
// (MPI). The cluster needs one operation: every process contributes bytes and receives every
// process's bytes, in process order. WireWriter/WireReader are the format of those bytes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/support/bytes.h"
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

/// The wire format of what processes exchange, written with the one byte serializer
/// (support/bytes.h): 64-bit little-endian integers and doubles, strings and byte runs with a
/// 64-bit length before them, and Status values (code, message, place).
class WireWriter : public support::ByteWriter {
 public:
  void str(std::string_view s) { str64(s); }
  void status(const Status& s);
};

/// Reads what a WireWriter wrote. Reading past the end turns ok() false (error() says where)
/// and gives zeros and empty strings; the caller checks ok() once after a record.
class WireReader : public support::ByteReader {
 public:
  explicit WireReader(std::span<const std::byte> in) : ByteReader(in, "MPI wire data") {}
  std::string str() { return str64(); }
  /// A Status written by WireWriter::status (an unknown code turns ok() false).
  Status status();
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
