// Python bindings of the isa layer (submodule trnsim._trnsim.isa): the opcode table and the
// program text/binary forms. Building programs from Python goes through trnsim._trnsim.sim
// (KernelBuilder) and the NKI front end.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "errors.h"
#include "trnsim/isa/binary.h"
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
