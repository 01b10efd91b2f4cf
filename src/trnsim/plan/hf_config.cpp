// Hugging Face config.json -> trnsim model object (hf_config.h). The field names are those of
// the transformers library's configuration classes (LlamaConfig, MistralConfig, Qwen2Config,
// MixtralConfig, GPT2Config, DeepseekV2Config/DeepseekV3Config) as they appear in the files
// model repositories ship. The result is checked by the trnsim model parser like any model
// file; no exception leaves this file.

#include "trnsim/plan/hf_config.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace trnsim::plan::detail {
namespace {

using nlohmann::json;

enum class Family : uint8_t { kLlama, kMixtral, kGpt2, kDeepseek };

struct ModelType {
  const char* modelType;
  const char* architecture;  ///< the class name in "architectures"
  Family family;
};
constexpr ModelType kModelTypes[] = {
    {"llama", "LlamaForCausalLM", Family::kLlama},
    {"mistral", "MistralForCausalLM", Family::kLlama},
    {"qwen2", "Qwen2ForCausalLM", Family::kLlama},
    {"mixtral", "MixtralForCausalLM", Family::kMixtral},
    {"gpt2", "GPT2LMHeadModel", Family::kGpt2},
    {"deepseek_v2", "DeepseekV2ForCausalLM", Family::kDeepseek},
    {"deepseek_v3", "DeepseekV3ForCausalLM", Family::kDeepseek},
};

std::string supportedTypes() {
  std::string s;
  for (const ModelType& t : kModelTypes) s += (s.empty() ? "" : ", ") + std::string(t.modelType);
  return s;
}

std::string shown(const json& j) {
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

class Translator {
 public:
  Translator(const json& root, const std::string& origin, json& out,
             std::map<std::string, std::string>& sourceKey)
      : root_(root), origin_(origin), out_(out), sourceKey_(sourceKey) {}

  Status run() {
    TRNSIM_ASSIGN_OR_RETURN(const ModelType* type, modelType());
    type_ = type;
    out_ = json::object();
    out_["name"] = name();
    switch (type->family) {
      case Family::kLlama:
        return llama(false);
      case Family::kMixtral:
        return llama(true);
      case Family::kGpt2:
        return gpt2();
      case Family::kDeepseek:
        return deepseek();
    }
    return Status::ok();
  }

 private:
  Status error(std::string_view key, std::string message) const {
    return Status(ErrorCode::kConfig, std::move(message),
                  fmt::format("{}: key '{}'", origin_, key));
  }

  Expected<const ModelType*> modelType() const {
    if (root_.contains("model_type")) {
      const json& v = root_["model_type"];
      if (!v.is_string())
        return error("model_type", "expected a string such as \"llama\", got " + shown(v));
      for (const ModelType& t : kModelTypes)
        if (v == t.modelType) return &t;
      return error("model_type",
                   fmt::format("'{}' is not a model type trnsim maps (it maps {}); write a trnsim "
                               "model file instead, with the keys of configs/models/*.json "
                               "(layers, hidden, ffn_hidden, heads, kv_heads, vocab, activation)",
                               v.get<std::string>(), supportedTypes()));
    }
    const json archs = root_.contains("architectures") ? root_["architectures"] : json();
    if (archs.is_array()) {
      for (const json& a : archs)
        for (const ModelType& t : kModelTypes)
          if (a.is_string() && a == t.architecture) return &t;
    }
    std::string list;
    for (const ModelType& t : kModelTypes)
      list += (list.empty() ? "" : ", ") + std::string(t.architecture);
    return error("architectures",
                 fmt::format("{} names no architecture trnsim maps ({}), and there is no "
                             "model_type; add \"model_type\" or write a trnsim model file (the "
                             "keys of configs/models/*.json)",
                             shown(archs), list));
  }

  /// The model's name: "_name_or_path" when given, else the file's folder for a config.json.
  std::string name() const {
    if (root_.contains("_name_or_path") && root_["_name_or_path"].is_string()) {
      std::filesystem::path p(root_["_name_or_path"].get<std::string>());
      std::string n = p.filename().string();
      if (n.empty()) n = p.parent_path().filename().string();
      if (!n.empty()) return n;
    }
    std::filesystem::path file(origin_);
    if (file.stem() == "config" && !file.parent_path().filename().empty())
      return file.parent_path().filename().string();
    std::string stem = file.stem().string();  // "llama3-8b.config.json" -> "llama3-8b"
    if (stem.size() > 7 && stem.ends_with(".config")) stem.resize(stem.size() - 7);
    return stem;
  }

  std::string requiredText() const {
    std::string s;
    for (const std::string& k : required_) s += (s.empty() ? "" : ", ") + k;
    return s;
  }

  /// A whole number at `key`; nullopt when absent or null.
  Expected<std::optional<uint64_t>> optionalCount(const char* key) const {
    if (!root_.contains(key) || root_[key].is_null()) return std::optional<uint64_t>();
    const json& v = root_[key];
    double d = v.is_number() ? v.get<double>() : -1;
    if (!v.is_number() || !std::isfinite(d) || d != std::floor(d) || d < 0 ||
        d > static_cast<double>(std::numeric_limits<uint32_t>::max()))
      return error(key, "expected a whole number, got " + shown(v));
    return std::optional<uint64_t>(static_cast<uint64_t>(d));
  }

  /// A whole number the model cannot do without.
  Expected<uint64_t> requiredCount(const char* key) const {
    TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> v, optionalCount(key));
    if (!v)
      return error(key, fmt::format("missing; a '{}' config.json needs {}. Is this the model's "
                                    "config.json? Otherwise write a trnsim model file (the keys "
                                    "of configs/models/*.json)",
                                    type_->modelType, requiredText()));
    return *v;
  }

  /// Copies `hfKey` (required) to the trnsim key `key`.
  Status copy(const char* key, const char* hfKey) {
    TRNSIM_ASSIGN_OR_RETURN(uint64_t v, requiredCount(hfKey));
    set(key, hfKey, v);
    return Status::ok();
  }
  void set(const char* key, const char* hfKey, const json& value) {
    out_[key] = value;
    sourceKey_[key] = hfKey;
  }

  Expected<bool> flag(const char* key, bool fallback) const {
    if (!root_.contains(key) || root_[key].is_null()) return fallback;
    if (!root_[key].is_boolean())
      return error(key, "expected true or false, got " + shown(root_[key]));
    return root_[key].get<bool>();
  }

  Status activationText(const char* key) const {
    if (root_.contains(key) && !root_[key].is_string() && !root_[key].is_null())
      return error(key,
                   "expected the activation's name such as \"silu\", got " + shown(root_[key]));
    return Status::ok();
  }

  /// The attention and embedding fields shared by the Llama-style families.
  Status llamaCommon() {
    TRNSIM_RETURN_IF_ERROR(copy("layers", "num_hidden_layers"));
    TRNSIM_RETURN_IF_ERROR(copy("hidden", "hidden_size"));
    TRNSIM_RETURN_IF_ERROR(copy("heads", "num_attention_heads"));
    TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> kv, optionalCount("num_key_value_heads"));
    if (kv) set("kv_heads", "num_key_value_heads", *kv);  // absent: = heads (no GQA)
    TRNSIM_RETURN_IF_ERROR(copy("vocab", "vocab_size"));
    TRNSIM_ASSIGN_OR_RETURN(bool tied, flag("tie_word_embeddings", false));
    set("tied_embeddings", "tie_word_embeddings", tied);
    // Every family here has a gated MLP (up, gate, down) whatever hidden_act is: the planner's
    // "swiglu" counts those three matrices.
    TRNSIM_RETURN_IF_ERROR(activationText("hidden_act"));
    set("activation", "hidden_act", "swiglu");
    return Status::ok();
  }

