#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0, as numpy.lib.format writes them): a strict
// reader and a writer for plain little-endian, C-order arrays of numbers. The reader trusts
// nothing: the header is parsed as the small Python dict literal numpy writes ('descr',
// 'fortran_order', 'shape', each once), every length is checked before it is used, and the
// data must be exactly shape x item size bytes. What it refuses (Fortran order, big-endian,
// object, string, bool, complex or structured dtypes) is a kInvalidArgument or kCorrupt error
// that names the file and says what to do. It knows nothing of trnsim's dtypes: callers map
// NpyDType onto theirs (tools/trnsim/tensor_files.cpp does for the CLI).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/support/status.h"

namespace trnsim::support {

/// The element type of a .npy array: numpy's type character and item size.
struct NpyDType {
  /// 'f' float (2, 4, 8 bytes), 'i' signed int / 'u' unsigned int (1, 2, 4, 8 bytes), 'V' raw
  /// bytes of any size (what numpy writes for dtypes it does not know, e.g. ml_dtypes'
  /// bfloat16 is '<V2' and its float8 types '<V1').
  char kind = 'f';
  uint32_t itemBytes = 4;

  bool operator==(const NpyDType&) const = default;
  /// numpy's descr string: "<f4", "|i1", "<V2", ...
  std::string descr() const;
  /// numpy's name: "float32", "int8", "void16" (raw 2-byte values), ...
  std::string name() const;
};

/// A whole .npy array in memory: shape (empty for a 0-d array) and the raw little-endian
/// row-major bytes of its elements.
struct NpyArray {
  NpyDType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;

  /// Product of the shape (1 for a 0-d array).
  int64_t numElements() const;
};

/// Largest header numpy itself accepts by default (np.load's max_header_size, 10,000 bytes);
/// a longer one is refused before anything is parsed.
inline constexpr size_t kNpyMaxHeaderBytes = 10000;

/// Parses the bytes of a .npy file. Errors name `origin` (the file) as their place.
Expected<NpyArray> parseNpy(std::span<const uint8_t> bytes, std::string_view origin);
/// Reads and parses the file at `path` (kIo when it cannot be read).
Expected<NpyArray> loadNpy(const std::string& path);

/// The bytes of a .npy file (version 1.0, or 2.0 when the header needs it) holding `data`,
/// which must be numElements(shape) x dtype.itemBytes bytes, C order.
std::vector<uint8_t> encodeNpy(const NpyDType& dtype, std::span<const int64_t> shape,
                               std::span<const std::byte> data);
/// Writes encodeNpy(...) to `path` (kIo on failure).
Status saveNpy(const std::string& path, const NpyDType& dtype, std::span<const int64_t> shape,
               std::span<const std::byte> data);

/// "(2, 3)", "(5,)", "()": a shape as numpy prints it.
std::string npyShapeString(std::span<const int64_t> shape);

}  // namespace trnsim::support
