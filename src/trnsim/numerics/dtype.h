#pragma once
// Element types of the NeuronCore and conversions between them. Engines compute in fp32;
// a value is rounded to its destination type when written. See docs/numerics.md.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace trnsim::numerics {

enum class DType : uint8_t {
  kBF16 = 0,
  kFP16,
  kFP8E4M3,  ///< "fn" variant: no infinities, max 448, NaN = S.1111.111
  kFP8E5M2,
  kTF32,     ///< stored in 4 bytes, 10 mantissa bits kept
  kFP32,
  kInt8,
  kInt16,
  kInt32,
  kUInt8,
  kUInt16,
  kUInt32,
  kFP8E3M4,  ///< IEEE-like fp8 (bias 3): inf = S.111.0000, max 15.5, as ml_dtypes.float8_e3m4
};
inline constexpr int kNumDTypes = 13;

/// Bytes one element occupies in memory (tf32 occupies 4).
size_t dtypeSize(DType t);
/// NKI spelling: "bfloat16", "float16", "float8_e4m3", "float8_e5m2", "tfloat32",
/// "float32", "int8", ..., "uint32", "float8_e3m4".
std::string_view dtypeName(DType t);
/// Accepts the NKI spelling and short aliases ("bf16", "fp16", "fp8_e4m3", "fp32", "f32", ...).
std::optional<DType> parseDType(std::string_view name);
bool isFloat(DType t);
bool isSigned(DType t);

enum class Rounding : uint8_t {
  kNearestEven = 0,  ///< round to nearest, ties to even (the hardware default)
  kStochastic,       ///< round up with probability equal to the discarded fraction
};

/// "rne" or "stochastic".
std::string_view roundingName(Rounding r);
/// Accepts "rne" / "nearest_even" / "nearest" and "sr" / "stochastic".
std::optional<Rounding> parseRounding(std::string_view name);

/// Deterministic source of stochastic-rounding bits: element i of a conversion draws
/// hash(seed, counter + i), so results do not depend on how work is split or ordered.
struct StochasticState {
  uint64_t seed = 0;
  uint64_t counter = 0;
};

/// Reads one element of type `t` at `p` and returns it as fp32 (exact for every type but
/// int32/uint32 beyond 2^24).
float loadAsFloat(DType t, const std::byte* p);
/// Converts fp32 `v` to `t` and writes it at `p`. `randomBits` is used only for kStochastic.
void storeFromFloat(DType t, float v, std::byte* p, Rounding r = Rounding::kNearestEven,
                    uint32_t randomBits = 0);

/// Bulk conversions; `rng` may be null for kNearestEven and advances by n otherwise.
void convertToFloat(DType src, const std::byte* in, float* out, size_t n);
void convertFromFloat(DType dst, const float* in, std::byte* out, size_t n,
                      Rounding r = Rounding::kNearestEven, StochasticState* rng = nullptr);

/// Bit-level helpers for the common formats (RNE unless stated).
uint16_t floatToBf16Bits(float v);
float bf16BitsToFloat(uint16_t bits);
uint16_t floatToFp16Bits(float v);
float fp16BitsToFloat(uint16_t bits);
uint8_t floatToFp8E4M3Bits(float v);
float fp8E4M3BitsToFloat(uint8_t bits);
uint8_t floatToFp8E5M2Bits(float v);
float fp8E5M2BitsToFloat(uint8_t bits);
uint8_t floatToFp8E3M4Bits(float v);
float fp8E3M4BitsToFloat(uint8_t bits);
float roundToTf32(float v);

/// The 32 random bits used for element `index` of a stochastic conversion with `seed`.
uint32_t stochasticBits(uint64_t seed, uint64_t index);

/// Largest finite value of a float type (448 for e4m3, 57344 for e5m2, 15.5 for e3m4, ...).
double maxFinite(DType t);

}  // namespace trnsim::numerics
