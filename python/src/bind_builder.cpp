// The one Python binding of the kernel builder (trnsim._trnsim.sim.KernelBuilder) and of
// finished programs (sim.Program). Users call it with nki.isa's keyword names; the NKI front end
// (python/trnsim/nki) calls the same methods positionally, in the same order, with its cheap
// forms of the same values, so no Python object is made per operand:
//  - an operand is a Tensor, a Tensor[...] AccessPattern, None (absent), or a flat tuple
//    (tensor id, partition_offset, partition_stride, partitions, offset, stride0, count0, ...);
//  - an ALU op, activation function or engine is its name or its core enum number.
// Errors are the classes of errors.cpp (one per core error code).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "builder.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/builder.h"
#include "trnsim/isa/names.h"
#include "trnsim/isa/text.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::check;
using pybind::PyProgram;
using pybind::raiseStatus;
using pybind::unwrap;

struct PyBuilder {
  arch::ChipConfig chip;
  std::unique_ptr<isa::KernelBuilder> kb;

  PyBuilder(const std::string& chipName, const std::string& name)
      : chip(unwrap(arch::loadChip(chipName))),
        kb(std::make_unique<isa::KernelBuilder>(chip, name)) {}

  isa::KernelBuilder& b() {
    if (!kb) throw py::value_error("this kernel builder has already finished");
    return *kb;
  }
};
using B = std::shared_ptr<PyBuilder>;

struct PyTensor {
  B owner;
  isa::Tensor t;
};

struct PyAp {
  B owner;
  isa::AccessPattern ap;
};

// ---- values ------------------------------------------------------------------------------

