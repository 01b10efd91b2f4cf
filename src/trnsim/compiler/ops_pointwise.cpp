// Pointwise ops: shape and dtype rules (broadcasting, PyTorch's type promotion) and their
// instructions on SBUF tiles; `lowerFused` runs a fused group of them as one tile loop.
#include <fmt/format.h>

#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/tile_loop.h"

namespace trnsim::compiler {
namespace {

using arch::Engine;
using isa::ActFunc;
using isa::AluOp;

bool isBoolLike(const Node& n) {
  return n.op == "eq" || n.op == "ne" || n.op == "gt" || n.op == "ge" || n.op == "lt" ||
         n.op == "le" || n.op == "logical_and" || n.op == "logical_or" || n.op == "logical_xor" ||
         n.op == "logical_not" || n.op == "bitwise_and" || n.op == "bitwise_or" ||
         n.op == "bitwise_not";
}

/// The float type a float-only op gives for `t` (ints give f32).
DType floatOf(DType t) { return numerics::isFloat(t) ? t : DType::kFP32; }

/// Shape of all tensor inputs broadcast together; dtype by PyTorch's promotion, where 0-dim
/// tensors and scalar attributes only decide the category (int or float).
Expected<std::vector<TensorType>> inferPointwise(const Graph& g, const Node& n) {
  std::vector<int64_t> shape;
  std::optional<DType> dimmed, zeroDim;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const TensorType& t = detail::in(g, n, i);
    auto s = broadcastShapes(shape, t.shape);
    if (!s) return detail::badArg(n, s.status().message());
    shape = *s;
    // where's condition and masked_fill's mask do not take part in promotion.
    if ((n.op == "where" && i == 0) || (n.op == "masked_fill" && i == 1)) continue;
    auto& slot = t.shape.empty() ? zeroDim : dimmed;
    slot = slot ? detail::promote(*slot, t.dtype) : t.dtype;
  }
  bool floatScalar = false;
  for (const char* key : {"other", "self", "value", "exponent", "min", "max", "a", "b", "c"}) {
    auto it = n.attrs.find(key);
    if (it != n.attrs.end() && std::holds_alternative<double>(it->second)) floatScalar = true;
  }
  DType dt = DType::kFP32;
  if (dimmed) {
    dt = *dimmed;
    if (zeroDim && numerics::isFloat(*zeroDim) && !numerics::isFloat(dt)) dt = *zeroDim;
  } else if (zeroDim) {
    dt = *zeroDim;
  }
  if (floatScalar && !numerics::isFloat(dt)) dt = DType::kFP32;
  static const std::set<std::string> kFloatOnly = {"div",  "exp",  "log",  "tanh",  "sigmoid",
                                                   "gelu", "silu", "sqrt", "rsqrt", "reciprocal",
                                                   "sin",  "cos",  "erf",  "log1p"};
  if (kFloatOnly.count(n.op)) dt = floatOf(dt);
  if (isBoolLike(n)) dt = DType::kUInt8;
  if (n.op == "_to_copy" || n.op == "full_like") {
    TRNSIM_ASSIGN_OR_RETURN(dt, detail::dtypeAttr(n, "dtype", detail::in(g, n, 0).dtype));
  }
  if (n.op == "masked_fill") dt = detail::in(g, n, 0).dtype;
  return std::vector<TensorType>{TensorType{dt, shape}};
}

/// copy(self, src): self's shape and dtype; src broadcasts to it and is cast.
Expected<std::vector<TensorType>> inferCopy(const Graph& g, const Node& n) {
  const TensorType& self = detail::in(g, n, 0);
  const TensorType& src = detail::in(g, n, 1);
  auto s = broadcastShapes(src.shape, self.shape);
  if (!s || *s != self.shape)
    return detail::badArg(n, fmt::format("src {} does not broadcast to self {}",
                                         shapeString(src.shape), shapeString(self.shape)));
  return std::vector<TensorType>{self};
}

// ---- tile emitters ----

/// The node's second operand: input 1, or the scalar attribute `key`.
bool scalarOperand(const Node& n, const char* key, float& v) {
  if (!n.has(key)) return false;
  v = float(n.floatAttr(key));
  return true;
}

Status binaryAlu(PointwiseArgs& a, const Node& n, AluOp op) {
  float s = 0;
  // add/sub with alpha != 1: scale the second operand first.
  const double alpha = n.floatAttr("alpha", 1.0);
  if (scalarOperand(n, "self", s)) {  // c op (alpha * x): a number as the first operand
    return a.b.tensorScalar(a.out, a.in[0], AluOp::kMultiply, float(alpha), op, s, false, true);
  }
  if (scalarOperand(n, "other", s)) {
    if (op == AluOp::kSubtract && n.op == "rsub")  // rsub(x, c) = c - alpha * x
      return a.b.tensorScalar(a.out, a.in[0], AluOp::kMultiply, float(alpha), AluOp::kSubtract, s,
                              false, true);
    return a.b.tensorScalar(a.out, a.in[0], op, float(alpha) * s);
  }
  if (a.in.size() < 2) return detail::badArg(n, "needs a second operand (input or 'other')");
  if (alpha != 1.0) {
    TRNSIM_RETURN_IF_ERROR(a.b.tensorScalar(a.tmp, a.in[1], AluOp::kMultiply, float(alpha)));
    if (n.op == "rsub") return a.b.tensorTensor(a.out, a.tmp, a.in[0], AluOp::kSubtract);
    return a.b.tensorTensor(a.out, a.in[0], a.tmp, op);
  }
  if (n.op == "rsub") return a.b.tensorTensor(a.out, a.in[1], a.in[0], AluOp::kSubtract);
  return a.b.tensorTensor(a.out, a.in[0], a.in[1], op);
}

#define BINARY(NAME, ALU) \
  Status NAME(PointwiseArgs& a, const Node& n) { return binaryAlu(a, n, AluOp::ALU); }
BINARY(tAdd, kAdd)
BINARY(tSub, kSubtract)
BINARY(tMul, kMultiply)
BINARY(tMax, kMax)
BINARY(tMin, kMin)
BINARY(tEq, kIsEqual)
BINARY(tNe, kNotEqual)
BINARY(tGt, kIsGt)
BINARY(tGe, kIsGe)
BINARY(tLt, kIsLt)
BINARY(tLe, kIsLe)
BINARY(tAnd, kLogicalAnd)
BINARY(tOr, kLogicalOr)
BINARY(tXor, kLogicalXor)
#undef BINARY

Status tDiv(PointwiseArgs& a, const Node& n) {
  const std::string mode = n.strAttr("rounding_mode");
  if (!mode.empty())
    return Status(ErrorCode::kUnsupported,
                  fmt::format("div with rounding_mode=\"{}\" is not supported yet", mode));
  return binaryAlu(a, n, AluOp::kDivide);
}

Status tPow(PointwiseArgs& a, const Node& n) {
  float e = 0;
  if (scalarOperand(n, "exponent", e)) {
    if (e == 2.0f) return a.b.tensorTensor(a.out, a.in[0], a.in[0], AluOp::kMultiply);
    if (e == 1.0f) return a.b.tensorCopy(a.out, a.in[0]);
    return a.b.tensorScalar(a.out, a.in[0], AluOp::kPow, e);
  }
  if (scalarOperand(n, "self", e))  // pow(c, x): c^x
    return a.b.tensorScalar(a.out, a.in[0], AluOp::kPow, e, AluOp::kBypass, 0.0f, true);
  return a.b.tensorTensor(a.out, a.in[0], a.in[1], AluOp::kPow);
}

Status activation(PointwiseArgs& a, ActFunc f) { return a.b.activation(a.out, f, a.in[0]); }
#define UNARY(NAME, FUNC) \
  Status NAME(PointwiseArgs& a, const Node&) { return activation(a, ActFunc::FUNC); }
UNARY(tExp, kExp)
UNARY(tLog, kLog)
UNARY(tTanh, kTanh)
UNARY(tSigmoid, kSigmoid)
UNARY(tRelu, kRelu)
UNARY(tSilu, kSilu)
UNARY(tSqrt, kSqrt)
UNARY(tRsqrt, kRsqrt)
UNARY(tSin, kSin)
UNARY(tCos, kCos)
UNARY(tErf, kErf)
UNARY(tAbs, kAbs)
UNARY(tSign, kSign)
#undef UNARY

Status tReciprocal(PointwiseArgs& a, const Node&) { return a.b.reciprocal(a.out, a.in[0]); }
Status tGelu(PointwiseArgs& a, const Node& n) {
  const std::string approx = n.strAttr("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return detail::badArg(n, fmt::format("approximate=\"{}\": use \"none\" or \"tanh\"", approx));
  return activation(a, approx == "tanh" ? ActFunc::kGeluApproxTanh : ActFunc::kGelu);
}
Status tNeg(PointwiseArgs& a, const Node&) {
  return a.b.tensorScalar(a.out, a.in[0], AluOp::kMultiply, -1.0f);
}
Status tLog1p(PointwiseArgs& a, const Node&) {
  TRNSIM_RETURN_IF_ERROR(a.b.tensorScalar(a.tmp, a.in[0], AluOp::kAdd, 1.0f));
  return a.b.activation(a.out, ActFunc::kLog, a.tmp);
}
/// A copy or cast. Float to integer truncates toward zero, as PyTorch does:
/// sign(x) * (|x| - mod(|x|, 1)), exact in fp32, then the (exact) integer store.
Status tCopy(PointwiseArgs& a, const Node&) {
  const auto& tensors = a.b.program().tensors;
  const DType from = tensors[a.in[0].tensor].dtype, to = tensors[a.out.tensor].dtype;
  if (numerics::isFloat(from) && !numerics::isFloat(to)) {
    TRNSIM_RETURN_IF_ERROR(a.b.activation(a.tmp, ActFunc::kAbs, a.in[0]));
    TRNSIM_RETURN_IF_ERROR(a.b.tensorScalar(a.tmp2, a.tmp, AluOp::kMod, 1.0f));
    TRNSIM_RETURN_IF_ERROR(a.b.tensorTensor(a.tmp, a.tmp, a.tmp2, AluOp::kSubtract));
    TRNSIM_RETURN_IF_ERROR(a.b.activation(a.tmp2, ActFunc::kSign, a.in[0]));
    return a.b.tensorTensor(a.out, a.tmp, a.tmp2, AluOp::kMultiply);
  }
  return a.b.tensorCopy(a.out, a.in[0]);
}
/// copy(self, src): src cast to self's dtype (self only gives the shape and dtype).
Status tCopyFrom(PointwiseArgs& a, const Node& n) {
  PointwiseArgs src{a.b, {a.in[1]}, a.out, a.tmp, a.tmp2};
  return tCopy(src, n);
}
/// prims.fma(a, b, c) = a * b + c, where any of a, b, c may be a scalar attribute. Rounded after
/// the multiply as well (to the result's dtype), as PyTorch's CPU implementation of the prim
/// ((a * b) + c, two ops) does; inductor's fused fma would skip that rounding.
Status tFma(PointwiseArgs& a, const Node& n) {
  std::array<std::optional<isa::AccessPattern>, 3> t;
  std::array<float, 3> s{};
  size_t next = 0;
  const char* keys[3] = {"a", "b", "c"};
  for (size_t k = 0; k < 3; ++k) {
    if (scalarOperand(n, keys[k], s[k])) continue;
    if (next >= a.in.size()) return detail::badArg(n, "needs tensors or scalars a, b and c");
    t[k] = a.in[next++];
  }
  if (t[0] && t[1]) {
    TRNSIM_RETURN_IF_ERROR(a.b.tensorTensor(a.out, *t[0], *t[1], AluOp::kMultiply));
  } else if (t[0] || t[1]) {
    TRNSIM_RETURN_IF_ERROR(
        a.b.tensorScalar(a.out, t[0] ? *t[0] : *t[1], AluOp::kMultiply, t[0] ? s[1] : s[0]));
  } else {
    TRNSIM_RETURN_IF_ERROR(a.b.memset(a.out, s[0] * s[1]));
  }
  if (t[2]) return a.b.tensorTensor(a.out, a.out, *t[2], AluOp::kAdd);
  return a.b.tensorScalar(a.out, a.out, AluOp::kAdd, s[2]);
}
Status tLogicalNot(PointwiseArgs& a, const Node&) {
  return a.b.tensorScalar(a.out, a.in[0], AluOp::kIsEqual, 0.0f);
}
Status tClamp(PointwiseArgs& a, const Node& n) {
  const bool lo = n.has("min"), hi = n.has("max");
  if (!lo && !hi) return a.b.tensorCopy(a.out, a.in[0]);
  if (lo && hi)
    return a.b.tensorScalar(a.out, a.in[0], AluOp::kMax, float(n.floatAttr("min")), AluOp::kMin,
                            float(n.floatAttr("max")));
  return a.b.tensorScalar(a.out, a.in[0], lo ? AluOp::kMax : AluOp::kMin,
                          float(n.floatAttr(lo ? "min" : "max")));
}
Status tFullLike(PointwiseArgs& a, const Node& n) {
  return a.b.memset(a.out, float(n.floatAttr("fill_value")));
}
/// where(cond, x, y): out = y, then x copied where cond != 0. Scalars come as attrs
/// self / other (a scalar x or y is memset into the scratch tile).
Status tWhere(PointwiseArgs& a, const Node& n) {
  size_t next = 1;
  isa::AccessPattern x;
  float v = 0;
  if (scalarOperand(n, "self", v)) {
    TRNSIM_RETURN_IF_ERROR(a.b.memset(a.tmp, v));
    x = a.tmp;
  } else {
    x = a.in[next++];
  }
  if (scalarOperand(n, "other", v)) {
    TRNSIM_RETURN_IF_ERROR(a.b.memset(a.out, v));
  } else {
    TRNSIM_RETURN_IF_ERROR(a.b.tensorCopy(a.out, a.in[next++]));
  }
  return a.b.tensorCopyPredicated(a.out, x, a.in[0]);
}
/// masked_fill(x, mask, value): out = x, then value where mask.
Status tMaskedFill(PointwiseArgs& a, const Node& n) {
  TRNSIM_RETURN_IF_ERROR(a.b.tensorCopy(a.out, a.in[0]));
  isa::AccessPattern fill;
  float v = 0;
  if (scalarOperand(n, "value", v)) {
    TRNSIM_RETURN_IF_ERROR(a.b.memset(a.tmp, v));
    fill = a.tmp;
  } else {
    fill = a.in[2];
  }
  return a.b.tensorCopyPredicated(a.out, fill, a.in[1]);
}

