#pragma once
// The compiler's graph IR: typed values (tensors), nodes that apply an op of the op table to
// values, and graphs with inputs (per-call inputs and parameters) and outputs. A graph prints
// to and parses from a text form (compiler/text.h), which is also how the PyTorch front end
// hands graphs to the core. docs/compiler.md describes the IR and every pass.

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "trnsim/numerics/dtype.h"
#include "trnsim/support/status.h"

namespace trnsim::compiler {

using numerics::DType;

/// A tensor's type: element type and shape (row-major, contiguous in HBM).
struct TensorType {
  DType dtype = DType::kFP32;
  std::vector<int64_t> shape;

  int64_t numElements() const;
  uint64_t bytes() const;
  int rank() const { return int(shape.size()); }
  bool operator==(const TensorType&) const = default;
};
/// "f32[2, 128]" (the IR text spelling).
std::string typeString(const TensorType& t);
/// IR dtype spelling: f32, bf16, f16, f8e4m3, f8e5m2, i8, i16, i32, u8, u16, u32.
std::string_view irDtypeName(DType t);

/// Where a value comes from.
enum class ValueKind : uint8_t {
  kInput,  ///< a per-call graph input
  kParam,  ///< a graph input that stays on the device across calls (weights, buffers)
  kNode,   ///< produced by a node
};

struct Value {
  std::string name;  ///< unique in the graph, without the '%'
  TensorType type;
  ValueKind kind = ValueKind::kNode;
};

/// A node attribute: integer, float, integer list, or string.
using Attr = std::variant<int64_t, double, std::vector<int64_t>, std::string>;
using AttrMap = std::map<std::string, Attr>;
/// "3", "0.5", "[0, 1]", "\"tanh\"".
std::string attrString(const Attr& a);

struct Node {
  std::string op;                 ///< an op of the op table ("add", "mm", ...) or "fused"
  std::vector<uint32_t> inputs;   ///< value ids read
  std::vector<uint32_t> outputs;  ///< value ids written
  AttrMap attrs;
  std::string loc;         ///< the user's source position ("model.py:42"), or empty
  std::vector<Node> body;  ///< "fused" only: the pointwise nodes it runs, in order

  bool has(const std::string& key) const { return attrs.count(key) != 0; }
  /// Typed attribute access with a default for missing keys (wrong types give the default).
  int64_t intAttr(const std::string& key, int64_t def = 0) const;
  double floatAttr(const std::string& key, double def = 0) const;
  std::vector<int64_t> intsAttr(const std::string& key, std::vector<int64_t> def = {}) const;
  std::string strAttr(const std::string& key, std::string def = {}) const;
};

/// A graph. Add values only through addValue (it keeps the name index).
class Graph {
 public:
  std::string name = "graph";
  std::vector<Value> values;
  std::vector<uint32_t> inputs;   ///< graph inputs (kInput and kParam values), in call order
  std::vector<uint32_t> outputs;  ///< graph outputs, in return order
  std::vector<Node> nodes;        ///< in a topological order

  /// Adds a value; its name must be new (kInvalidArgument otherwise).
  Expected<uint32_t> addValue(std::string valueName, TensorType type, ValueKind kind);
  /// A fresh value name "tN" not yet in the graph.
  std::string freshName(const std::string& stem = "t") const;
  /// Value id by name, or -1.
  int64_t find(const std::string& valueName) const;
  const TensorType& type(uint32_t v) const { return values[v].type; }

  /// "node 4 (mm -> %y) at model.py:12" for error messages.
  std::string nodeContext(size_t index) const;

 private:
  std::map<std::string, uint32_t> byName_;
};

// ---- shape helpers shared by the op table and the passes ----

/// Normalizes a possibly negative dimension index against `rank` (kInvalidArgument if out
/// of range).
Expected<int> normalizeDim(int64_t dim, int rank);
/// NumPy/PyTorch broadcasting of two shapes (kInvalidArgument if they do not broadcast).
Expected<std::vector<int64_t>> broadcastShapes(const std::vector<int64_t>& a,
                                               const std::vector<int64_t>& b);
/// Row-major element strides of a contiguous shape.
std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& shape);
int64_t product(const std::vector<int64_t>& shape);
std::string shapeString(const std::vector<int64_t>& shape);

}  // namespace trnsim::compiler
