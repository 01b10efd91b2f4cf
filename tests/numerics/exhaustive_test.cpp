// Exhaustive and randomized checks of the fast conversions against the slow double-precision
// model in reference.h: every bit pattern of the 8- and 16-bit formats, millions of random
// fp32 values and every rounding boundary.
#include <bit>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

#include "reference.h"

#include "trnsim/numerics/dtype.h"

namespace trnsim::numerics {
namespace {

using testing::Format;

struct Case {
  DType type;
  Format format;
};

const Case kFloatCases[] = {
    {DType::kBF16, testing::kBf16},    {DType::kFP16, testing::kFp16},
    {DType::kFP8E4M3, testing::kE4M3}, {DType::kFP8E5M2, testing::kE5M2},
    {DType::kTF32, testing::kTf32},    {DType::kFP8E3M4, testing::kE3M4},
};

// The stored element as an integer (bit pattern for small floats; the fp32 bits for tf32).
uint32_t storeBits(DType t, float v, Rounding r = Rounding::kNearestEven, uint32_t rnd = 0) {
  std::byte buf[4] = {};
  storeFromFloat(t, v, buf, r, rnd);
  uint32_t bits = 0;
  std::memcpy(&bits, buf, dtypeSize(t));
  return bits;
}

// Value of a stored element according to the reference decoder (tf32 lives in fp32 bits).
double refValue(const Case& c, uint32_t bits) {
  if (c.type == DType::kTF32) return std::bit_cast<float>(bits);
  return testing::decode(c.format, bits);
}

// Checks one conversion against the reference; returns a message on mismatch.
::testing::AssertionResult matchesReference(const Case& c, float x, Rounding r, uint32_t rnd) {
  const uint32_t got = storeBits(c.type, x, r, rnd);
  const double gotValue = refValue(c, got);
  const double want = testing::quantize(c.format, x, r == Rounding::kStochastic, rnd);
  const bool ok = std::isnan(want)
                      ? std::isnan(gotValue)
                      : (gotValue == want && std::signbit(gotValue) == std::signbit(want));
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << dtypeName(c.type) << " x=" << x << " (0x" << std::hex << std::bit_cast<uint32_t>(x)
         << ") rnd=0x" << rnd << " got bits 0x" << got << std::dec << " = " << gotValue << ", want "
         << want;
}

TEST(Exhaustive, DecodeEveryPatternMatchesFormula) {
  for (const Case& c : kFloatCases) {
    if (c.type == DType::kTF32) continue;
    const uint32_t count = 1u << c.format.totalBits();
    for (uint32_t bits = 0; bits < count; ++bits) {
      std::byte buf[2];
      std::memcpy(buf, &bits, dtypeSize(c.type));
      const float got = loadAsFloat(c.type, buf);
      const double want = testing::decode(c.format, bits);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(got)) << dtypeName(c.type) << " bits " << bits;
      } else {
        ASSERT_EQ(static_cast<double>(got), want) << dtypeName(c.type) << " bits " << bits;
        ASSERT_EQ(std::signbit(got), std::signbit(want)) << dtypeName(c.type) << " " << bits;
      }
    }
  }
}

TEST(Exhaustive, RoundTripEveryPattern) {
  // float -> element -> float -> element gives the same bits for every non-NaN pattern,
  // through both the scalar helpers and the bulk loops.
  for (const Case& c : kFloatCases) {
    if (c.type == DType::kTF32) continue;
    const uint32_t count = 1u << c.format.totalBits();
    const size_t size = dtypeSize(c.type);
    std::vector<std::byte> raw(count * size), back(count * size);
    for (uint32_t bits = 0; bits < count; ++bits)
      std::memcpy(&raw[bits * size], &bits, size);
    std::vector<float> values(count);
    convertToFloat(c.type, raw.data(), values.data(), count);
    convertFromFloat(c.type, values.data(), back.data(), count);
    for (uint32_t bits = 0; bits < count; ++bits) {
      uint32_t again = 0;
      std::memcpy(&again, &back[bits * size], size);
      if (std::isnan(values[bits])) {
        ASSERT_TRUE(std::isnan(refValue(c, again))) << dtypeName(c.type) << " " << bits;
      } else {
        ASSERT_EQ(again, bits) << dtypeName(c.type);
      }
      ASSERT_EQ(storeBits(c.type, values[bits]), again) << dtypeName(c.type) << " " << bits;
    }
  }
  // The scalar helpers agree with the generic store/load.
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const auto b16 = static_cast<uint16_t>(bits);
    const float vb = bf16BitsToFloat(b16);
    const float vh = fp16BitsToFloat(b16);
    if (!std::isnan(vb)) {
      ASSERT_EQ(floatToBf16Bits(vb), b16);
    }
    if (!std::isnan(vh)) {
      ASSERT_EQ(floatToFp16Bits(vh), b16);
    }
  }
  for (uint32_t bits = 0; bits < 256; ++bits) {
    const auto b8 = static_cast<uint8_t>(bits);
    const float v4 = fp8E4M3BitsToFloat(b8);
    const float v5 = fp8E5M2BitsToFloat(b8);
    const float v3 = fp8E3M4BitsToFloat(b8);
    if (!std::isnan(v3)) {
      ASSERT_EQ(floatToFp8E3M4Bits(v3), b8);
    }
    if (!std::isnan(v4)) {
      ASSERT_EQ(floatToFp8E4M3Bits(v4), b8);
    }
    if (!std::isnan(v5)) {
      ASSERT_EQ(floatToFp8E5M2Bits(v5), b8);
    }
  }
}

