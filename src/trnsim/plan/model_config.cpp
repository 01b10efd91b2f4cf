// Model catalog: configs/models/*.json (built in) or a user's file -> validated ModelConfig.
// Every failure names the file and the key; no exception leaves this file.

#include "trnsim/plan/model_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "trnsim/arch/json_util.h"
#include "trnsim/plan/hf_config.h"
#include "trnsim/plan/plan_internal.h"
#include "trnsim/support/json_load.h"

namespace trnsim::plan {
namespace detail {

std::string didYouMean(std::string_view key, const std::vector<std::string>& candidates) {
  size_t best = std::numeric_limits<size_t>::max();
  std::string bestName;
  for (const std::string& c : candidates) {
    size_t d = arch::detail::editDistance(key, c);
    if (d < best) {
      best = d;
      bestName = c;
    }
  }
  if (bestName.empty() || best > std::max<size_t>(2, key.size() / 3)) return "";
  return fmt::format(" (did you mean '{}'?)", bestName);
}

LayerParams layerParams(const ModelConfig& m, bool moeLayer) {
  const double h = m.hidden;
  const double hd = m.headDim();
  LayerParams p;
  // QKV (kv heads shared under GQA) + output projection + two norms (scale and bias).
  p.attention = h * (m.heads + 2.0 * m.kvHeads) * hd + m.heads * hd * h + 4 * h;
  const double matsPerMlp = m.activation == Activation::kSwiglu ? 3 : 2;
  if (!moeLayer) {
    const double f = m.denseFfnHidden && m.experts > 1 ? m.denseFfnHidden : m.ffnHidden;
    p.dense = matsPerMlp * h * f;
  } else {
    p.dense = m.sharedExperts * matsPerMlp * h * m.ffnHidden + h * m.experts;  // + router
    p.experts = m.experts * matsPerMlp * h * m.ffnHidden;
  }
  return p;
}

}  // namespace detail

namespace {

using nlohmann::json;

struct Key {
  const char* name;
  bool required;
};
constexpr Key kKeys[] = {
    {"name", false},
    {"description", false},
    {"source", false},
    {"layers", true},
    {"hidden", true},
    {"ffn_hidden", true},
    {"heads", true},
    {"kv_heads", false},
    {"vocab", true},
    {"activation", true},
    {"experts", false},
    {"top_k", false},
    {"shared_experts", false},
    {"dense_layers", false},
    {"dense_ffn_hidden", false},
    {"tied_embeddings", false},
};

class ModelParser {
 public:
  ModelParser(std::string_view text, const std::string& origin) : text_(text), origin_(origin) {}

  Expected<ModelConfig> run() {
    TRNSIM_ASSIGN_OR_RETURN(json root, support::parseJsonText(text_, origin_));
    if (!root.is_object()) {
      return Status(ErrorCode::kConfig, "expected a JSON object with the model's shape", origin_);
    }
    if (detail::isHuggingFaceConfig(root)) {
      // A Hugging Face config.json: translated to the keys below and checked like any model
      // file; a failed check names the Hugging Face key the value came from.
      json translated;
      std::map<std::string, std::string> sourceKey;
      TRNSIM_RETURN_IF_ERROR(
          detail::translateHuggingFaceConfig(root, origin_, translated, sourceKey));
      Expected<ModelConfig> m = fromJson(translated);
      if (m) return m;
      const Status& s = m.status();
      for (const auto& [key, hfKey] : sourceKey) {
        if (s.where() == fmt::format("{}: key '{}'", origin_, key))
          return Status(
              s.code(),
              fmt::format("{} (read from '{}' as the planner's '{}')", s.message(), hfKey, key),
              fmt::format("{}: key '{}'", origin_, hfKey));
      }
      return s;
    }
    return fromJson(root);
  }

