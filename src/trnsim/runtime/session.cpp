#include "trnsim/runtime/session.h"

#include <fmt/format.h>

#include "trnsim/support/hash.h"

namespace trnsim::runtime {

namespace {

/// FLOPs of the graph's matmuls and attention (for MFU).
double matmulFlopsOf(const compiler::Graph& g) {
  double flops = 0;
  for (const compiler::Node& n : g.nodes) {
    if (n.op == "_scaled_dot_product_flash_attention_for_cpu") {
      // QK^T and PV: 4 B H Sq Sk D, half of it under a causal mask (the useful work).
      const auto& q = g.type(n.inputs[0]).shape;
      const auto& k = g.type(n.inputs[1]).shape;
      const double causal = n.intAttr("is_causal", 0) ? 0.5 : 1.0;
      flops +=
          4.0 * double(q[0]) * double(q[1]) * double(q[2]) * double(k[2]) * double(q[3]) * causal;
      continue;
    }
    if (n.op != "mm" && n.op != "bmm" && n.op != "addmm") continue;
    const size_t a = n.op == "addmm" ? 1 : 0;
    const auto& as = g.type(n.inputs[a]).shape;
    const auto& os = g.type(n.outputs[0]).shape;
    const double k = double(n.intAttr("transpose_a", 0) ? as[as.size() - 2] : as.back());
    flops += 2.0 * k * double(compiler::product(os));
  }
  return flops;
}

}  // namespace

std::string cacheKey(const std::string& irText, const std::string& chipName) {
  // FNV-1a 64 over the chip name, a separator and the text.
  const uint64_t h = support::fnv1a64(
      irText, support::fnv1a64(std::string_view("\0", 1), support::fnv1a64(chipName)));
  return fmt::format("{:016x}", h);
}

Executable::Executable(compiler::Compiled compiled, const arch::ChipConfig& chip)
    : graph_(std::move(compiled.graph)),
      programs_(std::make_shared<const std::vector<isa::Program>>(
          std::vector<isa::Program>{std::move(compiled.program)})),
      chip_(chip) {
  loadStatus_ = chip_.load(*programs_);
  matmulFlops_ = matmulFlopsOf(graph_);
}

std::vector<std::string> Executable::inputNames() const {
  std::vector<std::string> v;
  for (uint32_t i : graph_.inputs) v.push_back(graph_.values[i].name);
  return v;
}

std::vector<std::string> Executable::paramNames() const {
  std::vector<std::string> v;
  for (uint32_t i : graph_.inputs)
    if (graph_.values[i].kind == compiler::ValueKind::kParam) v.push_back(graph_.values[i].name);
  return v;
}

std::vector<std::string> Executable::outputNames() const {
  std::vector<std::string> v;
  for (uint32_t i : graph_.outputs) v.push_back(graph_.values[i].name);
  return v;
}

Status Executable::upload(const std::string& name, std::span<const std::byte> data) {
  TRNSIM_RETURN_IF_ERROR(loadStatus_);
  const int64_t v = graph_.find(name);
  if (v < 0 || graph_.values[size_t(v)].kind == compiler::ValueKind::kNode)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' is not an input of graph {}: the inputs are {}", name,
                              graph_.name, fmt::join(inputNames(), ", ")));
  const compiler::TensorType& t = graph_.type(uint32_t(v));
  if (data.size() != t.bytes())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("input '{}' is {} ({} bytes) but {} bytes were given", name,
                              compiler::typeString(t), t.bytes(), data.size()));
  if (t.numElements() > 0) TRNSIM_RETURN_IF_ERROR(chip_.write(name, data));
  uploaded_.insert(name);
  return Status::ok();
}

Status Executable::checkInputsPresent() const {
  for (uint32_t i : graph_.inputs) {
    const std::string& n = graph_.values[i].name;
    if (!uploaded_.count(n))
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("input '{}' of graph {} was never uploaded", n, graph_.name));
  }
  return Status::ok();
}

Expected<RunRecord> Executable::run(bool timingOnly, numerics::Rounding rounding, uint64_t seed) {
  TRNSIM_RETURN_IF_ERROR(loadStatus_);
  if (!timingOnly) TRNSIM_RETURN_IF_ERROR(checkInputsPresent());
  sim::RunOptions o;
  o.computeValues = !timingOnly;
  o.rounding = rounding;
  o.seed = seed;
  TRNSIM_ASSIGN_OR_RETURN(sim::RunResult r, chip_.run(o));
  return RunRecord{chip_.config(), programs_, std::move(r), matmulFlops_};
}

Expected<std::vector<std::byte>> Executable::read(const std::string& outputName) const {
  return chip_.read(outputName);
}

Expected<std::shared_ptr<Executable>> Session::compile(const std::string& irText,
                                                       const arch::ChipConfig& chip,
                                                       const compiler::PipelineOptions& opts) {
  const std::string key = cacheKey(irText, chip.name);
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (auto exe = it->second.lock()) {
      ++hits_;
      return exe;
    }
  }
  TRNSIM_ASSIGN_OR_RETURN(compiler::Compiled c, compiler::compileGraph(irText, chip, opts));
  ++compiles_;
  auto exe = std::make_shared<Executable>(std::move(c), chip);
  cache_[key] = exe;
  return exe;
}

}  // namespace trnsim::runtime
