// Python bindings of the numerics layer (submodule trnsim._trnsim.numerics): vectorized
// conversions between numpy arrays of stored element bits and float32 values.
#include <cstddef>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "trnsim/numerics/dtype.h"

namespace py = pybind11;
namespace tn = trnsim::numerics;

namespace {

using trnsim::pybind::dtypeArg;
using trnsim::pybind::roundingArg;

/// The numpy dtype that holds stored elements of `t`: unsigned bits for floats (tf32 and
/// fp32 as uint32), the integer type itself for ints.
py::dtype storageDtype(tn::DType t) {
  switch (t) {
    case tn::DType::kBF16:
    case tn::DType::kFP16:
      return py::dtype::of<uint16_t>();
    case tn::DType::kFP8E4M3:
    case tn::DType::kFP8E5M2:
    case tn::DType::kFP8E3M4:
      return py::dtype::of<uint8_t>();
    case tn::DType::kTF32:
    case tn::DType::kFP32:
      return py::dtype::of<uint32_t>();
    case tn::DType::kInt8:
      return py::dtype::of<int8_t>();
    case tn::DType::kInt16:
      return py::dtype::of<int16_t>();
    case tn::DType::kInt32:
      return py::dtype::of<int32_t>();
    case tn::DType::kUInt8:
      return py::dtype::of<uint8_t>();
    case tn::DType::kUInt16:
      return py::dtype::of<uint16_t>();
    case tn::DType::kUInt32:
      return py::dtype::of<uint32_t>();
  }
  return py::dtype::of<uint8_t>();
}

py::array_t<float> toFloat32(const std::string& dtype, const py::object& bits) {
  const tn::DType t = dtypeArg(dtype);
  const auto size = static_cast<py::ssize_t>(tn::dtypeSize(t));
  py::object source = bits;
  if (py::isinstance<py::bytes>(bits) || py::isinstance<py::bytearray>(bits) ||
      py::isinstance<py::memoryview>(bits)) {
    source = py::module_::import("numpy").attr("frombuffer")(bits, py::dtype::of<uint8_t>());
  }
  auto arr = py::array::ensure(source, py::array::c_style);
  if (!arr) throw py::value_error("bits must be a numpy array or a bytes-like object");
  const char kind = arr.dtype().kind();
  if (kind != 'u' && kind != 'i' && kind != 'f') {
    throw py::value_error("bits must hold integers (the stored element bits), not dtype kind '" +
                          std::string(1, kind) + "'");
  }
  std::vector<py::ssize_t> shape(arr.shape(), arr.shape() + arr.ndim());
  if (arr.itemsize() != size) {
    // Raw bytes: the last axis packs `size` bytes per element.
    const bool rawBytes = arr.itemsize() == 1 && arr.ndim() >= 1 && shape.back() % size == 0;
    if (!rawBytes) {
      throw py::value_error(dtype + " elements are " + std::to_string(size) +
                            " bytes; pass an array of that item size or uint8 raw bytes whose "
                            "last axis is a multiple of it (got item size " +
                            std::to_string(arr.itemsize()) + ")");
    }
    shape.back() /= size;
  }
  py::array_t<float> out(shape);
  const auto* in = static_cast<const std::byte*>(arr.data());
  float* dst = out.mutable_data();
  const auto n = static_cast<size_t>(out.size());
  {
    py::gil_scoped_release release;
    tn::convertToFloat(t, in, dst, n);
  }
  return out;
}

py::array fromFloat32(const std::string& dtype,
                      const py::array_t<float, py::array::c_style | py::array::forcecast>& values,
                      const std::string& rounding, uint64_t seed, uint64_t counter) {
  const tn::DType t = dtypeArg(dtype);
  const tn::Rounding r = roundingArg(rounding);
  std::vector<py::ssize_t> shape(values.shape(), values.shape() + values.ndim());
  py::array out(storageDtype(t), shape);
  const float* in = values.data();
  auto* dst = static_cast<std::byte*>(out.mutable_data());
  const auto n = static_cast<size_t>(values.size());
  {
    py::gil_scoped_release release;
    tn::StochasticState rng{seed, counter};
    tn::convertFromFloat(t, in, dst, n, r, &rng);
  }
  return out;
}

}  // namespace

void bindNumerics(py::module_& m) {
  auto sub =
      m.def_submodule("numerics",
                      "Element types of the simulated chip and bit-exact conversions to and from "
                      "float32 (see docs/numerics.md).");
  sub.def(
      "dtype_names",
      [] {
        std::vector<std::string> names;
        for (int i = 0; i < tn::kNumDTypes; ++i) {
          names.emplace_back(tn::dtypeName(static_cast<tn::DType>(i)));
        }
        return names;
      },
      "The canonical (NKI) names of every element type.");
  sub.def(
      "canonical_name",
      [](const std::string& name) { return std::string(tn::dtypeName(dtypeArg(name))); },
      py::arg("dtype"), "The canonical name of a dtype given by any accepted spelling.");
  sub.def(
      "dtype_size", [](const std::string& name) { return tn::dtypeSize(dtypeArg(name)); },
      py::arg("dtype"), "Bytes one element occupies (tfloat32 occupies 4).");
  sub.def(
      "max_finite", [](const std::string& name) { return tn::maxFinite(dtypeArg(name)); },
      py::arg("dtype"),
      "Largest finite value (448 for float8_e4m3, 57344 for float8_e5m2; the type's "
      "maximum for integers).");
  sub.def(
      "storage_dtype", [](const std::string& name) { return storageDtype(dtypeArg(name)); },
      py::arg("dtype"), "The numpy dtype from_float32 returns for this type.");
  sub.def("stochastic_bits", &tn::stochasticBits, py::arg("seed"), py::arg("index"),
          "The 32 random bits that element `index` of a stochastic conversion with `seed` uses.");
  sub.def("to_float32", &toFloat32, py::arg("dtype"), py::arg("bits"),
          "Decodes stored elements (an array of their bits, or raw little-endian bytes) to a "
          "float32 array.");
  sub.def("from_float32", &fromFloat32, py::arg("dtype"), py::arg("values"),
          py::arg("rounding") = "rne", py::arg("seed") = 0, py::arg("counter") = 0,
          "Rounds float32 values to `dtype` and returns the stored elements: unsigned bits for "
          "float types, the integer type for ints. Element i of a stochastic conversion uses "
          "stochastic_bits(seed, counter + i).");
}
