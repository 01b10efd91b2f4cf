#pragma once
// A slow, independent model of the number formats for the tests: values are computed in
// double with ldexp/floor instead of bit manipulation, straight from the rules written in
// docs/numerics.md. The fast conversions in src/ must agree with it bit for bit.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "trnsim/numerics/dtype.h"

namespace trnsim::numerics::testing {

/// One binary float format: sign, `expBits`, `manBits`.
struct Format {
  int expBits;
  int manBits;
  bool hasInf;  ///< IEEE layout; otherwise the e4m3 "fn" layout (only S.1111.111 is NaN)
  int bias() const { return (1 << (expBits - 1)) - 1; }
  int emin() const { return 1 - bias(); }
  /// Largest exponent of a finite value.
  int emax() const { return hasInf ? (1 << expBits) - 2 - bias() : (1 << expBits) - 1 - bias(); }
  double maxFinite() const {
    // IEEE: all mantissa ones; fn: the all-ones exponent minus the NaN pattern.
    double mant = hasInf ? 2.0 - std::ldexp(1.0, -manBits) : 2.0 - std::ldexp(2.0, -manBits);
    return std::ldexp(mant, emax());
  }
  uint32_t totalBits() const { return 1u + static_cast<uint32_t>(expBits + manBits); }
};

inline constexpr Format kBf16{8, 7, true};
inline constexpr Format kFp16{5, 10, true};
inline constexpr Format kE4M3{4, 3, false};
inline constexpr Format kE5M2{5, 2, true};
inline constexpr Format kE3M4{3, 4, true};
inline constexpr Format kTf32{8, 10, true};

/// Value of a bit pattern (NaN for NaN patterns), from the textbook formula.
inline double decode(const Format& f, uint32_t bits) {
  const uint32_t manMask = (1u << f.manBits) - 1;
  const uint32_t expOnes = (1u << f.expBits) - 1;
  const bool neg = (bits >> (f.expBits + f.manBits)) & 1u;
  const uint32_t e = (bits >> f.manBits) & expOnes;
  const uint32_t m = bits & manMask;
  double mag = 0;
  if (f.hasInf && e == expOnes) {
    mag =
        m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else if (!f.hasInf && e == expOnes && m == manMask) {
    mag = std::numeric_limits<double>::quiet_NaN();
  } else if (e == 0) {
    mag = std::ldexp(static_cast<double>(m), f.emin() - f.manBits);
  } else {
    mag = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.manBits),
                     static_cast<int>(e) - f.bias());
  }
  return neg ? -mag : mag;
}

/// Rounds `x` to format `f`. stochastic: round the magnitude up iff
/// randomBits < floor(discarded fraction * 2^32). Overflow: inf for IEEE formats, max finite
/// for fn. NaN stays NaN. Returns the signed value (-0.0 for negative zero results).
inline double quantize(const Format& f, float xf, bool stochastic = false,
                       uint32_t randomBits = 0) {
  const double x = xf;
  if (std::isnan(x)) return x;
  const double a = std::fabs(x);
  double result = 0;
  if (std::isinf(a)) {
    result = f.hasInf ? a : f.maxFinite();
  } else if (a == 0) {
    result = 0;
  } else {
    int e = 0;
    (void)std::frexp(a, &e);  // a = frac * 2^e with frac in [0.5, 1)
    const int exponent = std::max(e - 1, f.emin());
    const double quantum = std::ldexp(1.0, exponent - f.manBits);
    const double k = a / quantum;  // exact: division by a power of two
    const double whole = std::floor(k);
    const double frac = k - whole;
    bool up = false;
    if (stochastic) {
      up = static_cast<double>(randomBits) < std::floor(frac * 4294967296.0);
    } else {
      up = frac > 0.5 || (frac == 0.5 && std::fmod(whole, 2.0) != 0.0);
    }
    result = (whole + (up ? 1 : 0)) * quantum;
    if (result > f.maxFinite()) {
      result = f.hasInf ? std::numeric_limits<double>::infinity() : f.maxFinite();
    }
  }
  return std::signbit(x) ? -result : result;
}

/// Integer conversion rule: round (RNE or stochastic magnitude), saturate, NaN -> 0.
template <class I>
double quantizeInt(float xf, bool stochastic = false, uint32_t randomBits = 0) {
  const double x = xf;
  if (std::isnan(x)) return 0;
  const double lo = static_cast<double>(std::numeric_limits<I>::min());
  const double hi = static_cast<double>(std::numeric_limits<I>::max());
  if (x >= hi) return hi;
  if (x <= lo) return lo;
  double r = 0;
  if (stochastic) {
    const double a = std::fabs(x);
    const double whole = std::floor(a);
    const bool up = static_cast<double>(randomBits) < std::floor((a - whole) * 4294967296.0);
    r = std::copysign(whole + (up ? 1 : 0), x);
  } else {
    r = std::nearbyint(x);  // the default floating-point environment rounds to nearest even
  }
  return std::min(std::max(r, lo), hi);
}

}  // namespace trnsim::numerics::testing
