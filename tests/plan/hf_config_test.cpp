// Hugging Face config.json files as --model (hf_config.cpp): the public configs in
// tests/data/hf/ give the same planner model as the hand-written configs/models files (from
// the papers) where there is one, published parameter counts where there is not, and bad
// files give errors naming the file and the Hugging Face key.

#include <gtest/gtest.h>

#include <string>

#include "trnsim/plan/model_config.h"

namespace trnsim::plan {
namespace {

std::string fixture(const std::string& name) {
  return std::string(TRNSIM_SOURCE_DIR) + "/tests/data/hf/" + name + ".config.json";
}

ModelConfig load(const std::string& nameOrPath) {
  auto m = loadModel(nameOrPath);
  EXPECT_TRUE(m) << m.status().toString();
  return m ? *m : ModelConfig{};
}

void expectSameShape(const ModelConfig& hf, const ModelConfig& ref) {
  EXPECT_EQ(hf.layers, ref.layers) << ref.name;
  EXPECT_EQ(hf.hidden, ref.hidden) << ref.name;
  EXPECT_EQ(hf.ffnHidden, ref.ffnHidden) << ref.name;
  EXPECT_EQ(hf.heads, ref.heads) << ref.name;
  EXPECT_EQ(hf.kvHeads, ref.kvHeads) << ref.name;
  EXPECT_EQ(hf.vocab, ref.vocab) << ref.name;
  EXPECT_EQ(hf.activation, ref.activation) << ref.name;
  EXPECT_EQ(hf.experts, ref.experts) << ref.name;
  EXPECT_EQ(hf.topK, ref.topK) << ref.name;
  EXPECT_EQ(hf.sharedExperts, ref.sharedExperts) << ref.name;
  EXPECT_EQ(hf.denseLayers, ref.denseLayers) << ref.name;
  EXPECT_EQ(hf.denseFfnHidden, ref.denseFfnHidden) << ref.name;
  EXPECT_EQ(hf.tiedEmbeddings, ref.tiedEmbeddings) << ref.name;
  EXPECT_DOUBLE_EQ(hf.totalParams(), ref.totalParams()) << ref.name;
}

TEST(HfConfig, Llama3MatchesTheCatalogModel) {
  ModelConfig hf = load(fixture("llama3-8b"));
  // The published shape (Llama 3 paper, Table 3), independently of configs/models.
  EXPECT_EQ(hf.hidden, 4096u);
  EXPECT_EQ(hf.layers, 32u);
  EXPECT_EQ(hf.heads, 32u);
  EXPECT_EQ(hf.kvHeads, 8u);
  EXPECT_EQ(hf.ffnHidden, 14336u);
  EXPECT_EQ(hf.vocab, 128256u);
  EXPECT_EQ(hf.name, "llama3-8b");
  EXPECT_NE(hf.source.find("llama"), std::string::npos) << hf.source;
  expectSameShape(hf, load("llama3-8b"));
}

TEST(HfConfig, MixtralAndDeepSeekMatchTheCatalogModels) {
  expectSameShape(load(fixture("mixtral-8x7b")), load("mixtral-8x7b"));
  ModelConfig ds = load(fixture("deepseek-v3"));
  expectSameShape(ds, load("deepseek-v3"));
  EXPECT_NE(ds.source.find("latent attention"), std::string::npos) << ds.source;
}

TEST(HfConfig, Gpt2QwenMistralGiveThePublishedSizes) {
  ModelConfig g = load(fixture("gpt2"));
  EXPECT_EQ(g.layers, 12u);
  EXPECT_EQ(g.hidden, 768u);
  EXPECT_EQ(g.ffnHidden, 3072u);  // n_inner null: 4 * n_embd
  EXPECT_EQ(g.heads, 12u);
  EXPECT_EQ(g.kvHeads, 12u);
  EXPECT_EQ(g.vocab, 50257u);
  EXPECT_EQ(g.activation, Activation::kGelu);
  EXPECT_TRUE(g.tiedEmbeddings);
  // GPT-2 small: 124.4M parameters, of which 0.8M are position embeddings and ~0.1M biases
  // the planner does not count.
  EXPECT_NEAR(g.totalParams(), 124.44e6 - 0.79e6, 0.2e6);
  // Qwen2-7B: 7.62B (Qwen2 technical report, Table 1 / model card); Mistral 7B: 7.24B.
  EXPECT_NEAR(load(fixture("qwen2-7b")).totalParams(), 7.62e9, 0.02e9);
  ModelConfig mistral = load(fixture("mistral-7b"));
  EXPECT_NEAR(mistral.totalParams(), 7.24e9, 0.02e9);
  EXPECT_EQ(mistral.activation, Activation::kSwiglu);
}

TEST(HfConfig, ArchitecturesAloneAndNullsAreUnderstood) {
  // No model_type: the architecture names the family; a null num_key_value_heads means MHA;
  // an explicit n_inner is used as given.
  auto llama = parseModelConfig(
      R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 1024, "intermediate_size": 2816,
          "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": null,
          "vocab_size": 1000})",
      "/tmp/tiny/config.json");
  ASSERT_TRUE(llama) << llama.status().toString();
  EXPECT_EQ(llama->kvHeads, 8u);
  EXPECT_EQ(llama->name, "tiny");  // a config.json is named by its folder
  auto gpt = parseModelConfig(
      R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_inner": 100,
          "vocab_size": 10, "_name_or_path": "org/tiny-gpt"})",
      "x.json");
  ASSERT_TRUE(gpt) << gpt.status().toString();
  EXPECT_EQ(gpt->ffnHidden, 100u);
  EXPECT_EQ(gpt->name, "tiny-gpt");
}

