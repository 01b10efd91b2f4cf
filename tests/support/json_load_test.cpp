// support/json_load.h, the one JSON entry for every loader: what it builds equals nlohmann's own
// parser on valid input, and each limit (nesting depth, size, duplicate keys) gives a clean
// error naming the origin, the position and, for duplicates, the dotted key.

#include "trnsim/support/json_load.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "temp_dir.h"

namespace trnsim::support {
namespace {

const std::string kOrigin = "dir/x.json";

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonLoad, ValidTextGivesWhatNlohmannsParserGives) {
  const std::string text = R"({"a": [1, -2, 3.5, 18446744073709551615, true, null, "s\"q"],
    "b": {"c": {"d": []}, "e": {}}, "f": "\u00e9"})";
  Expected<nlohmann::json> j = parseJsonText(text, kOrigin);
  ASSERT_TRUE(j) << j.status().toString();
  EXPECT_EQ(*j, nlohmann::json::parse(text));
  EXPECT_TRUE((*j)["a"][3].is_number_unsigned());
  EXPECT_EQ(*parseJsonText("7", kOrigin), nlohmann::json(7));
}

TEST(JsonLoad, HundredThousandLevelsIsACleanError) {
  for (const std::string& text : {nested(100000), std::string(100000, '['),  // never closed
                                  [] {
                                    std::string s;
                                    for (int i = 0; i < 100000; ++i) s += "{\"a\":";
                                    return s;
                                  }()}) {
    Expected<nlohmann::json> j = parseJsonText(text, kOrigin);
    ASSERT_FALSE(j);
    EXPECT_EQ(j.status().code(), ErrorCode::kParse);
    EXPECT_EQ(j.status().where(), kOrigin);
    EXPECT_NE(j.status().message().find("deeper than 64 levels"), std::string::npos)
        << j.status().toString();
  }
  // "{{" is a syntax error (an object needs a key) long before any depth limit.
  Expected<nlohmann::json> braces = parseJsonText(nested(100000, '{', '}'), kOrigin);
  ASSERT_FALSE(braces);
  EXPECT_NE(braces.status().message().find("line 1, column 2"), std::string::npos)
      << braces.status().toString();
  // The 65th '[' is byte 65 of line 1.
  EXPECT_NE(parseJsonText(nested(100000), kOrigin).status().message().find("line 1, column 65"),
            std::string::npos);
}

TEST(JsonLoad, DepthLimitIsExact) {
  EXPECT_TRUE(parseJsonText(nested(kMaxJsonDepth), kOrigin));
  EXPECT_FALSE(parseJsonText(nested(kMaxJsonDepth + 1), kOrigin));
  // Position on a later line: "[\n [\n  [" with a limit of 2 stops at the third '[' (line 3,
  // column 3).
  Expected<nlohmann::json> j = parseJsonText("[\n [\n  [1]]]", kOrigin, {.maxDepth = 2});
  ASSERT_FALSE(j);
  EXPECT_NE(j.status().message().find("deeper than 2 levels (at line 3, column 3)"),
            std::string::npos)
      << j.status().toString();
}

TEST(JsonLoad, TextOverTheSizeLimitIsRefused) {
  Expected<nlohmann::json> j = parseJsonText("[1, 2, 3]", kOrigin, {.maxBytes = 8});
  ASSERT_FALSE(j);
  EXPECT_EQ(j.status().code(), ErrorCode::kConfig);
  EXPECT_EQ(j.status().where(), kOrigin);
  EXPECT_NE(j.status().message().find("is 9 bytes"), std::string::npos) << j.status().toString();
  EXPECT_TRUE(parseJsonText("[1, 2, 3]", kOrigin, {.maxBytes = 9}));
}

TEST(JsonLoad, DuplicateKeyAtTopLevel) {
  Expected<nlohmann::json> j = parseJsonText("{\"layers\": 32,\n \"layers\": 1}", kOrigin);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.status().code(), ErrorCode::kConfig);
  EXPECT_EQ(j.status().where(), kOrigin + ": key 'layers'");
  EXPECT_NE(j.status().message().find("appears twice in the same object (again at line 2, "
                                      "column 2); keep one"),
            std::string::npos)
      << j.status().toString();
}

TEST(JsonLoad, DuplicateKeyNestedNamesTheDottedPath) {
  Expected<nlohmann::json> j = parseJsonText(
      R"({"x": {"y": [{"b": 1}, {"b": 1, "c": [], "c\"q": 2, "c\"q": 3}]}})", kOrigin);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.status().where(), kOrigin + ": key 'x.y.1.c\"q'");
  // The second "c\"q" opens at byte 53.
  EXPECT_NE(j.status().message().find("line 1, column 53"), std::string::npos)
      << j.status().toString();
  // The same key in different objects is fine.
  EXPECT_TRUE(
      parseJsonText(R"({"a": {"k": 1}, "b": {"k": 1}, "k": [{"k": 0}, {"k": 0}]})", kOrigin));
}

TEST(JsonLoad, InvalidJsonNamesLineAndColumn) {
  Expected<nlohmann::json> j = parseJsonText("{\n  \"a\": 1,\n}", kOrigin);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.status().code(), ErrorCode::kParse);
  EXPECT_EQ(j.status().where(), kOrigin);
  EXPECT_NE(j.status().message().find("line 3, column 1"), std::string::npos)
      << j.status().toString();
  EXPECT_EQ(j.status().message().find("[json.exception"), std::string::npos);
  for (const char* bad : {"", "{} x", "[1,]", "{\"a\" 1}", "\"\xff\"", "nul"}) {
    Expected<nlohmann::json> b = parseJsonText(bad, kOrigin);
    ASSERT_FALSE(b) << bad;
    EXPECT_EQ(b.status().code(), ErrorCode::kParse) << bad;
  }
}

class JsonFile : public testing::TempDirTest {};

TEST_F(JsonFile, ReadsAndParses) {
  Expected<nlohmann::json> j = parseJsonFile(write("ok.json", "{\"a\": [1]}"));
  ASSERT_TRUE(j) << j.status().toString();
  EXPECT_EQ((*j)["a"][0], 1);
}

TEST_F(JsonFile, ErrorsNameThePath) {
  const std::string deep = write("deep.json", nested(100000));
  Expected<nlohmann::json> j = parseJsonFile(deep);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.status().where(), deep);
  const std::string dup = write("dup.json", "{\"a\": {\"b\": 1, \"b\": 2}}");
  EXPECT_EQ(parseJsonFile(dup).status().where(), dup + ": key 'a.b'");
  EXPECT_EQ(parseJsonFile((dir_ / "missing.json").string()).status().code(), ErrorCode::kIo);
  EXPECT_EQ(parseJsonFile(dir_.string()).status().code(), ErrorCode::kIo);
}

TEST_F(JsonFile, SizeIsCheckedBeforeReading) {
  // A sparse file of 64 MiB + 1 byte: refused from its size, without reading 64 MiB.
  const std::string big = write("big.json", "");
  std::filesystem::resize_file(big, kMaxJsonBytes + 1);
  Expected<std::string> text = readJsonFile(big);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.status().code(), ErrorCode::kConfig);
  EXPECT_EQ(text.status().where(), big);
  EXPECT_NE(text.status().message().find("over the 64 MiB limit"), std::string::npos)
      << text.status().toString();
  // A small limit applies to the bytes read as well.
  EXPECT_FALSE(readJsonFile(write("small.json", "[1, 2, 3]"), {.maxBytes = 4}));
}

}  // namespace
}  // namespace trnsim::support
