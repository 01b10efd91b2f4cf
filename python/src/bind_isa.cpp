// Python bindings of the isa layer (submodule trnsim._trnsim.isa): the opcode, ALU-operation,
// activation-function and engine name tables and the program text/binary forms. Building
// programs from Python goes through trnsim._trnsim.sim (KernelBuilder) and the NKI front end.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "errors.h"
#include "trnsim/isa/binary.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/isa/text.h"

namespace py = pybind11;
using namespace trnsim;

void bindIsa(py::module_& m) {
  auto sub = m.def_submodule("isa", "the NeuronCore instruction set: opcodes and program forms");
  sub.def(
      "opcodes",
      [] {
        std::vector<std::string> names;
        for (int i = 0; i < isa::kNumOpcodes; ++i)
          names.emplace_back(isa::opcodeName(static_cast<isa::Opcode>(i)));
        return names;
      },
      "names of every opcode (nki.isa spelling)");
  // The core's enum tables, index = enum value: the front end (trnsim.nki) takes its names and
  // numbers from these instead of keeping copies.
  sub.def(
      "alu_ops",
      [] {
        std::vector<std::string> names;
        for (int i = 0; i < static_cast<int>(isa::AluOp::kCount); ++i)
          names.emplace_back(isa::aluOpName(static_cast<isa::AluOp>(i)));
        return names;
      },
      "names of every ALU operation, index = isa::AluOp value");
  sub.def(
      "act_funcs",
      [] {
        std::vector<std::string> names;
        for (int i = 0; i < static_cast<int>(isa::ActFunc::kCount); ++i)
          names.emplace_back(isa::actFuncName(static_cast<isa::ActFunc>(i)));
        return names;
      },
      "names of every activation function, index = isa::ActFunc value");
  sub.def(
      "engines",
      [] {
        std::vector<std::string> names;
        for (int i = 0; i < arch::kNumEngines; ++i)
          names.emplace_back(arch::engineName(static_cast<arch::Engine>(i)));
        return names;
      },
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
