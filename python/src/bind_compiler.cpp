// Python bindings for the compiler and runtime layers (submodule trnsim._trnsim.compiler): IR
// text in, an Executable out; numpy arrays cross as raw bytes of the IR dtype. The PyTorch front
// end (python/trnsim/torch/) drives it; the core never sees torch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/compiler/hbm_plan.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/compiler/text.h"
#include "trnsim/isa/text.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/profile/summary.h"
#include "trnsim/profile/trace.h"
#include "trnsim/runtime/session.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::check;
using pybind::raiseStatus;
using pybind::unwrap;

arch::ChipConfig chipNamed(const std::string& name) { return unwrap(arch::loadChip(name)); }

/// The numpy dtype name of an IR dtype (ml_dtypes names for bf16 and fp8).
std::string numpyName(numerics::DType t) {
  switch (t) {
    case numerics::DType::kBF16:
      return "bfloat16";
    case numerics::DType::kFP16:
      return "float16";
    case numerics::DType::kFP8E4M3:
      return "float8_e4m3fn";
    case numerics::DType::kFP8E5M2:
      return "float8_e5m2";
    case numerics::DType::kFP8E3M4:
      return "float8_e3m4";
    case numerics::DType::kTF32:
    case numerics::DType::kFP32:
      return "float32";
    case numerics::DType::kInt8:
      return "int8";
    case numerics::DType::kInt16:
      return "int16";
    case numerics::DType::kInt32:
      return "int32";
    case numerics::DType::kUInt8:
      return "uint8";
    case numerics::DType::kUInt16:
      return "uint16";
    case numerics::DType::kUInt32:
      return "uint32";
  }
  return "float32";
}

py::object numpyDtype(numerics::DType t) {
  const std::string n = numpyName(t);
  if (n == "bfloat16" || n.rfind("float8", 0) == 0)
    return py::module_::import("ml_dtypes").attr(n.c_str());
  return py::module_::import("numpy").attr("dtype")(n);
}

struct PyRecord {
  runtime::RunRecord rec;
  profile::Summary summary() const {
    profile::SummaryOptions o;
    o.modelFlops = rec.modelFlops;
    return unwrap(profile::summarize(rec.chip, rec.result, o));
  }
};

compiler::PipelineOptions pipeline(const std::vector<std::string>& printAfter) {
  compiler::PipelineOptions o;
  o.printAfter = printAfter;
  o.print = [](const std::string& pass, const std::string& text) {
    py::print(py::str("// IR after {}:\n{}").format(pass, text));
  };
  return o;
}

runtime::Session& session() {
  static runtime::Session s;
  return s;
}

}  // namespace

