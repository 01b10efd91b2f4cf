#pragma once
// Names that Python passes for core enums (dtypes, rounding modes), turned into the core's
// values in one place: an unknown name is a ValueError that lists the names it accepts.
#include <pybind11/pybind11.h>

#include <string>

#include "trnsim/numerics/dtype.h"

namespace trnsim::pybind {

inline numerics::DType dtypeArg(const std::string& name) {
  if (auto t = numerics::parseDType(name)) return *t;
  std::string known;
  for (int i = 0; i < numerics::kNumDTypes; ++i) {
    if (i != 0) known += ", ";
    known += numerics::dtypeName(static_cast<numerics::DType>(i));
  }
  throw pybind11::value_error("unknown dtype '" + name + "'; expected one of: " + known);
}

inline numerics::Rounding roundingArg(const std::string& name) {
  if (auto r = numerics::parseRounding(name)) return *r;
  throw pybind11::value_error("unknown rounding '" + name + "'; expected 'rne' or 'stochastic'");
}

}  // namespace trnsim::pybind
