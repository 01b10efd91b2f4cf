#include "trnsim/support/bytes.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>

namespace trnsim::support {

void ByteWriter::f32(float v) { u32(std::bit_cast<uint32_t>(v)); }

void ByteWriter::f64(double v) { u64(std::bit_cast<uint64_t>(v)); }

void ByteWriter::raw(const void* p, size_t n) {
  if (n == 0) return;
  const auto* b = static_cast<const uint8_t*>(p);
  out_.insert(out_.end(), b, b + n);
}

void ByteWriter::str32(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  raw(s.data(), s.size());
}

void ByteWriter::str64(std::string_view s) {
  u64(s.size());
  raw(s.data(), s.size());
}

void ByteWriter::patchU64(size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) out_.at(at + i) = uint8_t(v >> (8 * i));
}

void ByteReader::failAt(size_t at, std::string_view what) {
  if (!ok()) return;
  error_ = Status(ErrorCode::kCorrupt, fmt::format("{} at byte {}", what, at), origin_);
  pos_ = b_.size();
}

uint64_t ByteReader::truncated(uint64_t n, std::string_view what) {
  if (ok()) fail(fmt::format("truncated: {} needs {} bytes, {} left", what, n, remaining()));
  return 0;
}

float ByteReader::f32(std::string_view what) { return std::bit_cast<float>(u32(what)); }

double ByteReader::f64(std::string_view what) { return std::bit_cast<double>(u64(what)); }

std::span<const std::byte> ByteReader::bytes(uint64_t n, std::string_view what) {
  if (!ok() || n > remaining()) {
    truncated(n, what);
    return {};
  }
  auto s = b_.subspan(pos_, size_t(n));
  pos_ += size_t(n);
  return s;
}

std::string ByteReader::str(uint64_t n, size_t at, std::string_view what) {
  if (!ok()) return {};
  if (n > remaining()) {
    failAt(at, fmt::format("{} claims {} bytes but only {} remain", what, n, remaining()));
    return {};
  }
  std::string s(reinterpret_cast<const char*>(b_.data() + pos_), size_t(n));
  pos_ += size_t(n);
  return s;
}

std::string ByteReader::str32(std::string_view what) {
  const size_t at = offset();
  const uint32_t n = u32(what);
  return str(n, at, what);
}

std::string ByteReader::str64(std::string_view what) {
  const size_t at = offset();
  const uint64_t n = u64(what);
  return str(n, at, what);
}

uint32_t ByteReader::count(std::string_view what, size_t minBytes) {
  const size_t at = offset();
  const uint32_t n = u32(what);
  if (ok() && uint64_t(n) * minBytes > remaining()) {
    failAt(at, fmt::format("{} {} cannot fit in the {} bytes left", what, n, remaining()));
    return 0;
  }
  return ok() ? n : 0;
}

ByteReader ByteReader::sub(size_t n) {
  if (n > remaining()) {
    fail(
        fmt::format("truncated: a {}-byte part needs more than the {} bytes left", n, remaining()));
    return ByteReader(std::span<const std::byte>{}, origin_, offset());
  }
  ByteReader r(b_.subspan(pos_, n), origin_, base_ + pos_);
  pos_ += n;
  return r;
}

}  // namespace trnsim::support
