#pragma once
// What the compiler's run tests share: seeded inputs, byte <-> value views, and compiling and
// running an IR text on a simulated chip.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/runtime/session.h"

namespace trnsim::compiler::testing {

/// `n` standard-normal values from a generator seeded with `seed`.
inline std::vector<float> randoms(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

/// Raw bytes read as values of T.
template <class T>
std::vector<T> as(const std::vector<std::byte>& b) {
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

/// Values as their raw bytes.
template <class T>
std::vector<std::byte> bytes(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// Compiles `ir` for `chipName`, uploads the inputs, runs it (values) and returns the
/// executable, or nullptr after a failed expectation.
inline std::shared_ptr<runtime::Executable> runIr(
    const std::string& ir, const std::map<std::string, std::vector<std::byte>>& inputs,
    const std::string& chipName = "trn2") {
  auto chip = arch::loadChip(chipName);
  EXPECT_TRUE(chip.hasValue());
  if (!chip.hasValue()) return nullptr;
  runtime::Session session;
  auto exe = session.compile(ir, *chip);
  EXPECT_TRUE(exe.hasValue()) << exe.status().toString();
  if (!exe.hasValue()) return nullptr;
  for (const auto& [name, b] : inputs) EXPECT_TRUE((*exe)->upload(name, b).isOk()) << name;
  auto rec = (*exe)->run(false);
  EXPECT_TRUE(rec.hasValue()) << rec.status().toString();
  if (!rec.hasValue()) return nullptr;
  return std::move(*exe);
}

}  // namespace trnsim::compiler::testing
