#pragma once
// The one Python error boundary of trnsim._trnsim: every binding file turns a core Status into
// a Python exception through raiseStatus (or check/unwrap), and errors.cpp holds the one table
// from ErrorCode to exception class (docs/python.md lists it).
#include <pybind11/pybind11.h>

#include <utility>

#include "trnsim/support/status.h"

namespace trnsim::pybind {

/// Defines the exception classes on `m` (trnsim._trnsim.Error, .VerifyError, ...); the module
/// calls it before any binding file. Also defines error_codes() and _raise_status() (for tests).
void registerErrors(pybind11::module_& m);

/// The class of `code` (for kOk: the base class Error).
pybind11::handle errorClass(ErrorCode code);

/// Raises errorClass(s.code()) with args (code name, where, message, "where: message");
/// str(e) is the last, and e.code / e.where / e.message read the others.
[[noreturn]] void raiseStatus(const Status& s);

inline void check(const Status& s) {
  if (!s.isOk()) raiseStatus(s);
}

template <class T>
T unwrap(Expected<T> e) {
  if (!e.hasValue()) raiseStatus(e.status());
  return std::move(e).value();
}

}  // namespace trnsim::pybind
