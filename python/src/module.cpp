// The pybind11 module trnsim._trnsim: one submodule per layer, each defined by that layer's
// python/src/bind_<layer>.cpp. The C++ core never includes pybind11; only these files do.

#include <pybind11/pybind11.h>

#include "errors.h"

namespace py = pybind11;

void bindNumerics(py::module_& m);
void bindArch(py::module_& m);
void bindIsa(py::module_& m);
void bindSim(py::module_& m);
void bindProfile(py::module_& m);
void bindKernels(py::module_& m);
void bindFabric(py::module_& m);
void bindPlan(py::module_& m);
void bindNki(py::module_& m);
void bindCompiler(py::module_& m);

PYBIND11_MODULE(_trnsim, m) {
  m.doc() = "trnsim's C++ core (numerics, arch, isa, sim, profile, kernels, fabric, plan, nki, compiler)";
  m.attr("__version__") = TRNSIM_VERSION;
  trnsim::pybind::registerErrors(m);  // the exception classes every layer raises
  // Lower layers first: a higher layer's bindings may refer to types the lower ones registered.
  bindNumerics(m);
  bindArch(m);
  bindIsa(m);
  bindSim(m);
  bindProfile(m);
  bindKernels(m);
  bindFabric(m);  // before nki: its multi-chip runs take a fabric.Cluster
  bindPlan(m);
  bindNki(m);
  bindCompiler(m);
}
