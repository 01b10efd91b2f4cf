#include "trnsim/compiler/lower.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "trnsim/compiler/hbm_plan.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/tile_loop.h"

namespace trnsim::compiler {

Status lowerFused(LowerContext& cx, const Node& n);  // ops_pointwise.cpp

bool LowerContext::isGraphOutput(uint32_t v) const {
  for (uint32_t o : g_.outputs)
    if (o == v) return true;
  return false;
}

bool LowerContext::isRead(uint32_t v) const {
  if (isGraphOutput(v)) return true;
  for (const Node& n : g_.nodes) {
    if (std::find(n.inputs.begin(), n.inputs.end(), v) != n.inputs.end()) return true;
  }
  return false;
}

isa::Tensor& LowerContext::tensor(uint32_t v) {
  isa::Tensor& t = hbm_[v];
  if (t.valid()) return t;
  const Value& val = g_.values[v];
  isa::TensorKind kind = isa::TensorKind::kInternal;
  if (val.kind != ValueKind::kNode)
    kind = isa::TensorKind::kInput;
  else if (isGraphOutput(v))
    kind = isa::TensorKind::kOutput;
  // Scalars and empty tensors (a model's empty caches) get one element: nothing reads it.
  const bool placeholder = val.type.shape.empty() || val.type.numElements() == 0;
  std::vector<int64_t> shape = placeholder ? std::vector<int64_t>{1} : val.type.shape;
  if (plan_.arenaOffset[v] >= 0) {
    if (!arena_.valid()) {
      constexpr int64_t kRowBytes = 4096;  // a 2-D arena keeps the timing model's buckets small
      arena_ = b_.hbm("activations", DType::kUInt8,
                      {int64_t((plan_.arenaBytes + kRowBytes - 1) / kRowBytes), kRowBytes});
    }
    t = b_.hbmView(arena_, val.name, val.type.dtype, std::move(shape), plan_.arenaOffset[v]);
    return t;
  }
  t = b_.hbm(val.name, val.type.dtype, std::move(shape), kind);
  return t;
}

Status LowerContext::alias(uint32_t v, const isa::Tensor& t) {
  if (isGraphOutput(v)) return copyAll(tensor(v), t);
  const TensorType& ty = g_.type(v);
  hbm_[v] = b_.view(t, g_.values[v].name, ty.dtype,
                    ty.numElements() == 0 || ty.shape.empty() ? std::vector<int64_t>{1} : ty.shape);
  return b_.status();
}

isa::Tensor LowerContext::reshaped(uint32_t v, std::vector<int64_t> shape) {
  const isa::Tensor& t = tensor(v);
  return b_.view(t, fmt::format("{}_as{}", g_.values[v].name, ++scratchCount_), t.dtype(),
                 std::move(shape));
}

isa::Tensor LowerContext::scratch(const std::string& stem, DType dtype,
                                  std::vector<int64_t> shape) {
  return b_.hbm(fmt::format("{}_{}", stem, ++scratchCount_), dtype, std::move(shape));
}

Status LowerContext::copyAll(const isa::Tensor& dst, const isa::Tensor& src) {
  const int64_t n = product(src.shape());
  TileLoop loop;
  loop.shape = {n};
  loop.inputs = {LoopOperand{src, {1}, 0}};
  loop.outputs = {LoopOperand{dst, {1}, 0}};
  return emitTileLoop(b_, loop);
}

namespace {

/// The graph must fit the chip's HBM (checked before lowering, which would otherwise emit
/// instructions for tensors that cannot exist): its inputs and outputs plus the activation
/// arena's peak. The error names the biggest values.
Status checkHbmCapacity(const Graph& g, const HbmPlan& plan, const arch::ChipConfig& chip) {
  const uint64_t total = plan.ioBytes + plan.arenaBytes;
  if (chip.mem.hbmBytes == 0 || total <= chip.mem.hbmBytes) return Status::ok();
  std::vector<uint32_t> vals;
  for (uint32_t v = 0; v < g.values.size(); ++v)
    if (plan.storage[v] == v) vals.push_back(v);
  std::sort(vals.begin(), vals.end(), [&](uint32_t a, uint32_t b) {
    return g.values[a].type.bytes() > g.values[b].type.bytes();
  });
  std::vector<std::string> biggest;
  for (size_t i = 0; i < vals.size() && i < 3; ++i)
    biggest.push_back(fmt::format("%{} {} ({:.2f} GB)", g.values[vals[i]].name,
                                  typeString(g.values[vals[i]].type),
                                  double(g.values[vals[i]].type.bytes()) / 1e9));
  return Status(ErrorCode::kCapacity,
                fmt::format("graph {} needs {:.2f} GB of HBM ({:.2f} GB of inputs and outputs, "
                            "{:.2f} GB of live intermediates at the peak) but {} has {:.2f} GB; "
                            "the biggest: {}. Use a smaller batch or sequence, bf16, or fewer "
                            "layers per graph",
                            g.name, double(total) / 1e9, double(plan.ioBytes) / 1e9,
                            double(plan.arenaBytes) / 1e9, chip.name,
                            double(chip.mem.hbmBytes) / 1e9, fmt::join(biggest, ", ")));
}

}  // namespace

Expected<isa::Program> lowerGraph(const Graph& g, const arch::ChipConfig& chip) {
  const HbmPlan plan = planHbm(g);
  TRNSIM_RETURN_IF_ERROR(checkHbmCapacity(g, plan, chip));
  isa::KernelBuilder b(chip, g.name);
  LowerContext cx(b, g, plan);
  // Inputs first, in graph order, so the program's tensor table starts with them.
  for (uint32_t v : g.inputs) (void)cx.tensor(v);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.loc.empty()) {
      const size_t colon = n.loc.rfind(':');
      uint32_t line = 0;
      if (colon != std::string::npos)
        line = uint32_t(std::strtoul(n.loc.c_str() + colon + 1, nullptr, 10));
      b.setLocation(colon == std::string::npos ? n.loc : n.loc.substr(0, colon), line);
    } else {
      b.setLocation("", 0);
    }
    Status s;
    if (n.op == "fused") {
      s = lowerFused(cx, n);
    } else {
      const OpDef* def = findOp(n.op);
      if (def == nullptr || def->lower == nullptr)
        s = Status(ErrorCode::kUnsupported,
                   fmt::format("op '{}' has no lowering (pointwise ops run inside 'fused' nodes: "
                               "run the fuse_elementwise pass)",
                               n.op));
      else
        s = def->lower(cx, n);
    }
    if (s.isOk()) s = b.status();
    if (!s.isOk()) return s.withContext(g.nodeContext(i));
  }
  // Graph outputs that no node wrote (an input returned as is): copy.
  for (uint32_t v : g.outputs) {
    if (g.values[v].kind != ValueKind::kNode)
      return Status(ErrorCode::kUnsupported,
                    fmt::format("graph output %{} is a graph input: return it on the host",
                                g.values[v].name));
  }
  return b.finish();
}

}  // namespace trnsim::compiler
