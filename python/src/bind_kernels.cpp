// Python bindings of the kernel library (submodule trnsim._trnsim.kernels): build a kernel's
// program in C++, run it on a simulated chip, return numpy arrays and run figures.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/softmax.h"
#include "trnsim/sim/chip.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

template <typename T>
T unwrap(Expected<T> e) {
  if (!e.hasValue()) throw std::runtime_error(e.status().toString());
  return std::move(e).value();
}

void check(const Status& s) {
  if (!s.isOk()) throw std::runtime_error(s.toString());
}

numerics::DType dtypeOf(const std::string& name) {
  auto t = numerics::parseDType(name);
  if (!t) throw py::value_error("unknown dtype '" + name + "'");
  return *t;
}

py::dict runInfo(const arch::ChipConfig& chip, const sim::RunResult& r) {
  py::dict d;
  d["simulated_ns"] = r.simulatedNs;
  d["instructions"] = r.instructions;
  d["host_seconds"] = r.hostSeconds;
  if (!r.timeline.cores.empty() && r.simulatedNs > 0) {
    const auto& core = r.timeline.cores[0];
    d["tensor_flops"] = core.tensorFlops;
    d["pe_utilization"] = core.tensorFlops / (chip.peakBf16FlopsPerCore() * r.simulatedNs * 1e-9);
    d["hbm_read_bytes"] = core.hbmReadBytes;
    d["hbm_write_bytes"] = core.hbmWriteBytes;
  }
  return d;
}

/// Loads `program` on a fresh chip, writes the inputs, runs, and reads `outName`.
py::tuple runProgram(const arch::ChipConfig& chip, isa::Program program,
                     const std::vector<std::pair<std::string, FloatArray>>& inputs,
                     const std::string& outName, std::vector<py::ssize_t> outShape, bool timing) {
  sim::Chip c(chip);
  check(c.load({std::move(program)}));
  for (const auto& [name, arr] : inputs)
    check(c.writeFloats(name, std::span<const float>(arr.data(), size_t(arr.size()))));
  sim::RunOptions opts;
  opts.computeTiming = timing;
  opts.recordEvents = false;
  sim::RunResult r;
  {
    py::gil_scoped_release release;
    r = unwrap(c.run(opts));
  }
  auto values = unwrap(c.readFloats(outName));
  FloatArray out(outShape);
  std::copy(values.begin(), values.end(), out.mutable_data());
  return py::make_tuple(out, runInfo(chip, r));
}

kernels::MatmulTiling tilingOf(const py::object& t) {
  kernels::MatmulTiling tiling;
  if (t.is_none()) return tiling;
  auto v = t.cast<std::vector<int>>();
  if (v.size() != 3) throw py::value_error("tiling must be (tiles_m, tiles_n, tiles_k)");
  return {v[0], v[1], v[2]};
}

}  // namespace

void bindKernels(py::module_& m) {
  auto sub = m.def_submodule("kernels", "the C++ kernel library, run on a simulated chip");
  sub.def(
      "matmul",
      [](FloatArray lhsT, FloatArray rhs, const std::string& chipName, const std::string& inDtype,
         const std::string& outDtype, bool timing, const py::object& tiling) {
        if (lhsT.ndim() != 2 || rhs.ndim() != 2 || lhsT.shape(0) != rhs.shape(0))
          throw py::value_error("matmul expects lhsT [K, M] and rhs [K, N]");
        const auto chip = unwrap(arch::loadChip(chipName));
        const int64_t K = lhsT.shape(0), M = lhsT.shape(1), N = rhs.shape(1);
        auto program = unwrap(kernels::matmulProgram(chip, M, K, N, dtypeOf(inDtype),
                                                     dtypeOf(outDtype), tilingOf(tiling)));
        return runProgram(chip, std::move(program), {{"lhsT", lhsT}, {"rhs", rhs}}, "out",
                          {M, N}, timing);
      },
      py::arg("lhsT"), py::arg("rhs"), py::arg("chip") = "trn2", py::arg("in_dtype") = "bfloat16",
      py::arg("out_dtype") = "float32", py::arg("timing") = true, py::arg("tiling") = py::none(),
      "out[M, N] = lhsT[K, M].T @ rhs[K, N] with the tiled matmul kernel; returns (out, info)");
  sub.def(
      "softmax",
      [](FloatArray x, const std::string& chipName, const std::string& dtype, bool timing) {
        if (x.ndim() != 2) throw py::value_error("softmax expects x [rows, cols]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(kernels::softmaxProgram(chip, x.shape(0), x.shape(1), dtypeOf(dtype)));
        return runProgram(chip, std::move(program), {{"x", x}}, "out", {x.shape(0), x.shape(1)},
                          timing);
      },
      py::arg("x"), py::arg("chip") = "trn2", py::arg("dtype") = "bfloat16",
      py::arg("timing") = true, "row softmax of x [rows, cols]; returns (out, info)");
  sub.def(
      "time_matmul",
      [](int64_t rows, int64_t contraction, int64_t cols, const std::string& chipName,
         const std::string& inDtype, const std::string& outDtype, const py::object& tiling) {
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(kernels::matmulProgram(chip, rows, contraction, cols, dtypeOf(inDtype),
                                                     dtypeOf(outDtype), tilingOf(tiling)));
        sim::Chip c(chip);
        check(c.load({std::move(program)}));
        sim::RunOptions opts;
        opts.computeValues = false;
        opts.recordEvents = false;
        sim::RunResult r;
        {
          py::gil_scoped_release release;
          r = unwrap(c.run(opts));
        }
        return runInfo(chip, r);
      },
      py::arg("m"), py::arg("k"), py::arg("n"), py::arg("chip") = "trn2",
      py::arg("in_dtype") = "bfloat16", py::arg("out_dtype") = "bfloat16",
      py::arg("tiling") = py::none(), "timing-only run of the matmul kernel; returns info");
}
