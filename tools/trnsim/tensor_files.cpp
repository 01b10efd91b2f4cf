#include "tensor_files.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "trnsim/numerics/dtype.h"
#include "trnsim/support/npy.h"

namespace trnsim::cli {
namespace {

using numerics::DType;
using support::NpyDType;

/// The .npy dtype numpy itself has for a trnsim dtype (none for bf16, fp8 and tf32).
std::optional<NpyDType> nativeNpyDType(DType t) {
  switch (t) {
    case DType::kFP32:
      return NpyDType{'f', 4};
    case DType::kFP16:
      return NpyDType{'f', 2};
    case DType::kInt8:
      return NpyDType{'i', 1};
    case DType::kInt16:
      return NpyDType{'i', 2};
    case DType::kInt32:
      return NpyDType{'i', 4};
    case DType::kUInt8:
      return NpyDType{'u', 1};
    case DType::kUInt16:
      return NpyDType{'u', 2};
    case DType::kUInt32:
      return NpyDType{'u', 4};
    default:
      return std::nullopt;
  }
}

/// How a user writes an array of dtype `t` from Python, for error messages.
std::string howToSave(DType t) {
  switch (t) {
    case DType::kBF16:
      return "np.save(FILE, a.astype(ml_dtypes.bfloat16))";
    case DType::kFP8E4M3:
      return "np.save(FILE, a.astype(ml_dtypes.float8_e4m3fn))";
    case DType::kFP8E5M2:
      return "np.save(FILE, a.astype(ml_dtypes.float8_e5m2))";
    case DType::kTF32:
      return "float32 values with the low 13 mantissa bits zero";
    default:
      return fmt::format("np.save(FILE, a.astype(np.{}))", numerics::dtypeName(t));
  }
}

std::string shapeString(const std::vector<int64_t>& shape) {
  return support::npyShapeString(shape);
}

/// One element of a .npy array, kept exactly: integers as integers, floats as double.
struct Element {
  bool isInt = false;
  bool negative = false;  ///< isInt: the value is below zero (held in `s`)
  int64_t s = 0;
  uint64_t u = 0;
  double f = 0;
};

Element readElement(const NpyDType& t, const std::byte* p) {
  Element e;
  uint64_t raw = 0;
  for (int i = int(t.itemBytes) - 1; i >= 0; --i) raw = (raw << 8) | uint64_t(uint8_t(p[i]));
  if (t.kind == 'f') {
    if (t.itemBytes == 2) {
      e.f = numerics::fp16BitsToFloat(uint16_t(raw));
    } else if (t.itemBytes == 4) {
      float v;
      auto bits = uint32_t(raw);
      std::memcpy(&v, &bits, 4);
      e.f = v;
    } else {
      std::memcpy(&e.f, &raw, 8);
    }
    return e;
  }
  e.isInt = true;
  if (t.kind == 'i') {
    const int shift = 64 - int(t.itemBytes) * 8;
    e.s = int64_t(raw << shift) >> shift;  // sign-extend
    e.negative = e.s < 0;
    e.u = uint64_t(e.s);
  } else {
    e.u = raw;
    e.s = int64_t(raw);
  }
  return e;
}

void storeInt(int64_t v, size_t bytes, std::byte* p) {
  for (size_t i = 0; i < bytes; ++i) p[i] = std::byte(uint8_t(uint64_t(v) >> (8 * i)));
}

/// The integer `e` as a double, false when a double cannot hold it (beyond 2^53 most cannot).
bool intToDoubleExactly(const Element& e, double& d) {
  if (e.negative) {
    d = double(e.s);
    return d >= -0x1p63 && int64_t(d) == e.s;  // -2^63 itself converts back exactly
  }
  d = double(e.u);
  return d < 0x1p64 && uint64_t(d) == e.u;  // double(2^64 - 1) rounds up to 2^64
}

/// Converts one element into `t` at `p`; false when the value would change.
bool convertExactly(const Element& e, DType t, std::byte* p) {
  if (!numerics::isFloat(t)) {
    const size_t bytes = numerics::dtypeSize(t);
    const int64_t lo = numerics::isSigned(t) ? -(int64_t(1) << (bytes * 8 - 1)) : 0;
    const int64_t hi = numerics::isSigned(t) ? (int64_t(1) << (bytes * 8 - 1)) - 1
                                             : (int64_t(1) << (bytes * 8)) - 1;
    int64_t v = 0;
    if (e.isInt) {
      if (!e.negative && e.u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
      v = e.s;
    } else {
      if (!std::isfinite(e.f) || std::trunc(e.f) != e.f || e.f < double(lo) || e.f > double(hi))
        return false;
      v = int64_t(e.f);
    }
    if (v < lo || v > hi) return false;
    storeInt(v, bytes, p);
    return true;
  }
  double d = e.f;
  if (e.isInt && !intToDoubleExactly(e, d)) return false;
  if (std::isfinite(d) && std::fabs(d) > double(std::numeric_limits<float>::max())) return false;
  const auto f = float(d);
  if (std::isnan(d)) {
    numerics::storeFromFloat(t, f, p);
    return std::isnan(numerics::loadAsFloat(t, p));
  }
  if (double(f) != d) return false;
  numerics::storeFromFloat(t, f, p);
  const float back = numerics::loadAsFloat(t, p);
  return back == f && std::signbit(back) == std::signbit(f);
}

bool safeFileChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

Expected<std::vector<InputSpec>> parseInputSpecs(const std::vector<std::string>& options,
                                                 bool ranks) {
  std::vector<InputSpec> specs;
  for (const std::string& opt : options) {
    const std::string usage =
        ranks ? "expected [RANK:]NAME=FILE (e.g. --input x=x.npy, --input 3:x=x3.npy)"
              : "expected NAME=FILE (e.g. --input x=x.npy)";
    InputSpec spec;
    spec.option = opt;
    size_t eq = opt.find('=');
    if (eq == std::string::npos)
      return Status(ErrorCode::kInvalidArgument, fmt::format("--input '{}': {}", opt, usage));
    std::string left = opt.substr(0, eq);
    spec.path = opt.substr(eq + 1);
    size_t colon = left.find(':');
    if (colon != std::string::npos && colon > 0 && left.find_first_not_of("0123456789") == colon) {
      if (!ranks)
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("--input '{}': a RANK: prefix is for 'trnsim cluster run'; "
                                  "'trnsim run' has one chip: {}",
                                  opt, usage));
      std::string digits = left.substr(0, colon);
      if (digits.size() > 9)
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("--input '{}': rank {} is too large", opt, digits));
      spec.rank = uint32_t(std::stoul(digits));
      left = left.substr(colon + 1);
    }
    if (!left.empty() && left[0] == '%') left = left.substr(1);
    spec.tensor = left;
    if (spec.tensor.empty() || spec.path.empty())
      return Status(ErrorCode::kInvalidArgument, fmt::format("--input '{}': {}", opt, usage));
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::vector<uint32_t> inputTensors(const isa::Program& program, bool hbmOnly,
                                   std::string_view skip) {
  std::vector<uint32_t> out;
  for (uint32_t t = 0; t < program.tensors.size(); ++t) {
    const isa::TensorDecl& d = program.tensors[t];
    if (d.kind != isa::TensorKind::kInput && d.kind != isa::TensorKind::kInOut) continue;
    if (hbmOnly && d.space != isa::MemSpace::kHbm) continue;
    if (!skip.empty() && d.name == skip) continue;
    out.push_back(t);
  }
  return out;
}

Status checkInputSpecs(const std::vector<InputSpec>& specs, const isa::Program& program,
                       const std::vector<uint32_t>& inputs, uint32_t chips,
                       const std::string& programPath) {
  std::vector<std::string> names;
  names.reserve(inputs.size());
  for (uint32_t t : inputs) names.push_back(program.tensors[t].name);
  const std::string choices = names.empty()
                                  ? std::string("the program has no input tensors")
                                  : fmt::format("its inputs are: {}", fmt::join(names, ", "));
  std::set<std::pair<int64_t, std::string>> seen;
  for (const InputSpec& s : specs) {
    const uint32_t t = program.findTensor(s.tensor);
    if (t == isa::kNoTensor)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("--input '{}': the program has no tensor '{}'; {}", s.option,
                                s.tensor, choices),
                    programPath);
    bool isInput = false;
    for (uint32_t i : inputs) isInput |= i == t;
    if (!isInput) {
      const isa::TensorDecl& d = program.tensors[t];
      std::string why =
          s.tensor == "rank_id"
              ? std::string("'rank_id' is filled with each rank's id by the cluster")
              : fmt::format("tensor '{}' is {} {}, not one of the inputs the run fills", s.tensor,
                            isa::memSpaceName(d.space), isa::tensorKindName(d.kind));
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("--input '{}': {}; {}", s.option, why, choices), programPath);
    }
    if (s.rank && *s.rank >= chips)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("--input '{}': rank {} does not exist (ranks 0..{})", s.option,
                                *s.rank, chips - 1));
    if (!seen.insert({s.rank ? int64_t(*s.rank) : -1, s.tensor}).second)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("--input '{}': tensor '{}' is given twice{}", s.option, s.tensor,
                                s.rank ? fmt::format(" for rank {}", *s.rank) : std::string()));
  }
  return {};
}

