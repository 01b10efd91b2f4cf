#pragma once
// splitmix64 (Steele, Lea and Flood 2014): the one seed mixer of trnsim. Every random stream
// (RNG instructions, stochastic rounding, per-rank seeds of a cluster) derives its state from a
// seed through these, so the same seed gives the same bits everywhere.

#include <cstdint>

namespace trnsim::support {

/// The Weyl increment of splitmix64 (2^64 / golden ratio).
inline constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

/// splitmix64's output function: a bijective 64-bit mix.
inline constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The next output of the splitmix64 generator whose state is `state` (advanced).
inline constexpr uint64_t splitmix64(uint64_t& state) { return mix64(state += kGolden); }

}  // namespace trnsim::support
