// Python bindings of the sim layer (submodule trnsim._trnsim.sim): build a program with a
// KernelBuilder whose instruction calls mirror nki.isa (keyword names included), load it on
// a simulated Chip, move numpy arrays in and out, and run it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/builder.h"
#include "trnsim/isa/names.h"
#include "trnsim/isa/text.h"
#include "trnsim/sim/chip.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::check;
using pybind::raiseStatus;
using pybind::unwrap;

// ---- names ---------------------------------------------------------------------------------

numerics::DType dtypeOf(const py::object& o) {
  std::string name = py::str(o);
  if (py::hasattr(o, "name") && !py::isinstance<py::str>(o)) name = py::str(o.attr("name"));
  auto t = numerics::parseDType(name);
  if (!t) throw py::value_error("unknown dtype '" + name + "'");
  return *t;
}
isa::AluOp aluOf(const py::object& o) {
  if (o.is_none()) return isa::AluOp::kBypass;
  std::string name = py::str(o);
  // Accept numpy / nki.language spellings too.
  if (name == "maximum") name = "max";
  if (name == "minimum") name = "min";
  if (name == "equal") name = "is_equal";
  if (name == "greater") name = "is_gt";
  if (name == "greater_equal") name = "is_ge";
  if (name == "less") name = "is_lt";
  if (name == "less_equal") name = "is_le";
  if (name == "mult") name = "multiply";
  if (name == "power") name = "pow";
  auto op = isa::parseAluOpName(name);
  if (!op) throw py::value_error("unknown ALU operation '" + name + "'");
  return *op;
}
isa::ActFunc actOf(const std::string& name) {
  auto f = isa::parseActFuncName(name);
  if (!f) throw py::value_error("unknown activation function '" + name + "'");
  return *f;
}
arch::Engine engineOf(const py::object& o, arch::Engine def) {
  if (o.is_none()) return def;
  auto e = isa::parseEngineName(std::string(py::str(o)));
  if (!e) throw py::value_error("unknown engine '" + std::string(py::str(o)) + "'");
  return *e;
}

/// The numpy dtype that holds a tensor's values when read: float32 for float types, the
/// integer type itself otherwise.
py::dtype valueDtype(numerics::DType t) {
  switch (t) {
    case numerics::DType::kInt8: return py::dtype::of<int8_t>();
    case numerics::DType::kInt16: return py::dtype::of<int16_t>();
    case numerics::DType::kInt32: return py::dtype::of<int32_t>();
    case numerics::DType::kUInt8: return py::dtype::of<uint8_t>();
    case numerics::DType::kUInt16: return py::dtype::of<uint16_t>();
    case numerics::DType::kUInt32: return py::dtype::of<uint32_t>();
    default: return py::dtype::of<float>();
  }
}
/// Unsigned integers holding the stored bits of one element.
py::dtype bitsDtype(numerics::DType t) {
  switch (numerics::dtypeSize(t)) {
    case 1: return py::dtype::of<uint8_t>();
    case 2: return py::dtype::of<uint16_t>();
    default: return py::dtype::of<uint32_t>();
  }
}

// ---- builder wrappers ----------------------------------------------------------------------

struct PyBuilder {
  arch::ChipConfig chip;
  std::unique_ptr<isa::KernelBuilder> kb;
  PyBuilder(const std::string& chipName, const std::string& name)
      : chip(unwrap(arch::loadChip(chipName))),
        kb(std::make_unique<isa::KernelBuilder>(chip, name)) {}
};

struct PyTensor {
  std::shared_ptr<PyBuilder> owner;
  isa::Tensor t;
};

struct PyAp {
  std::shared_ptr<PyBuilder> owner;
  isa::AccessPattern ap;
};

struct PyProgram {
  isa::Program program;
};

isa::Slice sliceOf(const py::handle& h, int64_t dimSize) {
  if (py::isinstance<py::slice>(h)) {
    py::ssize_t start = 0, stop = 0, step = 0, len = 0;
    if (!py::reinterpret_borrow<py::slice>(h).compute(py::ssize_t(dimSize), &start, &stop, &step,
                                                      &len))
      throw py::error_already_set();
    if (step < 1) throw py::value_error("slice steps must be >= 1");
    return isa::Slice::range(start, stop, step);
  }
  return isa::Slice::at(h.cast<int64_t>());
}

