#pragma once
// A Hugging Face `config.json` (the file a model repository ships) as a planner model: the
// fields of Llama, Mistral, Qwen2, Mixtral, GPT-2 and DeepSeek (V2/V3 MoE) mapped onto the
// keys of a trnsim model file (configs/models/*.json). Internal to the plan layer: the model
// loader (model_config.cpp) calls it when a file has "model_type" or "architectures".

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "trnsim/support/status.h"

namespace trnsim::plan::detail {

/// Whether `root` is a Hugging Face config (has "model_type" or "architectures").
bool isHuggingFaceConfig(const nlohmann::json& root);

/// Translates `root` into `out`, a trnsim model object, and fills `sourceKey` (trnsim key ->
/// the Hugging Face key it came from, so a later check names the key the user wrote). Errors
/// name `origin`, the Hugging Face key and what to do: an unknown model_type, a missing or
/// malformed field.
Status translateHuggingFaceConfig(const nlohmann::json& root, const std::string& origin,
                                  nlohmann::json& out,
                                  std::map<std::string, std::string>& sourceKey);

}  // namespace trnsim::plan::detail
