#pragma once
// What the bindings that move tensors in and out of simulated chips and run them share
// (bind_sim.cpp's Chip, bind_nki.cpp's runs, bind_fabric.cpp's Cluster): the numpy dtypes of a
// tensor's values and bits, and a run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>

#include "args.h"
#include "errors.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/chip.h"

namespace trnsim::pybind {

/// The numpy dtype that holds a tensor's values when read: float32 for float types, the
/// integer type itself otherwise.
inline pybind11::dtype valueDtype(numerics::DType t) {
  namespace py = pybind11;
  switch (t) {
    case numerics::DType::kInt8:
      return py::dtype::of<int8_t>();
    case numerics::DType::kInt16:
      return py::dtype::of<int16_t>();
    case numerics::DType::kInt32:
      return py::dtype::of<int32_t>();
    case numerics::DType::kUInt8:
      return py::dtype::of<uint8_t>();
    case numerics::DType::kUInt16:
      return py::dtype::of<uint16_t>();
    case numerics::DType::kUInt32:
      return py::dtype::of<uint32_t>();
    default:
      return py::dtype::of<float>();
  }
}

/// Unsigned integers holding the stored bits of one element.
inline pybind11::dtype bitsDtype(numerics::DType t) {
  namespace py = pybind11;
  switch (numerics::dtypeSize(t)) {
    case 1:
      return py::dtype::of<uint8_t>();
    case 2:
      return py::dtype::of<uint16_t>();
    default:
      return py::dtype::of<uint32_t>();
  }
}

/// Runs the loaded chip with `o` and the rounding named `rounding` ("rne" or "stochastic"),
/// releasing the GIL while it runs; a failed run raises its error class (errors.cpp).
inline sim::RunResult runChip(sim::Chip& chip, sim::RunOptions o, const std::string& rounding) {
  o.rounding = roundingArg(rounding);
  Expected<sim::RunResult> res = Status();
  {
    pybind11::gil_scoped_release release;
    res = chip.run(o);
  }
  return unwrap(std::move(res));
}

}  // namespace trnsim::pybind
