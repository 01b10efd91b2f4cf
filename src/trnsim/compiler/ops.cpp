#include "trnsim/compiler/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace trnsim::compiler {

const std::vector<const OpDef*>& allOps() {
  static const std::vector<const OpDef*> all = [] {
    std::vector<const OpDef*> v;
    for (auto family :
         {pointwiseOps(), shapeOps(), reduceOps(), nnOps(), rowOps(), indexOps(), gradOps()})
      for (const OpDef& d : family) v.push_back(&d);
    std::sort(v.begin(), v.end(), [](const OpDef* a, const OpDef* b) { return a->name < b->name; });
    return v;
  }();
  return all;
}

const OpDef* findOp(std::string_view name) {
  static const std::map<std::string_view, const OpDef*> byName = [] {
    std::map<std::string_view, const OpDef*> m;
    for (const OpDef* d : allOps()) m.emplace(d->name, d);
    return m;
  }();
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : it->second;
}

namespace detail {

Status badArg(const Node& n, const std::string& msg) {
  std::string where = n.loc.empty() ? n.op : fmt::format("{} at {}", n.op, n.loc);
  return Status(ErrorCode::kInvalidArgument, fmt::format("{}: {}", n.op, msg), where);
}

DType promote(DType a, DType b) {
  if (a == b) return a;
  const bool fa = numerics::isFloat(a), fb = numerics::isFloat(b);
  if (fa != fb) return fa ? a : b;
  if (fa) {
    const size_t sa = numerics::dtypeSize(a), sb = numerics::dtypeSize(b);
    if (sa != sb) return sa > sb ? a : b;
    return DType::kFP32;  // bf16 with f16, or two fp8 kinds
  }
  // Integers: the wider; signed wins a tie (u8 with i8 gives i16 in PyTorch; i32 is close).
  const size_t sa = numerics::dtypeSize(a), sb = numerics::dtypeSize(b);
  if (sa != sb) return sa > sb ? a : b;
  return numerics::isSigned(a) ? a : b;
}

Expected<DType> dtypeAttr(const Node& n, const std::string& key, DType def) {
  const std::string s = n.strAttr(key);
  if (s.empty()) return def;
  static const std::map<std::string, DType> kNames = {
      {"f32", DType::kFP32},       {"bf16", DType::kBF16},      {"f16", DType::kFP16},
      {"i32", DType::kInt32},      {"i16", DType::kInt16},      {"i8", DType::kInt8},
      {"u8", DType::kUInt8},       {"u16", DType::kUInt16},     {"u32", DType::kUInt32},
      {"f8e4m3", DType::kFP8E4M3}, {"f8e5m2", DType::kFP8E5M2}, {"f8e3m4", DType::kFP8E3M4}};
  auto it = kNames.find(s);
  if (it == kNames.end())
    return badArg(
        n, fmt::format("{}=\"{}\" is not an IR dtype (f32, bf16, f16, i32, u8, ...)", key, s));
  return it->second;
}

}  // namespace detail
}  // namespace trnsim::compiler