// Random fp32 bit patterns cover every exponent (including subnormals, inf and NaN) evenly.
std::vector<float> randomFloats(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<float> v(n);
  for (auto& x : v)
    x = std::bit_cast<float>(static_cast<uint32_t>(gen()));
  return v;
}

// Every midpoint between neighbouring finite values of the format, and the fp32 values
// right next to it: the places where rounding decides.
std::vector<float> boundaryFloats(const Case& c) {
  std::vector<float> out;
  const Format& f = c.format;
  const uint32_t positive = c.type == DType::kTF32 ? 0 : 1u << (f.expBits + f.manBits);
  auto addAround = [&](double mid) {
    const auto m = static_cast<float>(mid);  // exact: a midpoint has manBits + 2 bits
    for (float v : {m, std::nextafter(m, 0.0f), std::nextafter(m, 1e38f)}) {
      out.push_back(v);
      out.push_back(-v);
    }
  };
  if (c.type == DType::kTF32) {
    // Too many patterns for all of them: every exponent with a few mantissas.
    for (int e = -140; e <= 127; ++e) {
      for (double man : {0.0, 1.0, 2.0, 511.0, 1022.0, 1023.0}) {
        const int ee = std::max(e, f.emin());
        const double lo = e < f.emin() ? std::ldexp(man, f.emin() - f.manBits)
                                       : std::ldexp(1.0 + man / 1024.0, ee);
        addAround(lo + std::ldexp(0.5, ee - f.manBits));
      }
    }
    return out;
  }
  double prev = 0;
  for (uint32_t bits = 1; bits < positive; ++bits) {
    const double v = testing::decode(f, bits);
    if (std::isnan(v) || std::isinf(v)) break;
    addAround((prev + v) / 2);
    prev = v;
  }
  // Half an ulp above the largest finite value: the overflow threshold.
  const double ulp = std::ldexp(1.0, f.emax() - f.manBits);
  addAround(f.maxFinite() + ulp / 2);
  addAround(f.maxFinite() + ulp);
  return out;
}

TEST(Random, NearestEvenMatchesReference) {
  const auto randoms = randomFloats(1u << 21, 1234);
  for (const Case& c : kFloatCases) {
    for (float x : randoms)
      ASSERT_TRUE(matchesReference(c, x, Rounding::kNearestEven, 0));
    for (float x : boundaryFloats(c)) {
      ASSERT_TRUE(matchesReference(c, x, Rounding::kNearestEven, 0));
    }
  }
}

TEST(Random, StochasticMatchesReference) {
  const auto randoms = randomFloats(1u << 20, 99);
  std::mt19937 gen(7);
  for (const Case& c : kFloatCases) {
    for (float x : randoms) {
      ASSERT_TRUE(matchesReference(c, x, Rounding::kStochastic, static_cast<uint32_t>(gen())));
    }
    for (float x : boundaryFloats(c)) {
      for (uint32_t rnd :
           {0u, 1u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu, static_cast<uint32_t>(gen())}) {
        ASSERT_TRUE(matchesReference(c, x, Rounding::kStochastic, rnd));
      }
    }
  }
}

