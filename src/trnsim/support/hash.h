#pragma once
// FNV-1a, 64 bits: the one hash of bytes trnsim uses for checksums and cache keys (program
// binaries, compiled-program caches, a cluster's output hashes). Not cryptographic.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace trnsim::support {

inline constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnvPrime = 0x100000001b3ull;

/// FNV-1a 64 of `n` bytes, continuing from `h` (kFnvOffset to start, or a previous result to
/// hash several pieces as one).
inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return h;
}

inline uint64_t fnv1a64(std::string_view s, uint64_t h = kFnvOffset) {
  return fnv1a64(s.data(), s.size(), h);
}

inline uint64_t fnv1a64(std::span<const std::byte> bytes, uint64_t h = kFnvOffset) {
  return fnv1a64(bytes.data(), bytes.size(), h);
}

}  // namespace trnsim::support
