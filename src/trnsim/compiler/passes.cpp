#include "trnsim/compiler/passes.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/text.h"

namespace trnsim::compiler {
namespace {

Status located(const Graph& g, size_t i, Status s) {
  if (s.isOk()) return s;
  return s.withContext(g.nodeContext(i));
}

Status checkNode(const Graph& g, const Node& n) {
  if (n.op == "fused") {
    for (const Node& b : n.body) TRNSIM_RETURN_IF_ERROR(checkNode(g, b));
    return Status::ok();
  }
  const OpDef* def = findOp(n.op);
  if (def == nullptr)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("op '{}' is not supported by the trnsim compiler{}; "
                              "trnsim.torch's fallback=\"cpu\" runs it on the host",
                              n.op, n.loc.empty() ? "" : fmt::format(" (at {})", n.loc)));
  const int nin = int(n.inputs.size());
  if (nin < def->minInputs)
    return detail::badArg(n, fmt::format("takes {} to {} tensor inputs, got {}", def->minInputs,
                                         def->maxInputs, nin));
  if (nin > def->maxInputs)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{} with {} tensor inputs is not supported yet (at most {}: a "
                              "tensor where a number is expected?){}",
                              n.op, nin, def->maxInputs,
                              n.loc.empty() ? "" : fmt::format(" (at {})", n.loc)));
  TRNSIM_ASSIGN_OR_RETURN(std::vector<TensorType> types, def->infer(g, n));
  if (types.size() != n.outputs.size())
    return detail::badArg(
        n, fmt::format("gives {} results, the graph names {}", types.size(), n.outputs.size()));
  for (size_t i = 0; i < types.size(); ++i) {
    const TensorType& declared = g.type(n.outputs[i]);
    if (!(declared == types[i]))
      return detail::badArg(
          n, fmt::format("result %{} is declared {} but the op gives {}",
                         g.values[n.outputs[i]].name, typeString(declared), typeString(types[i])));
  }
  return Status::ok();
}

/// For each value, the indices of the top-level nodes that read it.
std::vector<std::vector<size_t>> usersOf(const Graph& g) {
  std::vector<std::vector<size_t>> users(g.values.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (uint32_t v : g.nodes[i].inputs) users[v].push_back(i);
  return users;
}

bool isOutput(const Graph& g, uint32_t v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

/// Replaces every read of `from` by `to` (top-level nodes, fused bodies, graph outputs).
void replaceUses(Graph& g, uint32_t from, uint32_t to) {
  auto fix = [&](Node& n, auto& self) -> void {
    for (uint32_t& v : n.inputs)
      if (v == from) v = to;
    for (Node& b : n.body) self(b, self);
  };
  for (Node& n : g.nodes) fix(n, fix);
  for (uint32_t& v : g.outputs)
    if (v == from) v = to;
}

bool isPointwise(const Node& n) {
  const OpDef* d = findOp(n.op);
  return d != nullptr && d->cls == OpClass::kPointwise && n.outputs.size() == 1;
}

}  // namespace

Status inferShapes(Graph& g) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    TRNSIM_RETURN_IF_ERROR(located(g, i, checkNode(g, g.nodes[i])));
  for (uint32_t v : g.outputs)
    if (v >= g.values.size()) return Status(ErrorCode::kInvalidArgument, "bad graph output");
  return Status::ok();
}