const OpDef kOps[] = {
    {"add", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tAdd},
    {"sub", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tSub},
    {"rsub", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tSub},
    {"mul", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tMul},
    {"div", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tDiv},
    {"maximum", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tMax},
    {"minimum", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tMin},
    {"pow", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tPow},
    {"eq", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tEq},
    {"ne", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tNe},
    {"gt", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tGt},
    {"ge", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tGe},
    {"lt", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tLt},
    {"le", OpClass::kPointwise, 1, 2, inferPointwise, nullptr, tLe},
    {"logical_and", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tAnd},
    {"logical_or", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tOr},
    {"logical_xor", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tXor},
    {"bitwise_and", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tAnd},
    {"bitwise_or", OpClass::kPointwise, 2, 2, inferPointwise, nullptr, tOr},
    {"logical_not", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tLogicalNot},
    {"bitwise_not", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tLogicalNot},
    {"neg", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tNeg},
    {"exp", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tExp},
    {"log", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tLog},
    {"tanh", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tTanh},
    {"sigmoid", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tSigmoid},
    {"relu", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tRelu},
    {"gelu", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tGelu},
    {"silu", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tSilu},
    {"sqrt", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tSqrt},
    {"rsqrt", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tRsqrt},
    {"reciprocal", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tReciprocal},
    {"sin", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tSin},
    {"cos", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tCos},
    {"erf", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tErf},
    {"abs", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tAbs},
    {"log1p", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tLog1p},
    {"sign", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tSign},
    {"clamp", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tClamp},
    {"_to_copy", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tCopy},
    {"clone", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tCopy},
    {"copy", OpClass::kPointwise, 2, 2, inferCopy, nullptr, tCopyFrom},
    {"prims.fma", OpClass::kPointwise, 1, 3, inferPointwise, nullptr, tFma},
    {"full_like", OpClass::kPointwise, 1, 1, inferPointwise, nullptr, tFullLike},
    {"where", OpClass::kPointwise, 1, 3, inferPointwise, nullptr, tWhere},
    {"masked_fill", OpClass::kPointwise, 2, 3, inferPointwise, nullptr, tMaskedFill},
};

}  // namespace

