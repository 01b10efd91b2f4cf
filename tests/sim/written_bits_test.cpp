// WrittenBits against a byte-per-byte reference: random ranges set and queried, across word
// boundaries, at both ends of the memory and for empty ranges.

#include "trnsim/sim/written_bits.h"

#include <gtest/gtest.h>

#include <vector>

#include "trnsim/support/random.h"

namespace trnsim::sim {
namespace {

uint64_t referenceFirstUnwritten(const std::vector<uint8_t>& ref, uint64_t offset, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    if (ref[offset + i] == 0) return i;
  }
  return count;
}

TEST(WrittenBits, MatchesAByteShadowOnRandomRanges) {
  for (uint64_t size : {1ull, 63ull, 64ull, 65ull, 1000ull, 4096ull + 7}) {
    WrittenBits bits;
    bits.assign(size);
    std::vector<uint8_t> ref(size, 0);
    uint64_t state = size;
    for (int step = 0; step < 400; ++step) {
      const uint64_t a = support::splitmix64(state) % size;
      const uint64_t maxLen = size - a;
      // Mostly short ranges (elements), sometimes long ones (rows, whole tensors).
      const uint64_t len = step % 5 == 0
                               ? support::splitmix64(state) % (maxLen + 1)
                               : support::splitmix64(state) % std::min<uint64_t>(maxLen + 1, 9);
      if (step % 3 == 0) {
        bits.set(a, len);
        for (uint64_t i = 0; i < len; ++i) ref[a + i] = 1;
      }
      const uint64_t qa = support::splitmix64(state) % size;
      const uint64_t qlen = support::splitmix64(state) % (size - qa + 1);
      ASSERT_EQ(bits.firstUnwritten(qa, qlen), referenceFirstUnwritten(ref, qa, qlen))
          << "size " << size << " step " << step << " query [" << qa << ", +" << qlen << ")";
      ASSERT_EQ(bits.allWritten(qa, qlen), referenceFirstUnwritten(ref, qa, qlen) == qlen);
    }
  }
}

TEST(WrittenBits, WholeMemoryAndEdges) {
  WrittenBits bits;
  bits.assign(130);
  EXPECT_EQ(bits.firstUnwritten(0, 130), 0u);
  EXPECT_TRUE(bits.allWritten(5, 0));
  bits.set(0, 130);
  EXPECT_TRUE(bits.allWritten(0, 130));
  WrittenBits partial;
  partial.assign(130);
  partial.set(1, 128);  // bytes 1..128: 0 and 129 stay unwritten
  EXPECT_EQ(partial.firstUnwritten(0, 130), 0u);
  EXPECT_EQ(partial.firstUnwritten(1, 129), 128u);
  EXPECT_TRUE(partial.allWritten(1, 128));
  // One bit per byte, rounded up to whole 64-bit words.
  EXPECT_EQ(partial.hostBytes(), 24u);
}

}  // namespace
}  // namespace trnsim::sim
