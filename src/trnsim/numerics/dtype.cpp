// Element-type metadata: sizes, names, parsing, ranges. Conversions live in convert.cpp.
#include "trnsim/numerics/dtype.h"

#include <array>
#include <cstdint>
#include <limits>

namespace trnsim::numerics {
namespace {

struct DTypeInfo {
  DType type;
  size_t sizeBytes;
  std::string_view name;
  bool isFloat;
  bool isSigned;
};

// Indexed by the enum value; the static_asserts below keep the two in step.
constexpr std::array<DTypeInfo, kNumDTypes> kInfo = {{
    {DType::kBF16, 2, "bfloat16", true, true},
    {DType::kFP16, 2, "float16", true, true},
    {DType::kFP8E4M3, 1, "float8_e4m3", true, true},
    {DType::kFP8E5M2, 1, "float8_e5m2", true, true},
    {DType::kTF32, 4, "tfloat32", true, true},
    {DType::kFP32, 4, "float32", true, true},
    {DType::kInt8, 1, "int8", false, true},
    {DType::kInt16, 2, "int16", false, true},
    {DType::kInt32, 4, "int32", false, true},
    {DType::kUInt8, 1, "uint8", false, false},
    {DType::kUInt16, 2, "uint16", false, false},
    {DType::kUInt32, 4, "uint32", false, false},
    {DType::kFP8E3M4, 1, "float8_e3m4", true, true},
}};

constexpr bool infoMatchesEnum() {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (static_cast<int>(kInfo[static_cast<size_t>(i)].type) != i) return false;
  }
  return true;
}
static_assert(infoMatchesEnum(), "kInfo must list the DType values in enum order");

const DTypeInfo& info(DType t) {
  return kInfo[static_cast<size_t>(t)];
}

struct Alias {
  std::string_view name;
  DType type;
};

// Short spellings accepted besides the NKI names (numpy, ml_dtypes and PyTorch habits).
constexpr Alias kAliases[] = {
    {"bf16", DType::kBF16},
    {"fp16", DType::kFP16},
    {"f16", DType::kFP16},
    {"half", DType::kFP16},
    {"fp8_e4m3", DType::kFP8E4M3},
    {"float8_e4m3fn", DType::kFP8E4M3},
    {"fp8_e4m3fn", DType::kFP8E4M3},
    {"e4m3", DType::kFP8E4M3},
    {"fp8_e5m2", DType::kFP8E5M2},
    {"e5m2", DType::kFP8E5M2},
    {"fp8_e3m4", DType::kFP8E3M4},
    {"e3m4", DType::kFP8E3M4},
    {"tf32", DType::kTF32},
    {"fp32", DType::kFP32},
    {"f32", DType::kFP32},
    {"float", DType::kFP32},
    {"i8", DType::kInt8},
    {"i16", DType::kInt16},
    {"i32", DType::kInt32},
    {"u8", DType::kUInt8},
    {"u16", DType::kUInt16},
    {"u32", DType::kUInt32},
};

// ASCII lower-casing into a small fixed buffer; names longer than it are not dtypes.
bool toLower(std::string_view in, std::array<char, 32>& buf, std::string_view& out) {
  if (in.size() > buf.size()) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  out = std::string_view(buf.data(), in.size());
  return true;
}

}  // namespace

size_t dtypeSize(DType t) {
  return info(t).sizeBytes;
}

std::string_view dtypeName(DType t) {
  return info(t).name;
}

std::optional<DType> parseDType(std::string_view name) {
  std::array<char, 32> buf{};
  std::string_view lower;
  if (!toLower(name, buf, lower)) return std::nullopt;
  for (const auto& i : kInfo) {
    if (i.name == lower) return i.type;
  }
  for (const auto& a : kAliases) {
    if (a.name == lower) return a.type;
  }
  return std::nullopt;
}

bool isFloat(DType t) {
  return info(t).isFloat;
}

bool isSigned(DType t) {
  return info(t).isSigned;
}

std::string_view roundingName(Rounding r) {
  return r == Rounding::kStochastic ? "stochastic" : "rne";
}

std::optional<Rounding> parseRounding(std::string_view name) {
  std::array<char, 32> buf{};
  std::string_view lower;
  if (!toLower(name, buf, lower)) return std::nullopt;
  if (lower == "rne" || lower == "nearest_even" || lower == "nearest") {
    return Rounding::kNearestEven;
  }
  if (lower == "sr" || lower == "stochastic") return Rounding::kStochastic;
  return std::nullopt;
}

double maxFinite(DType t) {
  switch (t) {
    // (2 - 2^-M) * 2^emax for the IEEE-like formats.
    case DType::kBF16:
      return 0x1.FEp127;
    case DType::kFP16:
      return 65504.0;
    case DType::kFP8E4M3:
      return 448.0;  // S.1111.110; S.1111.111 is NaN
    case DType::kFP8E5M2:
      return 57344.0;
    case DType::kFP8E3M4:
      return 15.5;  // S.110.1111; S.111.0000 is inf
    case DType::kTF32:
      return 0x1.FFCp127;
    case DType::kFP32:
      return static_cast<double>(std::numeric_limits<float>::max());
    case DType::kInt8:
      return std::numeric_limits<int8_t>::max();
    case DType::kInt16:
      return std::numeric_limits<int16_t>::max();
    case DType::kInt32:
      return std::numeric_limits<int32_t>::max();
    case DType::kUInt8:
      return std::numeric_limits<uint8_t>::max();
    case DType::kUInt16:
      return std::numeric_limits<uint16_t>::max();
    case DType::kUInt32:
      return std::numeric_limits<uint32_t>::max();
  }
  return 0.0;
}

}  // namespace trnsim::numerics
