#pragma once
// The op table: every op the compiler supports, defined once (name, class, shape/dtype rule,
// lowering). The PyTorch front end names ATen ops by their packet name ("add", "mm",
// "_softmax", "native_layer_norm"); attributes follow the ATen schema's argument names.
// Families live in their own files (ops_pointwise.cpp, ops_shape.cpp, ops_reduce.cpp,
// ops_nn.cpp, ops_rows.cpp, ops_index.cpp, ops_grad.cpp), each contributing one table.

#include <span>
#include <string_view>
#include <vector>

#include "trnsim/compiler/graph.h"
#include "trnsim/isa/builder.h"
#include "trnsim/support/status.h"

namespace trnsim::compiler {

class LowerContext;  // compiler/lower.h

/// What a pointwise op's tile emitter gets: SBUF tiles [partitions, free] of its inputs (in
/// node input order), its output tile, and two fp32 scratch tiles of the same size.
struct PointwiseArgs {
  isa::KernelBuilder& b;
  std::vector<isa::AccessPattern> in;
  isa::AccessPattern out;
  isa::AccessPattern tmp, tmp2;
};

enum class OpClass : uint8_t {
  kPointwise,  ///< elementwise with broadcasting: fused into tile loops
  kLayout,     ///< moves or reinterprets elements (view, permute, slice, cat, expand, ...)
  kReduction,  ///< reduces dims (sum, mean, amax, softmax's row reductions)
  kKernel,     ///< lowered through the kernel library (matmul, norms, softmax, attention)
  kSource,     ///< makes values from attributes (full, arange)
};

/// Output types of a node from its input types and attributes.
using InferFn = Expected<std::vector<TensorType>> (*)(const Graph& g, const Node& n);
/// Emits the node's instructions (everything but pointwise ops).
using LowerFn = Status (*)(LowerContext& cx, const Node& n);
/// Emits one pointwise node on SBUF tiles.
using TileFn = Status (*)(PointwiseArgs& a, const Node& n);

struct OpDef {
  std::string_view name;
  OpClass cls = OpClass::kPointwise;
  int minInputs = 0;
  int maxInputs = 0;
  InferFn infer = nullptr;
  LowerFn lower = nullptr;  ///< for every class but kPointwise
  TileFn tile = nullptr;    ///< kPointwise
};

/// The op called `name`, or nullptr.
const OpDef* findOp(std::string_view name);
/// Every op, sorted by name.
const std::vector<const OpDef*>& allOps();

// The families' tables (one per ops_*.cpp).
std::span<const OpDef> pointwiseOps();
std::span<const OpDef> shapeOps();
std::span<const OpDef> reduceOps();
std::span<const OpDef> nnOps();
std::span<const OpDef> rowOps();    // ops_rows.cpp: cumsum topk argmax argmin _log_softmax
std::span<const OpDef> indexOps();  // ops_index.cpp: index gather
std::span<const OpDef> gradOps();   // ops_grad.cpp: index_put scatter *_scatter native_dropout

namespace detail {
/// Helpers the families share.
Status badArg(const Node& n, const std::string& msg);
/// Type promotion of two operand dtypes as PyTorch does for tensors (float beats int, the wider
/// float wins, bf16 with f16 gives f32).
DType promote(DType a, DType b);
/// Input i's type.
inline const TensorType& in(const Graph& g, const Node& n, size_t i) { return g.type(n.inputs[i]); }
/// The dtype named by attribute `key` ("f32", "bf16", ...), or `def`.
Expected<DType> dtypeAttr(const Node& n, const std::string& key, DType def);

// Lowerings shared across families.
/// out[a, j, b] = src[a, index[j], b] for src viewed as [outer, rows, inner] (ops_shape.cpp).
Status gatherRows(LowerContext& cx, const isa::Tensor& src, int64_t outer, int64_t rows,
                  int64_t inner, const isa::Tensor& index, int64_t count, const isa::Tensor& out);
/// An i32 copy of index value v (v's own tensor when it is i32 already) (ops_shape.cpp).
Expected<isa::Tensor> int32Index(LowerContext& cx, uint32_t v);
/// max/min with dim when their indices are read (ops_rows.cpp).
Status lowerMinMaxWithIndices(LowerContext& cx, const Node& n);
/// _softmax / _log_softmax over any dim, rows of any length (ops_rows.cpp).
Status lowerRowSoftmax(LowerContext& cx, const Node& n);
/// native_layer_norm with any of weight/bias and the mean/rstd outputs, rows of any length
/// (ops_rows.cpp).
Status lowerRowLayerNorm(LowerContext& cx, const Node& n);
}  // namespace detail

}  // namespace trnsim::compiler
