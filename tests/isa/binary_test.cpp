// The binary program format: exact round trips, and a loader that survives every single-byte
// flip, every truncation and forged payloads whose checksum was recomputed to match.

#include "trnsim/isa/binary.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "isa_test_util.h"
#include "random_program.h"
#include "trnsim/isa/text.h"

namespace trnsim::isa {
namespace {

constexpr size_t kHeader = 32;

/// FNV-1a 64 written out again from its definition (offset basis, prime), to check the
/// format's checksum independently of the encoder.
uint64_t referenceFnv1a(const std::vector<uint8_t>& b, size_t from) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = from; i < b.size(); ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

void resign(std::vector<uint8_t>& b) {
  uint64_t h = referenceFnv1a(b, kHeader);
  for (int i = 0; i < 8; ++i) b[24 + size_t(i)] = uint8_t(h >> (8 * i));
}

Program smallProgram() {
  Program p = testing::randomProgram(11, 8);
  p.name = "small";
  return p;
}

TEST(BinaryFormat, HeaderLayout) {
  std::vector<uint8_t> b = encodeProgram(smallProgram());
  ASSERT_GE(b.size(), kHeader);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 8), "TRNSIMPG");
  EXPECT_EQ(b[8] | b[9] << 8, int(kBinaryFormatVersion));
  uint64_t payload = 0, sum = 0;
  for (int i = 7; i >= 0; --i) {
    payload = payload << 8 | b[16 + size_t(i)];
    sum = sum << 8 | b[24 + size_t(i)];
  }
  EXPECT_EQ(payload, b.size() - kHeader);
  EXPECT_EQ(sum, referenceFnv1a(b, kHeader));
  EXPECT_EQ(payloadChecksum(std::span<const uint8_t>(b).subspan(kHeader)), sum);
}

TEST(BinaryFormat, RandomProgramsRoundTripExactly) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    Program p = testing::randomProgram(seed);
    std::vector<uint8_t> b = encodeProgram(p);
    auto back = decodeProgram(b, "rand.bin");
    ASSERT_TRUE(back.hasValue()) << back.status().toString();
    // Same text and same bytes again (the text form compares floats by bits).
    EXPECT_EQ(printProgram(*back), printProgram(p));
    EXPECT_EQ(encodeProgram(*back), b);
  }
}

TEST(BinaryFormat, EncodingIsByteIdenticalToTheFormatBeforeTheSharedSerializer) {
  // Sizes and FNV-1a 64 hashes of whole encodings made by the encoder before it was moved onto
  // support::ByteWriter (commit a63e960); any change to the bytes of the format moves them.
  // The programs come from std::mt19937_64 through std::uniform_int_distribution (libstdc++'s).
  struct Golden {
    uint64_t seed;
    size_t bytes;
    uint64_t hash;
  };
  const Golden golden[] = {
      {1, 12556, 0x19ace0d6b33be45eull}, {2, 12707, 0x9a7f8b11dbebb8bcull},
      {3, 12784, 0x6002bc335ceb3943ull}, {4, 13095, 0x9f6ac8ad58cbea9full},
      {5, 13561, 0xe15c98be5b030441ull}, {6, 12262, 0x5d10d8e7418fe7a6ull},
  };
  for (const Golden& g : golden) {
    Program p = testing::randomProgram(g.seed);
    if (g.seed % 2 == 0) p.replicaGroups = {ReplicaGroup{{{0, 1}, {2, 3}}}, ReplicaGroup{}};
    const std::vector<uint8_t> b = encodeProgram(p);
    EXPECT_EQ(b.size(), g.bytes) << "seed " << g.seed;
    EXPECT_EQ(referenceFnv1a(b, 0), g.hash) << "seed " << g.seed;
    Expected<Program> back = decodeProgram(b, "golden");
    ASSERT_TRUE(back.hasValue()) << back.status().toString();
    EXPECT_EQ(back->replicaGroups, p.replicaGroups);
  }
}

TEST(BinaryFormat, EveryByteFlipIsCaught) {
  std::vector<uint8_t> good = encodeProgram(smallProgram());
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
      std::vector<uint8_t> b = good;
      b[i] ^= mask;
      auto r = decodeProgram(b, "flip.bin");
      ASSERT_FALSE(r.hasValue()) << "flip at " << i;
      EXPECT_EQ(r.status().code(), ErrorCode::kCorrupt);
      EXPECT_EQ(r.status().where(), "flip.bin");
      EXPECT_NE(r.status().message().find("at byte"), std::string::npos) << r.status().message();
    }
  }
}

TEST(BinaryFormat, EveryTruncationIsCaught) {
  std::vector<uint8_t> good = encodeProgram(smallProgram());
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> b(good.begin(), good.begin() + std::ptrdiff_t(n));
    auto r = decodeProgram(b, "cut.bin");
    ASSERT_FALSE(r.hasValue()) << "length " << n;
    EXPECT_EQ(r.status().code(), ErrorCode::kCorrupt);
  }
}

