// Python bindings of the isa layer (submodule trnsim._trnsim.isa): the opcode, ALU-operation,
// activation-function and engine name tables and the program text/binary forms. Building
// programs from Python goes through trnsim._trnsim.sim (KernelBuilder) and the NKI front end.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "builder.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/isa/text.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

/// The names of enum E's values 0..count-1, index = the C++ enum value.
/// An alias table of the builder binding (alias -> core name) as a dict.
py::dict aliasDict(const std::vector<std::pair<std::string_view, std::string_view>>& table) {
  py::dict d;
  for (const auto& [from, to] : table) d[py::str(std::string(from))] = py::str(std::string(to));
  return d;
}

template <typename E, typename NameFn>
std::vector<std::string> namesOf(int count, NameFn name) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.emplace_back(name(static_cast<E>(i)));
  return names;
}

}  // namespace

void bindIsa(py::module_& m) {
  auto sub = m.def_submodule("isa", "the NeuronCore instruction set: opcodes and program forms");
  // The core's enum tables, index = enum value: the front end (trnsim.nki) takes its names and
  // numbers from these instead of keeping copies.
  sub.def(
      "opcodes", [] { return namesOf<isa::Opcode>(isa::kNumOpcodes, isa::opcodeName); },
      "names of every opcode (nki.isa spelling), index = isa::Opcode value");
  sub.def(
      "alu_ops", [] { return namesOf<isa::AluOp>(int(isa::AluOp::kCount), isa::aluOpName); },
      "names of every ALU operation, index = isa::AluOp value");
  sub.def(
      "act_funcs",
      [] { return namesOf<isa::ActFunc>(int(isa::ActFunc::kCount), isa::actFuncName); },
      "names of every activation function, index = isa::ActFunc value");
  sub.def(
      "alu_aliases",
      [] { return aliasDict(pybind::aluAliases()); },
      "other spellings of ALU operations (numpy / nki.language) -> core name; sim.KernelBuilder "
      "takes them, and trnsim.nki maps its spellings with this table");
  sub.def(
      "act_aliases",
      [] { return aliasDict(pybind::actAliases()); },
      "other spellings of activation functions (numpy) -> core name; sim.KernelBuilder takes "
      "them, and trnsim.nki maps its spellings with this table");
  sub.def(
      "engines", [] { return namesOf<arch::Engine>(arch::kNumEngines, arch::engineName); },
      "names of every engine, index = arch::Engine value");
  sub.def(
      "normalize_program_text",
      [](const std::string& text, const std::string& origin) {
        return isa::printProgram(pybind::unwrap(isa::parseProgram(text, origin)));
      },
      py::arg("text"), py::arg("origin") = "<string>",
      "parses a program in the text form and prints it back (raises ParseError, a ValueError, on "
      "bad text)");
  sub.def(
      "program_file_to_text",
      [](const std::string& path) {
        return isa::printProgram(pybind::unwrap(isa::loadProgramFile(path)));
      },
      py::arg("path"),
      "loads a program file (text or binary) and returns its text form (IoError, ParseError or "
      "CorruptError when it cannot)");
}
