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

/// The wire format of what processes exchange: 64-bit integers and doubles in the host's byte
/// order (every process of one mpirun run is the same build on the same kind of host), strings
/// and byte runs with a 64-bit length before them, and Status values (code, message, place).
class WireWriter {
 public:
  void raw(const void* p, size_t n);
  void u64(uint64_t v) { raw(&v, sizeof v); }
  void f64(double v) { raw(&v, sizeof v); }
  void str(std::string_view s);
  void status(const Status& s);
  const std::vector<std::byte>& bytes() const { return out_; }

 private:
  std::vector<std::byte> out_;
};

/// Reads what a WireWriter wrote. Reading past the end turns ok() false and gives zeros and
/// empty strings; the caller checks ok() once after a record.
class WireReader {
 public:
  explicit WireReader(std::span<const std::byte> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool atEnd() const { return pos_ >= in_.size(); }
  uint64_t u64();
  double f64();
  std::string str();
  Status status();
  /// The next n bytes (a view into the input).
  std::span<const std::byte> bytes(uint64_t n);

 private:
  void raw(void* p, size_t n);
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
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