Status simplify(Graph& g) {
  std::vector<Node> kept;
  // value -> (input, normalized dims) of the permute that made it
  std::map<uint32_t, std::pair<uint32_t, std::vector<int64_t>>> permuteOf;
  auto permuteDims = [&](const Node& n) -> std::optional<std::vector<int64_t>> {
    const std::vector<int64_t> dims = n.intsAttr("dims");
    std::vector<int64_t> out;
    for (int64_t d : dims) {
      const auto nd = normalizeDim(d, int(dims.size()));
      if (!nd.hasValue()) return std::nullopt;
      out.push_back(*nd);
    }
    return out;
  };
  for (Node& n : g.nodes) {
    std::optional<std::vector<int64_t>> dims;
    if (n.op == "permute" && n.inputs.size() == 1 && n.outputs.size() == 1) dims = permuteDims(n);
    // permute(permute(v, p), q) with p[q[i]] = i is v (a weight the front end stores transposed
    // and the model transposes back). Other compositions stay two permutes: fuse_attention
    // matches the transpose of K as the model writes it.
    if (dims && permuteOf.count(n.inputs[0])) {
      const auto& [src, inner] = permuteOf.at(n.inputs[0]);
      bool cancel = inner.size() == dims->size();
      for (size_t i = 0; cancel && i < dims->size(); ++i)
        cancel = inner[size_t((*dims)[i])] == int64_t(i);
      if (cancel) {
        n.inputs[0] = src;
        for (size_t i = 0; i < dims->size(); ++i) (*dims)[i] = int64_t(i);
        n.attrs["dims"] = *dims;
      }
    }
    if (dims) permuteOf[n.outputs[0]] = {n.inputs[0], *dims};
    bool identity = false;
    if (n.outputs.size() == 1 && n.inputs.size() >= 1 &&
        g.type(n.outputs[0]) == g.type(n.inputs[0]) && !isOutput(g, n.outputs[0])) {
      const bool scalarOther = n.has("other") && n.inputs.size() == 1;
      if ((n.op == "mul" || n.op == "div") && scalarOther && n.floatAttr("other") == 1.0)
        identity = true;
      if ((n.op == "add" || n.op == "sub") && scalarOther && n.floatAttr("other") == 0.0)
        identity = true;
      if ((n.op == "expand" || n.op == "alias" || n.op == "detach" || n.op == "clone" ||
           n.op == "lift_fresh_copy" || n.op == "view" || n.op == "reshape" ||
           n.op == "_unsafe_view") &&
          n.inputs.size() == 1)
        identity = true;
      if (n.op == "_to_copy" && n.inputs.size() == 1) identity = true;
      if (dims) {
        identity = true;
        for (size_t i = 0; i < dims->size(); ++i) identity &= (*dims)[i] == int64_t(i);
      }
    }
    if (identity) {
      replaceUses(g, n.outputs[0], n.inputs[0]);
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return Status::ok();
}

Status layout(Graph& g) {
  std::map<uint32_t, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (uint32_t v : g.nodes[i].outputs) producer[v] = i;
  const std::vector<int64_t> swap2 = {1, 0}, swap3 = {0, 2, 1};
  for (Node& n : g.nodes) {
    if (n.op != "mm" && n.op != "bmm" && n.op != "addmm") continue;
    // b = W^T (a linear layer's weight): TensorE needs B's K rows on partitions, which the
    // kernel gets by an on-chip transpose instead of an HBM copy of W^T. a = X^T (a weight
    // gradient's X [tokens, features]): X as stored is the lhsT TensorE wants, no transpose.
    const size_t first = n.op == "addmm" ? 1 : 0;
    for (auto [idx, attr] :
         {std::pair{first, "transpose_a"}, std::pair{first + 1, "transpose_b"}}) {
      if (n.intAttr(attr, 0)) continue;
      auto it = producer.find(n.inputs[idx]);
      if (it == producer.end()) continue;
      const Node& p = g.nodes[it->second];
      const bool isT = p.op == "permute" && p.inputs.size() == 1 &&
                       p.intsAttr("dims") == (n.op == "bmm" ? swap3 : swap2);
      if (!isT) continue;
      n.inputs[idx] = p.inputs[0];
      n.attrs[attr] = int64_t(1);
    }
  }
  return deadCodeElimination(g);
}

namespace {

bool isFp8(DType t) { return t == DType::kFP8E4M3 || t == DType::kFP8E5M2; }

/// Whether `scale` scales only the N columns of a weight value `w` ([N, K] when transposed, else
/// [K, N]) that it multiplies: a scalar, or N values along w's N dim (right-aligned broadcast).
bool scalesColumns(const TensorType& scale, const TensorType& w, bool transposed) {
  if (scale.rank() > 2 || w.rank() != 2) return false;
  std::vector<int64_t> s = scale.shape;
  while (s.size() < 2) s.insert(s.begin(), 1);
  const size_t nDim = transposed ? 0 : 1;
  return s[1 - nDim] == 1 && (s[nDim] == 1 || s[nDim] == w.shape[nDim]);
}

}  // namespace

Status fp8Matmul(Graph& g) {
  std::map<uint32_t, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (uint32_t v : g.nodes[i].outputs) producer[v] = i;
  auto made = [&](uint32_t v, const char* op) -> const Node* {
    auto it = producer.find(v);
    if (it == producer.end()) return nullptr;
    const Node& p = g.nodes[it->second];
    return p.op == op && p.outputs.size() == 1 ? &p : nullptr;
  };
  // An fp8 value cast up (exactly: every fp8 value is a bf16, f16 and f32 value).
  auto fp8Source = [&](uint32_t v) -> std::optional<uint32_t> {
    const Node* c = made(v, "_to_copy");
    if (c == nullptr || c->inputs.size() != 1 || !isFp8(g.type(c->inputs[0]).dtype))
      return std::nullopt;
    return c->inputs[0];
  };
  for (Node& n : g.nodes) {
    if (n.op != "mm" && n.op != "addmm") continue;
    const size_t first = n.op == "addmm" ? 1 : 0;
    if (n.inputs.size() != first + 2) continue;
    const bool transposed = n.intAttr("transpose_b", 0) != 0;
    uint32_t w = n.inputs[first + 1];
    // (q.float() * scale).to(bf16): an outer cast to the activations' dtype.
    if (const Node* outer = made(w, "_to_copy");
        outer != nullptr && outer->inputs.size() == 1 && !fp8Source(w))
      if (made(outer->inputs[0], "mul") != nullptr) w = outer->inputs[0];
    if (auto q = fp8Source(w)) {  // w = q.to(dtype): read q
      n.inputs[first + 1] = *q;
      continue;
    }
    const Node* mul = made(w, "mul");
    if (mul == nullptr || mul->inputs.size() != 2) continue;
    for (size_t side = 0; side < 2; ++side) {
      auto q = fp8Source(mul->inputs[side]);
      const uint32_t scale = mul->inputs[1 - side];
      if (!q || !numerics::isFloat(g.type(scale).dtype) ||
          !scalesColumns(g.type(scale), g.type(*q), transposed))
        continue;
      n.inputs[first + 1] = *q;
      n.inputs.push_back(scale);
      break;
    }
  }
  return deadCodeElimination(g);
}

Status fuseElementwise(Graph& g) {
  const auto users = usersOf(g);
  std::vector<Node> out;
  struct Group {
    std::vector<size_t> members;  // node indices
    std::set<uint32_t> values;    // values the members produce
    std::vector<int64_t> shape;
    size_t barrier = 0;  // non-pointwise nodes seen when the last member joined
  };
  // A node that does not read a group's values joins it (one pass instead of two) while the
  // group is small and no other node came between (a later member would delay the whole
  // group, keeping the values it reads live longer).
  constexpr size_t kMaxSideMembers = 16;
  size_t barriers = 0;
  // Open groups, at most one per output shape, in the order they opened. A group's external
  // inputs are always already in `out`: a node that joins a group first closes the other open
  // groups it reads, and any other node closes the groups it reads. So pointwise chains of one
  // shape fuse across the pointwise nodes of other shapes between them (an optimizer's 0-dim
  // step-count arithmetic), and independent chains of one shape fuse into one pass.
  std::vector<Group> open;
  auto close = [&](size_t gi) {
    Group grp = std::move(open[gi]);
    open.erase(open.begin() + long(gi));
    Node f;
    f.op = "fused";
    std::set<uint32_t> seenIn;
    std::set<size_t> memberSet(grp.members.begin(), grp.members.end());
    for (size_t i : grp.members) {
      Node& m = g.nodes[i];
      for (uint32_t v : m.inputs)
        if (!grp.values.count(v) && seenIn.insert(v).second) f.inputs.push_back(v);
      for (uint32_t v : m.outputs) {
        bool escapes = isOutput(g, v);
        for (size_t u : users[v]) escapes |= !memberSet.count(u);
        if (escapes) f.outputs.push_back(v);
      }
      if (f.loc.empty()) f.loc = m.loc;
      f.body.push_back(std::move(m));
    }
    out.push_back(std::move(f));
  };
  auto reads = [&](const Node& n, const Group& grp) {
    for (uint32_t v : n.inputs)
      if (grp.values.count(v)) return true;
    return false;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    const bool pw = isPointwise(n);
    const std::vector<int64_t>* shape = pw ? &g.type(n.outputs[0]).shape : nullptr;
    // Close the open groups this node reads, except the one it joins.
    for (size_t gi = 0; gi < open.size();) {
      if ((!pw || open[gi].shape != *shape) && reads(n, open[gi])) {
        close(gi);
        continue;
      }
      ++gi;
    }
    if (!pw) {
      ++barriers;
      out.push_back(std::move(n));
      continue;
    }
    auto it = std::find_if(open.begin(), open.end(),
                           [&](const Group& grp) { return grp.shape == *shape; });
    if (it != open.end() && !reads(n, *it) &&
        (it->barrier != barriers || it->members.size() >= kMaxSideMembers)) {
      close(size_t(it - open.begin()));
      it = open.end();
    }
    if (it != open.end()) {
      it->members.push_back(i);
      it->values.insert(n.outputs[0]);
      it->barrier = barriers;
      continue;
    }
    open.push_back(Group{{i}, {n.outputs[0]}, *shape, barriers});
  }
  while (!open.empty()) close(0);
  // Nodes moved into a group sit where the group closes, after any independent nodes that came
  // between its members; those never read group values (they would have closed it).
  g.nodes = std::move(out);
  return Status::ok();
}

Status deadCodeElimination(Graph& g) {
  std::vector<bool> live(g.values.size(), false);
  for (uint32_t v : g.outputs) live[v] = true;
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool any = false;
    for (uint32_t v : n.outputs) any |= live[v];
    if (!any) continue;
    keep[i] = true;
    for (uint32_t v : n.inputs) live[v] = true;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return Status::ok();
}

const std::vector<PassInfo>& allPasses() {
  static const std::vector<PassInfo> passes = {
      {"infer_shapes", "check every node's op, inputs and result types", inferShapes},
      {"simplify", "remove identities (x*1, x+0, same-size expand, clone, same-dtype casts)",
       simplify},
      {"fuse_attention",
       "eager attention (bmm, scale, causal mask, softmax, bmm) to one flash-attention node",
       fuseAttention},
      {"layout", "matmuls read transposed operands as stored (transpose_a, transpose_b)", layout},
      {"fp8_matmul",
       "a matmul of a dequantized fp8 weight reads the fp8 weight and scales its output columns",
       fp8Matmul},
      {"fuse_elementwise", "group same-shape pointwise chains into fused tile loops",
       fuseElementwise},
      {"dce", "remove nodes whose results nobody reads", deadCodeElimination},
  };
  return passes;
}

std::vector<std::string> defaultPipeline() {
  return {"infer_shapes",     "simplify", "fuse_attention", "layout", "fp8_matmul",
          "fuse_elementwise", "dce",      "infer_shapes"};
}

Status runPipeline(Graph& g, const PipelineOptions& opts) {
  for (const std::string& name : opts.passes) {
    const PassInfo* pass = nullptr;
    for (const PassInfo& p : allPasses())
      if (p.name == name) pass = &p;
    if (pass == nullptr) {
      std::vector<std::string_view> names;
      for (const PassInfo& p : allPasses()) names.push_back(p.name);
      return Status(ErrorCode::kInvalidArgument, fmt::format("unknown pass '{}': the passes are {}",
                                                             name, fmt::join(names, ", ")));
    }
    Status s = pass->run(g);
    if (!s.isOk()) return s.withContext(fmt::format("pass {}", name));
    const bool print =
        std::find(opts.printAfter.begin(), opts.printAfter.end(), name) != opts.printAfter.end() ||
        std::find(opts.printAfter.begin(), opts.printAfter.end(), "all") != opts.printAfter.end();
    if (print && opts.print) opts.print(name, printGraph(g));
  }
  return Status::ok();
}

Expected<Compiled> compileGraph(std::string_view irText, const arch::ChipConfig& chip,
                                const PipelineOptions& opts) {
  TRNSIM_ASSIGN_OR_RETURN(Graph g, parseGraph(irText));
  TRNSIM_RETURN_IF_ERROR(runPipeline(g, opts));
  TRNSIM_ASSIGN_OR_RETURN(isa::Program p, lowerGraph(g, chip));
  return Compiled{std::move(g), std::move(p)};
}

}  // namespace trnsim::compiler
