#pragma once
// Elementwise reduction of fp32 values with the engines' semantics (functional_math.h's
// aluF: add, NaN-propagating max and min, ...). The functional interpreter's reduce operands
// and the fabric's collectives (all_reduce, reduce_scatter) reduce with it.

#include <cstddef>
#include <span>

#include "trnsim/isa/instruction.h"
#include "trnsim/sim/functional_math.h"

namespace trnsim::sim {

/// acc[i] = acc[i] op in[i] for every i < acc.size() (in holds at least as many).
inline void reduceInto(isa::AluOp op, std::span<float> acc, std::span<const float> in) {
  float* a = acc.data();
  const float* x = in.data();
  const size_t n = acc.size();
  // The common operators get a loop of their own (vectorised); the rest go through aluF.
  switch (op) {
    case isa::AluOp::kAdd:
      for (size_t i = 0; i < n; ++i) a[i] = a[i] + x[i];
      return;
    case isa::AluOp::kMax:
      for (size_t i = 0; i < n; ++i) a[i] = detail::maxNan(a[i], x[i]);
      return;
    case isa::AluOp::kMin:
      for (size_t i = 0; i < n; ++i) a[i] = detail::minNan(a[i], x[i]);
      return;
    default:
      for (size_t i = 0; i < n; ++i) a[i] = detail::aluF(op, a[i], x[i]);
      return;
  }
}

}  // namespace trnsim::sim