PyAp apOf(const PyTensor& t, const py::object& key) {
  std::vector<isa::Slice> slices;
  const auto& shape = t.t.shape();
  if (py::isinstance<py::tuple>(key)) {
    size_t i = 0;
    for (auto h : py::reinterpret_borrow<py::tuple>(key))
      slices.push_back(sliceOf(h, i < shape.size() ? shape[i++] : 0));
  } else {
    slices.push_back(sliceOf(key, shape.empty() ? 0 : shape[0]));
  }
  isa::AccessPattern ap = t.t.slice(slices);
  if (!ap.valid()) raiseStatus(t.owner->kb->status());
  return {t.owner, ap};
}

/// An operand: a tensor (whole) or an access pattern; None gives an absent operand.
isa::AccessPattern operandOf(const py::object& o) {
  if (o.is_none()) return {};
  if (py::isinstance<PyAp>(o)) return o.cast<const PyAp&>().ap;
  if (py::isinstance<PyTensor>(o)) return o.cast<const PyTensor&>().t.ap();
  throw py::type_error("expected a tensor or an access pattern (tensor[...])");
}
/// A scalar operand: a number, or a [P, 1] tile.
isa::ScalarOperand scalarOf(const py::object& o, float def = 0.0f) {
  if (o.is_none()) return def;
  if (py::isinstance<PyAp>(o) || py::isinstance<PyTensor>(o)) return operandOf(o);
  return o.cast<float>();
}
std::vector<int64_t> stepsOf(const py::object& pattern) {
  // nki pattern [[step, num], ...] -> steps; nums come from dst's shape.
  std::vector<int64_t> steps;
  for (auto h : pattern) {
    auto pair = h.cast<std::vector<int64_t>>();
    if (pair.empty()) throw py::value_error("pattern entries are [step, num]");
    steps.push_back(pair[0]);
  }
  return steps;
}

void emit(PyBuilder& b, const Status& s) {
  (void)b;
  check(s);
}

// ---- chip I/O ------------------------------------------------------------------------------

const isa::TensorDecl& declOf(const sim::Chip& c, const std::string& name, uint32_t core) {
  if (core >= c.programs().size()) throw py::value_error("no program on core " + std::to_string(core));
  const auto& p = c.programs()[core];
  const uint32_t t = p.findTensor(name);
  if (t == isa::kNoTensor)
    throw py::value_error("program '" + p.name + "' has no tensor '" + name + "'");
  return p.tensors[t];
}

void chipWrite(sim::Chip& c, const std::string& name, const py::array& data, uint32_t core) {
  const isa::TensorDecl& d = declOf(c, name, core);
  if (numerics::isFloat(d.dtype)) {
    auto arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(data);
    if (!arr) throw py::value_error("expected an array of numbers");
    check(c.writeFloats(name, std::span<const float>(arr.data(), size_t(arr.size())), core));
    return;
  }
  py::array arr = py::array::ensure(
      py::module_::import("numpy").attr("ascontiguousarray")(data, valueDtype(d.dtype)));
  check(c.write(name,
                std::span<const std::byte>(static_cast<const std::byte*>(arr.data()),
                                           size_t(arr.nbytes())),
                core));
}

py::array chipRead(const sim::Chip& c, const std::string& name, uint32_t core, bool bits) {
  const isa::TensorDecl& d = declOf(c, name, core);
  std::vector<py::ssize_t> shape(d.shape.begin(), d.shape.end());
  if (numerics::isFloat(d.dtype) && !bits) {
    auto vals = unwrap(c.readFloats(name, core));
    py::array_t<float> out(shape);
    std::memcpy(out.mutable_data(), vals.data(), vals.size() * sizeof(float));
    return out;
  }
  auto raw = unwrap(c.read(name, core));
  py::array out(bits ? bitsDtype(d.dtype) : valueDtype(d.dtype), shape);
  std::memcpy(out.mutable_data(), raw.data(), raw.size());
  return out;
}

}  // namespace