std::span<const OpDef> pointwiseOps() { return kOps; }

/// A fused group: one tile loop over the group's output shape. The group's inputs are loaded
/// (broadcast by stride 0), every body node writes a tile of its own dtype (so values round
/// as the op's dtype says, as PyTorch's eager ops do), and the group's outputs are stored.
Status lowerFused(LowerContext& cx, const Node& n) {
  const Graph& g = cx.graph();
  if (n.body.empty() || n.outputs.empty()) return detail::badArg(n, "a fused node needs a body");
  const std::vector<int64_t> shape = g.type(n.outputs[0]).shape;
  TileLoop loop;
  loop.shape = shape.empty() ? std::vector<int64_t>{1} : shape;
  std::map<uint32_t, std::pair<int, size_t>> where;  // value -> (0 in, 1 out, 2 scratch), index
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const uint32_t v = n.inputs[i];
    where[v] = {0, i};
    loop.inputs.push_back(LoopOperand::broadcast(cx.tensor(v), g.type(v).shape, loop.shape));
  }
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    const uint32_t v = n.outputs[i];
    if (g.type(v).shape != shape)
      return detail::badArg(
          n, fmt::format("output %{} has shape {}, not the group's {}", g.values[v].name,
                         shapeString(g.type(v).shape), shapeString(shape)));
    where[v] = {1, i};
    loop.outputs.push_back(LoopOperand::broadcast(cx.tensor(v), shape, loop.shape));
  }
  std::vector<const OpDef*> defs;
  for (const Node& b : n.body) {
    const OpDef* def = findOp(b.op);
    if (def == nullptr || def->tile == nullptr)
      return detail::badArg(b, "is not a pointwise op and cannot be fused");
    defs.push_back(def);
    for (uint32_t v : b.outputs) {
      if (where.count(v)) continue;
      if (g.type(v).shape != shape)
        return detail::badArg(
            b, fmt::format("body value %{} has shape {}, not the group's {}", g.values[v].name,
                           shapeString(g.type(v).shape), shapeString(shape)));
      where[v] = {2, loop.scratchDtypes.size()};
      loop.scratchDtypes.push_back(g.type(v).dtype);
    }
  }
  const size_t tmpIndex = loop.scratchDtypes.size();
  loop.scratchDtypes.push_back(DType::kFP32);
  loop.scratchDtypes.push_back(DType::kFP32);
  loop.body = [&](TileContext& tc) -> Status {
    auto apOf = [&](uint32_t v) {
      const auto [kind, i] = where.at(v);
      return kind == 0 ? tc.input(i) : kind == 1 ? tc.output(i) : tc.scratch(i);
    };
    for (size_t k = 0; k < n.body.size(); ++k) {
      const Node& b = n.body[k];
      PointwiseArgs args{
          tc.b, {}, apOf(b.outputs[0]), tc.scratch(tmpIndex), tc.scratch(tmpIndex + 1)};
      for (uint32_t v : b.inputs) {
        if (!where.count(v))
          return detail::badArg(b, fmt::format("reads %{}, which is neither a fused input nor "
                                               "computed earlier in the body",
                                               g.values[v].name));
        args.in.push_back(apOf(v));
      }
      Status s = defs[k]->tile(args, b);
      if (s.isOk()) s = tc.b.status();
      if (!s.isOk()) return s.withContext(fmt::format("{} in fused body", b.op));
    }
    return Status::ok();
  };
  return emitTileLoop(cx.b(), loop);
}

}  // namespace trnsim::compiler