std::map<uint32_t, std::string> inputFilesFor(const std::vector<InputSpec>& specs,
                                              const isa::Program& program,
                                              std::optional<uint32_t> rank) {
  std::map<uint32_t, std::string> files;
  // Options for every rank first, so a rank-specific one replaces them.
  for (int pass = 0; pass < 2; ++pass) {
    for (const InputSpec& s : specs) {
      if (pass == 0 ? s.rank.has_value() : (!s.rank || !rank || *s.rank != *rank)) continue;
      std::string path = s.path;
      if (rank) {
        const std::string key = "{rank}";
        for (size_t at = path.find(key); at != std::string::npos; at = path.find(key, at + 1))
          path.replace(at, key.size(), std::to_string(*rank));
      }
      files[program.findTensor(s.tensor)] = path;
    }
  }
  return files;
}

Expected<std::vector<std::byte>> loadTensorFile(const std::string& path,
                                                const isa::TensorDecl& decl, std::string* note) {
  auto array = support::loadNpy(path);
  if (!array) return array.status();
  const std::string dtypeName(numerics::dtypeName(decl.dtype));
  if (array->shape != decl.shape) {
    std::string hint = fmt::format("save an array of shape {}", shapeString(decl.shape));
    if (array->numElements() == decl.numElements())
      hint += fmt::format(
          " (same number of elements: a.reshape{})",
          decl.shape.size() == 1 ? fmt::format("({})", decl.shape[0]) : shapeString(decl.shape));
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("shape {} does not match tensor '{}' ({} {}): {}", shapeString(array->shape),
                    decl.name, dtypeName, shapeString(decl.shape), hint),
        path);
  }
  const auto n = size_t(decl.numElements());
  const size_t itemBytes = numerics::dtypeSize(decl.dtype);
  const std::optional<NpyDType> native = nativeNpyDType(decl.dtype);
  if (native && array->dtype == *native) return std::move(array->data);
  if (array->dtype.kind == 'V') {
    if (array->dtype.itemBytes == itemBytes) return std::move(array->data);
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("raw {}-byte items (descr '{}') cannot fill tensor '{}' of {} ({} "
                              "bytes per element): {}",
                              array->dtype.itemBytes, array->dtype.descr(), decl.name, dtypeName,
                              itemBytes, howToSave(decl.dtype)),
                  path);
  }
  std::vector<std::byte> out(n * itemBytes);
  for (size_t i = 0; i < n; ++i) {
    const std::byte* src = array->data.data() + i * array->dtype.itemBytes;
    Element e = readElement(array->dtype, src);
    if (!convertExactly(e, decl.dtype, out.data() + i * itemBytes)) {
      std::string value = e.isInt ? (e.negative ? std::to_string(e.s) : std::to_string(e.u))
                                  : fmt::format("{}", e.f);
      return Status(
          ErrorCode::kInvalidArgument,
          fmt::format("tensor '{}' is {} but the file holds {}; element {} (row-major) is {}, "
                      "which {} cannot hold exactly, and inputs are never rounded: {}",
                      decl.name, dtypeName, array->dtype.name(), i, value, dtypeName,
                      howToSave(decl.dtype)),
          path);
    }
  }
  if (note)
    *note = fmt::format("{}: {} values converted to {} for tensor '{}' (every value exact)", path,
                        array->dtype.name(), dtypeName, decl.name);
  return out;
}

