// The chip, system and price loaders read their files through support/json_load.h: a file
// nested 100,000 levels deep is a clean error (not a crash), and a key given twice, at the top
// or nested, is refused with the file and the dotted key named.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "../support/temp_dir.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/arch/system_files.h"

namespace trnsim::arch {
namespace {

std::string builtin(const std::vector<std::pair<std::string_view, std::string_view>>& files,
                    std::string_view want) {
  for (const auto& [name, text] : files) {
    if (name == want) return std::string(text);
  }
  ADD_FAILURE() << "no builtin " << want;
  return {};
}

/// `text` with `"key": 0, ` inserted before the first "key", so that object holds it twice.
std::string duplicated(std::string text, const std::string& key) {
  const std::string quoted = "\"" + key + "\"";
  const size_t at = text.find(quoted);
  EXPECT_NE(at, std::string::npos) << key;
  if (at != std::string::npos) text.insert(at, quoted + ": 0, ");
  return text;
}

struct Loader {
  const char* kind;
  std::string builtinText;
  std::function<Status(const std::string& path)> load;
  const char* nestedKey;   // a key inside an inner object, duplicated by the test
  const char* nestedPath;  // its dotted path
};

template <class T>
Status statusOf(const Expected<T>& e) {
  return e ? Status::ok() : e.status();
}

std::vector<Loader> loaders() {
  return {
      {"chip", builtin(detail::builtinChipFiles(), "trn2"),
       [](const std::string& p) { return statusOf(loadChip(p)); }, "clock_ghz", "pe.clock_ghz"},
      {"system", builtin(detail::builtinSystemFiles(), "trn2.48xlarge"),
       [](const std::string& p) { return statusOf(loadSystem(p)); }, "size", "scale_up.0.size"},
      {"price", builtin(detail::builtinPriceFiles(), "default"),
       [](const std::string& p) { return statusOf(loadPrices(p)); }, "value",
       "usd_per_node_hour.trn1.32xlarge.value"},
  };
}

class ArchJsonLimits : public support::testing::TempDirTest {};

TEST_F(ArchJsonLimits, TheUnchangedFilesLoad) {
  for (const Loader& l : loaders()) {
    Status s = l.load(write(std::string(l.kind) + ".json", l.builtinText));
    EXPECT_TRUE(s.isOk()) << l.kind << ": " << s.toString();
  }
}

TEST_F(ArchJsonLimits, HundredThousandLevelsIsACleanError) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const Loader& l : loaders()) {
    const std::string path = write(std::string(l.kind) + "_deep.json", deep);
    Status s = l.load(path);
    ASSERT_FALSE(s.isOk()) << l.kind;
    EXPECT_EQ(s.code(), ErrorCode::kParse) << s.toString();
    EXPECT_EQ(s.where(), path);
    EXPECT_NE(s.message().find("deeper than 64 levels (at line 1, column 65)"), std::string::npos)
        << s.toString();
  }
}

TEST_F(ArchJsonLimits, DuplicateTopLevelKey) {
  for (const Loader& l : loaders()) {
    const std::string path =
        write(std::string(l.kind) + "_dup.json", duplicated(l.builtinText, "name"));
    Status s = l.load(path);
    ASSERT_FALSE(s.isOk()) << l.kind;
    EXPECT_EQ(s.code(), ErrorCode::kConfig) << s.toString();
    EXPECT_EQ(s.where(), path + ": key 'name'");
    EXPECT_NE(s.message().find("appears twice in the same object (again at line 3, column "),
              std::string::npos)
        << s.toString();
  }
}

TEST_F(ArchJsonLimits, DuplicateNestedKey) {
  for (const Loader& l : loaders()) {
    const std::string path =
        write(std::string(l.kind) + "_dup.json", duplicated(l.builtinText, l.nestedKey));
    Status s = l.load(path);
    ASSERT_FALSE(s.isOk()) << l.kind;
    EXPECT_EQ(s.code(), ErrorCode::kConfig) << s.toString();
    EXPECT_EQ(s.where(), path + ": key '" + l.nestedPath + "'");
    EXPECT_NE(s.message().find("appears twice"), std::string::npos) << s.toString();
  }
}

TEST_F(ArchJsonLimits, OversizedFileIsRefusedBeforeReading) {
  for (const Loader& l : loaders()) {
    const std::string path = write(std::string(l.kind) + "_big.json", "");
    std::filesystem::resize_file(path, (uint64_t{64} << 20) + 1);  // sparse: nothing is written
    Status s = l.load(path);
    ASSERT_FALSE(s.isOk()) << l.kind;
    EXPECT_EQ(s.where(), path);
    EXPECT_NE(s.message().find("over the 64 MiB limit"), std::string::npos) << s.toString();
  }
}

}  // namespace
}  // namespace trnsim::arch
