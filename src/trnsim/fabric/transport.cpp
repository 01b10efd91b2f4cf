#include "trnsim/fabric/transport.h"

#include <cstdlib>

namespace trnsim::fabric {
namespace {

class LocalTransport final : public Transport {
 public:
  std::string_view name() const override { return "local"; }
  int process() const override { return 0; }
  int processes() const override { return 1; }
  Expected<std::vector<std::vector<std::byte>>> allGather(
      std::span<const std::byte> mine) override {
    std::vector<std::vector<std::byte>> all(1);
    all[0].assign(mine.begin(), mine.end());
    return all;
  }
};

}  // namespace

std::unique_ptr<Transport> makeLocalTransport() { return std::make_unique<LocalTransport>(); }

bool launchedByMpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

int launchedProcessIndex() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
    if (const char* value = std::getenv(v)) return std::atoi(value);
  return -1;
}

}  // namespace trnsim::fabric
