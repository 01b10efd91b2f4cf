#pragma once
// Helpers shared by the kernel library's emitters (internal to src/trnsim/kernels).

#include <fmt/format.h>

#include <string>
#include <vector>

#include "trnsim/isa/builder.h"

namespace trnsim::kernels::detail {

/// `base`, or `base_N` with the smallest N that no tensor of the program has yet: tensor names
/// must be unique in a program, and a program may hold several instances of a kernel.
inline std::string uniqueName(const isa::KernelBuilder& b, const std::string& base) {
  auto taken = [&](const std::string& n) {
    for (const auto& t : b.program().tensors)
      if (t.name == n) return true;
    return false;
  };
  if (!taken(base)) return base;
  for (int i = 1;; ++i) {
    std::string n = fmt::format("{}_{}", base, i);
    if (!taken(n)) return n;
  }
}

inline isa::Tensor sbufTile(isa::KernelBuilder& b, const std::string& name, numerics::DType dtype,
                            std::vector<int64_t> shape) {
  return b.sbuf(uniqueName(b, name), dtype, std::move(shape));
}

inline isa::Tensor psumTile(isa::KernelBuilder& b, const std::string& name, numerics::DType dtype,
                            std::vector<int64_t> shape) {
  return b.psum(uniqueName(b, name), dtype, std::move(shape));
}

}  // namespace trnsim::kernels::detail
