// fuse_attention: the eager attention pattern (what `transformers` models with
// attn_implementation="eager" give after Core ATen decomposition)
//
//   bmm(view(softmax(scores * scale + causal_mask)), view(v))   scores = bmm(view(q), view(k^T))
//
// becomes one _scaled_dot_product_flash_attention_for_cpu node (the flash-attention kernel when
// its conditions hold; one node either way, no scores through HBM between ops). The rewrite
// happens only when it is provably the same computation: the mask is a constant of the graph
// (built from arange/comparisons/full, no graph input) that evaluates, here at compile time, to
// the top-left causal mask (0 where key j <= query i, -inf or at most -1e30 elsewhere) or to
// all zeros; softmax over the last dim, at most upcast to fp32 and cast back to q's dtype;
// dropout absent or p = 0; one scalar scale on the scores. Anything else is left as written.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "trnsim/compiler/passes.h"

namespace trnsim::compiler {
namespace {

/// A tensor value known at compile time (row-major, values as doubles: the mask graphs are
/// integer positions, booleans and a few float fill values).
struct ConstTensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
};

/// Constant intermediates larger than this are not evaluated (the pattern is left alone).
constexpr int64_t kMaxConstElements = int64_t(1) << 24;
/// A masked logit: -inf, or a value so negative that exp(x - rowmax) is 0 in fp32 for any
/// finite score (transformers uses the dtype's lowest value, -3.4e38 for fp32 and bf16).
constexpr double kMaskedAtMost = -1e30;

class Matcher {
 public:
  explicit Matcher(Graph& g) : g_(g), producer_(g.values.size(), -1) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (uint32_t v : g.nodes[i].outputs) producer_[v] = int64_t(i);
    users_.resize(g.values.size());
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (uint32_t v : g.nodes[i].inputs) users_[v].insert(i);
    for (uint32_t v : g.outputs) graphOutput_.insert(v);
  }

  Status run();

 private:
  const Node* prod(uint32_t v) const {
    return producer_[v] < 0 ? nullptr : &g_.nodes[size_t(producer_[v])];
  }
  /// Steps back over nodes that do not change the value (clone, same-size expand or view,
  /// same-dtype cast), recording them as part of the pattern.
  uint32_t skipIdentity(uint32_t v, std::vector<size_t>* chain);
  /// v is a bmm operand [B*H, X, Y] viewed from a 4-D [B, H, X, Y]: that 4-D value.
  std::optional<uint32_t> heads4d(uint32_t v, std::vector<size_t>* chain);
  /// A K or V [B, H, S, D] that is repeat_kv(x) (unsqueeze, expand, view): x [B, Hkv, S, D].
  uint32_t unrepeatKv(uint32_t v);
  std::optional<ConstTensor> evalConst(uint32_t v);
  std::optional<ConstTensor> evalNode(const Node& n, uint32_t out);
  Status tryFuse(size_t bmm2);

  Graph& g_;
  std::vector<int64_t> producer_;
  std::vector<std::set<size_t>> users_;
  std::set<uint32_t> graphOutput_;
  std::map<uint32_t, std::optional<ConstTensor>> consts_;
  struct Rewrite {
    size_t at;  ///< index of the bmm replaced
    Node attn, view;
  };
  std::vector<Rewrite> rewrites_;
};

bool isViewOp(const std::string& op) {
  return op == "view" || op == "reshape" || op == "_unsafe_view";
}

uint32_t Matcher::skipIdentity(uint32_t v, std::vector<size_t>* chain) {
  for (;;) {
    const Node* n = prod(v);
    if (n == nullptr || n->inputs.size() != 1 || n->outputs.size() != 1) return v;
    const uint32_t x = n->inputs[0];
    const bool same = g_.type(x) == g_.type(v);
    const bool identity = n->op == "clone" || n->op == "alias" || n->op == "detach" ||
                          n->op == "lift_fresh_copy" ||
                          (same && (n->op == "expand" || isViewOp(n->op) || n->op == "_to_copy"));
    if (!identity || !same) return v;
    if (chain) chain->push_back(size_t(producer_[v]));
    v = x;
  }
}

