#pragma once
// Internal: the few JSON pieces the trace writer appends by hand, so a 100k-event trace is
// written without building a DOM. Output is always valid JSON: strings are escaped and invalid
// UTF-8 becomes U+FFFD; non-finite numbers become null.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace trnsim::profile::detail {

/// An append-only text buffer whose appends are inline memcpys (std::string::append is an
/// out-of-line call each time, which dominated writing large traces).
class JsonBuffer {
 public:
  void append(std::string_view text) {
    if (capacity_ - size_ < text.size()) grow(text.size());
    std::memcpy(buf_.data() + size_, text.data(), text.size());
    size_ += text.size();
  }
  void append(char c) {
    if (capacity_ == size_) grow(1);
    buf_[size_++] = c;
  }
  JsonBuffer& operator+=(std::string_view text) {
    append(text);
    return *this;
  }
  JsonBuffer& operator+=(char c) {
    append(c);
    return *this;
  }
  void reserve(size_t bytes) {
    if (capacity_ - size_ < bytes) grow(bytes);
  }
  size_t size() const { return size_; }
  std::string_view view() const { return {buf_.data(), size_}; }
  void clear() { size_ = 0; }
  /// The text so far as a string; the buffer is empty afterwards.
  std::string take() {
    buf_.resize(size_);
    std::string out = std::move(buf_);
    buf_.clear();
    size_ = capacity_ = 0;
    return out;
  }

 private:
  void grow(size_t atLeast);
  std::string buf_;  // buf_.size() == capacity_; bytes past size_ are scratch
  size_t size_ = 0;
  size_t capacity_ = 0;
};

/// Appends `text` as a JSON string literal, quotes included.
void appendJsonString(JsonBuffer& out, std::string_view text);
/// Appends the shortest decimal that reads back as `value` ("null" for NaN and infinities).
void appendJsonNumber(JsonBuffer& out, double value);
void appendJsonNumber(JsonBuffer& out, uint64_t value);
void appendJsonNumber(JsonBuffer& out, int64_t value);

}  // namespace trnsim::profile::detail