Status prepareOutputDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    return Status(ErrorCode::kIo, "--output-dir names a file, not a directory", dir);
  fs::create_directories(dir, ec);
  if (ec)
    return Status(ErrorCode::kIo,
                  fmt::format("--output-dir: cannot create the directory: {}", ec.message()), dir);
  // Write and remove a probe, so a read-only directory fails before the run, not after it.
  const fs::path probe = fs::path(dir) / fmt::format(".trnsim-write-test-{}", ::getpid());
  {
    std::ofstream out(probe, std::ios::binary);
    out << "x";
    out.close();
    if (!out)
      return Status(ErrorCode::kIo,
                    "--output-dir: cannot write files in this directory (permissions?)", dir);
  }
  fs::remove(probe, ec);
  return {};
}

std::vector<uint32_t> outputTensors(const isa::Program& program) {
  std::vector<uint32_t> out;
  for (uint32_t t = 0; t < program.tensors.size(); ++t) {
    const isa::TensorDecl& d = program.tensors[t];
    if (d.space == isa::MemSpace::kHbm &&
        (d.kind == isa::TensorKind::kOutput || d.kind == isa::TensorKind::kInOut))
      out.push_back(t);
  }
  return out;
}

Expected<std::vector<std::string>> outputFileNames(const isa::Program& program,
                                                   const std::vector<uint32_t>& tensors) {
  std::vector<std::string> names;
  std::map<std::string, std::string> owner;
  for (uint32_t t : tensors) {
    std::string name = program.tensors[t].name;
    for (char& ch : name)
      if (!safeFileChar(ch)) ch = '_';
    if (name.empty() || name == "." || name == "..") name = fmt::format("tensor{}", t);
    name += ".npy";
    auto [it, fresh] = owner.emplace(name, program.tensors[t].name);
    if (!fresh)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("output tensors '{}' and '{}' would both be written to {}: "
                                "rename one of them",
                                it->second, program.tensors[t].name, name));
    names.push_back(std::move(name));
  }
  return names;
}

Status writeTensorFile(const std::string& path, const isa::TensorDecl& decl,
                       std::span<const std::byte> bytes) {
  if (std::optional<NpyDType> native = nativeNpyDType(decl.dtype))
    return support::saveNpy(path, *native, decl.shape, bytes);
  // bf16, fp8 and tf32: every value is a float32 value.
  const auto n = size_t(decl.numElements());
  std::vector<float> values(n);
  numerics::convertToFloat(decl.dtype, bytes.data(), values.data(), n);
  return support::saveNpy(path, NpyDType{'f', 4}, decl.shape,
                          std::as_bytes(std::span<const float>(values)));
}

}  // namespace trnsim::cli