TEST(BinaryFormat, ForgedPayloadsNeverCrash) {
  // Flips and truncations with a recomputed checksum reach the structural checks; each must
  // give an error or a program (run under ASan/UBSan to check memory safety).
  std::vector<uint8_t> good = encodeProgram(smallProgram());
  size_t errors = 0, programs = 0;
  for (size_t i = kHeader; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0xff)}) {
      std::vector<uint8_t> b = good;
      b[i] ^= mask;
      resign(b);
      auto r = decodeProgram(b, "forged.bin");
      if (r.hasValue()) {
        ++programs;
        (void)printProgram(*r);
      } else {
        ++errors;
        EXPECT_EQ(r.status().code(), ErrorCode::kCorrupt);
      }
    }
  }
  EXPECT_GT(errors, 0u);
  EXPECT_GT(programs, 0u);  // e.g. a flipped imm bit is still a well-formed program
}

TEST(BinaryFormat, ForgedHugeCountsAreRefusedWithoutAllocating) {
  Program p;
  p.name = "n";
  std::vector<uint8_t> b = encodeProgram(p);
  // META section: tag(4) len(8) name(4+1) target(4+0) -> LOCS section starts after it.
  size_t locs = kHeader + 12 + 5 + 4;
  size_t count = locs + 12;
  for (int i = 0; i < 4; ++i) b[count + size_t(i)] = 0xff;  // 4 billion locations
  resign(b);
  auto r = decodeProgram(b, "huge.bin");
  ASSERT_FALSE(r.hasValue());
  EXPECT_NE(r.status().message().find("location count 4294967295 cannot fit"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("at byte " + std::to_string(count)), std::string::npos)
      << r.status().message();
}

TEST(BinaryFormat, WrongMagicVersionAndLength) {
  std::vector<uint8_t> b = encodeProgram(smallProgram());
  std::vector<uint8_t> v = b;
  v[8] = uint8_t(kBinaryFormatVersion + 1);
  auto r = decodeProgram(v, "v.bin");
  ASSERT_FALSE(r.hasValue());
  EXPECT_NE(r.status().message().find("format version " + std::to_string(kBinaryFormatVersion + 1)),
            std::string::npos);
  std::vector<uint8_t> m = b;
  m[0] = 'X';
  r = decodeProgram(m, "m.bin");
  ASSERT_FALSE(r.hasValue());
  EXPECT_NE(r.status().message().find("bad magic"), std::string::npos);
  std::vector<uint8_t> padded = b;
  padded.push_back(0);
  r = decodeProgram(padded, "p.bin");
  ASSERT_FALSE(r.hasValue());
  EXPECT_NE(r.status().message().find("payload length"), std::string::npos);
}

TEST(BinaryFormat, FilesInBothForms) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("trnsim_isa_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Program p = testing::randomProgram(5, 20);
  for (const char* name : {"prog.tsim", "prog.txt", "prog.bin", "prog"}) {
    std::string path = (dir / name).string();
    ASSERT_TRUE(saveProgramFile(p, path).isOk());
    std::ifstream in(path, std::ios::binary);
    char first[8] = {};
    in.read(first, 8);
    bool binary = std::string(first, 8) == "TRNSIMPG";
    EXPECT_EQ(binary, std::string(name).find(".t") == std::string::npos) << name;
    auto back = loadProgramFile(path);
    ASSERT_TRUE(back.hasValue()) << back.status().toString();
    EXPECT_EQ(printProgram(*back), printProgram(p)) << name;
  }
  auto missing = loadProgramFile((dir / "nope.bin").string());
  ASSERT_FALSE(missing.hasValue());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  {
    std::ofstream bad(dir / "bad.tsim");
    bad << "program \"x\"\nnot_an_op\n";
  }
  auto parsed = loadProgramFile((dir / "bad.tsim").string());
  ASSERT_FALSE(parsed.hasValue());
  EXPECT_EQ(parsed.status().where(), (dir / "bad.tsim").string() + ":2:1");

  // A folder, an empty file and a file of declarations and comments are errors naming the
  // path (they used to give a libstdc++ message, or run as an empty program).
  auto folder = loadProgramFile(dir.string());
  ASSERT_FALSE(folder.hasValue());
  EXPECT_EQ(folder.status().code(), ErrorCode::kIo);
  EXPECT_EQ(folder.status().where(), dir.string());
  EXPECT_NE(folder.status().message().find("is a directory"), std::string::npos);
  std::ofstream(dir / "empty.tsim").close();
  std::ofstream(dir / "comments.tsim") << "# nothing but a comment\nprogram \"x\"\n";
  for (const char* name : {"empty.tsim", "comments.tsim"}) {
    auto none = loadProgramFile((dir / name).string());
    ASSERT_FALSE(none.hasValue()) << name;
    EXPECT_EQ(none.status().code(), ErrorCode::kParse) << name;
    EXPECT_EQ(none.status().where(), (dir / name).string());
    EXPECT_NE(none.status().message().find("nothing to run"), std::string::npos);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trnsim::isa
