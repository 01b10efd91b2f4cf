// The model loader (trnsim model files and Hugging Face config.json) and the planner's tuning
// files read their JSON through support/json_load.h: 100,000 levels of nesting is a clean error,
// and a key given twice ("layers": 32, "layers": 1), at the top or nested, is refused with the
// file and the dotted key named.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/temp_dir.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/plan/plan_internal.h"

namespace trnsim::plan {
namespace {

std::string readSource(const std::string& relative) {
  std::ifstream in(std::string(TRNSIM_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_FALSE(s.str().empty()) << relative;
  return s.str();
}

/// `text` with `"key": 0, ` inserted before the first "key", so that object holds it twice.
std::string duplicated(std::string text, const std::string& key, const std::string& value = "0") {
  const std::string quoted = "\"" + key + "\"";
  const size_t at = text.find(quoted);
  EXPECT_NE(at, std::string::npos) << key;
  if (at != std::string::npos) text.insert(at, quoted + ": " + value + ", ");
  return text;
}

const std::string kDeep = std::string(100000, '[') + std::string(100000, ']');

class PlanJsonLimits : public support::testing::TempDirTest {
 protected:
  /// loadModel(path)'s error; fails the test when the file loads.
  Status modelError(const std::string& name, const std::string& text) {
    const std::string path = write(name, text);
    Expected<ModelConfig> m = loadModel(path);
    EXPECT_FALSE(m) << name << " loaded";
    return m ? Status::ok() : m.status();
  }
};

TEST_F(PlanJsonLimits, TheUnchangedFilesLoad) {
  Expected<ModelConfig> m = loadModel(write("m.json", readSource("configs/models/llama3-8b.json")));
  ASSERT_TRUE(m) << m.status().toString();
  EXPECT_EQ(m->layers, 32u);
  Expected<ModelConfig> hf =
      loadModel(write("config.json", readSource("tests/data/hf/llama3-8b.config.json")));
  ASSERT_TRUE(hf) << hf.status().toString();
  EXPECT_EQ(hf->layers, 32u);
}

TEST_F(PlanJsonLimits, HundredThousandLevelsIsACleanError) {
  for (const char* name : {"deep.json", "config.json"}) {
    const std::string path = (dir_ / name).string();
    Status s = modelError(name, kDeep);
    EXPECT_EQ(s.code(), ErrorCode::kParse) << s.toString();
    EXPECT_EQ(s.where(), path);
    EXPECT_NE(s.message().find("deeper than 64 levels (at line 1, column 65)"), std::string::npos)
        << s.toString();
  }
  // Deep inside an otherwise valid Hugging Face config.
  std::string hf = readSource("tests/data/hf/gpt2.config.json");
  hf.insert(hf.find("\"vocab_size\""), "\"deep\": " + kDeep + ",\n  ");
  // The file's own object is the first level, so the 64th '[' (column 10 + 64) is too deep.
  Status s = modelError("gpt2.json", hf);
  EXPECT_EQ(s.code(), ErrorCode::kParse) << s.toString();
  EXPECT_NE(s.message().find("deeper than 64 levels (at line 23, column 74)"), std::string::npos)
      << s.toString();
}

TEST_F(PlanJsonLimits, ModelDuplicateKeys) {
  // The tester's file: "layers": 32, "layers": 1 used to load as a 1-layer model.
  const std::string model = readSource("configs/models/llama3-8b.json");
  Status top = modelError("m.json", duplicated(model, "layers", "1"));
  EXPECT_EQ(top.code(), ErrorCode::kConfig);
  EXPECT_EQ(top.where(), (dir_ / "m.json").string() + ": key 'layers'");
  EXPECT_NE(top.message().find("appears twice in the same object (again at line 4, column 16)"),
            std::string::npos)
      << top.toString();
  std::string nested = model;
  nested.insert(nested.find("\"layers\""), "\"extra\": {\"a\": [{\"b\": 1, \"b\": 2}]},\n  ");
  Status inner = modelError("n.json", nested);
  EXPECT_EQ(inner.where(), (dir_ / "n.json").string() + ": key 'extra.a.0.b'") << inner.toString();
}

TEST_F(PlanJsonLimits, HuggingFaceDuplicateKeys) {
  const std::string hf = readSource("tests/data/hf/gpt2.config.json");
  Status top = modelError("config.json", duplicated(hf, "n_layer", "1"));
  EXPECT_EQ(top.code(), ErrorCode::kConfig);
  EXPECT_EQ(top.where(), (dir_ / "config.json").string() + ": key 'n_layer'") << top.toString();
  Status inner = modelError("config.json", duplicated(hf, "do_sample", "false"));
  EXPECT_EQ(inner.where(), (dir_ / "config.json").string() +
                               ": key 'task_specific_params.text-generation.do_sample'")
      << inner.toString();
}

TEST_F(PlanJsonLimits, OversizedModelFileIsRefusedBeforeReading) {
  const std::string path = write("big.json", "");
  std::filesystem::resize_file(path, (uint64_t{64} << 20) + 1);
  Expected<ModelConfig> m = loadModel(path);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.status().where(), path);
  EXPECT_NE(m.status().message().find("over the 64 MiB limit"), std::string::npos)
      << m.status().toString();
}

TEST(PlanTuningJsonLimits, DepthAndDuplicates) {
  const std::string origin = "configs/plan/roofline.json";
  Expected<std::string_view> builtin = detail::builtinPlanFile("roofline");
  ASSERT_TRUE(builtin);
  const std::string text(*builtin);
  ASSERT_TRUE(detail::parseTuningFile(text, origin));

  auto deep = detail::parseTuningFile(kDeep, origin);
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.status().code(), ErrorCode::kParse);
  EXPECT_EQ(deep.status().where(), origin);
  EXPECT_NE(deep.status().message().find("deeper than 64 levels"), std::string::npos);

  auto top = detail::parseTuningFile(duplicated(text, "max_efficiency"), origin);
  ASSERT_FALSE(top);
  EXPECT_EQ(top.status().where(), origin + ": key 'max_efficiency'") << top.status().toString();
  // "value" first appears inside max_efficiency's value object.
  auto inner = detail::parseTuningFile(duplicated(text, "value"), origin);
  ASSERT_FALSE(inner);
  EXPECT_EQ(inner.status().where(), origin + ": key 'max_efficiency.value'")
      << inner.status().toString();
}

}  // namespace
}  // namespace trnsim::plan
