// Python bindings of the arch layer (submodule trnsim._trnsim.arch).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "errors.h"
#include "trnsim/arch/chip_config.h"

namespace py = pybind11;

namespace {

/// Loads a chip or raises the loader's error (file, key, expectation): ConfigError or
/// ParseError (both ValueError) for a bad config, IoError for a file that cannot be read.
trnsim::arch::ChipConfig loadOrThrow(const std::string& nameOrPath) {
  return trnsim::pybind::unwrap(trnsim::arch::loadChip(nameOrPath));
}

}  // namespace

void bindArch(py::module_& m) {
  auto sub = m.def_submodule(
      "arch", "Chip descriptions (configs/chips/*.json), each number with its source.");
  sub.def(
      "load_chip",
      [](const std::string& nameOrPath) {
        std::string text = trnsim::arch::chipToJson(loadOrThrow(nameOrPath));
        return py::module_::import("json").attr("loads")(text);
      },
      py::arg("name_or_path"),
      "Loads a built-in chip ('trn1', 'trn2', 'trn3') or a .json chip config and returns it as a "
      "dict: "
      "values nested like the file, 'derived' peaks and sizes, and 'sources' per dotted key. "
      "Raises ConfigError (a ValueError) naming the file and key on a bad config.");
  sub.def(
      "describe_chip",
      [](const std::string& nameOrPath) {
        return trnsim::arch::describeChip(loadOrThrow(nameOrPath));
      },
      py::arg("name_or_path"),
      "A readable multi-line summary of the chip (what `trnsim info CHIP` prints).");
  sub.def("builtin_chips", &trnsim::arch::builtinChipNames,
          "Names of the chips built into trnsim.");
}
