#include "trnsim/arch/chip_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "trnsim/arch/chip_schema.h"

namespace trnsim::arch {
namespace {

/// Chip configs are a few KiB; anything far larger is the wrong file.
constexpr std::streamsize kMaxConfigBytes = 16 << 20;

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Expected<std::string> readSmallFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status(ErrorCode::kIo, "cannot read: is a directory", path);
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(
        ErrorCode::kIo,
        std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "unknown error"), path);
  }
  std::string text(static_cast<size_t>(kMaxConfigBytes) + 1, '\0');
  in.read(text.data(), kMaxConfigBytes + 1);
  if (in.bad()) return Status(ErrorCode::kIo, "read failed", path);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxConfigBytes)) {
    return Status(ErrorCode::kConfig, "file is larger than 16 MiB; not a chip config", path);
  }
  return text;
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

Expected<ChipConfig> loadChipConfigFile(const std::string& path) {
  try {
    TRNSIM_ASSIGN_OR_RETURN(std::string text, readSmallFile(path));
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