std::optional<uint32_t> Matcher::heads4d(uint32_t v, std::vector<size_t>* chain) {
  v = skipIdentity(v, chain);
  const Node* n = prod(v);
  if (n == nullptr || !isViewOp(n->op) || n->inputs.size() != 1) return std::nullopt;
  const TensorType& t3 = g_.type(v);
  const uint32_t x = n->inputs[0];
  const TensorType& t4 = g_.type(x);
  if (t3.rank() != 3 || t4.rank() != 4 || t4.shape[0] * t4.shape[1] != t3.shape[0] ||
      t4.shape[2] != t3.shape[1] || t4.shape[3] != t3.shape[2])
    return std::nullopt;
  if (chain) chain->push_back(size_t(producer_[v]));
  return skipIdentity(x, chain);
}

uint32_t Matcher::unrepeatKv(uint32_t v) {
  const Node* n = prod(v);
  if (n == nullptr || !isViewOp(n->op) || n->inputs.size() != 1) return v;
  const uint32_t x5 = skipIdentity(n->inputs[0], nullptr);
  const TensorType& t5 = g_.type(x5);
  const TensorType& t4 = g_.type(v);
  // [B, Hkv, G, S, D] -> [B, Hkv * G, S, D]
  if (t5.rank() != 5 || t5.shape[0] != t4.shape[0] || t5.shape[1] * t5.shape[2] != t4.shape[1] ||
      t5.shape[3] != t4.shape[2] || t5.shape[4] != t4.shape[3])
    return v;
  const Node* e = prod(x5);
  if (e == nullptr || e->op != "expand" || e->inputs.size() != 1) return v;
  const uint32_t x1 = skipIdentity(e->inputs[0], nullptr);
  const TensorType& t1 = g_.type(x1);
  if (t1.shape != std::vector<int64_t>{t5.shape[0], t5.shape[1], 1, t5.shape[3], t5.shape[4]})
    return v;
  const Node* u = prod(x1);
  if (u == nullptr || (u->op != "unsqueeze" && !isViewOp(u->op)) || u->inputs.size() != 1) return v;
  const uint32_t base = skipIdentity(u->inputs[0], nullptr);
  const TensorType& tb = g_.type(base);
  if (tb.shape != std::vector<int64_t>{t5.shape[0], t5.shape[1], t5.shape[3], t5.shape[4]} ||
      tb.dtype != t4.dtype)
    return v;
  return base;
}

// ---- compile-time evaluation of mask graphs ----

double roundTo(DType t, double x) {
  if (t == DType::kFP32 || t == DType::kBF16 || t == DType::kFP16) return double(float(x));
  if (numerics::isFloat(t)) return x;
  if (t == DType::kUInt8) return x != 0 ? 1 : 0;  // the IR's bool
  return std::trunc(x);
}

/// Row-major walk over `shape`, giving each operand's offset with broadcast strides.
template <class F>
bool forEachBroadcast(const std::vector<int64_t>& shape, const std::vector<const ConstTensor*>& ins,
                      F f) {
  const int rank = int(shape.size());
  std::vector<std::vector<int64_t>> strides;
  for (const ConstTensor* t : ins) {
    const int r = int(t->shape.size());
    if (r > rank) return false;
    std::vector<int64_t> s(size_t(rank), 0), cs = contiguousStrides(t->shape);
    for (int d = 0; d < r; ++d) {
      const int64_t size = t->shape[size_t(d)];
      if (size != 1 && size != shape[size_t(rank - r + d)]) return false;
      s[size_t(rank - r + d)] = size == 1 ? 0 : cs[size_t(d)];
    }
    strides.push_back(std::move(s));
  }
  const int64_t total = product(shape);
  std::vector<int64_t> idx(size_t(rank), 0), off(ins.size(), 0);
  for (int64_t e = 0; e < total; ++e) {
    f(off);
    for (int d = rank - 1; d >= 0; --d) {
      for (size_t i = 0; i < ins.size(); ++i) off[i] += strides[i][size_t(d)];
      if (++idx[size_t(d)] < shape[size_t(d)]) break;
      for (size_t i = 0; i < ins.size(); ++i) off[i] -= strides[i][size_t(d)] * shape[size_t(d)];
      idx[size_t(d)] = 0;
    }
  }
  return true;
}

