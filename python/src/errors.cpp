// The Python exception classes of trnsim._trnsim and the one table that maps each core
// ErrorCode (src/trnsim/support/status.h) to one of them. The layer names the bindings also
// export (sim.SimError, fabric.FabricError, nki.CoreError, compiler.CompileError, and
// sim.VerifyError ... sim.UninitializedReadError) are these same classes.
#include "errors.h"

#include <pybind11/eval.h>

#include <array>
#include <string>

namespace py = pybind11;

namespace trnsim::pybind {
namespace {

struct ErrorClassDef {
  ErrorCode code;
  const char* enumName;  ///< the C++ enumerator, as written in status.h
  const char* className;
  const char* bases;  ///< Python base classes besides Error
  const char* doc;
};

// One row per ErrorCode. Caller mistakes are also ValueError, so `except ValueError` catches
// a bad argument, config or text from every layer; everything is a RuntimeError via Error.
constexpr std::array<ErrorClassDef, 11> kClasses = {{
    {ErrorCode::kInvalidArgument, "kInvalidArgument", "InvalidArgumentError", "ValueError",
     "A caller passed a value outside what the API accepts."},
    {ErrorCode::kParse, "kParse", "ParseError", "ValueError",
     "Text (a program, JSON) that does not parse."},
    {ErrorCode::kConfig, "kConfig", "ConfigError", "ValueError",
     "A chip or system config that is missing a key or has a bad value."},
    {ErrorCode::kVerify, "kVerify", "VerifyError", "", "An instruction breaks a hardware rule."},
    {ErrorCode::kCapacity, "kCapacity", "CapacityError", "",
     "SBUF, PSUM or HBM capacity exceeded, or allocations overlap."},
    {ErrorCode::kUninitializedRead, "kUninitializedRead", "UninitializedReadError", "",
     "An instruction read memory that nothing wrote."},
    {ErrorCode::kOutOfBounds, "kOutOfBounds", "OutOfBoundsError", "",
     "An access outside its tensor or memory."},
    {ErrorCode::kIo, "kIo", "IoError", "", "A file that cannot be read or written."},
    {ErrorCode::kCorrupt, "kCorrupt", "CorruptError", "",
     "A binary file with a bad magic, version, checksum or length."},
    {ErrorCode::kUnsupported, "kUnsupported", "NotSupportedError", "NotImplementedError",
     "Valid input that trnsim does not implement yet."},
    {ErrorCode::kInternal, "kInternal", "InternalError", "", "A trnsim bug (please report it)."},
}};

// The base class: args are (code name, where, message, text) and str(e) is the text. The
// attributes are plain (a front end may set them on its subclasses).
constexpr const char* kBaseSource = R"(
class Error(RuntimeError):
    """Base of every error of trnsim's core. ``.code`` is the error code's name (e.g.
    "verification error"), ``.where`` the place (file and key, instruction and operand),
    ``.message`` (also ``.detail``) what is wrong and what to do; ``str(e)`` is
    "where: message"."""

    code = "internal error"
    where = ""

    def __init__(self, *args):
        super().__init__(*args)
        if len(args) == 4:
            self.code, self.where, self.message = args[0], args[1], args[2]
        else:
            self.message = str(args[0]) if args else ""
        self.detail = self.message

    def __str__(self):
        return str(self.args[3]) if len(self.args) == 4 else super().__str__()
)";

py::handle& baseClass() {
  static py::handle h;  // kept for the process
  return h;
}
std::array<py::handle, kClasses.size()>& classes() {
  static std::array<py::handle, kClasses.size()> h;
  return h;
}

const ErrorClassDef* findByEnumName(const std::string& name) {
  for (const ErrorClassDef& d : kClasses)
    if (name == d.enumName) return &d;
  return nullptr;
}

}  // namespace

py::handle errorClass(ErrorCode code) {
  for (size_t i = 0; i < kClasses.size(); ++i)
    if (kClasses[i].code == code) return classes()[i];
  return baseClass();
}

void raiseStatus(const Status& s) {
  py::tuple args =
      py::make_tuple(std::string(errorCodeName(s.code())), s.where(), s.message(), s.toString());
  PyErr_SetObject(errorClass(s.code()).ptr(), args.ptr());
  throw py::error_already_set();
}

void registerErrors(py::module_& m) {
  py::dict scope;
  scope["__builtins__"] = py::module_::import("builtins");
  scope["__name__"] = m.attr("__name__");
  std::string source = kBaseSource;
  for (const ErrorClassDef& d : kClasses) {
    source += "\n\nclass " + std::string(d.className) + "(Error" +
              (*d.bases ? ", " + std::string(d.bases) : std::string()) + "):\n    pass\n";
  }
  py::exec(source, scope);
  py::object base = scope["Error"];
  m.attr("Error") = base;
  baseClass() = base.release();
  for (size_t i = 0; i < kClasses.size(); ++i) {
    py::object cls = scope[kClasses[i].className];
    cls.attr("__doc__") = kClasses[i].doc;
    m.attr(kClasses[i].className) = cls;
    classes()[i] = cls.release();
  }

  m.def(
      "error_codes",
      [] {
        py::list out;
        for (size_t i = 0; i < kClasses.size(); ++i) {
          out.append(py::make_tuple(kClasses[i].enumName,
                                    std::string(errorCodeName(kClasses[i].code)),
                                    py::reinterpret_borrow<py::object>(classes()[i])));
        }
        return out;
      },
      "(C++ enumerator, code name, exception class) for every error code of the core.");
  m.def(
      "_raise_status",
      [](const std::string& enumName, const std::string& message, const std::string& where) {
        const ErrorClassDef* d = findByEnumName(enumName);
        if (d == nullptr) throw py::value_error("no error code '" + enumName + "'");
        raiseStatus(Status(d->code, message, where));
      },
      py::arg("code"), py::arg("message"), py::arg("where") = "",
      "Raises what a core Status with this code raises (for tests of the error boundary).");
}

}  // namespace trnsim::pybind
