#include "trnsim/support/json_load.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

namespace trnsim::support {
namespace {

using nlohmann::json;

/// A `const char*` that records how far nlohmann's lexer has read, so that a SAX event (which
/// carries no position) can name the line and column it refers to. The lexer reads a token
/// and then calls the handler, so the last byte read is the token's last byte.
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, const char** furthest) : p_(p), furthest_(furthest) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    *furthest_ = ++p_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator& other) const { return p_ == other.p_; }
  bool operator!=(const CountingIterator& other) const { return p_ != other.p_; }

 private:
  const char* p_;
  const char** furthest_;
};

/// "line L, column C" of the byte at `offset` (both 1-based, as nlohmann counts them).
std::string positionOf(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  const std::string_view before = text.substr(0, offset);
  const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  const size_t lineStart = before.rfind('\n');
  const size_t column = offset - (lineStart == std::string_view::npos ? 0 : lineStart + 1) + 1;
  return fmt::format("line {}, column {}", line, column);
}

/// nlohmann messages start with "[json.exception.parse_error.101] "; users need the rest
/// ("parse error at line 3, column 7: ...").
std::string stripExceptionPrefix(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    size_t close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  return std::string(what);
}

std::string mib(uint64_t bytes) { return fmt::format("{:.0f} MiB", double(bytes) / (1 << 20)); }

Status tooLarge(uint64_t bytes, uint64_t limit, std::string_view origin) {
  return Status(ErrorCode::kConfig,
                fmt::format("is {} bytes, over the {} limit on JSON input; trnsim's JSON files "
                            "are a few KiB, so check that this is the right file",
                            bytes, mib(limit)),
                std::string(origin));
}

/// Builds the DOM from SAX events with an explicit stack (never recursing over the input),
/// refusing nesting deeper than the limit and a key that appears twice in one object.
class StrictDomBuilder {
 public:
  StrictDomBuilder(std::string_view text, std::string_view origin, size_t maxDepth,
                   const char* const* furthest)
      : text_(text), origin_(origin), maxDepth_(maxDepth), furthest_(furthest) {}

  bool null() { return place(json(nullptr)); }
  bool boolean(bool v) { return place(json(v)); }
  bool number_integer(json::number_integer_t v) { return place(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return place(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t& /*raw*/) {
    return place(json(v));
  }
  bool string(json::string_t& v) { return place(json(std::move(v))); }
  bool binary(json::binary_t& v) { return place(json(std::move(v))); }
  bool start_object(size_t /*elements*/) { return open(json::value_t::object); }
  bool start_array(size_t /*elements*/) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    Frame& f = stack_.back();
    if (f.node->contains(k)) {
      std::string path;
      for (size_t i = 0; i + 1 < stack_.size(); ++i) {
        const Frame& outer = stack_[i];
        path += outer.node->is_array() ? std::to_string(outer.node->size() - 1) : outer.key;
        path += '.';
      }
      path += k;
      status_ = Status(ErrorCode::kConfig,
                       fmt::format("appears twice in the same object (again at {}); keep one",
                                   positionOf(text_, keyStart())),
                       fmt::format("{}: key '{}'", origin_, path));
      return false;
    }
    f.key = k;
    slot_ = &(*f.node)[std::move(k)];
    return true;
  }

  bool parse_error(size_t /*byte*/, const std::string& /*token*/, const json::exception& e) {
    status_ = Status(
        ErrorCode::kParse,
        "invalid JSON: " + stripExceptionPrefix(e.what()) + " (fix the text at that position)",
        std::string(origin_));
    return false;
  }

  json takeRoot() { return std::move(root_); }
  Status takeStatus() { return std::move(status_); }

 private:
  struct Frame {
    json* node;
    std::string key;  // objects: the key whose value is being read
  };

  /// Offset of the byte the lexer read last.
  size_t lastByte() const {
    const size_t read = static_cast<size_t>(*furthest_ - text_.data());
    return read == 0 ? 0 : read - 1;
  }

  /// Offset of the opening quote of the key token just read (it ends at lastByte()).
  size_t keyStart() const {
    size_t end = lastByte();
    for (size_t i = end; i-- > 0;) {
      if (text_[i] != '"') continue;
      size_t slashes = 0;
      while (slashes < i && text_[i - 1 - slashes] == '\\') ++slashes;
      if (slashes % 2 == 0) return i;
    }
    return end;
  }

  json* put(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *stack_.back().node;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    *slot_ = std::move(v);
    return slot_;
  }
  bool place(json&& v) {
    put(std::move(v));
    return true;
  }
  bool open(json::value_t type) {
    if (stack_.size() >= maxDepth_) {
      status_ = Status(ErrorCode::kParse,
                       fmt::format("arrays and objects nested deeper than {} levels (at {}); "
                                   "trnsim's JSON files need fewer than 10, so check that this "
                                   "is the right file and that its brackets balance",
                                   maxDepth_, positionOf(text_, lastByte())),
                       std::string(origin_));
      return false;
    }
    stack_.push_back({put(json(type)), {}});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::string_view text_;
  std::string_view origin_;
  size_t maxDepth_;
  const char* const* furthest_;
  json root_;
  json* slot_ = nullptr;
  std::vector<Frame> stack_;
  Status status_;
};

}  // namespace

Expected<nlohmann::json> parseJsonText(std::string_view text, std::string_view origin,
                                       const JsonLimits& limits) {
  if (text.size() > limits.maxBytes) return tooLarge(text.size(), limits.maxBytes, origin);
  try {
    const char* furthest = text.data();
    StrictDomBuilder builder(text, origin, limits.maxDepth, &furthest);
    const bool ok = json::sax_parse(CountingIterator(text.data(), &furthest),
                                    CountingIterator(text.data() + text.size(), &furthest),
                                    &builder, json::input_format_t::json, /*strict=*/true,
                                    /*ignore_comments=*/false);
    if (ok) return builder.takeRoot();
    Status s = builder.takeStatus();
    if (s.isOk())
      return Status(ErrorCode::kInternal, "the JSON parser stopped without a reason",
                    std::string(origin));
    return s;
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kCapacity, "out of memory while parsing JSON", std::string(origin));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kParse, "invalid JSON: " + stripExceptionPrefix(e.what()),
                  std::string(origin));
  }
}

Expected<std::string> readJsonFile(const std::string& path, const JsonLimits& limits) {
  namespace fs = std::filesystem;
  try {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      return Status(ErrorCode::kIo, "cannot read: is a directory; give a .json file", path);
    }
    // Checked before reading so a huge file costs nothing; the read below is capped too, for
    // files whose size the file system does not know (pipes, /proc).
    const uintmax_t size = fs::file_size(path, ec);
    if (!ec && size > limits.maxBytes) return tooLarge(size, limits.maxBytes, path);
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return Status(
          ErrorCode::kIo,
          std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "unknown error"),
          path);
    }
    std::string text;
    char chunk[1 << 16];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
      text.append(chunk, static_cast<size_t>(in.gcount()));
      if (text.size() > limits.maxBytes) return tooLarge(text.size(), limits.maxBytes, path);
    }
    if (in.bad()) return Status(ErrorCode::kIo, "read failed", path);
    return text;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kIo, std::string("cannot read: ") + e.what(), path);
  }
}

Expected<nlohmann::json> parseJsonFile(const std::string& path, const JsonLimits& limits) {
  TRNSIM_ASSIGN_OR_RETURN(std::string text, readJsonFile(path, limits));
  return parseJsonText(text, path, limits);
}

}  // namespace trnsim::support