  Status llama(bool mixtral) {
    required_ = {"num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                 "vocab_size"};
    if (mixtral) required_.insert(required_.end(), {"num_local_experts", "num_experts_per_tok"});
    TRNSIM_RETURN_IF_ERROR(llamaCommon());
    TRNSIM_RETURN_IF_ERROR(copy("ffn_hidden", "intermediate_size"));
    if (mixtral) {
      TRNSIM_RETURN_IF_ERROR(copy("experts", "num_local_experts"));
      TRNSIM_RETURN_IF_ERROR(copy("top_k", "num_experts_per_tok"));
    }
    out_["source"] = fmt::format("Hugging Face config.json (model_type {}) {}", type_->modelType,
                                 origin_);
    return Status::ok();
  }

  Status gpt2() {
    required_ = {"n_layer", "n_embd", "n_head", "vocab_size"};
    TRNSIM_RETURN_IF_ERROR(copy("layers", "n_layer"));
    TRNSIM_ASSIGN_OR_RETURN(uint64_t hidden, requiredCount("n_embd"));
    set("hidden", "n_embd", hidden);
    TRNSIM_RETURN_IF_ERROR(copy("heads", "n_head"));
    TRNSIM_RETURN_IF_ERROR(copy("vocab", "vocab_size"));
    // n_inner null (the usual case) means 4 * n_embd (GPT2MLP).
    TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> inner, optionalCount("n_inner"));
    set("ffn_hidden", "n_inner", inner ? *inner : 4 * hidden);
    TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> positions, optionalCount("n_positions"));
    TRNSIM_ASSIGN_OR_RETURN(bool tied, flag("tie_word_embeddings", true));  // GPT-2 ties them
    set("tied_embeddings", "tie_word_embeddings", tied);
    TRNSIM_RETURN_IF_ERROR(activationText("activation_function"));
    set("activation", "activation_function", "gelu");  // a plain two-matrix MLP
    out_["source"] = fmt::format(
        "Hugging Face config.json (model_type gpt2) {}{}", origin_,
        positions ? fmt::format("; trained context n_positions = {}", *positions) : "");
    return Status::ok();
  }

  Status deepseek() {
    required_ = {"num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                 "vocab_size"};
    TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> routed, optionalCount("n_routed_experts"));
    if (routed && *routed > 1)
      required_.insert(required_.end(), {"moe_intermediate_size", "num_experts_per_tok"});
    TRNSIM_RETURN_IF_ERROR(llamaCommon());
    if (!routed || *routed <= 1) {  // a dense DeepSeek model
      TRNSIM_RETURN_IF_ERROR(copy("ffn_hidden", "intermediate_size"));
    } else {
      set("experts", "n_routed_experts", *routed);
      TRNSIM_RETURN_IF_ERROR(copy("ffn_hidden", "moe_intermediate_size"));
      TRNSIM_RETURN_IF_ERROR(copy("top_k", "num_experts_per_tok"));
      TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> shared, optionalCount("n_shared_experts"));
      if (shared && *shared) set("shared_experts", "n_shared_experts", *shared);
      TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> firstDense,
                              optionalCount("first_k_dense_replace"));
      if (firstDense && *firstDense) {
        set("dense_layers", "first_k_dense_replace", *firstDense);
        TRNSIM_RETURN_IF_ERROR(copy("dense_ffn_hidden", "intermediate_size"));
      }
      TRNSIM_ASSIGN_OR_RETURN(std::optional<uint64_t> freq, optionalCount("moe_layer_freq"));
      if (freq && *freq != 1)
        return error("moe_layer_freq",
                     fmt::format("{}: trnsim models a MoE layer after every dense prefix layer "
                                 "(moe_layer_freq 1); write a trnsim model file for other "
                                 "layouts",
                                 *freq));
    }
    // The planner's model has no multi-head latent attention: like configs/models/
    // deepseek-v3.json, attention is MHA-equivalent with head_dim = hidden / heads.
    bool mla = root_.contains("kv_lora_rank") && !root_["kv_lora_rank"].is_null();
    out_["source"] = fmt::format("Hugging Face config.json (model_type {}) {}{}", type_->modelType,
                                 origin_,
                                 mla ? "; multi-head latent attention modelled as MHA-equivalent "
                                       "FLOPs (head_dim = hidden / heads)"
                                     : "");
    return Status::ok();
  }

  const json& root_;
  const std::string& origin_;
  json& out_;
  std::map<std::string, std::string>& sourceKey_;
  const ModelType* type_ = nullptr;
  std::vector<std::string> required_;
};

}  // namespace

bool isHuggingFaceConfig(const json& root) {
  return root.is_object() && (root.contains("model_type") || root.contains("architectures"));
}

Status translateHuggingFaceConfig(const json& root, const std::string& origin, json& out,
                                  std::map<std::string, std::string>& sourceKey) {
  return Translator(root, origin, out, sourceKey).run();
}

}  // namespace trnsim::plan::detail
