#pragma once
// The two hashes of trnsim; neither is cryptographic (they guard against mistakes, not attacks).
//
// - fnv1a64: FNV-1a, 64 bits, over bytes. The one hash for values that are written down or
//   compared across processes and versions: checksums and cache keys (program binaries,
//   compiled-program caches, a cluster's output hashes). Its values never change.
// - WordHasher: a word-at-a-time hash in four interleaved lanes (one multiply per 8 bytes where
//   FNV-1a makes one per byte, and the lanes' multiplies overlap). Only for fingerprints that
//   live inside one process (the verifier's stamp on a program, isa/verify_once.cpp), where it
//   runs on every load of large programs; its values may change from one trnsim version to the
//   next.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "trnsim/support/random.h"

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

/// Four lanes of FxHash's step (rotate, xor, multiply by an odd constant), fed one 64-bit word at
/// a time in turn, so the lanes' multiplies overlap. Each step is a bijection of its lane for a
/// given word and value() combines the lanes bijectively (splitmix64's mix), so two sequences of
/// words that differ in one word always hash differently.
class WordHasher {
 public:
  void word(uint64_t x) {
    uint64_t& h = lanes_[n_++ & 3];
    h = (std::rotl(h, 5) ^ x) * 0x517CC1B727220A95ull;
  }
  /// A string: its length, then its bytes 8 at a time (the last word zero-padded).
  void text(std::string_view s) {
    word(s.size());
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      word(w);
    }
    uint64_t tail = 0;
    if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
    word(tail);
  }
  uint64_t value() const {
    uint64_t h = 0;
    for (uint64_t lane : lanes_) h = mix64(h ^ lane);
    return h;
  }

 private:
  uint64_t lanes_[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull,
                        0x082EFA98EC4E6C89ull};
  uint64_t n_ = 0;
};

}  // namespace trnsim::support
