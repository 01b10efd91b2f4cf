// The two operations fabric::Cluster is built on besides the simulator: the wire format its
// processes exchange (transport.h) and stitching a rank's timeline from its segments
// (sim::Timeline::append). Expected bytes and sums are written out by hand.

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "trnsim/fabric/transport.h"
#include "trnsim/sim/timeline.h"

namespace trnsim::fabric {
namespace {

std::vector<uint8_t> asBytes(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

TEST(WireFormat, IntegersAreEightBytesLittleEndianAndStringsCarryTheirLength) {
  WireWriter w;
  w.u64(0x0102030405060708ull);
  w.str(std::string("a\0b", 3));
  EXPECT_EQ(asBytes(w.bytes()),
            (std::vector<uint8_t>{8, 7, 6, 5, 4, 3, 2, 1,  // the integer, low byte first
                                  3, 0, 0, 0, 0, 0, 0, 0,  // the string's length
                                  'a', 0, 'b'}));
}

TEST(WireFormat, DoublesAndStatusesHaveTheirFixedLayout) {
  WireWriter w;
  w.f64(1.0);  // 0x3ff0000000000000
  w.status(Status(ErrorCode::kCorrupt, "m", "w"));
  w.status(Status::ok());
  EXPECT_EQ(asBytes(w.bytes()),
            (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0xf0, 0x3f,                       // 1.0
                                  uint8_t(ErrorCode::kCorrupt), 0, 0, 0, 0, 0, 0, 0,  // code
                                  1, 0, 0, 0, 0, 0, 0, 0, 'm',                       // message
                                  1, 0, 0, 0, 0, 0, 0, 0, 'w',                       // place
                                  0, 0, 0, 0, 0, 0, 0, 0,                            // ok
                                  0, 0, 0, 0, 0, 0, 0, 0,                            // ""
                                  0, 0, 0, 0, 0, 0, 0, 0}));                         // ""
}

TEST(WireFormat, RoundTripKeepsEveryBitAndStatus) {
  WireWriter w;
  w.u64(~uint64_t(0));
  w.f64(-0.0);
  w.f64(std::numeric_limits<double>::quiet_NaN());
  w.str("");
  w.status(Status(ErrorCode::kUninitializedRead, "reads unwritten bytes", "rank 3: instruction 2"));
  w.status(Status::ok());
  const uint8_t raw[] = {9, 8, 7};
  w.u64(sizeof raw);
  w.raw(raw, sizeof raw);

  WireReader r(w.bytes());
  EXPECT_EQ(r.u64(), ~uint64_t(0));
  const double negZero = r.f64();
  EXPECT_EQ(negZero, 0.0);
  EXPECT_TRUE(std::signbit(negZero));
  EXPECT_TRUE(std::isnan(r.f64()));
  EXPECT_EQ(r.str(), "");
  const Status s = r.status();
  EXPECT_EQ(s.code(), ErrorCode::kUninitializedRead);
  EXPECT_EQ(s.message(), "reads unwritten bytes");
  EXPECT_EQ(s.where(), "rank 3: instruction 2");
  EXPECT_TRUE(r.status().isOk());
  const auto b = r.bytes(r.u64());
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(uint8_t(b[0]), 9);
  EXPECT_EQ(uint8_t(b[2]), 7);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.atEnd());
}

TEST(WireFormat, ReadingPastTheEndOrABadCodeIsNotOk) {
  WireWriter w;
  w.u64(5);
  w.raw("abc", 3);  // a string that claims 5 bytes but has 3
  WireReader r(w.bytes());
  EXPECT_EQ(r.str(), "");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u64(), 0u);  // once not ok, zeros

  WireWriter bad;
  bad.u64(200);  // no such ErrorCode
  bad.str("m");
  bad.str("w");
  WireReader rb(bad.bytes());
  EXPECT_TRUE(rb.status().isOk());
  EXPECT_FALSE(rb.ok());
  EXPECT_EQ(rb.error().message(), "status code 200 is not an error code at byte 0");
  EXPECT_EQ(rb.error().where(), "MPI wire data");
}

sim::TimelineEvent event(uint32_t instruction, double readyNs, double startNs, double endNs) {
  sim::TimelineEvent e;
  e.instruction = instruction;
  e.readyNs = readyNs;
  e.startNs = startNs;
  e.endNs = endNs;
  return e;
}

TEST(TimelineAppend, ShiftsTheLaterEventsAndAddsTheTotals) {
  sim::Timeline first;
  first.events = {event(0, 0, 0, 100)};
  first.cores.resize(1);
  first.cores[0].busyNs[0] = 100;
  first.cores[0].instructions = 1;
  first.cores[0].hbmReadBytes = 64;
  first.cores[0].endNs = 100;
  first.endNs = 100;

  sim::Timeline later;  // starts at its own 0; it ran 250 ns into the first timeline
  later.events = {event(3, 0, 10, 40), event(4, 40, 50, 90)};
  later.cores.resize(2);
  later.cores[0].busyNs[0] = 70;
  later.cores[0].stallNs[0] = 10;
  later.cores[0].instructions = 2;
  later.cores[0].hbmReadBytes = 32;
  later.cores[0].tensorFlops = 1e6;
  later.cores[0].endNs = 90;
  later.cores[1].instructions = 5;
  later.cores[1].endNs = 20;
  later.endNs = 90;

  first.append(later, 250);
  ASSERT_EQ(first.events.size(), 3u);
  EXPECT_EQ(first.events[1].instruction, 3u);
  EXPECT_EQ(first.events[1].startNs, 260);
  EXPECT_EQ(first.events[1].endNs, 290);
  EXPECT_EQ(first.events[1].readyNs, 250);
  EXPECT_EQ(first.events[2].readyNs, 290);
  EXPECT_EQ(first.events[2].endNs, 340);
  ASSERT_EQ(first.cores.size(), 2u);
  EXPECT_EQ(first.cores[0].busyNs[0], 170);
  EXPECT_EQ(first.cores[0].stallNs[0], 10);
  EXPECT_EQ(first.cores[0].instructions, 3u);
  EXPECT_EQ(first.cores[0].hbmReadBytes, 96u);
  EXPECT_EQ(first.cores[0].tensorFlops, 1e6);
  EXPECT_EQ(first.cores[0].endNs, 340);
  EXPECT_EQ(first.cores[1].instructions, 5u);
  EXPECT_EQ(first.cores[1].endNs, 270);
  EXPECT_EQ(first.endNs, 340);
}

}  // namespace
}  // namespace trnsim::fabric
