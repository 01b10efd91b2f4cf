#pragma once
// The lexical pieces the text form's printer (text.cpp) and parser (text_parse.cpp) share:
// identifiers, quoted strings and decimal floats. Not part of the isa layer's interface.

#include <fmt/format.h>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

namespace trnsim::isa::detail {

inline bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
inline bool isIdentChar(char c) { return isIdentStart(c) || (c >= '0' && c <= '9'); }

inline bool isBareName(std::string_view s) {
  if (s.empty() || !isIdentStart(s[0])) return false;
  for (char c : s)
    if (!isIdentChar(c)) return false;
  return true;
}

inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += ch;
  }
  out += '"';
  return out;
}

/// Whether a float's shortest decimal spelling reads back to the same bits here.
inline std::optional<float> readDecimalFloat(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  float v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace trnsim::isa::detail
