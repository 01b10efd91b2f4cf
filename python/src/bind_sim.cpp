// Python bindings of the sim layer (submodule trnsim._trnsim.sim): build a program with the
// KernelBuilder (bind_builder.cpp; its instruction calls mirror nki.isa, keyword names
// included), load it on a simulated Chip, move numpy arrays in and out, and run it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "builder.h"
#include "chip_io.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/sim/chip.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::bitsDtype;
using pybind::check;
using pybind::unwrap;
using pybind::valueDtype;

// ---- chip I/O ------------------------------------------------------------------------------

const isa::TensorDecl& declOf(const sim::Chip& c, const std::string& name, uint32_t core) {
  if (core >= c.programs().size())
    throw py::value_error("no program on core " + std::to_string(core));
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
  check(c.write(
      name,
      std::span<const std::byte>(static_cast<const std::byte*>(arr.data()), size_t(arr.nbytes())),
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

  pybind::bindBuilder(sub);  // KernelBuilder, Tensor, AccessPattern, Program (bind_builder.cpp)

  py::class_<sim::Chip>(sub, "Chip", "One simulated chip (values and timing)")
      .def(
          py::init([](const std::string& name) { return sim::Chip(unwrap(arch::loadChip(name))); }),
          py::arg("chip") = "trn2")
      .def(
          "load",
          [](sim::Chip& c, const std::vector<pybind::PyProgram*>& programs) {
            std::vector<isa::Program> ps;
            for (const pybind::PyProgram* p : programs) ps.push_back(p->program);
            check(c.load(std::move(ps)));
          },
          py::arg("programs"))
      .def("write", &chipWrite, py::arg("name"), py::arg("data"), py::arg("core") = 0,
           "Writes an array (converted to the tensor's dtype, RNE) into a tensor")
      .def(
          "read",
          [](const sim::Chip& c, const std::string& name, uint32_t core) {
            return chipRead(c, name, core, false);
          },
          py::arg("name"), py::arg("core") = 0,
          "A tensor's values: float32 for float dtypes, the integer type otherwise")
      .def(
          "read_bits",
          [](const sim::Chip& c, const std::string& name, uint32_t core) {
            return chipRead(c, name, core, true);
          },
          py::arg("name"), py::arg("core") = 0, "A tensor's stored bits as unsigned integers")
      .def(
          "run",
          [](sim::Chip& c, bool timing_only, uint64_t seed, bool timing, bool detect_uninitialized,
             const std::string& rounding, uint32_t threads) {
            sim::RunOptions o;
            o.computeValues = !timing_only;
            o.computeTiming = timing || timing_only;
            o.recordEvents = false;
            o.seed = seed;
            o.detectUninitialized = detect_uninitialized;
            o.threads = threads;
            const sim::RunResult rr = pybind::runChip(c, o, rounding);
            py::dict d;
            d["instructions"] = rr.instructions;
            d["host_seconds"] = rr.hostSeconds;
            d["simulated_ns"] = rr.simulatedNs;
            return d;
          },
          py::arg("timing_only") = false, py::arg("seed") = 0, py::arg("timing") = false,
          py::arg("detect_uninitialized") = true, py::arg("rounding") = "rne",
          py::arg("threads") = 0,
          "Runs the loaded programs; threads: host threads for the functional work inside one "
          "instruction (0 = one per host core; the values are the same for any count)");
}
