#pragma once
// The one byte serializer of trnsim: fixed-width little-endian integers and floats, strings with
// a length before them, and raw byte runs. The binary program format (isa/binary.cpp, .tsimb)
// and the wire format of a multi-process cluster (fabric/transport.h) are both written with
// ByteWriter and read with ByteReader.
//
// ByteReader never trusts its input: every read checks the bytes left, and the first failure
// sticks as a kCorrupt Status naming what was being read, the byte offset and the origin (a file
// name, "MPI wire data"); later reads give zeros and empty strings, so a caller checks ok() once
// after a record.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/support/status.h"

namespace trnsim::support {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void i64(int64_t v) { le(static_cast<uint64_t>(v), 8); }
  void f32(float v);
  void f64(double v);
  /// `n` bytes as they are.
  void raw(const void* p, size_t n);
  /// A string with a u32 length before it (the binary program format).
  void str32(std::string_view s);
  /// A string with a u64 length before it (the wire format).
  void str64(std::string_view s);

  /// Overwrites the 8 bytes at `at` (written earlier) with `v`, little-endian: lengths and
  /// checksums known only after what follows them is written.
  void patchU64(size_t at, uint64_t v);

  size_t size() const { return out_.size(); }
  /// What was written so far (for Transport::allGather, ByteReader, a checksum).
  std::span<const std::byte> bytes() const { return std::as_bytes(std::span(out_)); }
  /// Moves the bytes out; the writer is empty afterwards.
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(uint8_t(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  /// Reads `bytes`; `origin` names them in errors and `base` is the offset of their first byte
  /// in the whole (so offsets in errors are those of the file).
  explicit ByteReader(std::span<const std::byte> bytes, std::string origin = {}, size_t base = 0)
      : b_(bytes), base_(base), origin_(std::move(origin)) {}
  explicit ByteReader(std::span<const uint8_t> bytes, std::string origin = {}, size_t base = 0)
      : ByteReader(std::as_bytes(bytes), std::move(origin), base) {}

  bool ok() const { return error_.isOk(); }
  /// The first failure (ok when there was none).
  const Status& error() const { return error_; }
  /// The offset of the next byte, counted from the start of the whole (see `base`).
  size_t offset() const { return base_ + pos_; }
  size_t remaining() const { return b_.size() - pos_; }
  bool atEnd() const { return pos_ >= b_.size(); }

  /// Fails at the current offset ("<what> at byte N"); only the first failure is kept.
  void fail(std::string_view what) { failAt(offset(), what); }
  void failAt(size_t at, std::string_view what);

  uint8_t u8(std::string_view what = "u8") { return uint8_t(le(1, what)); }
  uint16_t u16(std::string_view what = "u16") { return uint16_t(le(2, what)); }
  uint32_t u32(std::string_view what = "u32") { return uint32_t(le(4, what)); }
  uint64_t u64(std::string_view what = "u64") { return le(8, what); }
  int64_t i64(std::string_view what = "i64") { return static_cast<int64_t>(le(8, what)); }
  float f32(std::string_view what = "f32");
  double f64(std::string_view what = "f64");
  /// The next `n` bytes (a view into the input), or an empty span on failure.
  std::span<const std::byte> bytes(uint64_t n, std::string_view what = "bytes");
  /// A string written by ByteWriter::str32 / str64.
  std::string str32(std::string_view what = "string");
  std::string str64(std::string_view what = "string");
  /// A u32 count of records of at least `minBytes` each, refused when the bytes left cannot
  /// hold that many (so a corrupt count cannot make the caller reserve gigabytes).
  uint32_t count(std::string_view what, size_t minBytes);
  /// A reader over the next `n` bytes (n <= remaining()), with the same origin and offsets.
  ByteReader sub(size_t n);

 private:
  uint64_t le(int n, std::string_view what) {
    if (!ok() || remaining() < size_t(n)) return truncated(n, what);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(b_[pos_ + size_t(i)]) << (8 * i);
    pos_ += size_t(n);
    return v;
  }
  /// Fails (if not failed yet) for a read of `n` bytes; gives 0.
  uint64_t truncated(uint64_t n, std::string_view what);
  std::string str(uint64_t n, size_t at, std::string_view what);

  std::span<const std::byte> b_;
  size_t base_;
  std::string origin_;
  size_t pos_ = 0;
  Status error_;
};

}  // namespace trnsim::support
