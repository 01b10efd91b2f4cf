#include "trnsim/isa/names.h"

#include <array>

#include <fmt/format.h>

namespace trnsim::isa {
namespace {

constexpr std::array<std::string_view, kNumFlagBits> kFlagNames = {
    "accumulate", "double_row", "is_transpose", "negate",       "reverse0",
    "reverse1",   "reverse_pred", "indirect_src", "indirect_dst", "oob_skip"};

template <typename E, int N, typename NameFn>
std::optional<E> lookup(std::string_view name, NameFn nameOf) {
  for (int i = 0; i < N; ++i) {
    auto v = static_cast<E>(i);
    if (nameOf(v) == name) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view flagName(uint16_t bit) {
  for (int i = 0; i < kNumFlagBits; ++i)
    if (bit == (1u << i)) return kFlagNames[static_cast<size_t>(i)];
  return {};
}

std::optional<uint16_t> parseFlagName(std::string_view name) {
  for (int i = 0; i < kNumFlagBits; ++i)
    if (kFlagNames[static_cast<size_t>(i)] == name) return static_cast<uint16_t>(1u << i);
  return std::nullopt;
}

std::string flagsToString(uint16_t flags) {
  if (flags == 0) return "none";
  std::string s;
  uint16_t unknown = 0;
  for (int i = 0; i < 16; ++i) {
    auto bit = static_cast<uint16_t>(1u << i);
    if ((flags & bit) == 0) continue;
    std::string_view n = flagName(bit);
    if (n.empty()) {
      unknown = static_cast<uint16_t>(unknown | bit);
      continue;
    }
    if (!s.empty()) s += '|';
    s += n;
  }
  if (unknown != 0) {
    if (!s.empty()) s += '|';
    s += fmt::format("{:#x}", unknown);
  }
  return s;
}

std::optional<Opcode> parseOpcodeName(std::string_view name) {
  return lookup<Opcode, kNumOpcodes>(name, [](Opcode o) { return opcodeName(o); });
}
std::optional<Engine> parseEngineName(std::string_view name) {
  return lookup<Engine, arch::kNumEngines>(name, [](Engine e) { return arch::engineName(e); });
}
std::optional<AluOp> parseAluOpName(std::string_view name) {
  return lookup<AluOp, static_cast<int>(AluOp::kCount)>(name, aluOpName);
}
std::optional<ActFunc> parseActFuncName(std::string_view name) {
  return lookup<ActFunc, static_cast<int>(ActFunc::kCount)>(name, actFuncName);
}
std::optional<MemSpace> parseMemSpaceName(std::string_view name) {
  return lookup<MemSpace, 3>(name, memSpaceName);
}
std::optional<TensorKind> parseTensorKindName(std::string_view name) {
  return lookup<TensorKind, 4>(name, tensorKindName);
}

}  // namespace trnsim::isa
