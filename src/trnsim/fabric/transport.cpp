#include "trnsim/fabric/transport.h"

#include <fmt/format.h>

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

void WireWriter::status(const Status& s) {
  u64(uint64_t(s.code()));
  str(s.message());
  str(s.where());
}

Status WireReader::status() {
  const size_t at = offset();
  const uint64_t code = u64("status code");
  std::string message = str64("status message");
  std::string where = str64("status place");
  if (ok() && code > uint64_t(ErrorCode::kInternal))
    failAt(at, fmt::format("status code {} is not an error code", code));
  if (!ok() || code == uint64_t(ErrorCode::kOk)) return {};
  return Status(static_cast<ErrorCode>(code), std::move(message), std::move(where));
}

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