struct BadCase {
  const char* text;
  const char* key;     ///< the key the error must name
  const char* phrase;  ///< and a word of what to do
};

TEST(HfConfig, BadFilesNameTheFileAndTheKey) {
  const BadCase cases[] = {
      {R"({"model_type": "gemma", "hidden_size": 8})", "model_type", "configs/models"},
      {R"({"model_type": 3})", "model_type", "string"},
      {R"({"architectures": ["T5ForConditionalGeneration"]})", "architectures", "model_type"},
      {R"({"model_type": "llama", "intermediate_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 10})",
       "hidden_size", "missing"},
      {R"({"model_type": "mixtral", "hidden_size": 64, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10,
           "num_experts_per_tok": 2})",
       "num_local_experts", "missing"},
      {R"({"model_type": "llama", "hidden_size": 64.5, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10})",
       "hidden_size", "whole number"},
      // Checked by the model parser after translation; the error names the HF key.
      {R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3,
           "vocab_size": 10})",
       "num_key_value_heads", "multiple"},
      {R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 0, "n_head": 4, "vocab_size": 10})",
       "n_layer", "at least"},
      {R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10,
           "tie_word_embeddings": "yes"})",
       "tie_word_embeddings", "true or false"},
      {R"({"model_type": "deepseek_v3", "hidden_size": 64, "intermediate_size": 64,
           "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 10,
           "n_routed_experts": 8, "num_experts_per_tok": 2})",
       "moe_intermediate_size", "missing"},
  };
  for (const BadCase& c : cases) {
    auto m = parseModelConfig(c.text, "my/config.json");
    ASSERT_FALSE(m) << c.text;
    EXPECT_EQ(m.status().where(), std::string("my/config.json: key '") + c.key + "'")
        << m.status().toString();
    EXPECT_NE(m.status().message().find(c.phrase), std::string::npos) << m.status().toString();
  }
}

TEST(HfConfig, AMissingFileNamesThePath) {
  auto m = loadModel("/nonexistent/config.json");
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().toString().find("/nonexistent/config.json"), std::string::npos);
}

}  // namespace
}  // namespace trnsim::plan