int64_t asInt(PyObject* o) {
  const long long v = PyLong_AsLongLong(o);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

/// A flat access-pattern tuple -> AccessPattern.
isa::AccessPattern apOfTuple(PyObject* t) {
  isa::AccessPattern ap;
  const Py_ssize_t n = PyTuple_GET_SIZE(t);
  if (n < 5 || (n - 5) % 2 != 0 || (n - 5) / 2 > isa::kMaxFreeDims)
    throw py::value_error("access pattern tuple has a bad length (at most 4 free dimensions)");
  ap.tensor = uint32_t(asInt(PyTuple_GET_ITEM(t, 0)));
  ap.partitionOffset = uint32_t(asInt(PyTuple_GET_ITEM(t, 1)));
  ap.partitionStride = asInt(PyTuple_GET_ITEM(t, 2));
  ap.partitions = uint32_t(asInt(PyTuple_GET_ITEM(t, 3)));
  ap.offset = asInt(PyTuple_GET_ITEM(t, 4));
  ap.numFree = uint8_t((n - 5) / 2);
  for (int k = 0; k < ap.numFree; ++k) {
    ap.free[size_t(k)].stride = asInt(PyTuple_GET_ITEM(t, 5 + 2 * k));
    ap.free[size_t(k)].count = asInt(PyTuple_GET_ITEM(t, 6 + 2 * k));
  }
  return ap;
}

/// An operand: None (absent), a flat tuple, an AccessPattern or a whole Tensor.
isa::AccessPattern operandOf(py::handle h) {
  if (h.is_none()) return {};
  if (PyTuple_Check(h.ptr())) return apOfTuple(h.ptr());
  if (py::isinstance<PyAp>(h)) return h.cast<const PyAp&>().ap;
  if (py::isinstance<PyTensor>(h)) return h.cast<const PyTensor&>().t.ap();
  throw py::type_error("expected a tensor, an access pattern (tensor[...]) or None");
}
/// A scalar operand: a number (immediate) or a [P, 1] tile.
isa::ScalarOperand scalarOf(py::handle h, float def = 0.0f) {
  if (h.is_none()) return def;
  if (PyTuple_Check(h.ptr()) || py::isinstance<PyAp>(h) || py::isinstance<PyTensor>(h))
    return operandOf(h);
  const double v = PyFloat_AsDouble(h.ptr());
  if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  return float(v);
}

/// An enum value given as its core number (checked against the table's size) or its name.
template <typename E>
E enumOf(py::handle h, int count, const char* what, std::optional<E> (*parse)(std::string_view)) {
  if (PyLong_Check(h.ptr())) {
    const int64_t v = asInt(h.ptr());
    if (v < 0 || v >= count)
      throw py::value_error(std::string(what) + " number " + std::to_string(v) +
                            " is out of range");
    return static_cast<E>(v);
  }
  const std::string name = py::str(h);
  auto e = parse(name);
  if (!e) throw py::value_error("unknown " + std::string(what) + " '" + name + "'");
  return *e;
}
/// The core name `h` stands for when it is a string in `table` (alias -> core name).
std::optional<std::string_view> aliasTarget(
    py::handle h, const std::vector<std::pair<std::string_view, std::string_view>>& table) {
  if (!PyUnicode_Check(h.ptr())) return std::nullopt;
  const std::string name = py::str(h);
  for (const auto& [from, to] : table)
    if (name == from) return to;
  return std::nullopt;
}
isa::AluOp aluOf(py::handle h) {
  if (h.is_none()) return isa::AluOp::kBypass;
  if (auto core = aliasTarget(h, pybind::aluAliases())) return *isa::parseAluOpName(*core);
  return enumOf<isa::AluOp>(h, int(isa::AluOp::kCount), "ALU operation", isa::parseAluOpName);
}
isa::ActFunc actOf(py::handle h) {
  if (auto core = aliasTarget(h, pybind::actAliases())) return *isa::parseActFuncName(*core);
  return enumOf<isa::ActFunc>(h, int(isa::ActFunc::kCount), "activation function",
                              isa::parseActFuncName);
}
arch::Engine engineOf(py::handle h, arch::Engine def = arch::Engine::kVector) {
  if (h.is_none()) return def;
  return enumOf<arch::Engine>(h, arch::kNumEngines, "engine", isa::parseEngineName);
}
numerics::DType dtypeOf(py::handle o) {
  std::string name = py::str(o);
  if (!py::isinstance<py::str>(o) && py::hasattr(o, "name")) name = py::str(o.attr("name"));
  return pybind::dtypeArg(name);
}
/// nki pattern [[step, num], ...] (num comes from dst's shape) or [step, ...] -> steps.
std::vector<int64_t> stepsOf(py::handle pattern) {
  std::vector<int64_t> steps;
  for (auto h : pattern) {
    if (PyLong_Check(h.ptr())) {
      steps.push_back(asInt(h.ptr()));
      continue;
    }
    auto pair = h.cast<std::vector<int64_t>>();
    if (pair.empty()) throw py::value_error("pattern entries are [step, num]");
    steps.push_back(pair[0]);
  }
  return steps;
}
/// nki axes (the partition axis is 0: free axis k is axis k + 1) -> the builder's axis mask.
uint32_t axisMaskOf(py::handle axis) {
  std::vector<int> axes =
      PyLong_Check(axis.ptr()) ? std::vector<int>{axis.cast<int>()} : axis.cast<std::vector<int>>();
  uint32_t mask = 0;
  for (int a : axes) {
    if (a < 1 || a > isa::kMaxFreeDims) throw py::value_error("axis must be 1..4");
    mask |= 1u << (a - 1);
  }
  return mask;
}

isa::Tensor declare(PyBuilder& pb, isa::MemSpace space, const std::string& name, numerics::DType dt,
                    std::vector<int64_t> shape, const std::string& kind) {
  auto& kb = pb.b();
  isa::Tensor t;
  if (space == isa::MemSpace::kHbm) {
    auto k = isa::parseTensorKindName(kind);
    if (!k) throw py::value_error("unknown tensor kind '" + kind + "'");
    t = kb.hbm(name, dt, std::move(shape), *k);
  } else if (space == isa::MemSpace::kSbuf) {
    t = kb.sbuf(name, dt, std::move(shape));
  } else {
    t = kb.psum(name, dt, std::move(shape));
  }
  if (!t.valid()) raiseStatus(kb.status());
  return t;
}

isa::Slice sliceOf(py::handle h, int64_t dimSize) {
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

PyAp indexTensor(const PyTensor& t, const py::object& key) {
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
  if (!ap.valid()) raiseStatus(t.owner->b().status());
  return {t.owner, ap};
}

using RankLists = std::vector<std::vector<uint32_t>>;
using py::arg;

}  // namespace

namespace trnsim::pybind {

const std::vector<std::pair<std::string_view, std::string_view>>& aluAliases() {
  // numpy ufunc and nki.language spellings -> the core's names (isa::aluOpName)
  static const std::vector<std::pair<std::string_view, std::string_view>> kAliases = {
      {"true_divide", "divide"},
      {"maximum", "max"},
      {"minimum", "min"},
      {"power", "pow"},
      {"mult", "multiply"},
      {"prod", "multiply"},
      {"sum", "add"},
      {"fmod", "mod"},
      {"remainder", "mod"},
      {"equal", "is_equal"},
      {"greater", "is_gt"},
      {"greater_equal", "is_ge"},
      {"less", "is_lt"},
      {"less_equal", "is_le"},
      {"all", "logical_and"},
      {"any", "logical_or"},
      {"logical_shift_right", "logical_right_shift"}};
  return kAliases;
}

const std::vector<std::pair<std::string_view, std::string_view>>& actAliases() {
  // numpy / nki.language spellings -> the core's names (isa::actFuncName)
  static const std::vector<std::pair<std::string_view, std::string_view>> kAliases = {
      {"absolute", "abs"}};
  return kAliases;
}

void bindBuilder(py::module_& m) {
  py::class_<PyAp>(m, "AccessPattern", "A view of a tensor an instruction operand reads or writes")
      .def_property_readonly("partitions", [](const PyAp& a) { return a.ap.partitions; })
      .def_property_readonly("free_size", [](const PyAp& a) { return a.ap.freeSize(); });

  py::class_<PyTensor>(m, "Tensor", "A tensor of the program being built")
      .def_property_readonly("name", [](const PyTensor& t) { return t.t.decl().name; })
      .def_property_readonly("id", [](const PyTensor& t) { return t.t.id(); })
      .def_property_readonly("shape", [](const PyTensor& t) { return t.t.shape(); })
      .def_property_readonly(
          "dtype", [](const PyTensor& t) { return std::string(numerics::dtypeName(t.t.dtype())); })
      .def("__getitem__", &indexTensor)
      .def(
          "ap",
          [](const PyTensor& t, const py::object& pattern, int64_t offset) {
            if (pattern.is_none()) return PyAp{t.owner, t.t.ap()};
            std::vector<isa::Dim> dims;
            for (auto h : pattern) {
              auto pair = h.cast<std::vector<int64_t>>();
              if (pair.size() != 2) throw py::value_error("pattern entries are [stride, count]");
              dims.push_back({pair[0], pair[1]});
            }
            isa::AccessPattern ap = t.t.pattern(dims, offset);
            if (!ap.valid()) raiseStatus(t.owner->b().status());
            return PyAp{t.owner, ap};
          },
          arg("pattern") = py::none(), arg("offset") = 0,
          "The whole tensor, or a raw pattern [[partition_stride, partitions], [stride, "
          "count]...]");

  py::class_<PyProgram>(m, "Program", "A finished program for one NeuronCore")
      .def_property_readonly("name", [](const PyProgram& p) { return p.program.name; })
      .def_property_readonly("num_instructions",
                             [](const PyProgram& p) { return p.program.instructions.size(); })
      .def(
          "text", [](const PyProgram& p) { return isa::printProgram(p.program); },
          "The program in the readable text form (docs/isa.md)")
      .def(
          "save",
          [](const PyProgram& p, const std::string& path) {
            check(isa::saveProgramFile(p.program, path));
          },
          arg("path"), "Writes the text form for *.tsim/*.txt paths, else the binary form");

  auto tensorMaker = [](isa::MemSpace space) {
    return [space](const B& b, const std::string& name, const py::object& dtype,
                   std::vector<int64_t> shape, const std::string& kind) {
      return PyTensor{b, declare(*b, space, name, dtypeOf(dtype), std::move(shape), kind)};
    };
  };

  py::class_<PyBuilder, B>(m, "KernelBuilder",
                           "Builds one NeuronCore program; instruction calls mirror nki.isa")
      .def(py::init<const std::string&, const std::string&>(), arg("chip") = "trn2",
           arg("name") = "kernel")
      // ---- tensors ----
      .def("hbm", tensorMaker(isa::MemSpace::kHbm), arg("name"), arg("dtype"), arg("shape"),
           arg("kind") = "internal")
      .def("sbuf", tensorMaker(isa::MemSpace::kSbuf), arg("name"), arg("dtype"), arg("shape"),
           arg("kind") = "internal")
      .def("psum", tensorMaker(isa::MemSpace::kPsum), arg("name"), arg("dtype"), arg("shape"),
           arg("kind") = "internal")
      .def(
          "declare",
          [](PyBuilder& b, int space, const std::string& name, const py::object& dtype,
             std::vector<int64_t> shape, const std::string& kind) {
            if (!isa::validMemSpace(static_cast<isa::MemSpace>(space)))
              throw py::value_error("memory space must be 0 (sbuf), 1 (psum) or 2 (hbm)");
            return declare(b, static_cast<isa::MemSpace>(space), name, dtypeOf(dtype),
                           std::move(shape), kind)
                .id();
          },
          arg("space"), arg("name"), arg("dtype"), arg("shape"), arg("kind") = "internal",
          "Declares a tensor by memory-space number and returns its id (for flat operands)")
      .def(
          "release",
          [](PyBuilder& b, uint32_t id) {
            if (b.kb) b.kb->release(isa::Tensor(b.kb.get(), id));
          },
          arg("id"), "Gives an on-chip tensor's memory back to the allocator")
      .def(
          "set_location",
          [](PyBuilder& b, const std::string& file, uint32_t line) {
            b.b().setLocation(file, line);
          },
          arg("file"), arg("line"), "The source line the next instructions come from")
      .def("sbuf_free_bytes", [](PyBuilder& b) { return b.b().sbufFreeBytes(); })
      .def("psum_free_bytes", [](PyBuilder& b) { return b.b().psumFreeBytes(); })
      .def("num_instructions", [](PyBuilder& b) { return b.b().program().instructions.size(); })
      .def(
          "finish",
          [](PyBuilder& b) {
            auto p = b.b().finish();
            b.kb.reset();
            return PyProgram{unwrap(std::move(p)), nullptr};
          },
          "The verified program; the builder takes no more calls")
      // ---- instructions ----
      .def(
          "nc_matmul",
          [](PyBuilder& b, py::handle dst, py::handle stationary, py::handle moving,
             bool accumulate, py::handle perf_mode, bool is_transpose) {
            isa::MatmulOptions o;
            o.accumulate = accumulate;
            o.isTranspose = is_transpose;
            if (PyBool_Check(perf_mode.ptr())) {
              o.doubleRow = perf_mode.ptr() == Py_True;
            } else if (!perf_mode.is_none()) {
              const std::string mode = py::str(perf_mode);
              if (mode != "none" && mode != "double_row")
                throw py::value_error("perf_mode must be 'none' or 'double_row'");
              o.doubleRow = mode == "double_row";
            }
            check(b.b().ncMatmul(operandOf(dst), operandOf(stationary), operandOf(moving), o));
          },
          arg("dst"), arg("stationary"), arg("moving"), arg("accumulate") = false,
          arg("perf_mode") = "none", arg("is_transpose") = false)
      .def(
          "nc_transpose",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle engine) {
            check(b.b().ncTranspose(operandOf(dst), operandOf(data),
                                    engineOf(engine, arch::Engine::kTensor)));
          },
          arg("dst"), arg("data"), arg("engine") = py::none())
      .def(
          "activation",
          [](PyBuilder& b, py::handle dst, py::handle op, py::handle data, py::handle bias,
             py::handle scale, py::handle reduce_op, py::handle reduce_res) {
            check(b.b().activation(operandOf(dst), actOf(op), operandOf(data), operandOf(bias),
                                   scalarOf(scale, 1.0f), aluOf(reduce_op), operandOf(reduce_res)));
          },
          arg("dst"), arg("op"), arg("data"), arg("bias") = py::none(), arg("scale") = 1.0f,
          arg("reduce_op") = py::none(), arg("reduce_res") = py::none())
      .def(
          "tensor_tensor",
          [](PyBuilder& b, py::handle dst, py::handle data1, py::handle data2, py::handle op,
             py::handle engine) {
            check(b.b().tensorTensor(operandOf(dst), operandOf(data1), operandOf(data2), aluOf(op),
                                     engineOf(engine)));
          },
          arg("dst"), arg("data1"), arg("data2"), arg("op"), arg("engine") = py::none())
      .def(
          "tensor_scalar",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle op0, py::handle operand0,
             py::handle op1, py::handle operand1, bool reverse0, bool reverse1, py::handle engine) {
            check(b.b().tensorScalar(operandOf(dst), operandOf(data), aluOf(op0),
                                     scalarOf(operand0), aluOf(op1), scalarOf(operand1), reverse0,
                                     reverse1, engineOf(engine)));
          },
          arg("dst"), arg("data"), arg("op0"), arg("operand0"), arg("op1") = py::none(),
          arg("operand1") = py::none(), arg("reverse0") = false, arg("reverse1") = false,
          arg("engine") = py::none())
      .def(
          "scalar_tensor_tensor",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle op0, py::handle operand0,
             py::handle op1, py::handle operand1, py::handle engine) {
            check(b.b().scalarTensorTensor(operandOf(dst), operandOf(data), aluOf(op0),
                                           scalarOf(operand0), aluOf(op1), operandOf(operand1),
                                           engineOf(engine)));
          },
          arg("dst"), arg("data"), arg("op0"), arg("operand0"), arg("op1"), arg("operand1"),
          arg("engine") = py::none())
      .def(
          "tensor_reduce",
          [](PyBuilder& b, py::handle dst, py::handle op, py::handle data, py::handle axis,
             bool negate, py::handle engine) {
            check(b.b().tensorReduce(operandOf(dst), aluOf(op), operandOf(data), axisMaskOf(axis),
                                     negate, engineOf(engine)));
          },
          arg("dst"), arg("op"), arg("data"), arg("axis"), arg("negate") = false,
          arg("engine") = py::none(), "axis: nki axes (1 = the first free axis), an int or a list")
      .def(
          "tensor_partition_reduce",
          [](PyBuilder& b, py::handle dst, py::handle op, py::handle data) {
            check(b.b().tensorPartitionReduce(operandOf(dst), aluOf(op), operandOf(data)));
          },
          arg("dst"), arg("op"), arg("data"))
      .def(
          "tensor_copy",
          [](PyBuilder& b, py::handle dst, py::handle src, py::handle engine) {
            check(b.b().tensorCopy(operandOf(dst), operandOf(src), engineOf(engine)));
          },
          arg("dst"), arg("src"), arg("engine") = py::none())
      .def(
          "tensor_copy_predicated",
          [](PyBuilder& b, py::handle dst, py::handle src, py::handle predicate, bool reverse_pred,
             py::handle engine) {
            check(b.b().tensorCopyPredicated(operandOf(dst), operandOf(src), operandOf(predicate),
                                             reverse_pred, engineOf(engine)));
          },
          arg("dst"), arg("src"), arg("predicate"), arg("reverse_pred") = false,
          arg("engine") = py::none())
      .def(
          "tensor_tensor_scan",
          [](PyBuilder& b, py::handle dst, py::handle data0, py::handle data1, py::handle initial,
             py::handle op0, py::handle op1) {
            check(b.b().tensorTensorScan(operandOf(dst), operandOf(data0), operandOf(data1),
                                         scalarOf(initial), aluOf(op0), aluOf(op1)));
          },
          arg("dst"), arg("data0"), arg("data1"), arg("initial"), arg("op0"), arg("op1"))
      .def(
          "memset",
          [](PyBuilder& b, py::handle dst, float value, py::handle engine) {
            check(b.b().memset(operandOf(dst), value, engineOf(engine)));
          },
          arg("dst"), arg("value"), arg("engine") = py::none())
      .def(
          "iota",
          [](PyBuilder& b, py::handle dst, py::handle pattern, float offset,
             float channel_multiplier) {
            check(b.b().iota(operandOf(dst), stepsOf(pattern), offset, channel_multiplier));
          },
          arg("dst"), arg("pattern"), arg("offset") = 0.0f, arg("channel_multiplier") = 0.0f)
      .def(
          "affine_select",
          [](PyBuilder& b, py::handle dst, py::handle pattern, float channel_multiplier,
             py::handle on_true_tile, float on_false_value, py::handle cmp_op, float offset) {
            check(b.b().affineSelect(operandOf(dst), stepsOf(pattern), channel_multiplier, offset,
                                     aluOf(cmp_op), operandOf(on_true_tile), on_false_value));
          },
          arg("dst"), arg("pattern"), arg("channel_multiplier"), arg("on_true_tile"),
          arg("on_false_value"), arg("cmp_op") = "is_equal", arg("offset") = 0.0f)
      .def(
          "range_select",
          [](PyBuilder& b, py::handle dst, py::handle on_true_tile, py::handle comp_op0,
             py::handle comp_op1, py::handle bound0, py::handle bound1, py::handle reduce_res,
             py::handle reduce_op, float range_start, float on_false_value) {
            check(b.b().rangeSelect(operandOf(dst), operandOf(on_true_tile), aluOf(comp_op0),
                                    aluOf(comp_op1), operandOf(bound0), operandOf(bound1),
                                    range_start, on_false_value, aluOf(reduce_op),
                                    operandOf(reduce_res)));
          },
          arg("dst"), arg("on_true_tile"), arg("comp_op0"), arg("comp_op1"), arg("bound0"),
          arg("bound1"), arg("reduce_res") = py::none(), arg("reduce_op") = "max",
          arg("range_start") = 0.0f, arg("on_false_value") = -std::numeric_limits<float>::max())
      .def(
          "select_reduce",
          [](PyBuilder& b, py::handle dst, py::handle predicate, py::handle on_true,
             py::handle on_false, py::handle reduce_op, py::handle reduce_res, bool reverse_pred) {
            check(b.b().selectReduce(operandOf(dst), operandOf(predicate), operandOf(on_true),
                                     scalarOf(on_false), aluOf(reduce_op), operandOf(reduce_res),
                                     reverse_pred));
          },
          arg("dst"), arg("predicate"), arg("on_true"), arg("on_false"), arg("reduce_op") = "max",
          arg("reduce_res") = py::none(), arg("reverse_pred") = false)
      .def(
          "bn_stats",
          [](PyBuilder& b, py::handle dst, py::handle data) {
            check(b.b().bnStats(operandOf(dst), operandOf(data)));
          },
          arg("dst"), arg("data"))
      .def(
          "bn_aggr",
          [](PyBuilder& b, py::handle dst, py::handle data) {
            check(b.b().bnAggr(operandOf(dst), operandOf(data)));
          },
          arg("dst"), arg("data"))
      .def(
          "reciprocal",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle engine) {
            check(b.b().reciprocal(operandOf(dst), operandOf(data), engineOf(engine)));
          },
          arg("dst"), arg("data"), arg("engine") = py::none())
      .def(
          "max8",
          [](PyBuilder& b, py::handle dst, py::handle src) {
            check(b.b().max8(operandOf(dst), operandOf(src)));
          },
          arg("dst"), arg("src"))
      .def(
          "nc_find_index8",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle vals) {
            check(b.b().ncFindIndex8(operandOf(dst), operandOf(data), operandOf(vals)));
          },
          arg("dst"), arg("data"), arg("vals"))
      .def(
          "nc_match_replace8",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle vals, float imm,
             py::handle dst_idx) {
            check(b.b().ncMatchReplace8(operandOf(dst), operandOf(data), operandOf(vals), imm,
                                        operandOf(dst_idx)));
          },
          arg("dst"), arg("data"), arg("vals"), arg("imm"), arg("dst_idx") = py::none())
      .def(
          "local_gather",
          [](PyBuilder& b, py::handle dst, py::handle src_buffer, py::handle index,
             int64_t num_elem_per_idx, py::handle num_valid_indices) {
            check(b.b().localGather(
                operandOf(dst), operandOf(src_buffer), operandOf(index), num_elem_per_idx,
                num_valid_indices.is_none() ? 0 : asInt(num_valid_indices.ptr())));
          },
          arg("dst"), arg("src_buffer"), arg("index"), arg("num_elem_per_idx") = 1,
          arg("num_valid_indices") = py::none())
      .def(
          "dropout",
          [](PyBuilder& b, py::handle dst, py::handle data, py::handle prob, py::handle engine) {
            check(b.b().dropout(operandOf(dst), operandOf(data), scalarOf(prob), engineOf(engine)));
          },
          arg("dst"), arg("data"), arg("prob"), arg("engine") = py::none())
      .def(
          "rng",
          [](PyBuilder& b, py::handle dst, py::handle engine) {
            check(b.b().rng(operandOf(dst), engineOf(engine)));
          },
          arg("dst"), arg("engine") = py::none())
      .def(
          "rand2",
          [](PyBuilder& b, py::handle dst, py::handle min, py::handle max, py::handle engine) {
            check(
                b.b().rand2(operandOf(dst), scalarOf(min), scalarOf(max, 1.0f), engineOf(engine)));
          },
          arg("dst"), arg("min"), arg("max"), arg("engine") = py::none())
      .def(
          "set_rng_seed",
          [](PyBuilder& b, py::handle src_seeds, py::handle engine) {
            check(b.b().setRngSeed(operandOf(src_seeds), engineOf(engine)));
          },
          arg("src_seeds"), arg("engine") = py::none())
      .def(
          "rand_set_state",
          [](PyBuilder& b, py::handle src_seeds, py::handle engine) {
            check(b.b().randSetState(operandOf(src_seeds), engineOf(engine)));
          },
          arg("src_seeds"), arg("engine") = py::none())
      .def(
          "rand_get_state",
          [](PyBuilder& b, py::handle dst, py::handle engine) {
            check(b.b().randGetState(operandOf(dst), engineOf(engine)));
          },
          arg("dst"), arg("engine") = py::none())
      .def(
          "dma_copy",
          [](PyBuilder& b, py::handle dst, py::handle src, int queue, py::handle index,
             py::handle indirect, py::handle oob_mode) {
            isa::DmaOptions o;
            o.queue = queue;
            o.index = operandOf(index);
            // indirect: "none"/"src"/"dst" or 0/1/2; oob_mode: "error"/"skip", 0/1 or a bool
            const std::string ind = PyLong_Check(indirect.ptr())
                                        ? std::string(asInt(indirect.ptr()) == 1   ? "src"
                                                      : asInt(indirect.ptr()) == 2 ? "dst"
                                                      : asInt(indirect.ptr()) == 0 ? "none"
                                                                                   : "?")
                                        : std::string(py::str(indirect));
            if (ind == "src") {
              o.indirectSrc = true;
            } else if (ind == "dst") {
              o.indirectDst = true;
            } else if (ind != "none") {
              throw py::value_error("indirect must be 'src', 'dst' or 'none'");
            }
            if (PyLong_Check(oob_mode.ptr())) {  // a bool, or nisa.oob_mode (error 0, skip 1)
              const int64_t v = asInt(oob_mode.ptr());
              if (v != 0 && v != 1) throw py::value_error("oob_mode must be 'error' or 'skip'");
              o.oobSkip = v == 1;
            } else {
              const std::string mode = py::str(oob_mode);
              if (mode != "error" && mode != "skip")
                throw py::value_error("oob_mode must be 'error' or 'skip'");
              o.oobSkip = mode == "skip";
            }
            check(b.b().dmaCopy(operandOf(dst), operandOf(src), o));
          },
          arg("dst"), arg("src"), arg("queue") = -1, arg("index") = py::none(),
          arg("indirect") = "none", arg("oob_mode") = "error")
      .def(
          "dma_transpose",
          [](PyBuilder& b, py::handle dst, py::handle src, int queue) {
            check(b.b().dmaTranspose(operandOf(dst), operandOf(src), queue));
          },
          arg("dst"), arg("src"), arg("queue") = -1)
      // ---- collectives (nki.collectives, nki.isa.sendrecv / core_barrier) ----
      // Replica groups are lists of rank lists ([] = every rank); the builder keeps them in
      // the program's table.
      .def(
          "all_reduce",
          [](PyBuilder& b, py::handle dst, py::handle src, py::handle op, RankLists groups) {
            auto& kb = b.b();
            check(kb.allReduce(operandOf(dst), operandOf(src), aluOf(op),
                               kb.replicaGroup(std::move(groups))));
          },
          arg("dst"), arg("src"), arg("op"), arg("replica_groups"))
      .def(
          "all_gather",
          [](PyBuilder& b, py::handle dst, py::handle src, RankLists groups) {
            auto& kb = b.b();
            check(kb.allGather(operandOf(dst), operandOf(src), kb.replicaGroup(std::move(groups))));
          },
          arg("dst"), arg("src"), arg("replica_groups"))
      .def(
          "reduce_scatter",
          [](PyBuilder& b, py::handle dst, py::handle src, py::handle op, RankLists groups) {
            auto& kb = b.b();
            check(kb.reduceScatter(operandOf(dst), operandOf(src), aluOf(op),
                                   kb.replicaGroup(std::move(groups))));
          },
          arg("dst"), arg("src"), arg("op"), arg("replica_groups"))
      .def(
          "all_to_all",
          [](PyBuilder& b, py::handle dst, py::handle src, RankLists groups) {
            auto& kb = b.b();
            check(kb.allToAll(operandOf(dst), operandOf(src), kb.replicaGroup(std::move(groups))));
          },
          arg("dst"), arg("src"), arg("replica_groups"))
      .def(
          "collective_permute",
          [](PyBuilder& b, py::handle dst, py::handle src,
             const std::vector<std::pair<uint32_t, uint32_t>>& pairs) {
            auto& kb = b.b();
            check(kb.collectivePermute(operandOf(dst), operandOf(src), kb.permutePairs(pairs)));
          },
          arg("dst"), arg("src"), arg("source_target_pairs"))
      .def(
          "sendrecv",
          [](PyBuilder& b, py::handle dst, py::handle src, uint32_t send_to, uint32_t recv_from,
             uint32_t pipe_id) {
            check(b.b().sendRecv(operandOf(dst), operandOf(src), send_to, recv_from, pipe_id));
          },
          arg("dst"), arg("src"), arg("send_to"), arg("recv_from"), arg("pipe_id"))
      .def(
          "core_barrier",
          [](PyBuilder& b, RankLists groups, py::handle data) {
            auto& kb = b.b();
            check(kb.coreBarrier(kb.replicaGroup(std::move(groups)), operandOf(data)));
          },
          arg("replica_groups"), arg("data") = py::none());
}

}  // namespace trnsim::pybind
