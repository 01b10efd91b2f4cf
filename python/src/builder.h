#pragma once
// The one Python binding of isa::KernelBuilder and isa::Program (bind_builder.cpp), shared by
// trnsim._trnsim.sim (KernelBuilder, Program: the documented Python API) and the NKI front end
// (python/trnsim/nki), which drives the same class. Other binding files load and run the
// programs it makes, so they see its types here.
#include <pybind11/pybind11.h>

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "trnsim/isa/instruction.h"

namespace trnsim::pybind {

/// A finished program (Python class trnsim._trnsim.sim.Program).
struct PyProgram {
  isa::Program program;
  /// The copy the ranks of a cluster share (made on the first cluster load): loading it on
  /// more ranks copies and verifies nothing.
  std::shared_ptr<const isa::Program> shared;
};

/// The other spellings of ALU operations that KernelBuilder takes besides the core's names
/// (numpy ufuncs, nki.language functions): alias -> core name, each alias not a core name.
/// The one list: trnsim._trnsim.isa.alu_aliases() hands it to the NKI front end (nki/_ops.py).
const std::vector<std::pair<std::string_view, std::string_view>>& aluAliases();
/// The same for activation functions (isa::actFuncName): trnsim._trnsim.isa.act_aliases().
const std::vector<std::pair<std::string_view, std::string_view>>& actAliases();

/// Registers KernelBuilder, Tensor, AccessPattern and Program in `m` (the sim submodule).
void bindBuilder(pybind11::module_& m);

}  // namespace trnsim::pybind
