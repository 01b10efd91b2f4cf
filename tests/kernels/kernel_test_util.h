#pragma once
// Helpers shared by the kernel-library tests: random inputs, running a program on a fresh chip.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/chip.h"

namespace trnsim::kernels::testing {

/// Uniform values in [lo, hi), rounded to `dtype` so the host reference sees what the chip sees.
inline std::vector<float> randomValues(size_t n, uint32_t seed, numerics::DType dtype,
                                       float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = dist(gen);
    if (dtype == numerics::DType::kBF16)
      x = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(x));
  }
  return v;
}

inline arch::ChipConfig chip(const char* name) {
  auto c = arch::loadChip(name);
  EXPECT_TRUE(c.hasValue()) << c.status().toString();
  return *c;
}

/// Runs `program` functionally with the named inputs and returns output `outName`.
inline std::vector<float> runFunctional(
    const arch::ChipConfig& cfg, const isa::Program& program,
    const std::vector<std::pair<std::string, const std::vector<float>*>>& inputs,
    const std::string& outName) {
  sim::Chip c(cfg);
  auto st = c.load({program});
  EXPECT_TRUE(st.isOk()) << st.toString();
  for (const auto& [name, data] : inputs) {
    auto w = c.writeFloats(name, *data);
    EXPECT_TRUE(w.isOk()) << name << ": " << w.toString();
  }
  auto run = c.run({.computeTiming = false});
  EXPECT_TRUE(run.hasValue()) << run.status().toString();
  if (!run.hasValue()) return {};
  auto out = c.readFloats(outName);
  EXPECT_TRUE(out.hasValue()) << out.status().toString();
  return out.hasValue() ? *out : std::vector<float>{};
}

/// Timing-only run of `program` (no values), events off.
inline sim::RunResult runTiming(const arch::ChipConfig& cfg, isa::Program program) {
  sim::Chip c(cfg);
  auto st = c.load({std::move(program)});
  EXPECT_TRUE(st.isOk()) << st.toString();
  auto run = c.run({.computeValues = false, .recordEvents = false});
  EXPECT_TRUE(run.hasValue()) << run.status().toString();
  return run.hasValue() ? *run : sim::RunResult{};
}

/// Relative tolerance of one rounding to `dtype` (with margin for a few roundings).
inline double dtypeTolerance(numerics::DType dtype) {
  return dtype == numerics::DType::kBF16 ? 2e-2 : 1e-5;
}

}  // namespace trnsim::kernels::testing