template <class I>
void checkIntAgainstReference(DType t, const std::vector<float>& xs, std::mt19937& gen) {
  for (float x : xs) {
    for (bool sr : {false, true}) {
      const uint32_t rnd = sr ? static_cast<uint32_t>(gen()) : 0;
      std::byte buf[sizeof(I)];
      storeFromFloat(t, x, buf, sr ? Rounding::kStochastic : Rounding::kNearestEven, rnd);
      I got;
      std::memcpy(&got, buf, sizeof(I));
      ASSERT_EQ(static_cast<double>(got), testing::quantizeInt<I>(x, sr, rnd))
          << dtypeName(t) << " x=" << x << " sr=" << sr;
    }
  }
}

TEST(Random, IntegersMatchReference) {
  std::vector<float> xs = randomFloats(1u << 18, 5);
  // Values at a useful scale: halves, near-halves and the saturation edges.
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> wide(-5e9f, 5e9f);
  for (int i = 0; i < (1 << 16); ++i) {
    xs.push_back(wide(gen));
    xs.push_back(static_cast<float>(i - 40000) * 0.5f);
    xs.push_back(std::nextafter(static_cast<float>(i - 40000) * 0.5f, 1e9f));
  }
  for (double edge : {127.0, -128.0, 255.0, 32767.0, -32768.0, 65535.0, 2147483647.0, -2147483648.0,
                      4294967295.0}) {
    const auto e = static_cast<float>(edge);
    for (float v : {e, std::nextafter(e, 0.0f), std::nextafter(e, 1e38f), std::nextafter(e, -1e38f),
                    e + 0.5f, e - 0.5f}) {
      xs.push_back(v);
    }
  }
  checkIntAgainstReference<int8_t>(DType::kInt8, xs, gen);
  checkIntAgainstReference<int16_t>(DType::kInt16, xs, gen);
  checkIntAgainstReference<int32_t>(DType::kInt32, xs, gen);
  checkIntAgainstReference<uint8_t>(DType::kUInt8, xs, gen);
  checkIntAgainstReference<uint16_t>(DType::kUInt16, xs, gen);
  checkIntAgainstReference<uint32_t>(DType::kUInt32, xs, gen);
}

TEST(Bulk, MatchesElementwiseForEveryType) {
  auto xs = randomFloats(4096, 3);
  for (float extra : {0.0f, -0.0f, 1.5f, -2.5f, 448.0f, 1e30f, -1e-30f})
    xs.push_back(extra);
  const size_t n = xs.size();
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto t = static_cast<DType>(i);
    const size_t size = dtypeSize(t);
    for (Rounding r : {Rounding::kNearestEven, Rounding::kStochastic}) {
      StochasticState rng{42, 1000};
      std::vector<std::byte> bulk(n * size), single(n * size);
      convertFromFloat(t, xs.data(), bulk.data(), n, r, &rng);
      EXPECT_EQ(rng.counter, r == Rounding::kStochastic ? 1000 + n : 1000u) << dtypeName(t);
      for (size_t k = 0; k < n; ++k) {
        storeFromFloat(t, xs[k], &single[k * size], r,
                       r == Rounding::kStochastic ? stochasticBits(42, 1000 + k) : 0);
      }
      ASSERT_EQ(std::memcmp(bulk.data(), single.data(), bulk.size()), 0)
          << dtypeName(t) << " " << roundingName(r);
      std::vector<float> widened(n);
      convertToFloat(t, bulk.data(), widened.data(), n);
      for (size_t k = 0; k < n; ++k) {
        const float one = loadAsFloat(t, &bulk[k * size]);
        ASSERT_EQ(std::bit_cast<uint32_t>(widened[k]), std::bit_cast<uint32_t>(one))
            << dtypeName(t) << " element " << k;
      }
    }
  }
}

TEST(Bulk, UnalignedBuffersAndEmpty) {
  const float xs[3] = {1.0f, 2.0f, 3.0f};
  std::byte buf[16] = {};
  convertFromFloat(DType::kFP32, xs, buf + 1, 3);
  float back[3];
  convertToFloat(DType::kFP32, buf + 1, back, 3);
  EXPECT_EQ(back[2], 3.0f);
  convertFromFloat(DType::kBF16, xs, buf + 1, 3);
  convertToFloat(DType::kBF16, buf + 1, back, 3);
  EXPECT_EQ(back[1], 2.0f);
  convertFromFloat(DType::kFP16, xs, nullptr, 0);
  convertToFloat(DType::kFP32, nullptr, nullptr, 0);
}

}  // namespace
}  // namespace trnsim::numerics