void bindSim(py::module_& m) {
  auto sub = m.def_submodule("sim", "Simulated chips: build programs, load, write, run, read");

  // The error classes live in errors.cpp; these are their names in this layer.
  sub.attr("SimError") = pybind::errorClass(ErrorCode::kOk);
  for (ErrorCode c : {ErrorCode::kUninitializedRead, ErrorCode::kOutOfBounds, ErrorCode::kCapacity,
                      ErrorCode::kVerify}) {
    py::handle cls = pybind::errorClass(c);
    sub.attr(cls.attr("__name__")) = cls;
  }

  py::class_<PyAp>(sub, "AccessPattern", "A view of a tensor an instruction operand reads or writes")
      .def_property_readonly("partitions", [](const PyAp& a) { return a.ap.partitions; })
      .def_property_readonly("free_size", [](const PyAp& a) { return a.ap.freeSize(); });

  py::class_<PyTensor>(sub, "Tensor", "A tensor of the program being built")
      .def_property_readonly("name", [](const PyTensor& t) { return t.t.decl().name; })
      .def_property_readonly("shape", [](const PyTensor& t) { return t.t.shape(); })
      .def_property_readonly("dtype",
                             [](const PyTensor& t) { return std::string(numerics::dtypeName(t.t.dtype())); })
      .def("__getitem__", &apOf)
      .def("ap",
           [](const PyTensor& t, const py::object& pattern, int64_t offset) {
             if (pattern.is_none()) return PyAp{t.owner, t.t.ap()};
             std::vector<isa::Dim> dims;
             for (auto h : pattern) {
               auto pair = h.cast<std::vector<int64_t>>();
               if (pair.size() != 2) throw py::value_error("pattern entries are [stride, count]");
               dims.push_back({pair[0], pair[1]});
             }
             isa::AccessPattern ap = t.t.pattern(dims, offset);
             if (!ap.valid()) raiseStatus(t.owner->kb->status());
             return PyAp{t.owner, ap};
           },
           py::arg("pattern") = py::none(), py::arg("offset") = 0,
           "The whole tensor, or a raw pattern [[partition_stride, partitions], [stride, count]...]");

  py::class_<PyProgram>(sub, "Program", "A finished program for one NeuronCore")
      .def_property_readonly("name", [](const PyProgram& p) { return p.program.name; })
      .def_property_readonly("num_instructions",
                             [](const PyProgram& p) { return p.program.instructions.size(); })
      .def("text", [](const PyProgram& p) { return isa::printProgram(p.program); },
           "The program in the readable text form (docs/isa.md)")
      .def(
          "save",
          [](const PyProgram& p, const std::string& path) {
            Status s = isa::saveProgramFile(p.program, path);
            if (!s.isOk()) raiseStatus(s);
          },
          py::arg("path"), "Writes the text form for *.tsim/*.txt paths, else the binary form");

  using B = std::shared_ptr<PyBuilder>;
  auto tensorMaker = [](isa::MemSpace space) {
    return [space](const B& b, const std::string& name, const py::object& dtype,
                   std::vector<int64_t> shape, const std::string& kind) {
      isa::Tensor t;
      const numerics::DType dt = dtypeOf(dtype);
      if (space == isa::MemSpace::kHbm) {
        auto k = isa::parseTensorKindName(kind);
        if (!k) throw py::value_error("unknown tensor kind '" + kind + "'");
        t = b->kb->hbm(name, dt, std::move(shape), *k);
      } else if (space == isa::MemSpace::kSbuf) {
        t = b->kb->sbuf(name, dt, std::move(shape));
      } else {
        t = b->kb->psum(name, dt, std::move(shape));
      }
      if (!t.valid()) raiseStatus(b->kb->status());
      return PyTensor{b, t};
    };
  };

  py::class_<PyBuilder, B>(sub, "KernelBuilder",
                           "Builds one NeuronCore program; instruction calls mirror nki.isa")
      .def(py::init<const std::string&, const std::string&>(), py::arg("chip") = "trn2",
           py::arg("name") = "kernel")
      .def("hbm", tensorMaker(isa::MemSpace::kHbm), py::arg("name"), py::arg("dtype"),
           py::arg("shape"), py::arg("kind") = "internal")
      .def("sbuf", tensorMaker(isa::MemSpace::kSbuf), py::arg("name"), py::arg("dtype"),
           py::arg("shape"), py::arg("kind") = "internal")
      .def("psum", tensorMaker(isa::MemSpace::kPsum), py::arg("name"), py::arg("dtype"),
           py::arg("shape"), py::arg("kind") = "internal")
      .def("finish", [](const B& b) { return PyProgram{unwrap(b->kb->finish())}; })
      .def("nc_matmul",
           [](const B& b, const py::object& dst, const py::object& stationary,
              const py::object& moving, bool accumulate, bool is_transpose,
              const std::string& perf_mode) {
             isa::MatmulOptions o;
             o.accumulate = accumulate;
             o.isTranspose = is_transpose;
             o.doubleRow = perf_mode == "double_row";
             emit(*b, b->kb->ncMatmul(operandOf(dst), operandOf(stationary), operandOf(moving), o));
           },
           py::arg("dst"), py::arg("stationary"), py::arg("moving"), py::arg("accumulate") = false,
           py::arg("is_transpose") = false, py::arg("perf_mode") = "none")
      .def("nc_transpose",
           [](const B& b, const py::object& dst, const py::object& data, const py::object& engine) {
             emit(*b, b->kb->ncTranspose(operandOf(dst), operandOf(data),
                                         engineOf(engine, arch::Engine::kTensor)));
           },
           py::arg("dst"), py::arg("data"), py::arg("engine") = py::none())
      .def("activation",
           [](const B& b, const py::object& dst, const std::string& op, const py::object& data,
              const py::object& bias, const py::object& scale, const py::object& reduce_op,
              const py::object& reduce_res) {
             emit(*b, b->kb->activation(operandOf(dst), actOf(op), operandOf(data), operandOf(bias),
                                        scalarOf(scale, 1.0f), aluOf(reduce_op),
                                        operandOf(reduce_res)));
           },
           py::arg("dst"), py::arg("op"), py::arg("data"), py::arg("bias") = py::none(),
           py::arg("scale") = 1.0f, py::arg("reduce_op") = py::none(),
           py::arg("reduce_res") = py::none())
      .def("tensor_tensor",
           [](const B& b, const py::object& dst, const py::object& data1, const py::object& data2,
              const py::object& op, const py::object& engine) {
             emit(*b, b->kb->tensorTensor(operandOf(dst), operandOf(data1), operandOf(data2),
                                          aluOf(op), engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("data1"), py::arg("data2"), py::arg("op"),
           py::arg("engine") = py::none())
      .def("tensor_scalar",
           [](const B& b, const py::object& dst, const py::object& data, const py::object& op0,
              const py::object& operand0, bool reverse0, const py::object& op1,
              const py::object& operand1, bool reverse1, const py::object& engine) {
             emit(*b, b->kb->tensorScalar(operandOf(dst), operandOf(data), aluOf(op0),
                                          scalarOf(operand0), aluOf(op1), scalarOf(operand1),
                                          reverse0, reverse1,
                                          engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("data"), py::arg("op0"), py::arg("operand0"),
           py::arg("reverse0") = false, py::arg("op1") = py::none(),
           py::arg("operand1") = py::none(), py::arg("reverse1") = false,
           py::arg("engine") = py::none())
      .def("scalar_tensor_tensor",
           [](const B& b, const py::object& dst, const py::object& data, const py::object& op0,
              const py::object& operand0, const py::object& op1, const py::object& operand1) {
             emit(*b, b->kb->scalarTensorTensor(operandOf(dst), operandOf(data), aluOf(op0),
                                                scalarOf(operand0), aluOf(op1),
                                                operandOf(operand1)));
           },
           py::arg("dst"), py::arg("data"), py::arg("op0"), py::arg("operand0"), py::arg("op1"),
           py::arg("operand1"))
      .def("tensor_reduce",
           [](const B& b, const py::object& dst, const py::object& op, const py::object& data,
              const py::object& axis, bool negate) {
             // nki axes count the partition dim as 0: free dim k is axis k + 1.
             uint32_t mask = 0;
             std::vector<int> axes = py::isinstance<py::int_>(axis)
                                         ? std::vector<int>{axis.cast<int>()}
                                         : axis.cast<std::vector<int>>();
             for (int a : axes) {
               if (a < 1 || a > isa::kMaxFreeDims) throw py::value_error("axis must be 1..4");
               mask |= 1u << (a - 1);
             }
             emit(*b, b->kb->tensorReduce(operandOf(dst), aluOf(op), operandOf(data), mask, negate));
           },
           py::arg("dst"), py::arg("op"), py::arg("data"), py::arg("axis"),
           py::arg("negate") = false)
      .def("tensor_partition_reduce",
           [](const B& b, const py::object& dst, const py::object& op, const py::object& data) {
             emit(*b, b->kb->tensorPartitionReduce(operandOf(dst), aluOf(op), operandOf(data)));
           },
           py::arg("dst"), py::arg("op"), py::arg("data"))
      .def("tensor_copy",
           [](const B& b, const py::object& dst, const py::object& src, const py::object& engine) {
             emit(*b, b->kb->tensorCopy(operandOf(dst), operandOf(src),
                                        engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("src"), py::arg("engine") = py::none())
      .def("tensor_copy_predicated",
           [](const B& b, const py::object& dst, const py::object& src,
              const py::object& predicate, bool reverse_pred) {
             emit(*b, b->kb->tensorCopyPredicated(operandOf(dst), operandOf(src),
                                                  operandOf(predicate), reverse_pred));
           },
           py::arg("dst"), py::arg("src"), py::arg("predicate"), py::arg("reverse_pred") = false)
      .def("tensor_tensor_scan",
           [](const B& b, const py::object& dst, const py::object& data0, const py::object& data1,
              const py::object& initial, const py::object& op0, const py::object& op1) {
             emit(*b, b->kb->tensorTensorScan(operandOf(dst), operandOf(data0), operandOf(data1),
                                              scalarOf(initial), aluOf(op0), aluOf(op1)));
           },
           py::arg("dst"), py::arg("data0"), py::arg("data1"), py::arg("initial"), py::arg("op0"),
           py::arg("op1"))
      .def("memset",
           [](const B& b, const py::object& dst, float value, const py::object& engine) {
             emit(*b, b->kb->memset(operandOf(dst), value, engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("value"), py::arg("engine") = py::none())
      .def("iota",
           [](const B& b, const py::object& dst, const py::object& pattern, float offset,
              float channel_multiplier) {
             emit(*b, b->kb->iota(operandOf(dst), stepsOf(pattern), offset, channel_multiplier));
           },
           py::arg("dst"), py::arg("pattern"), py::arg("offset") = 0.0f,
           py::arg("channel_multiplier") = 0.0f)
      .def("affine_select",
           [](const B& b, const py::object& dst, const py::object& pattern,
              float channel_multiplier, const py::object& on_true_tile, float on_false_value,
              const py::object& cmp_op, float offset) {
             emit(*b, b->kb->affineSelect(operandOf(dst), stepsOf(pattern), channel_multiplier,
                                          offset, aluOf(cmp_op), operandOf(on_true_tile),
                                          on_false_value));
           },
           py::arg("dst"), py::arg("pattern"), py::arg("channel_multiplier"),
           py::arg("on_true_tile"), py::arg("on_false_value"), py::arg("cmp_op") = "is_equal",
           py::arg("offset") = 0.0f)
      .def("range_select",
           [](const B& b, const py::object& dst, const py::object& on_true_tile,
              const py::object& comp_op0, const py::object& comp_op1, const py::object& bound0,
              const py::object& bound1, const py::object& reduce_res, const py::object& reduce_op,
              float range_start, float on_false_value) {
             emit(*b, b->kb->rangeSelect(operandOf(dst), operandOf(on_true_tile), aluOf(comp_op0),
                                         aluOf(comp_op1), operandOf(bound0), operandOf(bound1),
                                         range_start, on_false_value, aluOf(reduce_op),
                                         operandOf(reduce_res)));
           },
           py::arg("dst"), py::arg("on_true_tile"), py::arg("comp_op0"), py::arg("comp_op1"),
           py::arg("bound0"), py::arg("bound1"), py::arg("reduce_res") = py::none(),
           py::arg("reduce_op") = "max", py::arg("range_start") = 0.0f,
           py::arg("on_false_value") = -3.4028234663852886e38f)
      .def("select_reduce",
           [](const B& b, const py::object& dst, const py::object& predicate,
              const py::object& on_true, const py::object& on_false, const py::object& reduce_res,
              const py::object& reduce_op, bool reverse_pred) {
             emit(*b, b->kb->selectReduce(operandOf(dst), operandOf(predicate), operandOf(on_true),
                                          scalarOf(on_false), aluOf(reduce_op),
                                          operandOf(reduce_res), reverse_pred));
           },
           py::arg("dst"), py::arg("predicate"), py::arg("on_true"), py::arg("on_false"),
           py::arg("reduce_res") = py::none(), py::arg("reduce_op") = "max",
           py::arg("reverse_pred") = false)
      .def("bn_stats",
           [](const B& b, const py::object& dst, const py::object& data) {
             emit(*b, b->kb->bnStats(operandOf(dst), operandOf(data)));
           },
           py::arg("dst"), py::arg("data"))
      .def("bn_aggr",
           [](const B& b, const py::object& dst, const py::object& data) {
             emit(*b, b->kb->bnAggr(operandOf(dst), operandOf(data)));
           },
           py::arg("dst"), py::arg("data"))
      .def("reciprocal",
           [](const B& b, const py::object& dst, const py::object& data) {
             emit(*b, b->kb->reciprocal(operandOf(dst), operandOf(data)));
           },
           py::arg("dst"), py::arg("data"))
      .def("max8",
           [](const B& b, const py::object& dst, const py::object& src) {
             emit(*b, b->kb->max8(operandOf(dst), operandOf(src)));
           },
           py::arg("dst"), py::arg("src"))
      .def("nc_find_index8",
           [](const B& b, const py::object& dst, const py::object& data, const py::object& vals) {
             emit(*b, b->kb->ncFindIndex8(operandOf(dst), operandOf(data), operandOf(vals)));
           },
           py::arg("dst"), py::arg("data"), py::arg("vals"))
      .def("nc_match_replace8",
           [](const B& b, const py::object& dst, const py::object& data, const py::object& vals,
              float imm, const py::object& dst_idx) {
             emit(*b, b->kb->ncMatchReplace8(operandOf(dst), operandOf(data), operandOf(vals), imm,
                                             operandOf(dst_idx)));
           },
           py::arg("dst"), py::arg("data"), py::arg("vals"), py::arg("imm"),
           py::arg("dst_idx") = py::none())
      .def("local_gather",
           [](const B& b, const py::object& dst, const py::object& src_buffer,
              const py::object& index, int64_t num_elem_per_idx,
              const py::object& num_valid_indices) {
             emit(*b, b->kb->localGather(operandOf(dst), operandOf(src_buffer), operandOf(index),
                                         num_elem_per_idx,
                                         num_valid_indices.is_none()
                                             ? 0
                                             : num_valid_indices.cast<int64_t>()));
           },
           py::arg("dst"), py::arg("src_buffer"), py::arg("index"),
           py::arg("num_elem_per_idx") = 1, py::arg("num_valid_indices") = py::none())
      .def("dropout",
           [](const B& b, const py::object& dst, const py::object& data, const py::object& prob,
              const py::object& engine) {
             emit(*b, b->kb->dropout(operandOf(dst), operandOf(data), scalarOf(prob),
                                     engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("data"), py::arg("prob"), py::arg("engine") = py::none())
      .def("rng",
           [](const B& b, const py::object& dst, const py::object& engine) {
             emit(*b, b->kb->rng(operandOf(dst), engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("engine") = py::none())
      .def("rand2",
           [](const B& b, const py::object& dst, const py::object& min, const py::object& max,
              const py::object& engine) {
             emit(*b, b->kb->rand2(operandOf(dst), scalarOf(min), scalarOf(max, 1.0f),
                                   engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("min"), py::arg("max"), py::arg("engine") = py::none())
      .def("set_rng_seed",
           [](const B& b, const py::object& src_seeds, const py::object& engine) {
             emit(*b, b->kb->setRngSeed(operandOf(src_seeds), engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("src_seeds"), py::arg("engine") = py::none())
      .def("rand_set_state",
           [](const B& b, const py::object& src_seeds, const py::object& engine) {
             emit(*b, b->kb->randSetState(operandOf(src_seeds), engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("src_seeds"), py::arg("engine") = py::none())
      .def("rand_get_state",
           [](const B& b, const py::object& dst, const py::object& engine) {
             emit(*b, b->kb->randGetState(operandOf(dst), engineOf(engine, arch::Engine::kVector)));
           },
           py::arg("dst"), py::arg("engine") = py::none())
      .def("dma_copy",
           [](const B& b, const py::object& dst, const py::object& src, const py::object& index,
              const std::string& indirect, const std::string& oob_mode, int queue) {
             isa::DmaOptions o;
             o.queue = queue;
             o.index = operandOf(index);
             if (indirect == "src") {
               o.indirectSrc = true;
             } else if (indirect == "dst") {
               o.indirectDst = true;
             } else if (!indirect.empty() && indirect != "none") {
               throw py::value_error("indirect must be 'src', 'dst' or 'none'");
             }
             o.oobSkip = oob_mode == "skip";
             emit(*b, b->kb->dmaCopy(operandOf(dst), operandOf(src), o));
           },
           py::arg("dst"), py::arg("src"), py::arg("index") = py::none(),
           py::arg("indirect") = "none", py::arg("oob_mode") = "error", py::arg("queue") = -1)
      .def("dma_transpose",
           [](const B& b, const py::object& dst, const py::object& src) {
             emit(*b, b->kb->dmaTranspose(operandOf(dst), operandOf(src)));
           },
           py::arg("dst"), py::arg("src"));

  py::class_<sim::Chip>(sub, "Chip", "One simulated chip (values and timing)")
      .def(py::init([](const std::string& name) { return sim::Chip(unwrap(arch::loadChip(name))); }),
           py::arg("chip") = "trn2")
      .def("load",
           [](sim::Chip& c, const std::vector<PyProgram*>& programs) {
             std::vector<isa::Program> ps;
             for (const PyProgram* p : programs) ps.push_back(p->program);
             check(c.load(std::move(ps)));
           },
           py::arg("programs"))
      .def("write", &chipWrite, py::arg("name"), py::arg("data"), py::arg("core") = 0,
           "Writes an array (converted to the tensor's dtype, RNE) into a tensor")
      .def("read",
           [](const sim::Chip& c, const std::string& name, uint32_t core) {
             return chipRead(c, name, core, false);
           },
           py::arg("name"), py::arg("core") = 0,
           "A tensor's values: float32 for float dtypes, the integer type otherwise")
      .def("read_bits",
           [](const sim::Chip& c, const std::string& name, uint32_t core) {
             return chipRead(c, name, core, true);
           },
           py::arg("name"), py::arg("core") = 0, "A tensor's stored bits as unsigned integers")
      .def("run",
           [](sim::Chip& c, bool timing_only, uint64_t seed, bool timing, bool detect_uninitialized,
              const std::string& rounding) {
             sim::RunOptions o;
             o.computeValues = !timing_only;
             o.computeTiming = timing || timing_only;
             o.recordEvents = false;
             o.seed = seed;
             o.detectUninitialized = detect_uninitialized;
             auto r = numerics::parseRounding(rounding);
             if (!r) throw py::value_error("rounding must be 'rne' or 'stochastic'");
             o.rounding = *r;
             Expected<sim::RunResult> res = Status();
             {
               py::gil_scoped_release release;
               res = c.run(o);
             }
             sim::RunResult rr = unwrap(std::move(res));
             py::dict d;
             d["instructions"] = rr.instructions;
             d["host_seconds"] = rr.hostSeconds;
             d["simulated_ns"] = rr.simulatedNs;
             return d;
           },
           py::arg("timing_only") = false, py::arg("seed") = 0, py::arg("timing") = false,
           py::arg("detect_uninitialized") = true, py::arg("rounding") = "rne");
}
