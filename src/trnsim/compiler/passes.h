#pragma once
// Graph passes: each one function over the IR, registered by name; a pipeline is a list of
// names. Golden-file tests (tests/compiler/golden/*.ir) run one pass on IR text and compare
// the printed result.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/compiler/graph.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::compiler {

using Pass = std::function<Status(Graph&)>;

struct PassInfo {
  std::string_view name;
  std::string_view summary;
  Status (*run)(Graph&);
};

/// Every registered pass, in the default pipeline's order first.
const std::vector<PassInfo>& allPasses();
/// The default pipeline: infer_shapes, simplify, fuse_attention, layout, fp8_matmul,
/// fuse_elementwise, dce, infer_shapes.
std::vector<std::string> defaultPipeline();

/// Checks every node against the op table: known op, input count, and the declared output
/// types equal to what the op's rule gives (kUnsupported for an unknown op, naming the node's
/// source line; kInvalidArgument for a type mismatch).
Status inferShapes(Graph& g);
/// Removes identities (x * 1, x + 0, expand to the same size, ...).
Status simplify(Graph& g);
/// Picks operand layouts: a matmul reading a transposed weight reads the weight as stored.
Status layout(Graph& g);
/// fp8 weights: mm/addmm whose b is an fp8 value cast up (`_to_copy(q)`), optionally times a
/// scale of N values along b's N dim or one value (`mul(_to_copy(q), s)`, optionally cast again
/// to the activations' dtype) reads q (1 byte per element) and takes s as its scale input:
/// `mm(%x, %q, %s)`, out = (x @ q) * s with one rounding (run after layout).
Status fp8Matmul(Graph& g);
/// Rewrites the eager attention pattern (bmm, scale, constant causal mask, softmax, bmm) to
/// one _scaled_dot_product_flash_attention_for_cpu node where that is the same computation
/// (fuse_attention.cpp).
Status fuseAttention(Graph& g);
/// Groups chains of pointwise ops of one shape into 'fused' nodes (one tile loop each).
Status fuseElementwise(Graph& g);
/// Removes nodes whose results nobody reads.
Status deadCodeElimination(Graph& g);

struct PipelineOptions {
  std::vector<std::string> passes = defaultPipeline();
  /// Called with (pass name, IR text) after each pass named here ("all" = every pass).
  std::vector<std::string> printAfter;
  std::function<void(const std::string&, const std::string&)> print;
};

/// Runs the passes in order; the first failure stops with the pass's name as context.
Status runPipeline(Graph& g, const PipelineOptions& opts = {});

/// A compiled graph: the IR after the passes and the program it lowered to.
struct Compiled {
  Graph graph;
  isa::Program program;
};
/// Parses IR text, runs the pipeline and lowers the result for `chip`.
Expected<Compiled> compileGraph(std::string_view irText, const arch::ChipConfig& chip,
                                const PipelineOptions& opts = {});

}  // namespace trnsim::compiler