 private:
  /// A trnsim model object (configs/models/*.json) -> a checked ModelConfig.
  Expected<ModelConfig> fromJson(const json& root) const {
    std::vector<std::string> known;
    for (const Key& k : kKeys) known.emplace_back(k.name);
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
        return error(it.key(), fmt::format("unknown key{}; a model has the keys {}",
                                           detail::didYouMean(it.key(), known), keyList()));
      }
    }
    for (const Key& k : kKeys) {
      if (k.required && !root.contains(k.name)) {
        return error(k.name, fmt::format("missing; a model needs {}", requiredList()));
      }
    }

    ModelConfig m;
    TRNSIM_ASSIGN_OR_RETURN(m.name, text(root, "name", defaultName()));
    TRNSIM_ASSIGN_OR_RETURN(m.source, text(root, "source", ""));
    TRNSIM_ASSIGN_OR_RETURN(std::string description, text(root, "description", ""));
    (void)description;
    m.sourceFile = origin_;
    TRNSIM_ASSIGN_OR_RETURN(m.layers, count(root, "layers", 0, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.hidden, count(root, "hidden", 0, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.ffnHidden, count(root, "ffn_hidden", 0, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.heads, count(root, "heads", 0, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.kvHeads, count(root, "kv_heads", m.heads, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.vocab, count(root, "vocab", 0, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.experts, count(root, "experts", 1, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.topK, count(root, "top_k", 1, 1));
    TRNSIM_ASSIGN_OR_RETURN(m.sharedExperts, count(root, "shared_experts", 0, 0));
    TRNSIM_ASSIGN_OR_RETURN(m.denseLayers, count(root, "dense_layers", 0, 0));
    TRNSIM_ASSIGN_OR_RETURN(m.denseFfnHidden, count(root, "dense_ffn_hidden", 0, 0));
    if (root.contains("tied_embeddings")) {
      if (!root["tied_embeddings"].is_boolean()) {
        return error("tied_embeddings",
                     "expected true or false, got " + shown(root["tied_embeddings"]));
      }
      m.tiedEmbeddings = root["tied_embeddings"].get<bool>();
    }
    const json& act = root["activation"];
    if (!act.is_string() || (act != "gelu" && act != "swiglu")) {
      return error("activation", "expected \"gelu\" or \"swiglu\", got " + shown(act));
    }
    m.activation = act == "gelu" ? Activation::kGelu : Activation::kSwiglu;

    if (m.hidden % m.heads != 0) {
      return error("heads", fmt::format("hidden ({}) is not divisible by heads ({}); the head "
                                        "dimension must be a whole number",
                                        m.hidden, m.heads));
    }
    if (m.kvHeads > m.heads || m.heads % m.kvHeads != 0) {
      return error("kv_heads", fmt::format("heads ({}) must be a multiple of kv_heads ({})",
                                           m.heads, m.kvHeads));
    }
    if (m.topK > m.experts) {
      return error("top_k",
                   fmt::format("top_k ({}) is larger than experts ({})", m.topK, m.experts));
    }
    if (m.experts == 1 && (m.sharedExperts || m.denseLayers || m.denseFfnHidden)) {
      return error(m.sharedExperts ? "shared_experts"
                                   : (m.denseLayers ? "dense_layers" : "dense_ffn_hidden"),
                   "only meaningful for a MoE model (experts > 1)");
    }
    if (m.denseLayers >= m.layers && m.experts > 1) {
      return error("dense_layers", fmt::format("dense_layers ({}) must be smaller than layers ({})",
                                               m.denseLayers, m.layers));
    }
    return m;
  }

  static std::string shown(const json& j) {
    std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
  }
  static std::string keyList() {
    std::string s;
    for (const Key& k : kKeys) s += (s.empty() ? "" : ", ") + std::string(k.name);
    return s;
  }
  static std::string requiredList() {
    std::string s;
    for (const Key& k : kKeys)
      if (k.required) s += (s.empty() ? "" : ", ") + std::string(k.name);
    return s;
  }
  std::string defaultName() const {
    std::filesystem::path p(origin_);
    return p.stem().string();
  }
  Status error(std::string_view key, std::string message) const {
    return Status(ErrorCode::kConfig, std::move(message),
                  fmt::format("{}: key '{}'", origin_, key));
  }
  Expected<std::string> text(const json& root, const char* key, std::string fallback) const {
    if (!root.contains(key)) return fallback;
    if (!root[key].is_string()) return error(key, "expected a string, got " + shown(root[key]));
    return root[key].get<std::string>();
  }
  Expected<uint32_t> count(const json& root, const char* key, uint32_t fallback,
                           uint32_t minimum) const {
    if (!root.contains(key)) return fallback;
    const json& v = root[key];
    if (v.is_object() && v.contains("value")) {
      return error(key, "model shapes are plain numbers (\"" + std::string(key) +
                            "\": 4096), not {\"value\": ...}; put the citation in \"source\"");
    }
    if (!v.is_number()) return error(key, "expected a whole number, got " + shown(v));
    double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < 0 ||
        d > static_cast<double>(std::numeric_limits<uint32_t>::max())) {
      return error(key, "expected a whole number, got " + shown(v));
    }
    if (d < minimum)
      return error(key, fmt::format("must be at least {}, got {}", minimum, shown(v)));
    return static_cast<uint32_t>(d);
  }

  std::string_view text_;
  const std::string& origin_;
};

}  // namespace

double ModelConfig::totalParams() const {
  const detail::LayerCounts c = detail::layerCounts(*this, 0, layers);
  const detail::LayerParams d = detail::layerParams(*this, false),
                            e = detail::layerParams(*this, true);
  const double total = static_cast<double>(c.dense) * (d.attention + d.dense + d.experts) +
                       static_cast<double>(c.moe) * (e.attention + e.dense + e.experts);
  const double embed = static_cast<double>(vocab) * hidden;
  return total + embed * (tiedEmbeddings ? 1 : 2) + 2.0 * hidden;  // + final norm
}

double ModelConfig::activeParams() const {
  const detail::LayerCounts c = detail::layerCounts(*this, 0, layers);
  const detail::LayerParams d = detail::layerParams(*this, false),
                            e = detail::layerParams(*this, true);
  const double total =
      static_cast<double>(c.dense) * (d.attention + d.dense) +
      static_cast<double>(c.moe) * (e.attention + e.dense + e.experts * topK / experts);
  const double embed = static_cast<double>(vocab) * hidden;
  return total + embed * (tiedEmbeddings ? 1 : 2) + 2.0 * hidden;
}

Expected<ModelConfig> parseModelConfig(std::string_view jsonText, const std::string& origin) {
  try {
    return ModelParser(jsonText, origin).run();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal,
                  std::string("unexpected failure while reading the model: ") + e.what(), origin);
  }
}

std::vector<std::string> builtinModelNames() {
  std::vector<std::string> names;
  for (const auto& [name, text] : detail::builtinModelFiles()) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Expected<ModelConfig> loadModel(const std::string& nameOrPath) {
  for (const auto& [name, text] : detail::builtinModelFiles()) {
    if (name == nameOrPath) return parseModelConfig(text, fmt::format("<builtin>/{}.json", name));
  }
  if (nameOrPath.size() >= 5 && nameOrPath.substr(nameOrPath.size() - 5) == ".json") {
    try {
      TRNSIM_ASSIGN_OR_RETURN(std::string text, support::readJsonFile(nameOrPath));
      return parseModelConfig(text, nameOrPath);
    } catch (const std::exception& e) {
      return Status(ErrorCode::kIo, std::string("cannot read: ") + e.what(), nameOrPath);
    }
  }
  std::vector<std::string> names = builtinModelNames();
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("unknown model '{}'{}: built-in models are {}; or give a path to a "
                            ".json model file",
                            nameOrPath, detail::didYouMean(nameOrPath, names), list));
}

}  // namespace trnsim::plan
