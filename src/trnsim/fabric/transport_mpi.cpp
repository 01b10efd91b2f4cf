// The MPI transport (OpenMPI): built when CMake finds MPI (TRNSIM_HAVE_MPI), else a stub that
// says how to get it.

#include <climits>
#include <cstdlib>

#include <fmt/format.h>

#include "trnsim/fabric/transport.h"

#ifdef TRNSIM_HAVE_MPI
#include <mpi.h>
#endif

namespace trnsim::fabric {

#ifdef TRNSIM_HAVE_MPI

namespace {

void finalizeMpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

Status mpiError(int code, std::string_view call) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return Status(ErrorCode::kIo, fmt::format("{} failed: {}", call, std::string_view(text, size_t(len))));
}

class MpiTransport final : public Transport {
 public:
  MpiTransport(int rank, int size) : rank_(rank), size_(size) {}
  std::string_view name() const override { return "mpi"; }
  int process() const override { return rank_; }
  int processes() const override { return size_; }

  Expected<std::vector<std::vector<std::byte>>> allGather(
      std::span<const std::byte> mine) override {
    // Sizes first, then the bytes; MPI counts are int, so a piece above 2 GiB is refused.
    unsigned long long n = mine.size();
    std::vector<unsigned long long> sizes(static_cast<size_t>(size_), 0);
    int rc = MPI_Allgather(&n, 1, MPI_UNSIGNED_LONG_LONG, sizes.data(), 1,
                           MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpiError(rc, "MPI_Allgather");
    std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
    unsigned long long total = 0;
    for (int p = 0; p < size_; ++p) {
      if (sizes[size_t(p)] > INT_MAX || total + sizes[size_t(p)] > INT_MAX)
        return Status(ErrorCode::kUnsupported,
                      fmt::format("one MPI exchange of {} bytes from process {} is over the 2 GiB "
                                  "MPI_Allgatherv limit: use smaller collectives per step",
                                  sizes[size_t(p)], p));
      counts[size_t(p)] = int(sizes[size_t(p)]);
      displs[size_t(p)] = int(total);
      total += sizes[size_t(p)];
    }
    std::vector<std::byte> flat(static_cast<size_t>(total));
    rc = MPI_Allgatherv(mine.data(), int(n), MPI_BYTE, flat.data(), counts.data(), displs.data(),
                        MPI_BYTE, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpiError(rc, "MPI_Allgatherv");
    std::vector<std::vector<std::byte>> all(static_cast<size_t>(size_));
    for (int p = 0; p < size_; ++p) {
      auto begin = flat.begin() + displs[size_t(p)];
      all[size_t(p)].assign(begin, begin + counts[size_t(p)]);
    }
    return all;
  }

 private:
  int rank_, size_;
};

}  // namespace

bool mpiBuiltIn() { return true; }

Expected<std::unique_ptr<Transport>> makeMpiTransport() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpiError(rc, "MPI_Init_thread");
    std::atexit(finalizeMpi);
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::unique_ptr<Transport>(std::make_unique<MpiTransport>(rank, size));
}

#else

bool mpiBuiltIn() { return false; }

Expected<std::unique_ptr<Transport>> makeMpiTransport() {
  return Status(ErrorCode::kUnsupported,
                "this trnsim was built without MPI: install libopenmpi-dev and reconfigure "
                "(CMake's find_package(MPI) enables the MPI transport)");
}

#endif

}  // namespace trnsim::fabric