void bindCompiler(py::module_& m) {
  auto sub = m.def_submodule("compiler", "Graph compiler and runtime (trnsim.torch's back end)");
  sub.attr("CompileError") = pybind::errorClass(ErrorCode::kOk);  // errors.cpp: every core error

  sub.def("supported_ops", [] {
    std::vector<std::string> v;
    for (const compiler::OpDef* d : compiler::allOps()) v.emplace_back(d->name);
    return v;
  });
  sub.def("passes", [] {
    std::vector<std::string> v;
    for (const auto& p : compiler::allPasses()) v.emplace_back(p.name);
    return v;
  });
  sub.def(
      "check",
      [](const std::string& text) {
        compiler::Graph g = unwrap(compiler::parseGraph(text));
        check(compiler::inferShapes(g));
        return compiler::printGraph(g);
      },
      py::arg("text"), "Parses IR text and checks it against the op table; returns it printed");
  sub.def(
      "run_passes",
      [](const std::string& text, const std::vector<std::string>& passes) {
        compiler::Graph g = unwrap(compiler::parseGraph(text));
        compiler::PipelineOptions o;
        o.passes = passes;
        check(compiler::runPipeline(g, o));
        return compiler::printGraph(g);
      },
      py::arg("text"), py::arg("passes"), "Runs the named passes on IR text; returns the result");

  py::class_<PyRecord, std::shared_ptr<PyRecord>>(sub, "RunRecord")
      .def_property_readonly("simulated_ns",
                             [](const PyRecord& r) { return r.rec.result.simulatedNs; })
      .def_property_readonly("instructions",
                             [](const PyRecord& r) { return r.rec.result.instructions; })
      .def_property_readonly("host_seconds",
                             [](const PyRecord& r) { return r.rec.result.hostSeconds; })
      .def_property_readonly("model_flops", [](const PyRecord& r) { return r.rec.modelFlops; })
      .def_property_readonly("chip", [](const PyRecord& r) { return r.rec.chip.name; })
      .def("summary_text", [](const PyRecord& r) { return profile::formatSummary(r.summary()); })
      .def("summary_json", [](const PyRecord& r) { return profile::summaryJson(r.summary()); })
      .def("write_trace", [](const PyRecord& r, const std::string& path) {
        check(profile::writeTrace(
            path, profile::singleChipTrace(r.rec.chip, *r.rec.programs, r.rec.result.timeline)));
      });

  py::class_<runtime::Executable, std::shared_ptr<runtime::Executable>>(sub, "Executable")
      .def_property_readonly("input_names", &runtime::Executable::inputNames)
      .def_property_readonly("param_names", &runtime::Executable::paramNames)
      .def_property_readonly("output_names", &runtime::Executable::outputNames)
      .def_property_readonly(
          "num_instructions",
          [](const runtime::Executable& e) { return e.program().instructions.size(); })
      .def_property_readonly("matmul_flops", &runtime::Executable::matmulFlops)
      .def_property_readonly("chip", [](const runtime::Executable& e) { return e.chip().name; })
      .def_property_readonly(
          "hbm_bytes",
          [](const runtime::Executable& e) {
            const compiler::HbmPlan plan = compiler::planHbm(e.graph());
            py::dict d;
            d["arena_bytes"] = plan.arenaBytes;
            d["io_bytes"] = plan.ioBytes;
            uint64_t outBytes = 0;
            std::set<uint32_t> outs(e.graph().outputs.begin(), e.graph().outputs.end());
            for (uint32_t v : outs) outBytes += e.graph().type(v).bytes();
            d["output_bytes"] = outBytes;
            d["chip_hbm_bytes"] = e.chip().mem.hbmBytes;
            d["cores_per_chip"] = e.chip().coresPerChip;
            return d;
          },
          "HBM the graph needs (activation arena peak, inputs and outputs) and the chip's HBM")
      .def("program_text",
           [](const runtime::Executable& e) { return isa::printProgram(e.program()); })
      .def("ir_text", [](const runtime::Executable& e) { return compiler::printGraph(e.graph()); })
      .def(
          "upload",
          [](runtime::Executable& e, const std::string& name, py::array arr) {
            py::array c = py::array::ensure(arr, py::array::c_style);
            const int64_t v = e.graph().find(name);
            if (v >= 0) {
              const auto& t = e.graph().type(uint32_t(v));
              if (!c.dtype().is(py::dtype::from_args(numpyDtype(t.dtype))))
                throw py::type_error(
                    py::str("input '{}' is {}: pass a numpy array of dtype {}, not {}")
                        .format(name, compiler::typeString(t), numpyName(t.dtype), c.dtype()));
            }
            const auto* p = static_cast<const std::byte*>(c.data());
            check(e.upload(name, std::span<const std::byte>(p, size_t(c.nbytes()))));
          },
          py::arg("name"), py::arg("array"))
      .def(
          "run",
          [](runtime::Executable& e, const py::dict& inputs, bool timingOnly,
             const std::string& rounding, uint64_t seed) {
            const numerics::Rounding mode = pybind::roundingArg(rounding);
            if (!timingOnly) {
              for (auto item : inputs) {
                py::array c = py::array::ensure(item.second, py::array::c_style);
                const std::string name = py::str(item.first);
                const int64_t v = e.graph().find(name);
                if (v >= 0) {
                  const auto& t = e.graph().type(uint32_t(v));
                  if (!c.dtype().is(py::dtype::from_args(numpyDtype(t.dtype))))
                    throw py::type_error(
                        py::str("input '{}' is {}: pass dtype {}, not {}")
                            .format(name, compiler::typeString(t), numpyName(t.dtype), c.dtype()));
                }
                const auto* p = static_cast<const std::byte*>(c.data());
                check(e.upload(name, std::span<const std::byte>(p, size_t(c.nbytes()))));
              }
            }
            runtime::RunRecord rec;
            {
              py::gil_scoped_release release;
              auto r = e.run(timingOnly, mode, seed);
              if (!r.hasValue()) {
                py::gil_scoped_acquire acquire;
                raiseStatus(r.status());
              }
              rec = std::move(r).value();
            }
            py::list outs;
            for (uint32_t v : e.graph().outputs) {
              if (timingOnly) {
                outs.append(py::none());
                continue;
              }
              const auto& t = e.graph().type(v);
              std::vector<std::byte> bytes = unwrap(e.read(e.graph().values[v].name));
              py::array a(py::dtype::from_args(numpyDtype(t.dtype)),
                          std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
              std::memcpy(a.mutable_data(), bytes.data(),
                          std::min(bytes.size(), size_t(a.nbytes())));
              outs.append(a);
            }
            return py::make_tuple(outs, std::make_shared<PyRecord>(PyRecord{std::move(rec)}));
          },
          py::arg("inputs"), py::arg("timing_only") = false, py::arg("rounding") = "rne",
          py::arg("seed") = 0);

  sub.def(
      "compile",
      [](const std::string& text, const std::string& chip,
         const std::vector<std::string>& printAfter) {
        return unwrap(session().compile(text, chipNamed(chip), pipeline(printAfter)));
      },
      py::arg("text"), py::arg("chip") = "trn2",
      py::arg("print_after") = std::vector<std::string>{},
      "Compiles IR text for a chip (cached per process by text and chip)");
  sub.def("cache_key", &runtime::cacheKey, py::arg("text"), py::arg("chip") = "trn2");
  sub.def("session_stats", [] {
    py::dict d;
    d["compiles"] = session().compiles();
    d["cache_hits"] = session().cacheHits();
    return d;
  });
}
