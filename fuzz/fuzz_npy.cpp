// Fuzz target: the .npy reader (support/npy.h) behind `trnsim run --input`. Any bytes must
// parse to an array or give a kCorrupt / kInvalidArgument error; a parsed array must hold
// exactly shape x item size bytes, and writing it back with encodeNpy must parse to the same
// dtype, shape and bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "trnsim/support/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  auto array = support::parseNpy(std::span<const uint8_t>(data, size), "fuzz.npy");
  if (!array.hasValue()) {
    ErrorCode code = array.status().code();
    if (code != ErrorCode::kCorrupt && code != ErrorCode::kInvalidArgument) std::abort();
    if (array.status().message().empty()) std::abort();
    return 0;
  }
  const support::NpyArray& a = *array;
  if (a.data.size() != uint64_t(a.numElements()) * a.dtype.itemBytes) std::abort();
  std::vector<uint8_t> again = support::encodeNpy(a.dtype, a.shape, a.data);
  auto back = support::parseNpy(again, "fuzz-again.npy");
  if (!back.hasValue()) std::abort();
  if (!(back->dtype == a.dtype) || back->shape != a.shape || back->data != a.data) std::abort();
  return 0;
}
