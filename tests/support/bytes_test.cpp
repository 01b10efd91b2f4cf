// The one byte serializer (support/bytes.h): the exact bytes it writes, written out by hand from
// the little-endian definition, round trips of every kind of value, and the errors of a reader
// that runs out of bytes or meets a length or count its input cannot hold.

#include "trnsim/support/bytes.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace trnsim::support {
namespace {

std::vector<uint8_t> asVector(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

TEST(ByteWriter, WritesLittleEndianFixedWidthsAndLengthPrefixedStrings) {
  ByteWriter w;
  w.u8(0xab);
  w.u16(0x0102);
  w.u32(0x01020304);
  w.u64(0x0102030405060708ull);
  w.i64(-2);
  w.f32(1.0f);  // 0x3f800000
  w.f64(-2.0);  // 0xc000000000000000
  w.str32("hi");
  w.str64(std::string("a\0b", 3));
  w.raw("xy", 2);
  const std::vector<uint8_t> expected = {
      0xab,                                                         // u8
      0x02, 0x01,                                                   // u16
      0x04, 0x03, 0x02, 0x01,                                       // u32
      8,    7,    6,    5,    4,    3,    2,    1,                  // u64
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,               // i64 -2
      0x00, 0x00, 0x80, 0x3f,                                       // f32 1.0
      0,    0,    0,    0,    0,    0,    0,    0xc0,               // f64 -2.0
      2,    0,    0,    0,    'h',  'i',                            // str32
      3,    0,    0,    0,    0,    0,    0,    0,    'a', 0, 'b',  // str64
      'x',  'y'};
  EXPECT_EQ(asVector(w.bytes()), expected);
  EXPECT_EQ(w.size(), expected.size());
}

TEST(ByteWriter, PatchU64OverwritesInPlaceAndTakeEmpties) {
  ByteWriter w;
  w.u8(1);
  w.u64(0);
  w.u8(2);
  w.patchU64(1, 0x1122334455667788ull);
  EXPECT_EQ(asVector(w.bytes()),
            (std::vector<uint8_t>{1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 2}));
  const std::vector<uint8_t> taken = w.take();
  EXPECT_EQ(taken.size(), 10u);
  EXPECT_EQ(w.size(), 0u);
}

TEST(ByteReader, RoundTripKeepsEveryBit) {
  ByteWriter w;
  w.u8(255);
  w.u16(65535);
  w.u32(0xdeadbeef);
  w.u64(~uint64_t(0));
  w.i64(std::numeric_limits<int64_t>::min());
  w.f32(std::bit_cast<float>(0x7fc00123u));  // a NaN with a payload
  w.f64(-0.0);
  w.str32("");
  w.str64("wire");
  w.u64(3);
  w.raw("\x09\x08\x07", 3);

  ByteReader r(w.bytes(), "test bytes");
  EXPECT_EQ(r.u8(), 255);
  EXPECT_EQ(r.u16(), 65535);
  EXPECT_EQ(r.u32(), 0xdeadbeefu);
  EXPECT_EQ(r.u64(), ~uint64_t(0));
  EXPECT_EQ(r.i64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(std::bit_cast<uint32_t>(r.f32()), 0x7fc00123u);
  const double z = r.f64();
  EXPECT_EQ(z, 0.0);
  EXPECT_TRUE(std::signbit(z));
  EXPECT_EQ(r.str32(), "");
  EXPECT_EQ(r.str64(), "wire");
  const auto b = r.bytes(r.u64());
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(uint8_t(b[0]), 9);
  EXPECT_EQ(uint8_t(b[2]), 7);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.atEnd());
  EXPECT_EQ(r.offset(), w.size());
}

TEST(ByteReader, TruncationNamesWhatTheOffsetAndTheOrigin) {
  const uint8_t in[] = {1, 2, 3};
  ByteReader r(std::span<const uint8_t>(in), "prog.tsimb", 100);
  EXPECT_EQ(r.u16("flags"), 0x0201);
  EXPECT_EQ(r.u32("line"), 0u);  // 4 bytes wanted, 1 left
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  EXPECT_EQ(r.error().message(), "truncated: line needs 4 bytes, 1 left at byte 102");
  EXPECT_EQ(r.error().where(), "prog.tsimb");
  // The first failure sticks; later reads give zeros and empty strings.
  EXPECT_EQ(r.u8("next"), 0);
  EXPECT_EQ(r.str64("name"), "");
  EXPECT_TRUE(r.bytes(0).empty());
  EXPECT_EQ(r.error().message(), "truncated: line needs 4 bytes, 1 left at byte 102");
}

TEST(ByteReader, StringLongerThanTheInputFailsAtItsLength) {
  ByteWriter w;
  w.u8(0);
  w.u32(5);
  w.raw("abc", 3);
  ByteReader r(w.bytes(), "f");
  r.u8();
  EXPECT_EQ(r.str32("tensor name"), "");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "tensor name claims 5 bytes but only 3 remain at byte 1");

  ByteWriter huge;
  huge.u64(~uint64_t(0));  // a 64-bit length no input can hold
  ByteReader h(huge.bytes());
  EXPECT_EQ(h.str64(), "");
  EXPECT_FALSE(h.ok());
}

TEST(ByteReader, CountsTheInputCannotHoldAreRefused) {
  ByteWriter w;
  w.u32(3);
  w.u64(0);  // 8 bytes left after the count: room for 3 records of 2 bytes, not 3 of 4
  {
    ByteReader r(w.bytes(), "f");
    EXPECT_EQ(r.count("pairs", 2), 3u);
    EXPECT_TRUE(r.ok());
  }
  {
    ByteReader r(w.bytes(), "f");
    EXPECT_EQ(r.count("records", 4), 0u);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "records 3 cannot fit in the 8 bytes left at byte 0");
  }
}

TEST(ByteReader, SubReadersKeepTheOffsetsOfTheWhole) {
  ByteWriter w;
  w.u32(7);
  w.u16(1);
  ByteReader r(w.bytes(), "f", 32);
  r.u32();
  ByteReader s = r.sub(2);
  EXPECT_TRUE(r.atEnd());
  EXPECT_EQ(s.offset(), 36u);
  EXPECT_EQ(s.u16(), 1);
  s.u8("extra");
  EXPECT_EQ(s.error().message(), "truncated: extra needs 1 bytes, 0 left at byte 38");
  EXPECT_TRUE(r.ok());  // the parent is unaffected

  ByteReader t(w.bytes(), "f");
  t.sub(10);  // more than there is
  EXPECT_FALSE(t.ok());
}

TEST(ByteReader, FailAtKeepsOnlyTheFirstError) {
  const uint8_t in[] = {0, 0};
  ByteReader r(std::span<const uint8_t>(in), "f");
  r.failAt(1, "first");
  r.fail("second");
  EXPECT_EQ(r.error().message(), "first at byte 1");
  EXPECT_TRUE(r.atEnd());
}

}  // namespace
}  // namespace trnsim::support
