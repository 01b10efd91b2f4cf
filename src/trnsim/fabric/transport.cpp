#include "trnsim/fabric/transport.h"

#include <cstdlib>
#include <cstring>

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

void WireWriter::raw(const void* p, size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  out_.insert(out_.end(), b, b + n);
}

void WireWriter::str(std::string_view s) {
  u64(s.size());
  raw(s.data(), s.size());
}

void WireWriter::status(const Status& s) {
  u64(uint64_t(s.code()));
  str(s.message());
  str(s.where());
}

void WireReader::raw(void* p, size_t n) {
  if (!ok_ || n > in_.size() - pos_) {
    ok_ = false;
    std::memset(p, 0, n);
    return;
  }
  std::memcpy(p, in_.data() + pos_, n);
  pos_ += n;
}

uint64_t WireReader::u64() {
  uint64_t v = 0;
  raw(&v, sizeof v);
  return v;
}

double WireReader::f64() {
  double v = 0;
  raw(&v, sizeof v);
  return v;
}

std::span<const std::byte> WireReader::bytes(uint64_t n) {
  if (!ok_ || n > in_.size() - pos_) {
    ok_ = false;
    return {};
  }
  auto s = in_.subspan(pos_, size_t(n));
  pos_ += size_t(n);
  return s;
}

std::string WireReader::str() {
  auto b = bytes(u64());
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Status WireReader::status() {
  const uint64_t code = u64();
  std::string message = str();
  std::string where = str();
  if (code > uint64_t(ErrorCode::kInternal)) ok_ = false;
  if (!ok_ || code == uint64_t(ErrorCode::kOk)) return {};
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
