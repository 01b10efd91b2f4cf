#include "trnsim/sim/written_bits.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

namespace trnsim::sim {
namespace {

/// Bits [lo, hi) of a word set, 0 <= lo < hi <= 64.
constexpr uint64_t bitRange(uint64_t lo, uint64_t hi) {
  const uint64_t upto = hi == 64 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1;
  return upto & ~((uint64_t(1) << lo) - 1);
}

}  // namespace

void WrittenBits::assign(uint64_t bytes) {
  numWords_ = (bytes + 63) / 64;
  words_.reset(static_cast<uint64_t*>(std::calloc(std::max<uint64_t>(numWords_, 1), 8)));
  if (!words_) throw std::bad_alloc();
}

void WrittenBits::set(uint64_t offset, uint64_t count) {
  if (count == 0) return;
  const uint64_t end = offset + count;
  uint64_t w = offset / 64;
  const uint64_t lastWord = (end - 1) / 64;
  if (w == lastWord) {
    words_[w] |= bitRange(offset % 64, end - w * 64);
    return;
  }
  words_[w] |= bitRange(offset % 64, 64);
  std::fill(words_.get() + w + 1, words_.get() + lastWord, ~uint64_t(0));
  words_[lastWord] |= bitRange(0, end - lastWord * 64);
}

uint64_t WrittenBits::firstUnwritten(uint64_t offset, uint64_t count) const {
  const uint64_t end = offset + count;
  uint64_t pos = offset;
  // Whole words first when the range starts on one: the common case, runs of written bytes.
  if (pos % 64 == 0) {
    uint64_t w = pos / 64;
    const uint64_t fullEnd = end / 64;
    while (w < fullEnd && words_[w] == ~uint64_t(0)) ++w;
    pos = std::max(pos, w * 64);
  }
  while (pos < end) {
    const uint64_t w = pos / 64;
    const uint64_t lo = pos % 64;
    const uint64_t hi = std::min<uint64_t>(64, end - w * 64);
    const uint64_t missing = ~words_[w] & bitRange(lo, hi);
    if (missing != 0) return w * 64 + uint64_t(std::countr_zero(missing)) - offset;
    pos = w * 64 + hi;
  }
  return count;
}

}  // namespace trnsim::sim
