#pragma once
// Which bytes of a simulated memory were ever written: one bit per byte (1/8 of a host byte
// per simulated byte, where a byte-per-byte shadow cost as much as the memory itself). Reads of
// bytes nothing wrote are how the functional model detects uninitialized reads.

#include <cstdint>
#include <cstdlib>
#include <memory>

namespace trnsim::sim {

class WrittenBits {
 public:
  /// `bytes` bytes, none written.
  void assign(uint64_t bytes);
  /// Marks bytes [offset, offset + count) written. The range must lie inside the memory.
  void set(uint64_t offset, uint64_t count);
  /// The first byte of [offset, offset + count) that nothing wrote, as a distance from
  /// `offset`; `count` when every byte was written.
  uint64_t firstUnwritten(uint64_t offset, uint64_t count) const;
  bool allWritten(uint64_t offset, uint64_t count) const {
    return firstUnwritten(offset, count) == count;
  }
  /// Asks the host to bring the bits of [offset, offset + count) into cache (a hint).
  void prefetch(uint64_t offset, uint64_t count) const {
    if (count == 0) return;
    for (uint64_t w = offset / 64; w <= (offset + count - 1) / 64; w += 8)
      __builtin_prefetch(words_.get() + w);
    __builtin_prefetch(words_.get() + (offset + count - 1) / 64);
  }
  /// Host bytes the bits take.
  uint64_t hostBytes() const { return numWords_ * sizeof(uint64_t); }

 private:
  struct Free {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  /// Zeroed by calloc: a large block comes mapped on demand and already zero, so words of
  /// memory nothing touches cost no page fault.
  std::unique_ptr<uint64_t[], Free> words_;
  uint64_t numWords_ = 0;
};

}  // namespace trnsim::sim
