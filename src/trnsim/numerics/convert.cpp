// Conversions between fp32 and every element type. The rules (rounding, overflow, NaN) are
// written down in docs/numerics.md; the comments here say how the bit tricks implement them.
//
// All narrowing float conversions work on the magnitude: the sign bit is carried across
// unchanged, so -x always converts to the negation of x (including -0 and NaN signs).
#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>

#include "trnsim/numerics/dtype.h"
#include "trnsim/support/random.h"

namespace trnsim::numerics {
namespace {

static_assert(std::endian::native == std::endian::little,
              "element bytes are stored little-endian, as on the device");

constexpr uint32_t kF32AbsMask = 0x7FFFFFFFu;
constexpr uint32_t kF32Inf = 0x7F800000u;
constexpr uint32_t kF32QuietNaN = 0x7FC00000u;

inline uint32_t bitsOf(float v) { return std::bit_cast<uint32_t>(v); }
inline float floatOf(uint32_t b) { return std::bit_cast<float>(b); }

// ---------------------------------------------------------------------------------------
// Random bits for stochastic rounding: the splitmix64 output function applied to a
// Weyl sequence whose start is itself a mix of the seed. Element i depends only on
// (seed, i), so any split of a conversion into pieces draws the same bits.
using support::kGolden;
using support::mix64;

inline uint64_t seedKey(uint64_t seed) { return mix64(seed ^ 0x5851F42D4C957F2Dull); }

inline uint32_t drawBits(uint64_t key, uint64_t index) {
  return static_cast<uint32_t>(mix64(key + (index + 1) * kGolden) >> 32);
}

// ---------------------------------------------------------------------------------------
// Rounding an integer significand `m` right by `s` bits (1 <= s <= 63).

// Round to nearest, ties to even: add just under half, plus one more when the kept lsb is
// odd, so an exact half carries only from an odd value.
inline uint64_t shiftRne(uint64_t m, unsigned s) {
  return (m + ((uint64_t{1} << (s - 1)) - 1) + ((m >> s) & 1)) >> s;
}

// Stochastic: round up when R < (discarded fraction) * 2^32, truncated to an integer.
// For s <= 32 this is exact: P(up) = discarded / 2^s.
inline uint64_t shiftStochastic(uint64_t m, unsigned s, uint32_t r) {
  uint64_t discarded = m & ((uint64_t{1} << s) - 1);
  uint64_t frac32 = s >= 32 ? discarded >> (s - 32) : discarded << (32 - s);
  return (m >> s) + (r < frac32 ? 1u : 0u);
}

// ---------------------------------------------------------------------------------------
// Small binary float formats: 1 sign bit, kExp exponent bits, kMan mantissa bits.
// kIeee: the all-ones exponent holds inf (mantissa 0) and NaN. Otherwise the "fn" layout
// of e4m3: no inf, only S.1111.111 is NaN, and finite overflow saturates to max finite.
template <int kExp, int kMan, bool kIeee>
struct SmallFloat {
  static constexpr bool kHasInf = kIeee;
  static constexpr int kBias = (1 << (kExp - 1)) - 1;
  static constexpr uint32_t kSignBit = 1u << (kExp + kMan);
  static constexpr uint32_t kExpOnes = (1u << kExp) - 1;
  static constexpr uint32_t kManMask = (1u << kMan) - 1;
  static constexpr uint32_t kInfBits = kExpOnes << kMan;  // meaningful only when kIeee
  static constexpr uint32_t kMaxBits = kIeee ? kInfBits - 1 : kInfBits | (kManMask - 1);
  static constexpr uint32_t kNaNBits = kIeee ? kInfBits | (1u << (kMan - 1)) : kInfBits | kManMask;
  /// Where a finite value beyond the largest representable one goes.
  static constexpr uint32_t kOverflowBits = kIeee ? kInfBits : kMaxBits;
  /// 2^(1 - bias - mantissa bits): the value of the smallest subnormal.
  static constexpr auto kSubnormalUnit =
      std::bit_cast<float>(static_cast<uint32_t>(1 - kBias - kMan + 127) << 23);
};

using Fp16 = SmallFloat<5, 10, true>;
using E4M3 = SmallFloat<4, 3, false>;
using E5M2 = SmallFloat<5, 2, true>;
using E3M4 = SmallFloat<3, 4, true>;

template <class F, bool kStochastic>
inline uint32_t narrow(float v, uint32_t randomBits) {
  constexpr int kMan = std::countr_one(F::kManMask);
  const uint32_t u = bitsOf(v);
  const uint32_t sign = (u >> 31) * F::kSignBit;
  const uint32_t a = u & kF32AbsMask;
  if (a >= kF32Inf) [[unlikely]] {
    return sign | (a == kF32Inf ? F::kOverflowBits : F::kNaNBits);
  }
  const auto ef = static_cast<int32_t>(a >> 23);
  // Significand with the implicit bit; fp32 subnormals have exponent field 0 but scale 2^-126.
  const uint64_t m = (a & 0x7FFFFFu) | (ef != 0 ? 0x800000u : 0u);
  const int32_t te = std::max(ef, 1) - 127 + F::kBias;  // target biased exponent if normal
  const int32_t sub = te < 1 ? 1 - te : 0;              // extra shift into the subnormal range
  const unsigned s = static_cast<unsigned>(std::min(23 - kMan + sub, 63));
  const uint64_t q = kStochastic ? shiftStochastic(m, s, randomBits) : shiftRne(m, s);
  // q carries the implicit bit at position kMan for normal results, so adding it to
  // (exponent - 1) << kMan yields the right field; a carry out of the mantissa bumps the
  // exponent, and a subnormal that rounds up to 2^kMan becomes the smallest normal.
  const uint64_t r = (static_cast<uint64_t>(te + sub - 1) << kMan) + q;
  return sign | static_cast<uint32_t>(r > F::kMaxBits ? F::kOverflowBits : r);
}

template <class F>
constexpr float widen(uint32_t h) {
  constexpr int kMan = std::countr_one(F::kManMask);
  const uint32_t sign = (h & F::kSignBit) != 0 ? 0x80000000u : 0u;
  const uint32_t e = (h >> kMan) & F::kExpOnes;
  const uint32_t m = h & F::kManMask;
  uint32_t mag = 0;
  if (e == 0) {
    // Subnormal: m * 2^(emin - kMan), exact in fp32 for every format here.
    mag = std::bit_cast<uint32_t>(static_cast<float>(m) * F::kSubnormalUnit);
  } else if (F::kHasInf && e == F::kExpOnes) {
    mag = m == 0 ? kF32Inf : (kF32QuietNaN | (m << (23 - kMan)));
  } else if (!F::kHasInf && (h & ~F::kSignBit) == F::kNaNBits) {
    mag = kF32QuietNaN;
  } else {
    mag = ((e - F::kBias + 127) << 23) | (m << (23 - kMan));
  }
  return std::bit_cast<float>(sign | mag);
}

template <class F>
constexpr auto makeTable() {
  struct Table {
    float v[256];
  } t{};
  for (uint32_t i = 0; i < 256; ++i) t.v[i] = widen<F>(i);
  return t;
}
constexpr auto kE4M3Table = makeTable<E4M3>();
constexpr auto kE5M2Table = makeTable<E5M2>();
constexpr auto kE3M4Table = makeTable<E3M4>();

// ---------------------------------------------------------------------------------------
// bf16 and tf32 share fp32's exponent, so rounding is a plain add-and-truncate on the bits:
// subnormals round in place and a carry out of the largest finite value produces inf.

inline uint16_t bf16Rne(float v) {
  const uint32_t u = bitsOf(v);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7FC0u;
  return static_cast<uint16_t>((u & kF32AbsMask) > kF32Inf ? nan : rounded);
}

inline uint16_t bf16Stochastic(float v, uint32_t randomBits) {
  const uint32_t u = bitsOf(v);
  const uint32_t rounded = (u >> 16) + (randomBits < (u << 16) ? 1u : 0u);
  const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7FC0u;
  return static_cast<uint16_t>((u & kF32AbsMask) > kF32Inf ? nan : rounded);
}

inline float bf16ToFloat(uint16_t b) { return floatOf(static_cast<uint32_t>(b) << 16); }

inline float tf32Rne(float v) {
  const uint32_t u = bitsOf(v);
  const uint32_t rounded = (u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu;
  const uint32_t nan = (u & 0x80000000u) | kF32QuietNaN;
  return floatOf((u & kF32AbsMask) > kF32Inf ? nan : rounded);
}

inline float tf32Stochastic(float v, uint32_t randomBits) {
  const uint32_t u = bitsOf(v);
  const uint32_t rounded = (u & ~0x1FFFu) + (randomBits < (u << 19) ? 0x2000u : 0u);
  const uint32_t nan = (u & 0x80000000u) | kF32QuietNaN;
  return floatOf((u & kF32AbsMask) > kF32Inf ? nan : rounded);
}

inline float fp16ToFloat(uint16_t h) {
  // Normal and inf/NaN: move the fields into place and rebias; subnormal: m * 2^-24.
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  const uint32_t m = h & 0x3FFu;
  uint32_t mag = ((e + (127 - 15)) << 23) | (m << 13);
  if (e == 0x1F) mag = m == 0 ? kF32Inf : (kF32QuietNaN | (m << 13));
  if (e == 0) mag = bitsOf(static_cast<float>(m) * Fp16::kSubnormalUnit);
  return floatOf(sign | mag);
}

// ---------------------------------------------------------------------------------------
// Integers: round the magnitude (RNE or stochastic, the same rule as the float formats with
// a quantum of 1), then saturate; NaN becomes 0.

template <class I, bool kStochastic>
inline I floatToInt(float v, uint32_t randomBits) {
  constexpr int kBits = 8 * static_cast<int>(sizeof(I));
  constexpr int64_t kLo = std::is_signed_v<I> ? -(int64_t{1} << (kBits - 1)) : 0;
  constexpr int64_t kHi = (int64_t{1} << (std::is_signed_v<I> ? kBits - 1 : kBits)) - 1;
  const uint32_t u = bitsOf(v);
  const uint32_t a = u & kF32AbsMask;
  const int32_t ef = std::max(static_cast<int32_t>(a >> 23), 1);
  const uint64_t m = (a & 0x7FFFFFu) | (a >= 0x800000u ? 0x800000u : 0u);
  // |v| = m * 2^(ef - 150). At 2^23 and above v is already an integer; past 2^33 it
  // saturates every type, so the left shift is capped there (inf lands on 2^33 too).
  uint64_t mag = 0;
  if (ef >= 150) {
    mag = m << std::min(ef - 150, 9);
  } else {
    const auto s = static_cast<unsigned>(std::min(150 - ef, 63));
    mag = kStochastic ? shiftStochastic(m, s, randomBits) : shiftRne(m, s);
  }
  const int64_t signedValue =
      (u >> 31) != 0 ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
  const int64_t clamped = std::clamp(signedValue, kLo, kHi);
  return static_cast<I>(a > kF32Inf ? 0 : clamped);
}

// ---------------------------------------------------------------------------------------
// Element access helpers (memcpy so unaligned buffers are fine; compiles to plain moves).

template <class T>
inline T loadRaw(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
inline void storeRaw(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// One tight loop per (type, rounding); `fn(value, randomBits)` returns the stored element.
template <class T, bool kStochastic, class Fn>
void narrowLoop(const float* in, std::byte* out, size_t n, StochasticState* rng, Fn fn) {
  if constexpr (kStochastic) {
    const uint64_t key = seedKey(rng != nullptr ? rng->seed : 0);
    const uint64_t base = rng != nullptr ? rng->counter : 0;
    for (size_t i = 0; i < n; ++i) {
      storeRaw<T>(out + i * sizeof(T), fn(in[i], drawBits(key, base + i)));
    }
    if (rng != nullptr) rng->counter += n;
  } else {
    (void)rng;
    for (size_t i = 0; i < n; ++i) storeRaw<T>(out + i * sizeof(T), fn(in[i], 0u));
  }
}

template <bool kStochastic>
void convertFromFloatImpl(DType dst, const float* in, std::byte* out, size_t n,
                          StochasticState* rng) {
  constexpr bool kSr = kStochastic;
  switch (dst) {
    case DType::kBF16:
      if constexpr (kSr) {
        narrowLoop<uint16_t, kSr>(in, out, n, rng, bf16Stochastic);
      } else {
        narrowLoop<uint16_t, kSr>(in, out, n, rng, [](float v, uint32_t) { return bf16Rne(v); });
      }
      return;
    case DType::kFP16:
      narrowLoop<uint16_t, kSr>(in, out, n, rng, [](float v, uint32_t r) {
        return static_cast<uint16_t>(narrow<Fp16, kSr>(v, r));
      });
      return;
    case DType::kFP8E4M3:
      narrowLoop<uint8_t, kSr>(in, out, n, rng, [](float v, uint32_t r) {
        return static_cast<uint8_t>(narrow<E4M3, kSr>(v, r));
      });
      return;
    case DType::kFP8E5M2:
      narrowLoop<uint8_t, kSr>(in, out, n, rng, [](float v, uint32_t r) {
        return static_cast<uint8_t>(narrow<E5M2, kSr>(v, r));
      });
      return;
    case DType::kFP8E3M4:
      narrowLoop<uint8_t, kSr>(in, out, n, rng, [](float v, uint32_t r) {
        return static_cast<uint8_t>(narrow<E3M4, kSr>(v, r));
      });
      return;
    case DType::kTF32:
      if constexpr (kSr) {
        narrowLoop<float, kSr>(in, out, n, rng, tf32Stochastic);
      } else {
        narrowLoop<float, kSr>(in, out, n, rng, [](float v, uint32_t) { return tf32Rne(v); });
      }
      return;
    case DType::kFP32:
      if (n != 0) std::memcpy(out, in, n * sizeof(float));
      if (kSr && rng != nullptr) rng->counter += n;  // keep the counter contract uniform
      return;
    case DType::kInt8:
      narrowLoop<int8_t, kSr>(in, out, n, rng, floatToInt<int8_t, kSr>);
      return;
    case DType::kInt16:
      narrowLoop<int16_t, kSr>(in, out, n, rng, floatToInt<int16_t, kSr>);
      return;
    case DType::kInt32:
      narrowLoop<int32_t, kSr>(in, out, n, rng, floatToInt<int32_t, kSr>);
      return;
    case DType::kUInt8:
      narrowLoop<uint8_t, kSr>(in, out, n, rng, floatToInt<uint8_t, kSr>);
      return;
    case DType::kUInt16:
      narrowLoop<uint16_t, kSr>(in, out, n, rng, floatToInt<uint16_t, kSr>);
      return;
    case DType::kUInt32:
      narrowLoop<uint32_t, kSr>(in, out, n, rng, floatToInt<uint32_t, kSr>);
      return;
  }
}

template <class T, class Fn>
void widenLoop(const std::byte* in, float* out, size_t n, Fn fn) {
  for (size_t i = 0; i < n; ++i) out[i] = fn(loadRaw<T>(in + i * sizeof(T)));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public API.

uint32_t stochasticBits(uint64_t seed, uint64_t index) { return drawBits(seedKey(seed), index); }

uint16_t floatToBf16Bits(float v) { return bf16Rne(v); }
float bf16BitsToFloat(uint16_t bits) { return bf16ToFloat(bits); }
uint16_t floatToFp16Bits(float v) { return static_cast<uint16_t>(narrow<Fp16, false>(v, 0)); }
float fp16BitsToFloat(uint16_t bits) { return fp16ToFloat(bits); }
uint8_t floatToFp8E4M3Bits(float v) { return static_cast<uint8_t>(narrow<E4M3, false>(v, 0)); }
float fp8E4M3BitsToFloat(uint8_t bits) { return kE4M3Table.v[bits]; }
uint8_t floatToFp8E5M2Bits(float v) { return static_cast<uint8_t>(narrow<E5M2, false>(v, 0)); }
float fp8E5M2BitsToFloat(uint8_t bits) { return kE5M2Table.v[bits]; }
uint8_t floatToFp8E3M4Bits(float v) { return static_cast<uint8_t>(narrow<E3M4, false>(v, 0)); }
float fp8E3M4BitsToFloat(uint8_t bits) { return kE3M4Table.v[bits]; }
float roundToTf32(float v) { return tf32Rne(v); }

float loadAsFloat(DType t, const std::byte* p) {
  switch (t) {
    case DType::kBF16:
      return bf16ToFloat(loadRaw<uint16_t>(p));
    case DType::kFP16:
      return fp16ToFloat(loadRaw<uint16_t>(p));
    case DType::kFP8E4M3:
      return kE4M3Table.v[loadRaw<uint8_t>(p)];
    case DType::kFP8E5M2:
      return kE5M2Table.v[loadRaw<uint8_t>(p)];
    case DType::kFP8E3M4:
      return kE3M4Table.v[loadRaw<uint8_t>(p)];
    case DType::kTF32:
    case DType::kFP32:
      return loadRaw<float>(p);
    case DType::kInt8:
      return static_cast<float>(loadRaw<int8_t>(p));
    case DType::kInt16:
      return static_cast<float>(loadRaw<int16_t>(p));
    case DType::kInt32:
      return static_cast<float>(loadRaw<int32_t>(p));
    case DType::kUInt8:
      return static_cast<float>(loadRaw<uint8_t>(p));
    case DType::kUInt16:
      return static_cast<float>(loadRaw<uint16_t>(p));
    case DType::kUInt32:
      return static_cast<float>(loadRaw<uint32_t>(p));
  }
  return 0.0f;
}

void storeFromFloat(DType t, float v, std::byte* p, Rounding r, uint32_t randomBits) {
  const bool sr = r == Rounding::kStochastic;
  switch (t) {
    case DType::kBF16:
      storeRaw<uint16_t>(p, sr ? bf16Stochastic(v, randomBits) : bf16Rne(v));
      return;
    case DType::kFP16:
      storeRaw<uint16_t>(p, static_cast<uint16_t>(sr ? narrow<Fp16, true>(v, randomBits)
                                                     : narrow<Fp16, false>(v, 0)));
      return;
    case DType::kFP8E4M3:
      storeRaw<uint8_t>(p, static_cast<uint8_t>(sr ? narrow<E4M3, true>(v, randomBits)
                                                   : narrow<E4M3, false>(v, 0)));
      return;
    case DType::kFP8E5M2:
      storeRaw<uint8_t>(p, static_cast<uint8_t>(sr ? narrow<E5M2, true>(v, randomBits)
                                                   : narrow<E5M2, false>(v, 0)));
      return;
    case DType::kFP8E3M4:
      storeRaw<uint8_t>(p, static_cast<uint8_t>(sr ? narrow<E3M4, true>(v, randomBits)
                                                   : narrow<E3M4, false>(v, 0)));
      return;
    case DType::kTF32:
      storeRaw<float>(p, sr ? tf32Stochastic(v, randomBits) : tf32Rne(v));
      return;
    case DType::kFP32:
      storeRaw<float>(p, v);
      return;
    case DType::kInt8:
      storeRaw<int8_t>(
          p, sr ? floatToInt<int8_t, true>(v, randomBits) : floatToInt<int8_t, false>(v, 0));
      return;
    case DType::kInt16:
      storeRaw<int16_t>(
          p, sr ? floatToInt<int16_t, true>(v, randomBits) : floatToInt<int16_t, false>(v, 0));
      return;
    case DType::kInt32:
      storeRaw<int32_t>(
          p, sr ? floatToInt<int32_t, true>(v, randomBits) : floatToInt<int32_t, false>(v, 0));
      return;
    case DType::kUInt8:
      storeRaw<uint8_t>(
          p, sr ? floatToInt<uint8_t, true>(v, randomBits) : floatToInt<uint8_t, false>(v, 0));
      return;
    case DType::kUInt16:
      storeRaw<uint16_t>(
          p, sr ? floatToInt<uint16_t, true>(v, randomBits) : floatToInt<uint16_t, false>(v, 0));
      return;
    case DType::kUInt32:
      storeRaw<uint32_t>(
          p, sr ? floatToInt<uint32_t, true>(v, randomBits) : floatToInt<uint32_t, false>(v, 0));
      return;
  }
}

void convertToFloat(DType src, const std::byte* in, float* out, size_t n) {
  switch (src) {
    case DType::kBF16:
      widenLoop<uint16_t>(in, out, n, bf16ToFloat);
      return;
    case DType::kFP16:
      widenLoop<uint16_t>(in, out, n, fp16ToFloat);
      return;
    case DType::kFP8E4M3:
      widenLoop<uint8_t>(in, out, n, [](uint8_t b) { return kE4M3Table.v[b]; });
      return;
    case DType::kFP8E5M2:
      widenLoop<uint8_t>(in, out, n, [](uint8_t b) { return kE5M2Table.v[b]; });
      return;
    case DType::kFP8E3M4:
      widenLoop<uint8_t>(in, out, n, [](uint8_t b) { return kE3M4Table.v[b]; });
      return;
    case DType::kTF32:
    case DType::kFP32:
      if (n != 0) std::memcpy(out, in, n * sizeof(float));
      return;
    case DType::kInt8:
      widenLoop<int8_t>(in, out, n, [](int8_t x) { return float(x); });
      return;
    case DType::kInt16:
      widenLoop<int16_t>(in, out, n, [](int16_t x) { return float(x); });
      return;
    case DType::kInt32:
      widenLoop<int32_t>(in, out, n, [](int32_t x) { return float(x); });
      return;
    case DType::kUInt8:
      widenLoop<uint8_t>(in, out, n, [](uint8_t x) { return float(x); });
      return;
    case DType::kUInt16:
      widenLoop<uint16_t>(in, out, n, [](uint16_t x) { return float(x); });
      return;
    case DType::kUInt32:
      widenLoop<uint32_t>(in, out, n, [](uint32_t x) { return float(x); });
      return;
  }
}

void convertFromFloat(DType dst, const float* in, std::byte* out, size_t n, Rounding r,
                      StochasticState* rng) {
  if (r == Rounding::kStochastic) {
    convertFromFloatImpl<true>(dst, in, out, n, rng);
  } else {
    convertFromFloatImpl<false>(dst, in, out, n, rng);
  }
}

}  // namespace trnsim::numerics
