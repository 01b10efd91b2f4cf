#pragma once
// What the JSON loader fuzz targets (fuzz_*_config.cpp, fuzz_price_catalog.cpp,
// fuzz_plan_tuning.cpp) share: any bytes give a loaded config that keeps its loader's promises,
// or a Status a user can act on; never a crash, a hang or an internal error.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "trnsim/support/status.h"

namespace {

/// Stops the fuzzer (a finding) with `what` and the place.
[[noreturn]] inline void fuzzFail(std::string_view what) {
  std::fprintf(stderr, "fuzz finding: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

/// A refusal must be a user's error (bad JSON, a bad key or value, a file too large, out of
/// memory) with a message; kInternal means the loader has a bug.
inline void expectUserError(const trnsim::Status& s) {
  using trnsim::ErrorCode;
  const ErrorCode c = s.code();
  const bool userError = c == ErrorCode::kParse || c == ErrorCode::kConfig ||
                         c == ErrorCode::kInvalidArgument || c == ErrorCode::kCapacity;
  if (s.isOk() || !userError || s.message().empty())
    fuzzFail("a refusal that is not a user error: " + s.toString());
}

/// A loaded config that breaks its loader's promise.
inline void require(bool holds, std::string_view what) {
  if (!holds) fuzzFail(std::string("loaded, but ") + std::string(what));
}

inline std::string_view textOf(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace
