#include "trnsim/arch/chip_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <exception>
#include <string>
#include <variant>

#include "trnsim/arch/chip_schema.h"
#include "trnsim/arch/json_util.h"
#include "trnsim/support/hash.h"
#include "trnsim/support/json_load.h"

namespace trnsim::arch {
namespace {

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view engineName(Engine e) {
  switch (e) {
    case Engine::kTensor:
      return "tensor";
    case Engine::kVector:
      return "vector";
    case Engine::kScalar:
      return "scalar";
    case Engine::kGpSimd:
      return "gpsimd";
    case Engine::kSync:
      return "sync";
    case Engine::kDma:
      return "dma";
  }
  return "unknown";
}

const StreamEngineConfig& ChipConfig::stream(Engine e) const {
  switch (e) {
    case Engine::kVector:
      return vector;
    case Engine::kScalar:
      return scalar;
    case Engine::kGpSimd:
      return gpsimd;
    case Engine::kSync:
      return sync;
    case Engine::kTensor:
    case Engine::kDma:
      break;
  }
  assert(false && "ChipConfig::stream: Tensor and Dma are not streaming engines");
  return sync;
}

uint64_t chipFingerprint(const ChipConfig& chip) {
  ChipConfig copy = chip;  // chipFields hands out mutable refs; read them from a copy
  uint64_t h = support::fnv1a64(chip.name);
  for (const detail::Field& f : detail::chipFields(copy))
    std::visit([&](const auto* value) { h = support::fnv1a64(value, sizeof(*value), h); }, f.ref);
  return h;
}

Expected<ChipConfig> loadChipConfigFile(const std::string& path) {
  try {
    TRNSIM_ASSIGN_OR_RETURN(std::string text, support::readJsonFile(path));
    return parseChipConfig(text, path);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kIo, std::string("cannot read: ") + e.what(), path);
  }
}

std::vector<std::string> builtinChipNames() {
  std::vector<std::string> names;
  for (const auto& [name, text] : detail::builtinChipFiles()) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Expected<ChipConfig> loadChip(const std::string& nameOrPath) {
  for (const auto& [name, text] : detail::builtinChipFiles()) {
    if (name == nameOrPath) return parseChipConfig(text, fmt::format("<builtin>/{}.json", name));
  }
  if (endsWith(nameOrPath, ".json")) return loadChipConfigFile(nameOrPath);
  std::string list;
  for (const std::string& n : builtinChipNames()) list += (list.empty() ? "" : ", ") + n;
  return Status(
      ErrorCode::kInvalidArgument,
      fmt::format("unknown chip '{}': built-in chips are {}; or give a path to a .json chip config",
                  nameOrPath, list));
}

std::vector<std::string> chipConfigKeys() {
  ChipConfig scratch;
  std::vector<std::string> keys;
  for (const detail::Field& f : detail::chipFields(scratch)) keys.emplace_back(f.spec.path);
  return keys;
}

}  // namespace trnsim::arch
