#pragma once
// Lowering: a graph after the passes becomes one ISA program for one NeuronCore. Every value
// lives in simulated HBM as a contiguous row-major tensor (graph inputs and params as program
// inputs, graph outputs as program outputs, the rest in an activation arena reused by
// liveness: compiler/hbm_plan.h); each node emits its instructions through the
// kernel-building API: fused pointwise groups and layout ops as tile loops
// (compiler/tile_loop.h), matmul, norms and softmax through the kernel library.

#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/compiler/graph.h"
#include "trnsim/compiler/hbm_plan.h"
#include "trnsim/isa/builder.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::compiler {

/// What a lowering needs: the builder, the graph and each value's HBM tensor.
class LowerContext {
 public:
  LowerContext(isa::KernelBuilder& b, const Graph& g, const HbmPlan& plan)
      : b_(b), g_(g), plan_(plan), hbm_(g.values.size()) {}

  isa::KernelBuilder& b() { return b_; }
  const Graph& graph() const { return g_; }
  const arch::ChipConfig& chip() const { return b_.chip(); }

  /// The HBM tensor holding value v (made on first use: an internal tensor, or the program
  /// input/output of that name for graph inputs and outputs).
  isa::Tensor& tensor(uint32_t v);
  isa::Tensor& in(const Node& n, size_t i) { return tensor(n.inputs[i]); }
  isa::Tensor& out(const Node& n, size_t i = 0) { return tensor(n.outputs[i]); }
  /// Makes value v an alias of `t` under v's own shape (a view: no instructions), unless v
  /// is a graph output, which gets its own tensor and a copy.
  Status alias(uint32_t v, const isa::Tensor& t);
  /// A view of value v's tensor with another shape (same element count).
  isa::Tensor reshaped(uint32_t v, std::vector<int64_t> shape);
  /// An HBM scratch tensor of the program.
  isa::Tensor scratch(const std::string& stem, DType dtype, std::vector<int64_t> shape);
  /// Copies all of src into dst (same element count), HBM to HBM.
  Status copyAll(const isa::Tensor& dst, const isa::Tensor& src);

  bool isGraphOutput(uint32_t v) const;
  /// Whether any node or the graph's outputs read value v.
  bool isRead(uint32_t v) const;

 private:
  isa::KernelBuilder& b_;
  const Graph& g_;
  const HbmPlan& plan_;
  std::vector<isa::Tensor> hbm_;
  isa::Tensor arena_;  ///< the activation arena (compiler/hbm_plan.h), made on first use
  int scratchCount_ = 0;
};

/// Lowers an already-checked graph (infer_shapes) into one program named after the graph.
/// Its HBM inputs are named like the graph's input values, its outputs like the output values.
Expected<isa::Program> lowerGraph(const Graph& g, const arch::ChipConfig& chip);

}  // namespace trnsim::compiler
