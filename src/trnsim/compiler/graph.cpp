#include "trnsim/compiler/graph.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace trnsim::compiler {

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

int64_t TensorType::numElements() const { return product(shape); }
uint64_t TensorType::bytes() const { return uint64_t(numElements()) * numerics::dtypeSize(dtype); }

std::string_view irDtypeName(DType t) {
  switch (t) {
    case DType::kBF16:
      return "bf16";
    case DType::kFP16:
      return "f16";
    case DType::kFP8E4M3:
      return "f8e4m3";
    case DType::kFP8E5M2:
      return "f8e5m2";
    case DType::kFP8E3M4:
      return "f8e3m4";
    case DType::kTF32:
      return "tf32";
    case DType::kFP32:
      return "f32";
    case DType::kInt8:
      return "i8";
    case DType::kInt16:
      return "i16";
    case DType::kInt32:
      return "i32";
    case DType::kUInt8:
      return "u8";
    case DType::kUInt16:
      return "u16";
    case DType::kUInt32:
      return "u32";
  }
  return "?";
}

std::string typeString(const TensorType& t) {
  return fmt::format("{}{}", irDtypeName(t.dtype), shapeString(t.shape));
}

std::string attrString(const Attr& a) {
  struct V {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      std::string s = fmt::format("{:.17g}", v);
      // Keep a float recognizable as one when it has an integral value.
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      return s;
    }
    std::string operator()(const std::vector<int64_t>& v) const {
      return fmt::format("[{}]", fmt::join(v, ", "));
    }
    std::string operator()(const std::string& v) const {
      std::string out = "\"";
      for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    }
  };
  return std::visit(V{}, a);
}

int64_t Node::intAttr(const std::string& key, int64_t def) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return def;
  if (const auto* v = std::get_if<int64_t>(&it->second)) return *v;
  if (const auto* d = std::get_if<double>(&it->second)) return int64_t(*d);
  return def;
}

double Node::floatAttr(const std::string& key, double def) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return def;
  if (const auto* v = std::get_if<double>(&it->second)) return *v;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return double(*i);
  return def;
}

std::vector<int64_t> Node::intsAttr(const std::string& key, std::vector<int64_t> def) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return def;
  if (const auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return {*i};
  return def;
}

std::string Node::strAttr(const std::string& key, std::string def) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return def;
  if (const auto* v = std::get_if<std::string>(&it->second)) return *v;
  return def;
}

Expected<uint32_t> Graph::addValue(std::string valueName, TensorType type, ValueKind kind) {
  if (valueName.empty()) return Status(ErrorCode::kInvalidArgument, "a value needs a valueName");
  if (byName_.count(valueName))
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("value %{} is defined twice: give each value one definition", valueName));
  for (int64_t d : type.shape) {
    if (d < 0)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("value %{} has a negative dimension in {}", valueName,
                                shapeString(type.shape)));
  }
  const auto id = uint32_t(values.size());
  byName_.emplace(valueName, id);
  values.push_back(Value{std::move(valueName), std::move(type), kind});
  return id;
}

std::string Graph::freshName(const std::string& stem) const {
  for (size_t i = values.size();; ++i) {
    std::string n = fmt::format("{}{}", stem, i);
    if (!byName_.count(n)) return n;
  }
}

int64_t Graph::find(const std::string& valueName) const {
  auto it = byName_.find(valueName);
  return it == byName_.end() ? -1 : int64_t(it->second);
}

std::string Graph::nodeContext(size_t index) const {
  if (index >= nodes.size()) return fmt::format("node {}", index);
  const Node& n = nodes[index];
  std::string s = fmt::format("node {} ({}", index, n.op);
  if (!n.outputs.empty() && n.outputs[0] < values.size()) s += " -> %" + values[n.outputs[0]].name;
  s += ")";
  if (!n.loc.empty()) s += fmt::format(" at {}", n.loc);
  return s;
}

Expected<int> normalizeDim(int64_t dim, int rank) {
  const int64_t r = std::max(rank, 1);
  if (dim < -r || dim >= r)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("dimension {} is out of range for a tensor of rank {}", dim, rank));
  return int(dim < 0 ? dim + r : dim);
}

Expected<std::vector<int64_t>> broadcastShapes(const std::vector<int64_t>& a,
                                               const std::vector<int64_t>& b) {
  const size_t n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("shapes {} and {} do not broadcast (dimension {}: {} vs {})",
                                shapeString(a), shapeString(b), i, da, db));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

}  // namespace trnsim::compiler