std::optional<ConstTensor> Matcher::evalConst(uint32_t v) {
  auto it = consts_.find(v);
  if (it != consts_.end()) return it->second;
  consts_[v] = std::nullopt;  // also guards against cycles
  std::optional<ConstTensor> r;
  const Node* n = prod(v);
  if (n != nullptr && g_.type(v).numElements() <= kMaxConstElements) r = evalNode(*n, v);
  if (r && int64_t(r->data.size()) != g_.type(v).numElements()) r.reset();
  if (r) {
    const DType t = g_.type(v).dtype;
    for (double& x : r->data) x = roundTo(t, x);
  }
  consts_[v] = r;
  return r;
}

std::optional<ConstTensor> Matcher::evalNode(const Node& n, uint32_t out) {
  const TensorType& ot = g_.type(out);
  if (n.op == "fused" || n.outputs.size() != 1) return std::nullopt;
  std::vector<ConstTensor> in;
  for (uint32_t x : n.inputs) {
    auto c = evalConst(x);
    if (!c) return std::nullopt;
    in.push_back(std::move(*c));
  }
  ConstTensor r{ot.shape, {}};
  const int64_t total = ot.numElements();
  const std::string& op = n.op;
  // Sources.
  if (op == "full" || op == "scalar_tensor" || op == "full_like") {
    r.data.assign(size_t(total), n.floatAttr(op == "scalar_tensor" ? "s" : "fill_value"));
    return r;
  }
  if (op == "arange") {
    const double start = n.floatAttr("start", 0), step = n.floatAttr("step", 1);
    for (int64_t i = 0; i < total; ++i) r.data.push_back(start + step * double(i));
    return r;
  }
  if (in.empty()) return std::nullopt;
  // Same data, new shape.
  if (isViewOp(op) || op == "unsqueeze" || op == "squeeze" || op == "clone" || op == "alias" ||
      op == "detach" || op == "lift_fresh_copy" || op == "_to_copy") {
    if (in.size() != 1) return std::nullopt;
    r.data = std::move(in[0].data);
    return r;
  }
  if (op == "expand" && in.size() == 1) {
    const ConstTensor* x = &in[0];
    r.data.reserve(size_t(total));
    if (!forEachBroadcast(ot.shape, {x}, [&](const std::vector<int64_t>& o) {
          r.data.push_back(x->data[size_t(o[0])]);
        }))
      return std::nullopt;
    return r;
  }
  if (op == "permute" && in.size() == 1) {
    const std::vector<int64_t> dims = n.intsAttr("dims");
    const std::vector<int64_t>& xs = in[0].shape;
    if (dims.size() != xs.size()) return std::nullopt;
    const std::vector<int64_t> cs = contiguousStrides(xs);
    ConstTensor strided{ot.shape, {}};
    std::vector<int64_t> s;
    for (int64_t d : dims) {
      auto nd = normalizeDim(d, int(xs.size()));
      if (!nd) return std::nullopt;
      s.push_back(cs[size_t(*nd)]);
    }
    std::vector<int64_t> idx(ot.shape.size(), 0);
    for (int64_t e = 0; e < total; ++e) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * s[d];
      r.data.push_back(in[0].data[size_t(off)]);
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < ot.shape[d]) break;
        idx[d] = 0;
      }
    }
    return r;
  }
  if (op == "slice" && in.size() == 1) {
    const std::vector<int64_t>& xs = in[0].shape;
    auto dim = normalizeDim(n.intAttr("dim", 0), int(xs.size()));
    if (!dim) return std::nullopt;
    const int64_t size = xs[size_t(*dim)], step = n.intAttr("step", 1);
    int64_t start = n.intAttr("start", 0), end = n.intAttr("end", INT64_MAX);
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = std::clamp<int64_t>(start, 0, size);
    end = std::clamp<int64_t>(end, start, size);
    if (step <= 0 || (end - start + step - 1) / step != ot.shape[size_t(*dim)]) return std::nullopt;
    const int64_t outer = product({xs.begin(), xs.begin() + *dim});
    const int64_t inner = product({xs.begin() + *dim + 1, xs.end()});
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = start; i < end; i += step)
        for (int64_t k = 0; k < inner; ++k)
          r.data.push_back(in[0].data[size_t((o * size + i) * inner + k)]);
    return r;
  }
  if (op == "cat") {
    auto dim = normalizeDim(n.intAttr("dim", 0), ot.rank());
    if (!dim) return std::nullopt;
    const int64_t outer = product({ot.shape.begin(), ot.shape.begin() + *dim});
    for (int64_t o = 0; o < outer; ++o)
      for (const ConstTensor& x : in) {
        if (x.shape.size() != ot.shape.size()) return std::nullopt;
        const int64_t chunk = product({x.shape.begin() + *dim, x.shape.end()});
        r.data.insert(r.data.end(), x.data.begin() + o * chunk, x.data.begin() + (o + 1) * chunk);
      }
    return r;
  }
  if (op == "cumsum" && in.size() == 1) {
    auto dim = normalizeDim(n.intAttr("dim", 0), ot.rank());
    if (!dim) return std::nullopt;
    r.data = in[0].data;
    const int64_t size = ot.shape[size_t(*dim)];
    const int64_t inner = product({ot.shape.begin() + *dim + 1, ot.shape.end()});
    const int64_t outer = total / std::max<int64_t>(1, size * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < inner; ++k)
        for (int64_t i = 1; i < size; ++i)
          r.data[size_t((o * size + i) * inner + k)] +=
              r.data[size_t((o * size + i - 1) * inner + k)];
    return r;
  }
  if (op == "index") {
    // Index tensors on adjacent dims only (the op table's rule), negative indices wrap.
    const ConstTensor& x = in[0];
    std::vector<int64_t> present = n.intsAttr("indices_present");
    if (present.empty()) present.assign(in.size() - 1, 1);
    std::vector<int> dims;
    for (size_t d = 0; d < present.size(); ++d)
      if (present[d]) dims.push_back(int(d));
    if (dims.size() != in.size() - 1 || dims.empty()) return std::nullopt;
    for (size_t i = 1; i < dims.size(); ++i)
      if (dims[i] != dims[i - 1] + 1) return std::nullopt;
    const int first = dims.front(), last = dims.back();
    std::vector<int64_t> bshape;
    for (size_t i = 1; i < in.size(); ++i) {
      auto s = broadcastShapes(bshape, in[i].shape);
      if (!s) return std::nullopt;
      bshape = *s;
    }
    std::vector<const ConstTensor*> idx;
    for (size_t i = 1; i < in.size(); ++i) idx.push_back(&in[i]);
    // Flat offsets into x's indexed dims [first, last] for each broadcast index position.
    const std::vector<int64_t> xs = x.shape, cs = contiguousStrides(xs);
    std::vector<int64_t> offsets;
    bool ok = true;
    if (!forEachBroadcast(bshape, idx,
                          [&](const std::vector<int64_t>& o) {
                            int64_t off = 0;
                            for (size_t i = 0; i < idx.size(); ++i) {
                              const int d = first + int(i);
                              int64_t k = int64_t(idx[i]->data[size_t(o[i])]);
                              if (k < 0) k += xs[size_t(d)];
                              if (k < 0 || k >= xs[size_t(d)]) ok = false;
                              off += k * cs[size_t(d)];
                            }
                            offsets.push_back(off);
                          }) ||
        !ok)
      return std::nullopt;
    const int64_t outer = product({xs.begin(), xs.begin() + first});
    const int64_t inner = product({xs.begin() + last + 1, xs.end()});
    const int64_t outerStride = first == 0 ? 0 : cs[size_t(first - 1)];
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t off : offsets)
        for (int64_t k = 0; k < inner; ++k)
          r.data.push_back(x.data[size_t(o * outerStride + off + k)]);
    return r;
  }
  // Pointwise: tensor operands broadcast to the result; scalars from the attributes.
  auto binary = [&](auto f) -> std::optional<ConstTensor> {
    std::vector<const ConstTensor*> ops;
    for (const ConstTensor& x : in) ops.push_back(&x);
    const bool scalarSelf = n.has("self"), scalarOther = n.has("other") && in.size() == 1;
    if (ops.size() != size_t(2 - int(scalarSelf) - int(scalarOther))) return std::nullopt;
    const double s = n.floatAttr("self"), o = n.floatAttr("other");
    r.data.reserve(size_t(total));
    if (!forEachBroadcast(ot.shape, ops, [&](const std::vector<int64_t>& off) {
          const size_t kb = scalarSelf ? 0 : 1;
          const double a = scalarSelf ? s : ops[0]->data[size_t(off[0])];
          const double b = scalarOther ? o : ops[kb]->data[size_t(off[kb])];
          r.data.push_back(f(a, b));
        }))
      return std::nullopt;
    return r;
  };
  const double alpha = n.floatAttr("alpha", 1.0);
  if (op == "add") return binary([&](double a, double b) { return a + alpha * b; });
  if (op == "sub") return binary([&](double a, double b) { return a - alpha * b; });
  if (op == "rsub") return binary([&](double a, double b) { return b - alpha * a; });
  if (op == "mul") return binary([](double a, double b) { return a * b; });
  if (op == "eq") return binary([](double a, double b) { return double(a == b); });
  if (op == "ne") return binary([](double a, double b) { return double(a != b); });
  if (op == "lt") return binary([](double a, double b) { return double(a < b); });
  if (op == "le") return binary([](double a, double b) { return double(a <= b); });
  if (op == "gt") return binary([](double a, double b) { return double(a > b); });
  if (op == "ge") return binary([](double a, double b) { return double(a >= b); });
  if (op == "bitwise_and" || op == "logical_and")
    return binary([](double a, double b) { return double(a != 0 && b != 0); });
  if (op == "bitwise_or" || op == "logical_or")
    return binary([](double a, double b) { return double(a != 0 || b != 0); });
  if ((op == "bitwise_not" || op == "logical_not") && in.size() == 1) {
    for (double x : in[0].data) r.data.push_back(double(x == 0));
    return r;
  }
  if (op == "neg" && in.size() == 1) {
    for (double x : in[0].data) r.data.push_back(-x);
    return r;
  }
  if (op == "where") {
    // where(cond, self, other), self/other as tensors or scalar attributes.
    std::vector<const ConstTensor*> ops;
    for (const ConstTensor& x : in) ops.push_back(&x);
    const bool sSelf = n.has("self"), sOther = n.has("other");
    if (ops.size() != size_t(3 - int(sSelf) - int(sOther))) return std::nullopt;
    const double s = n.floatAttr("self"), o = n.floatAttr("other");
    if (!forEachBroadcast(ot.shape, ops, [&](const std::vector<int64_t>& off) {
          const size_t kb = sSelf ? 1 : 2;
          const double a = sSelf ? s : ops[1]->data[size_t(off[1])];
          const double b = sOther ? o : ops[kb]->data[size_t(off[kb])];
          r.data.push_back(ops[0]->data[size_t(off[0])] != 0 ? a : b);
        }))
      return std::nullopt;
    return r;
  }
  if (op == "masked_fill") {
    std::vector<const ConstTensor*> ops;
    for (const ConstTensor& x : in) ops.push_back(&x);
    const bool scalar = in.size() == 2;
    if (scalar && !n.has("value")) return std::nullopt;
    const double v = n.floatAttr("value");
    if (!forEachBroadcast(ot.shape, ops, [&](const std::vector<int64_t>& off) {
          const double fill = scalar ? v : ops[2]->data[size_t(off[2])];
          r.data.push_back(ops[1]->data[size_t(off[1])] != 0 ? fill : ops[0]->data[size_t(off[0])]);
        }))
      return std::nullopt;
    return r;
  }
  return std::nullopt;
}

