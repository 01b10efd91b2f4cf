// The two hashes of support/hash.h: FNV-1a 64 against its published test vectors, and
// WordHasher against its definition written out again here, and its one-word sensitivity.

#include "trnsim/support/hash.h"

#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "trnsim/support/random.h"

namespace trnsim::support {
namespace {

TEST(Fnv1a64, PublishedVectorsAndPiecewiseHashing) {
  // FNV-1a 64 test vectors from the FNV reference (isthe.com/chongo/tech/comp/fnv).
  EXPECT_EQ(fnv1a64(std::string_view("")), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64(std::string_view("a")), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64(std::string_view("foobar")), 0x85944171f73967e8ull);
  EXPECT_EQ(fnv1a64(std::string_view("bar"), fnv1a64(std::string_view("foo"))),
            fnv1a64(std::string_view("foobar")));
}

/// WordHasher from its definition: lane i gets words i, i+4, ...; each step rotl 5, xor,
/// multiply; the lanes are folded with splitmix64's mix.
uint64_t referenceWords(const std::vector<uint64_t>& words) {
  uint64_t lanes[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull,
                       0x082EFA98EC4E6C89ull};
  for (size_t i = 0; i < words.size(); ++i)
    lanes[i % 4] = (std::rotl(lanes[i % 4], 5) ^ words[i]) * 0x517CC1B727220A95ull;
  uint64_t h = 0;
  for (uint64_t lane : lanes) h = mix64(h ^ lane);
  return h;
}

TEST(WordHasher, MatchesItsDefinition) {
  const std::vector<uint64_t> words = {1, 2, 3, 4, 5, ~uint64_t(0), 0, 42, 7};
  WordHasher h;
  for (uint64_t w : words) h.word(w);
  EXPECT_EQ(h.value(), referenceWords(words));

  // text: the length, then 8-byte little-endian words, the last zero-padded.
  WordHasher t;
  t.text("abcdefghij");
  EXPECT_EQ(t.value(), referenceWords({10, 0x6867666564636261ull, 0x6a69ull}));
}

TEST(WordHasher, EveryOneWordChangeMovesTheValue) {
  std::vector<uint64_t> words(37);
  for (size_t i = 0; i < words.size(); ++i) words[i] = i * 0x9E3779B97F4A7C15ull;
  auto hash = [](const std::vector<uint64_t>& ws) {
    WordHasher h;
    for (uint64_t w : ws) h.word(w);
    return h.value();
  };
  const uint64_t base = hash(words);
  for (size_t i = 0; i < words.size(); ++i)
    for (int bit : {0, 31, 63}) {
      std::vector<uint64_t> changed = words;
      changed[i] ^= uint64_t(1) << bit;
      EXPECT_NE(hash(changed), base) << "word " << i << " bit " << bit;
    }
  WordHasher a, b;
  a.text("a");
  b.text(std::string("a\0", 2));  // same padded word, different length
  EXPECT_NE(a.value(), b.value());
}

}  // namespace
}  // namespace trnsim::support
