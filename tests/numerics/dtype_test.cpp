// Metadata and hand-derived conversion values: every expected number here was worked out
// on paper from the format's definition, not by running the code.
#include "trnsim/numerics/dtype.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <limits>
#include <string>
#include <vector>

namespace trnsim::numerics {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

float p2(int e) {
  return std::ldexp(1.0f, e);
}

TEST(DTypeInfo, SizesNamesAndParsing) {
  EXPECT_EQ(dtypeSize(DType::kBF16), 2u);
  EXPECT_EQ(dtypeSize(DType::kFP8E4M3), 1u);
  EXPECT_EQ(dtypeSize(DType::kTF32), 4u);
  EXPECT_EQ(dtypeSize(DType::kUInt16), 2u);
  EXPECT_EQ(dtypeName(DType::kFP8E5M2), "float8_e5m2");
  EXPECT_EQ(dtypeName(DType::kTF32), "tfloat32");
  for (int i = 0; i < kNumDTypes; ++i) {
    auto t = static_cast<DType>(i);
    auto back = parseDType(dtypeName(t));
    ASSERT_TRUE(back.has_value()) << dtypeName(t);
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(parseDType("bf16"), DType::kBF16);
  EXPECT_EQ(parseDType("BF16"), DType::kBF16);
  EXPECT_EQ(parseDType("fp8_e4m3"), DType::kFP8E4M3);
  EXPECT_EQ(parseDType("float8_e4m3fn"), DType::kFP8E4M3);
  EXPECT_EQ(parseDType("f32"), DType::kFP32);
  EXPECT_EQ(parseDType("float8_e3m4"), DType::kFP8E3M4);
  EXPECT_EQ(parseDType("e3m4"), DType::kFP8E3M4);
  EXPECT_EQ(dtypeSize(DType::kFP8E3M4), 1u);
  EXPECT_EQ(parseDType("u8"), DType::kUInt8);
  EXPECT_FALSE(parseDType("float64").has_value());
  EXPECT_FALSE(parseDType("").has_value());
  EXPECT_FALSE(parseDType(std::string(100, 'x')).has_value());
  EXPECT_TRUE(isFloat(DType::kTF32));
  EXPECT_FALSE(isFloat(DType::kInt32));
  EXPECT_TRUE(isSigned(DType::kInt8));
  EXPECT_FALSE(isSigned(DType::kUInt32));
  EXPECT_EQ(parseRounding("rne"), Rounding::kNearestEven);
  EXPECT_EQ(parseRounding("stochastic"), Rounding::kStochastic);
  EXPECT_EQ(parseRounding("sr"), Rounding::kStochastic);
  EXPECT_FALSE(parseRounding("up").has_value());
  EXPECT_EQ(roundingName(Rounding::kStochastic), "stochastic");
}

TEST(DTypeInfo, MaxFinite) {
  EXPECT_EQ(maxFinite(DType::kFP8E4M3), 448.0);
  EXPECT_EQ(maxFinite(DType::kFP8E5M2), 57344.0);
  EXPECT_EQ(maxFinite(DType::kFP8E3M4), 15.5);
  EXPECT_EQ(maxFinite(DType::kFP16), 65504.0);
  EXPECT_EQ(maxFinite(DType::kBF16), std::ldexp(255.0, 120));  // 0x7F7F = 1.1111111b * 2^127
  EXPECT_EQ(maxFinite(DType::kTF32), std::ldexp(2047.0, 117));
  EXPECT_EQ(maxFinite(DType::kFP32), static_cast<double>(std::numeric_limits<float>::max()));
  EXPECT_EQ(maxFinite(DType::kInt8), 127.0);
  EXPECT_EQ(maxFinite(DType::kUInt32), 4294967295.0);
  // The largest finite value converts to itself and decodes back exactly.
  EXPECT_EQ(bf16BitsToFloat(0x7F7F), static_cast<float>(maxFinite(DType::kBF16)));
  EXPECT_EQ(fp16BitsToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(fp8E4M3BitsToFloat(0x7E), 448.0f);
  EXPECT_EQ(fp8E5M2BitsToFloat(0x7B), 57344.0f);
}

TEST(Bf16, RoundToNearestEven) {
  EXPECT_EQ(floatToBf16Bits(1.0f), 0x3F80);
  EXPECT_EQ(floatToBf16Bits(-2.0f), 0xC000);
  // 1 + 2^-8 is halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81): goes to even.
  EXPECT_EQ(floatToBf16Bits(1.0f + p2(-8)), 0x3F80);
  // 1 + 3*2^-8 is halfway between 0x3F81 (odd) and 0x3F82: goes to even 0x3F82.
  EXPECT_EQ(floatToBf16Bits(1.0f + 3 * p2(-8)), 0x3F82);
  // Just above the halfway point rounds up.
  EXPECT_EQ(floatToBf16Bits(1.0f + p2(-8) + p2(-20)), 0x3F81);
  EXPECT_EQ(floatToBf16Bits(-(1.0f + p2(-8) + p2(-20))), 0xBF81);
  EXPECT_EQ(floatToBf16Bits(0.0f), 0x0000);
  EXPECT_EQ(floatToBf16Bits(-0.0f), 0x8000);
}

TEST(Bf16, OverflowSubnormalsNaN) {
  // fp32 max (0x7F7FFFFF) is above the bf16 max plus half an ulp: overflows to inf.
  EXPECT_EQ(floatToBf16Bits(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(floatToBf16Bits(-std::numeric_limits<float>::max()), 0xFF80);
  EXPECT_EQ(floatToBf16Bits(kInf), 0x7F80);
  // The smallest bf16 subnormal is 2^-133. Half of it ties to 0 (even); 0.75 of it
  // (1.5 * 2^-134) is past the midpoint and becomes 0x0001.
  EXPECT_EQ(floatToBf16Bits(p2(-133)), 0x0001);
  EXPECT_EQ(floatToBf16Bits(p2(-134)), 0x0000);
  EXPECT_EQ(floatToBf16Bits(1.5f * p2(-134)), 0x0001);
  EXPECT_EQ(floatToBf16Bits(3 * p2(-134)), 0x0002);  // 1.5 ulp ties to even 2
  EXPECT_EQ(bf16BitsToFloat(0x0001), p2(-133));
  EXPECT_EQ(bf16BitsToFloat(0x0080), p2(-126));  // smallest normal
  EXPECT_EQ(floatToBf16Bits(kNaN), 0x7FC0);
  EXPECT_EQ(floatToBf16Bits(-kNaN), 0xFFC0);
  // A signalling NaN whose payload sits only in the low 16 bits must not become inf.
  EXPECT_EQ(floatToBf16Bits(std::bit_cast<float>(0x7F800001u)), 0x7FC0);
  EXPECT_TRUE(std::isnan(bf16BitsToFloat(0x7F81)));
  EXPECT_EQ(bf16BitsToFloat(0xFF80), -kInf);
}

TEST(Fp16, HandValues) {
  EXPECT_EQ(floatToFp16Bits(1.0f), 0x3C00);
  EXPECT_EQ(floatToFp16Bits(-1.5f), 0xBE00);
  EXPECT_EQ(floatToFp16Bits(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToFp16Bits(65519.0f), 0x7BFF);  // below 65504 + 16 (half an ulp of 32)
  EXPECT_EQ(floatToFp16Bits(65520.0f), 0x7C00);  // the tie goes to even, which is inf
  EXPECT_EQ(floatToFp16Bits(1e6f), 0x7C00);
  EXPECT_EQ(floatToFp16Bits(-kInf), 0xFC00);
  EXPECT_EQ(floatToFp16Bits(1.0f + p2(-11)), 0x3C00);      // tie to even
  EXPECT_EQ(floatToFp16Bits(1.0f + 3 * p2(-11)), 0x3C02);  // tie to even (up)
  // Subnormals: unit 2^-24.
  EXPECT_EQ(floatToFp16Bits(p2(-24)), 0x0001);
  EXPECT_EQ(floatToFp16Bits(p2(-25)), 0x0000);            // tie to even 0
  EXPECT_EQ(floatToFp16Bits(p2(-25) + p2(-40)), 0x0001);  // just above the tie
  EXPECT_EQ(floatToFp16Bits(3 * p2(-25)), 0x0002);        // 1.5 units -> 2
  EXPECT_EQ(floatToFp16Bits(1023 * p2(-24)), 0x03FF);     // largest subnormal
  EXPECT_EQ(floatToFp16Bits(1023.5f * p2(-24)), 0x0400);  // ties up into the normals
  EXPECT_EQ(floatToFp16Bits(p2(-14)), 0x0400);            // smallest normal
  EXPECT_EQ(floatToFp16Bits(p2(-126)), 0x0000);           // far below: zero
  EXPECT_EQ(floatToFp16Bits(-p2(-149)), 0x8000);          // fp32 subnormal -> -0
  EXPECT_EQ(fp16BitsToFloat(0x0001), p2(-24));
  EXPECT_EQ(fp16BitsToFloat(0x83FF), -1023 * p2(-24));
  EXPECT_EQ(fp16BitsToFloat(0x7C00), kInf);
  EXPECT_TRUE(std::isnan(fp16BitsToFloat(0x7C01)));
  EXPECT_EQ(floatToFp16Bits(kNaN), 0x7E00);
  EXPECT_EQ(floatToFp16Bits(-kNaN), 0xFE00);
}

TEST(Fp8E4M3, SaturatesAndHasOneNaN) {
  EXPECT_EQ(floatToFp8E4M3Bits(1.0f), 0x38);  // exponent 7 = bias, mantissa 0
  EXPECT_EQ(floatToFp8E4M3Bits(448.0f), 0x7E);
  EXPECT_EQ(floatToFp8E4M3Bits(-448.0f), 0xFE);
  EXPECT_EQ(floatToFp8E4M3Bits(240.0f), 0x77);  // 1.875 * 2^7
  // 464 is halfway between 448 (mantissa 110, even) and 480: RNE gives 448. Above that the
  // hardware saturates (ml_dtypes would give NaN): still 448.
  EXPECT_EQ(floatToFp8E4M3Bits(464.0f), 0x7E);
  EXPECT_EQ(floatToFp8E4M3Bits(465.0f), 0x7E);
  EXPECT_EQ(floatToFp8E4M3Bits(1e30f), 0x7E);
  EXPECT_EQ(floatToFp8E4M3Bits(kInf), 0x7E);
  EXPECT_EQ(floatToFp8E4M3Bits(-kInf), 0xFE);
  EXPECT_EQ(floatToFp8E4M3Bits(kNaN), 0x7F);
  EXPECT_EQ(floatToFp8E4M3Bits(-kNaN), 0xFF);
  // Subnormals: unit 2^-9.
  EXPECT_EQ(floatToFp8E4M3Bits(p2(-9)), 0x01);
  EXPECT_EQ(floatToFp8E4M3Bits(p2(-10)), 0x00);
  EXPECT_EQ(floatToFp8E4M3Bits(0.75f * p2(-9)), 0x01);
  EXPECT_EQ(floatToFp8E4M3Bits(7 * p2(-9)), 0x07);
  EXPECT_EQ(floatToFp8E4M3Bits(7.5f * p2(-9)), 0x08);  // tie: 7 is odd, up to min normal
  EXPECT_EQ(floatToFp8E4M3Bits(p2(-6)), 0x08);
  EXPECT_EQ(fp8E4M3BitsToFloat(0x01), p2(-9));
  EXPECT_EQ(fp8E4M3BitsToFloat(0x08), p2(-6));
  EXPECT_EQ(fp8E4M3BitsToFloat(0x78), 256.0f);  // S.1111.000 is a number, not inf
  EXPECT_EQ(fp8E4M3BitsToFloat(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(fp8E4M3BitsToFloat(0x7F)));
  EXPECT_TRUE(std::isnan(fp8E4M3BitsToFloat(0xFF)));
  EXPECT_TRUE(std::signbit(fp8E4M3BitsToFloat(0x80)));
  EXPECT_EQ(fp8E4M3BitsToFloat(0x80), 0.0f);
}

// Expected codes are ml_dtypes 0.6.0's float8_e3m4 (np.float32(x).astype(float8_e3m4)).
TEST(Fp8E3M4, IeeeLikeAsMlDtypes) {
  EXPECT_EQ(floatToFp8E3M4Bits(1.0f), 0x30);
  EXPECT_EQ(floatToFp8E3M4Bits(15.5f), 0x6F);
  EXPECT_EQ(floatToFp8E3M4Bits(15.75f), 0x70);  // halfway to 16: ties to even = inf
  EXPECT_EQ(floatToFp8E3M4Bits(100.0f), 0x70);
  EXPECT_EQ(floatToFp8E3M4Bits(-kInf), 0xF0);
  EXPECT_EQ(floatToFp8E3M4Bits(kNaN), 0x78);
  EXPECT_EQ(floatToFp8E3M4Bits(p2(-6)), 0x01);    // smallest subnormal 2^-6
  EXPECT_EQ(floatToFp8E3M4Bits(p2(-7)), 0x00);    // tie to even (zero)
  EXPECT_EQ(floatToFp8E3M4Bits(1.03125f), 0x30);  // tie to even
  EXPECT_EQ(floatToFp8E3M4Bits(1.09375f), 0x32);  // tie to even
  EXPECT_EQ(fp8E3M4BitsToFloat(0x70), kInf);
  EXPECT_TRUE(std::isnan(fp8E3M4BitsToFloat(0x71)));
  EXPECT_EQ(fp8E3M4BitsToFloat(0x0F), 15 * p2(-6));
  EXPECT_EQ(fp8E3M4BitsToFloat(0x10), 0.25f);  // smallest normal
}

TEST(Fp8E5M2, IeeeLike) {
  EXPECT_EQ(floatToFp8E5M2Bits(1.0f), 0x3C);
  EXPECT_EQ(floatToFp8E5M2Bits(57344.0f), 0x7B);
  EXPECT_EQ(floatToFp8E5M2Bits(61439.0f), 0x7B);
  EXPECT_EQ(floatToFp8E5M2Bits(61440.0f), 0x7C);  // halfway to 2^16: ties to even = inf
  EXPECT_EQ(floatToFp8E5M2Bits(-1e9f), 0xFC);
  EXPECT_EQ(floatToFp8E5M2Bits(kInf), 0x7C);
  EXPECT_EQ(floatToFp8E5M2Bits(kNaN), 0x7E);
  EXPECT_EQ(floatToFp8E5M2Bits(p2(-16)), 0x01);
  EXPECT_EQ(floatToFp8E5M2Bits(p2(-17)), 0x00);
  EXPECT_EQ(floatToFp8E5M2Bits(3 * p2(-17)), 0x02);
  EXPECT_EQ(floatToFp8E5M2Bits(1.25f), 0x3D);
  EXPECT_EQ(floatToFp8E5M2Bits(1.125f), 0x3C);  // tie to even
  EXPECT_EQ(floatToFp8E5M2Bits(1.375f), 0x3E);  // tie to even
  EXPECT_EQ(fp8E5M2BitsToFloat(0x7C), kInf);
  EXPECT_EQ(fp8E5M2BitsToFloat(0xFC), -kInf);
  EXPECT_TRUE(std::isnan(fp8E5M2BitsToFloat(0x7D)));
  EXPECT_EQ(fp8E5M2BitsToFloat(0x03), 3 * p2(-16));
}

TEST(Tf32, KeepsTenMantissaBits) {
  EXPECT_EQ(roundToTf32(1.0f + p2(-10)), 1.0f + p2(-10));
  EXPECT_EQ(roundToTf32(1.0f + p2(-11)), 1.0f);               // tie to even
  EXPECT_EQ(roundToTf32(1.0f + 3 * p2(-11)), 1.0f + p2(-9));  // tie to even (up)
  EXPECT_EQ(roundToTf32(1.0f + p2(-11) + p2(-23)), 1.0f + p2(-10));
  EXPECT_EQ(roundToTf32(std::numeric_limits<float>::max()), kInf);
  EXPECT_EQ(roundToTf32(p2(-136)), p2(-136));  // smallest tf32 subnormal
  EXPECT_EQ(roundToTf32(p2(-137)), 0.0f);
  EXPECT_TRUE(std::isnan(roundToTf32(std::bit_cast<float>(0x7F800001u))));
  std::byte buf[4];
  storeFromFloat(DType::kTF32, 1.0f + p2(-12), buf);
  EXPECT_EQ(loadAsFloat(DType::kTF32, buf), 1.0f);
}

template <class I>
I storeInt(DType t, float v) {
  std::byte buf[sizeof(I)];
  storeFromFloat(t, v, buf);
  I out;
  std::memcpy(&out, buf, sizeof(I));
  return out;
}

TEST(Ints, RoundNearestEvenThenSaturate) {
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 2.5f), 2);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 3.5f), 4);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, -2.5f), -2);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, -0.5f), 0);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 0.5f), 0);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 1.5f), 2);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 2.5000002f), 3);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 127.5f), 127);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, 300.0f), 127);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, -128.5f), -128);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, -300.0f), -128);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, kNaN), 0);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, kInf), 127);
  EXPECT_EQ(storeInt<int8_t>(DType::kInt8, -kInf), -128);
  EXPECT_EQ(storeInt<uint8_t>(DType::kUInt8, -1.0f), 0);
  EXPECT_EQ(storeInt<uint8_t>(DType::kUInt8, 255.4f), 255);
  EXPECT_EQ(storeInt<uint8_t>(DType::kUInt8, 256.0f), 255);
  EXPECT_EQ(storeInt<int16_t>(DType::kInt16, -32768.4f), -32768);
  EXPECT_EQ(storeInt<int16_t>(DType::kInt16, 40000.0f), 32767);
  EXPECT_EQ(storeInt<uint16_t>(DType::kUInt16, 65535.5f), 65535);
  EXPECT_EQ(storeInt<int32_t>(DType::kInt32, 2147483648.0f), 2147483647);
  EXPECT_EQ(storeInt<int32_t>(DType::kInt32, -2147483648.0f), -2147483647 - 1);
  EXPECT_EQ(storeInt<int32_t>(DType::kInt32, 16777217.0f), 16777216);  // float rounds first
  EXPECT_EQ(storeInt<int32_t>(DType::kInt32, -1e20f), -2147483647 - 1);
  EXPECT_EQ(storeInt<uint32_t>(DType::kUInt32, 4294967296.0f), 4294967295u);
  EXPECT_EQ(storeInt<uint32_t>(DType::kUInt32, 4294967040.0f), 4294967040u);
  EXPECT_EQ(storeInt<uint32_t>(DType::kUInt32, kNaN), 0u);
  std::byte b[4];
  const int32_t big = 16777217;  // 2^24 + 1 is not a float: loads as the nearest even
  std::memcpy(b, &big, 4);
  EXPECT_EQ(loadAsFloat(DType::kInt32, b), 16777216.0f);
  const uint8_t u = 200;
  std::memcpy(b, &u, 1);
  EXPECT_EQ(loadAsFloat(DType::kUInt8, b), 200.0f);
  const int8_t s = -7;
  std::memcpy(b, &s, 1);
  EXPECT_EQ(loadAsFloat(DType::kInt8, b), -7.0f);
}

TEST(Fp32, PassesBitsThrough) {
  std::byte buf[4];
  const float weird = std::bit_cast<float>(0x7FA00001u);  // signalling NaN with payload
  storeFromFloat(DType::kFP32, weird, buf);
  uint32_t bits = 0;
  std::memcpy(&bits, buf, 4);
  EXPECT_EQ(bits, 0x7FA00001u);
  storeFromFloat(DType::kFP32, p2(-149), buf);
  EXPECT_EQ(loadAsFloat(DType::kFP32, buf), p2(-149));
}

}  // namespace
}  // namespace trnsim::numerics