bool isMasked(double x) { return x <= kMaskedAtMost; }  // -inf included

/// What a mask applied to the scores [.., Sq, Sk] amounts to.
enum class MaskKind { kNone, kCausal, kOther };

/// `keep(i, j, element)`: whether element (i, j) of every [Sq, Sk] slice of `m` keeps the score.
/// kCausal when exactly the top-left causal positions (j <= i) are kept, kNone when all are.
template <class Keep>
MaskKind classify(const ConstTensor& m, int64_t Sq, int64_t Sk, Keep keep) {
  const int r = int(m.shape.size());
  const int64_t mq = r >= 2 ? m.shape[size_t(r - 2)] : 1, mk = r >= 1 ? m.shape[size_t(r - 1)] : 1;
  if ((mq != Sq && mq != 1) || (mk != Sk && mk != 1)) return MaskKind::kOther;
  bool all = true, causal = true;
  const int64_t slices = int64_t(m.data.size()) / std::max<int64_t>(1, mq * mk);
  for (int64_t s = 0; s < slices; ++s)
    for (int64_t i = 0; i < Sq; ++i)
      for (int64_t j = 0; j < Sk; ++j) {
        const double x = m.data[size_t(s * mq * mk + (mq == 1 ? 0 : i) * mk + (mk == 1 ? 0 : j))];
        const std::optional<bool> k = keep(x);
        if (!k) return MaskKind::kOther;
        all &= *k;
        causal &= *k == (j <= i);
      }
  if (all) return MaskKind::kNone;
  return causal ? MaskKind::kCausal : MaskKind::kOther;
}

