#pragma once
// A transformer model as the planner sees it, loaded from configs/models/<name>.json or a
// user's own file. Plain numbers here (a model's shape is its definition, not a measurement),
// with an optional "source" string per model.

#include <cstdint>
#include <string>
#include <vector>

#include "trnsim/support/status.h"

namespace trnsim::plan {

enum class Activation : uint8_t { kGelu, kSwiglu };

struct ModelConfig {
  std::string name;
  std::string source;     ///< where the shape comes from (paper, model card)
  std::string sourceFile;
  uint32_t layers = 0;
  uint32_t hidden = 0;
  uint32_t ffnHidden = 0;  ///< per expert for MoE models
  uint32_t heads = 0;
  uint32_t kvHeads = 0;    ///< = heads without GQA
  uint32_t vocab = 0;
  Activation activation = Activation::kGelu;
  uint32_t experts = 1;     ///< 1 = dense
  uint32_t topK = 1;
  uint32_t sharedExperts = 0;    ///< always-on experts of a MoE layer (DeepSeek-style)
  uint32_t denseLayers = 0;      ///< leading layers that are dense in a MoE model
  uint32_t denseFfnHidden = 0;   ///< ffn of those dense layers (0 = ffnHidden)
  bool tiedEmbeddings = false;

  uint32_t headDim() const { return heads ? hidden / heads : 0; }
  /// Parameters in total and those each token uses (differ for MoE).
  double totalParams() const;
  double activeParams() const;
};

/// A model by name (configs/models/*.json, built in) or a path to a JSON file with `layers`,
/// `hidden`, `ffn_hidden`, `heads`, `kv_heads`, `vocab`, `activation`, `experts`, `top_k`, or
/// a Hugging Face config.json (has `model_type` or `architectures`; hf_config.h maps Llama,
/// Mistral, Qwen2, Mixtral, GPT-2 and DeepSeek V2/V3). Errors name the file and the key.
Expected<ModelConfig> loadModel(const std::string& nameOrPath);
Expected<ModelConfig> parseModelConfig(std::string_view jsonText, const std::string& origin);
std::vector<std::string> builtinModelNames();

}  // namespace trnsim::plan
