#include "trnsim/profile/json_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace trnsim::profile::detail {
namespace {

constexpr char kHex[] = "0123456789abcdef";

/// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlongs, no
/// surrogates, at most U+10FFFF), or 0 when the bytes there are not one.
size_t utf8SequenceLength(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return len;
}

}  // namespace

void JsonBuffer::grow(size_t atLeast) {
  // Doubling keeps appends amortized O(1); resize() zero-fills the new part once.
  capacity_ = std::max(size_ + atLeast, std::max<size_t>(2 * capacity_, 4096));
  buf_.resize(capacity_);
}

void appendJsonString(JsonBuffer& out, std::string_view text) {
  out.append('"');
  size_t i = 0;
  while (i < text.size()) {
    // Copy the longest run that needs no escaping in one append.
    size_t run = i;
    while (run < text.size()) {
      const auto c = static_cast<unsigned char>(text[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(text.substr(i, run - i));
    i = run;
    if (i == text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t len = utf8SequenceLength(text, i);
      if (len == 0) {
        out += "\\ufffd";  // one replacement per invalid byte
        ++i;
      } else {
        out.append(text.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.append(kHex[c >> 4]);
        out.append(kHex[c & 0xf]);
    }
    ++i;
  }
  out.append('"');
}

void appendJsonNumber(JsonBuffer& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  if (value == 0) value = 0;  // -0 prints as 0
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip form
  out.append(std::string_view(buf, size_t(res.ptr - buf)));
}

void appendJsonNumber(JsonBuffer& out, uint64_t value) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  out.append(std::string_view(buf, size_t(res.ptr - buf)));
}

void appendJsonNumber(JsonBuffer& out, int64_t value) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  out.append(std::string_view(buf, size_t(res.ptr - buf)));
}

}  // namespace trnsim::profile::detail