Status Matcher::tryFuse(size_t i2) {
  const Node& bmm2 = g_.nodes[i2];
  if (bmm2.inputs.size() != 2 || bmm2.intAttr("transpose_a", 0) || bmm2.intAttr("transpose_b", 0))
    return Status::ok();
  std::vector<size_t> chain;  // pattern nodes whose results must not be read elsewhere
  auto p4 = heads4d(bmm2.inputs[0], &chain);
  auto v4 = heads4d(bmm2.inputs[1], nullptr);
  if (!p4 || !v4) return Status::ok();
  const DType qt = g_.type(bmm2.outputs[0]).dtype;
  if (g_.type(*p4).dtype != qt || g_.type(*v4).dtype != qt) return Status::ok();

  // Dropout in eval mode (train=0) or p=0 is an identity; anything else is not ours.
  uint32_t p = *p4;
  if (const Node* d = prod(p); d != nullptr && d->op == "native_dropout") {
    if (!(d->floatAttr("p", 1) == 0 || d->intAttr("train", 1) == 0) || d->outputs[0] != p)
      return Status::ok();
    chain.push_back(size_t(producer_[p]));
    p = skipIdentity(d->inputs[0], &chain);
  }
  // Softmax over the last dim, at most upcast to fp32 around it and cast back to q's dtype.
  auto castOf = [&](uint32_t v) -> const Node* {
    const Node* c = prod(v);
    return c != nullptr && c->op == "_to_copy" && c->inputs.size() == 1 &&
                   g_.type(c->inputs[0]).shape == g_.type(v).shape
               ? c
               : nullptr;
  };
  if (const Node* c = castOf(p); c != nullptr && g_.type(c->inputs[0]).dtype == DType::kFP32) {
    chain.push_back(size_t(producer_[p]));
    p = skipIdentity(c->inputs[0], &chain);
  }
  const Node* sm = prod(p);
  if (sm == nullptr || sm->op != "_softmax" || sm->inputs.size() != 1) return Status::ok();
  {
    auto dim = normalizeDim(sm->intAttr("dim", -1), g_.type(p).rank());
    if (!dim || *dim != 3) return Status::ok();
    const DType st = g_.type(p).dtype;
    if (st != qt && st != DType::kFP32) return Status::ok();
  }
  chain.push_back(size_t(producer_[p]));
  uint32_t logits = skipIdentity(sm->inputs[0], &chain);
  if (const Node* c = castOf(logits); c != nullptr && g_.type(logits).dtype == DType::kFP32) {
    if (g_.type(c->inputs[0]).dtype != qt) return Status::ok();
    chain.push_back(size_t(producer_[logits]));
    logits = skipIdentity(c->inputs[0], &chain);
  }
  if (g_.type(logits).dtype != qt && g_.type(logits).dtype != DType::kFP32) return Status::ok();

  // The scores: bmm(view(q), view(permute(k))) viewed as [B, H, Sq, Sk], times a scalar.
  // `scoresOf` follows v to the first bmm; it records what it walks in `walk`.
  struct Scores {
    uint32_t q, k;
    double scale = 1;
    std::vector<size_t> walk;
  };
  auto scoresOf = [&](uint32_t v) -> std::optional<Scores> {
    Scores s;
    v = skipIdentity(v, &s.walk);
    const Node* m = prod(v);
    if (m != nullptr && (m->op == "mul" || m->op == "div")) {
      double c = 0;
      uint32_t x = 0;
      if (m->inputs.size() == 1 && m->has("other") && !m->has("self")) {
        c = m->floatAttr("other");
        x = m->inputs[0];
      } else if (m->inputs.size() == 2) {
        // A 0-dim constant operand (torch.full([], sqrt(d)) in older GPT-2).
        auto k = evalConst(m->inputs[1]);
        if (!k || k->data.size() != 1 || g_.type(m->inputs[1]).rank() != 0) return std::nullopt;
        c = k->data[0];
        x = m->inputs[0];
      } else {
        return std::nullopt;
      }
      if (g_.type(x) != g_.type(v)) return std::nullopt;
      if (m->op == "div") c = 1.0 / c;
      if (!std::isfinite(c) || c == 0) return std::nullopt;
      s.scale = c;
      s.walk.push_back(size_t(producer_[v]));
      v = skipIdentity(x, &s.walk);
    }
    const Node* r = prod(v);
    if (r == nullptr || !isViewOp(r->op) || r->inputs.size() != 1) return std::nullopt;
    const uint32_t s3 = r->inputs[0];
    const Node* b1 = prod(s3);
    if (b1 == nullptr || b1->op != "bmm" || b1->inputs.size() != 2 || b1->intAttr("transpose_a", 0))
      return std::nullopt;
    const TensorType& t4 = g_.type(v);
    const TensorType& t3 = g_.type(s3);
    if (t4.rank() != 4 || t3.rank() != 3 || t3.shape[0] != t4.shape[0] * t4.shape[1])
      return std::nullopt;
    s.walk.push_back(size_t(producer_[v]));
    s.walk.push_back(size_t(producer_[s3]));
    // q's and k's views are not the pattern's own: other readers may keep them.
    auto q = heads4d(b1->inputs[0], nullptr);
    auto kt = heads4d(b1->inputs[1], nullptr);
    if (!q || !kt) return std::nullopt;
    if (b1->intAttr("transpose_b", 0)) {
      s.k = *kt;
    } else {
      const Node* t = prod(*kt);
      if (t == nullptr || t->inputs.size() != 1) return std::nullopt;
      const int r4 = 4;
      bool swapLast = false;
      if (t->op == "permute") swapLast = t->intsAttr("dims") == std::vector<int64_t>{0, 1, 3, 2};
      if (t->op == "transpose") {
        auto a = normalizeDim(t->intAttr("dim0"), r4), b = normalizeDim(t->intAttr("dim1"), r4);
        swapLast = a && b && std::min(*a, *b) == 2 && std::max(*a, *b) == 3;
      }
      if (!swapLast) return std::nullopt;
      s.k = skipIdentity(t->inputs[0], nullptr);
    }
    s.q = *q;
    return s;
  };

  // The mask: add(scores, M), where(C, scores, fill) or masked_fill(scores, C, fill), with M
  // or C a compile-time constant; or no mask at all.
  std::optional<Scores> sc;
  MaskKind mask = MaskKind::kNone;
  const Node* mn = prod(logits);
  const TensorType& lt = g_.type(logits);
  if (lt.rank() != 4) return Status::ok();
  const int64_t Sq = lt.shape[2], Sk = lt.shape[3];
  auto keepAdditive = [](double x) -> std::optional<bool> {
    if (x == 0) return true;
    if (isMasked(x)) return false;
    return std::nullopt;
  };
  auto keepBool = [](bool keepIfTrue) {
    return [keepIfTrue](double x) -> std::optional<bool> { return (x != 0) == keepIfTrue; };
  };
  auto scalarMasked = [&](const Node& n, const char* attr, size_t input) {
    if (n.has(attr)) return isMasked(n.floatAttr(attr));
    if (input >= n.inputs.size()) return false;
    auto c = evalConst(n.inputs[input]);
    return c && c->data.size() == 1 && isMasked(c->data[0]);
  };
  if (mn != nullptr && mn->op == "add" && mn->inputs.size() == 2 &&
      mn->floatAttr("alpha", 1) == 1) {
    for (size_t side : {0, 1}) {
      if (g_.type(mn->inputs[side]) != lt) continue;
      auto s = scoresOf(mn->inputs[side]);
      auto m = s ? evalConst(mn->inputs[1 - side]) : std::nullopt;
      if (!m) continue;
      sc = std::move(s);
      mask = classify(*m, Sq, Sk, keepAdditive);
      break;
    }
    if (!sc) return Status::ok();
    chain.push_back(size_t(producer_[logits]));
  } else if (mn != nullptr && mn->op == "where" && !mn->has("self") && mn->inputs.size() >= 2 &&
             g_.type(mn->inputs[1]) == lt) {
    // where(keep, scores, -inf)
    auto c = evalConst(mn->inputs[0]);
    if (!c || !scalarMasked(*mn, "other", 2)) return Status::ok();
    sc = scoresOf(mn->inputs[1]);
    if (!sc) return Status::ok();
    mask = classify(*c, Sq, Sk, keepBool(true));
    chain.push_back(size_t(producer_[logits]));
  } else if (mn != nullptr && mn->op == "masked_fill" && mn->inputs.size() >= 2 &&
             g_.type(mn->inputs[0]) == lt) {
    // masked_fill(scores, drop, -inf)
    auto c = evalConst(mn->inputs[1]);
    if (!c || !scalarMasked(*mn, "value", 2)) return Status::ok();
    sc = scoresOf(mn->inputs[0]);
    if (!sc) return Status::ok();
    mask = classify(*c, Sq, Sk, keepBool(false));
    chain.push_back(size_t(producer_[logits]));
  } else {
    sc = scoresOf(logits);
  }
  if (!sc || mask == MaskKind::kOther) return Status::ok();
  chain.insert(chain.end(), sc->walk.begin(), sc->walk.end());

  // Shapes: q [B, H, Sq, D], k and v [B, H, Sk, D] (or GQA: [B, Hkv, Sk, D] repeated).
  const TensorType& q = g_.type(sc->q);
  const TensorType& k4 = g_.type(sc->k);
  const TensorType& v4t = g_.type(*v4);
  if (q.rank() != 4 || k4.shape != v4t.shape || q.dtype != qt || k4.dtype != qt ||
      q.shape[0] != k4.shape[0] || q.shape[1] != k4.shape[1] || q.shape[3] != k4.shape[3] ||
      q.shape[2] != Sq || k4.shape[2] != Sk || lt.shape[0] != q.shape[0] ||
      lt.shape[1] != q.shape[1])
    return Status::ok();
  uint32_t k = sc->k, v = *v4;
  const uint32_t kb = unrepeatKv(k), vb = unrepeatKv(v);
  if (g_.type(kb) == g_.type(vb)) {
    k = kb;
    v = vb;
  }

  // Every intermediate of the pattern is read only inside it.
  std::set<size_t> members(chain.begin(), chain.end());
  members.insert(i2);
  for (size_t m : chain)
    for (uint32_t o : g_.nodes[m].outputs) {
      if (graphOutput_.count(o)) return Status::ok();
      for (size_t u : users_[o])
        if (!members.count(u)) return Status::ok();
    }

  const TensorType outT{qt, q.shape};
  const std::string base = g_.values[bmm2.outputs[0]].name;
  auto name = [&](const std::string& stem) {
    return g_.find(stem) < 0 ? stem : g_.freshName(stem + "_");
  };
  TRNSIM_ASSIGN_OR_RETURN(uint32_t out, g_.addValue(name(base + "_attn"), outT, ValueKind::kNode));
  TRNSIM_ASSIGN_OR_RETURN(
      uint32_t lse, g_.addValue(name(base + "_lse"),
                                TensorType{DType::kFP32, {q.shape[0], q.shape[1], q.shape[2]}},
                                ValueKind::kNode));
  Rewrite rw;
  rw.at = i2;
  rw.attn.op = "_scaled_dot_product_flash_attention_for_cpu";
  rw.attn.inputs = {sc->q, k, v};
  rw.attn.outputs = {out, lse};
  rw.attn.attrs["dropout_p"] = 0.0;
  rw.attn.attrs["is_causal"] = int64_t(mask == MaskKind::kCausal);
  rw.attn.attrs["scale"] = sc->scale;
  rw.attn.loc = bmm2.loc;
  rw.view.op = "view";
  rw.view.inputs = {out};
  rw.view.outputs = {bmm2.outputs[0]};
  rw.view.attrs["size"] = g_.type(bmm2.outputs[0]).shape;
  rw.view.loc = bmm2.loc;
  rewrites_.push_back(std::move(rw));
  return Status::ok();
}

Status Matcher::run() {
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    if (g_.nodes[i].op == "bmm") TRNSIM_RETURN_IF_ERROR(tryFuse(i));
  if (rewrites_.empty()) return Status::ok();
  // The attention node takes the second bmm's place: q, k and v are all defined before it.
  for (Rewrite& rw : rewrites_) g_.nodes[rw.at] = std::move(rw.view);
  std::vector<Node> nodes;
  size_t next = 0;
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (next < rewrites_.size() && rewrites_[next].at == i)
      nodes.push_back(std::move(rewrites_[next++].attn));
    nodes.push_back(std::move(g_.nodes[i]));
  }
  g_.nodes = std::move(nodes);
  // The scores, softmax and mask nodes are dead now.
  return deadCodeElimination(g_);
}

}  // namespace

Status fuseAttention(Graph& g) { return Matcher(g).run(); }

}  // namespace trnsim::compiler
