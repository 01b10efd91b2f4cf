#pragma once
// Spellings shared by the verifier's messages and the text form: flag names, and reverse
// look-ups from a name to an opcode, engine, ALU operation or activation function.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "trnsim/isa/instruction.h"

namespace trnsim::isa {

/// Number of defined InstrFlag bits (bit i is defined for i < kNumFlagBits).
inline constexpr int kNumFlagBits = 10;

/// Text name of one flag bit ("accumulate", "double_row", ...); empty for an undefined bit.
std::string_view flagName(uint16_t bit);
/// The flag bit called `name`, or nullopt.
std::optional<uint16_t> parseFlagName(std::string_view name);
/// "accumulate|double_row" (undefined bits as hex, "none" for 0).
std::string flagsToString(uint16_t flags);

std::optional<Opcode> parseOpcodeName(std::string_view name);
std::optional<Engine> parseEngineName(std::string_view name);
std::optional<AluOp> parseAluOpName(std::string_view name);
std::optional<ActFunc> parseActFuncName(std::string_view name);
std::optional<MemSpace> parseMemSpaceName(std::string_view name);
std::optional<TensorKind> parseTensorKindName(std::string_view name);

/// True when `op` is an opcode, engine, ... value inside its enum.
inline bool validOpcode(Opcode op) { return static_cast<int>(op) < kNumOpcodes; }
inline bool validEngine(Engine e) { return static_cast<int>(e) < arch::kNumEngines; }
inline bool validAluOp(AluOp op) { return op < AluOp::kCount; }
inline bool validActFunc(ActFunc f) { return f < ActFunc::kCount; }
inline bool validDType(DType t) { return static_cast<int>(t) < numerics::kNumDTypes; }
inline bool validMemSpace(MemSpace s) { return s <= MemSpace::kHbm; }
inline bool validTensorKind(TensorKind k) { return k <= TensorKind::kInOut; }

}  // namespace trnsim::isa
