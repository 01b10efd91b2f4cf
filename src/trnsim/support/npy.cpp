#include "trnsim/support/npy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>

namespace trnsim::support {
namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
/// Largest dimension accepted; anything bigger cannot be backed by a file anyway.
constexpr uint64_t kMaxDim = uint64_t(1) << 62;

Status corrupt(std::string_view origin, std::string message) {
  return Status(ErrorCode::kCorrupt, std::move(message), std::string(origin));
}
Status refused(std::string_view origin, std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message), std::string(origin));
}

/// The header dict of a .npy file, parsed by hand: numpy writes a Python literal, which a
/// strict little recursive-descent reader handles without evaluating anything.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view origin) : text_(text), origin_(origin) {}

  Status parse(std::string& descr, bool& fortranOrder, std::vector<int64_t>& shape) {
    bool haveDescr = false, haveOrder = false, haveShape = false;
    skipSpace();
    if (!consume('{')) return error("expected '{' at the start of the header");
    while (true) {
      skipSpace();
      if (consume('}')) break;
      std::string key;
      TRNSIM_RETURN_IF_ERROR(parseString(key, "a key"));
      skipSpace();
      if (!consume(':')) return error(fmt::format("expected ':' after the key '{}'", key));
      skipSpace();
      if (key == "descr") {
        if (haveDescr) return error("the key 'descr' appears twice");
        haveDescr = true;
        if (peek() == '[')
          return Status(ErrorCode::kInvalidArgument,
                        "a structured dtype (a list of fields in 'descr') is not supported: "
                        "save one plain numeric array per file",
                        std::string(origin_));
        TRNSIM_RETURN_IF_ERROR(parseString(descr, "the 'descr' string"));
      } else if (key == "fortran_order") {
        if (haveOrder) return error("the key 'fortran_order' appears twice");
        haveOrder = true;
        if (consumeWord("True")) {
          fortranOrder = true;
        } else if (consumeWord("False")) {
          fortranOrder = false;
        } else {
          return error("expected True or False after 'fortran_order'");
        }
      } else if (key == "shape") {
        if (haveShape) return error("the key 'shape' appears twice");
        haveShape = true;
        TRNSIM_RETURN_IF_ERROR(parseShape(shape));
      } else {
        return error(fmt::format(
            "unknown key '{}' (a .npy header has only 'descr', 'fortran_order' and 'shape')", key));
      }
      skipSpace();
      if (consume(',')) continue;
      if (consume('}')) break;
      return error("expected ',' or '}' after a value");
    }
    skipSpace();
    if (pos_ != text_.size()) return error("unexpected text after the closing '}'");
    if (!haveDescr || !haveOrder || !haveShape) {
      std::string missing = !haveDescr ? "descr" : !haveOrder ? "fortran_order" : "shape";
      return error(fmt::format("the key '{}' is missing", missing));
    }
    return {};
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool consumeWord(std::string_view w) {
    if (text_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  Status error(std::string what) const {
    return corrupt(origin_, fmt::format("bad .npy header at character {}: {}", pos_, what));
  }
  Status parseString(std::string& out, std::string_view what) {
    char quote = peek();
    if (quote != '\'' && quote != '"') return error(fmt::format("expected {} in quotes", what));
    ++pos_;
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') return error("escapes in header strings are not supported");
      ++pos_;
    }
    if (pos_ == text_.size()) return error(fmt::format("{} has no closing quote", what));
    out = std::string(text_.substr(start, pos_ - start));
    ++pos_;
    return {};
  }
  Status parseShape(std::vector<int64_t>& shape) {
    if (!consume('(')) return error("expected '(' to start the shape tuple");
    shape.clear();
    skipSpace();
    if (consume(')')) return {};
    while (true) {
      skipSpace();
      if (peek() < '0' || peek() > '9')
        return error("expected a non-negative integer in the shape tuple");
      uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        v = v * 10 + uint64_t(peek() - '0');
        if (v > kMaxDim) return error("a dimension of the shape is too large");
        ++pos_;
      }
      consume('L');  // Python 2 long literals, as old numpy versions wrote them
      shape.push_back(int64_t(v));
      if (shape.size() > 64) return error("the shape has more than 64 dimensions");
      skipSpace();
      if (consume(')')) return {};
      if (!consume(',')) return error("expected ',' or ')' in the shape tuple");
      skipSpace();
      if (consume(')')) return {};
    }
  }

  std::string_view text_;
  std::string_view origin_;
  size_t pos_ = 0;
};

/// Maps a descr string onto NpyDType, refusing what trnsim does not read.
Expected<NpyDType> parseDescr(std::string_view descr, std::string_view origin) {
  auto bad = [&](std::string why) {
    return refused(origin, fmt::format("dtype '{}': {}", descr, why));
  };
  if (descr.size() < 2) return bad("not a numpy dtype");
  char order = descr[0];
  char kind = descr[1];
  std::string_view digits = descr.substr(2);
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return bad("not a numpy dtype (expected a byte order '<', '>' or '|' first)");
  switch (kind) {
    case 'O':
      return bad("an object array holds Python objects, not numbers: save a numeric array");
    case 'b':
      return bad("bool arrays are not read: save a.astype(np.uint8)");
    case 'c':
      return bad("complex arrays are not supported: save the real and imaginary parts apart");
    case 'U':
    case 'S':
    case 'a':
      return bad("string arrays are not supported: save numbers");
    case 'M':
    case 'm':
      return bad("datetime arrays are not supported: save numbers");
    case 'f':
    case 'i':
    case 'u':
    case 'V':
      break;
    default:
      return bad("not a numeric numpy dtype");
  }
  if (digits.empty() || digits.size() > 6) return bad("missing or bad item size");
  uint32_t size = 0;
  for (char d : digits) {
    if (d < '0' || d > '9') return bad("bad item size");
    size = size * 10 + uint32_t(d - '0');
  }
  NpyDType t{kind, size};
  if (kind == 'f' && size != 2 && size != 4 && size != 8)
    return bad("only float16, float32 and float64 are read");
  if ((kind == 'i' || kind == 'u') && size != 1 && size != 2 && size != 4 && size != 8)
    return bad("only 1, 2, 4 and 8-byte integers are read");
  if (kind == 'V' && (size == 0 || size > 64)) return bad("raw items of 1 to 64 bytes only");
  if (order == '>' && size > 1 && kind != 'V')
    return bad(
        "big-endian data is not read: save a.astype(a.dtype.newbyteorder('<')) "
        "(little-endian)");
  if (order == '=' && size > 1 && kind != 'V')
    return bad("native byte order ('=') is ambiguous in a file: write '<' (little-endian)");
  if (order == '|' && size > 1 && kind != 'V')
    return bad("a multi-byte number needs a byte order: write '<' (little-endian)");
  return t;
}

uint64_t readLe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::string NpyDType::descr() const {
  char order = (itemBytes == 1 && kind != 'V') ? '|' : '<';
  return fmt::format("{}{}{}", order, kind, itemBytes);
}

std::string NpyDType::name() const {
  switch (kind) {
    case 'f':
      return fmt::format("float{}", itemBytes * 8);
    case 'i':
      return fmt::format("int{}", itemBytes * 8);
    case 'u':
      return fmt::format("uint{}", itemBytes * 8);
    default:
      return fmt::format("void{}", itemBytes * 8);
  }
}

int64_t NpyArray::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string npyShapeString(std::span<const int64_t> shape) {
  if (shape.empty()) return "()";
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

Expected<NpyArray> parseNpy(std::span<const uint8_t> bytes, std::string_view origin) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    return corrupt(origin, "not a .npy file (it does not start with \\x93NUMPY)");
  const uint8_t major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    return corrupt(origin, fmt::format(".npy format version {}.{} is not read (1.0, 2.0 and 3.0 "
                                       "are): save it with numpy.save",
                                       major, minor));
  const size_t lenBytes = major == 1 ? 2 : 4;
  const size_t headerStart = 8 + lenBytes;
  if (bytes.size() < headerStart) return corrupt(origin, "the file ends inside the .npy preamble");
  const uint64_t headerLen = readLe(bytes.data() + 8, int(lenBytes));
  if (headerLen > kNpyMaxHeaderBytes)
    return corrupt(origin, fmt::format("the .npy header is {} bytes (at most {} are read)",
                                       headerLen, kNpyMaxHeaderBytes));
  if (headerLen > bytes.size() - headerStart)
    return corrupt(origin, fmt::format("the .npy header says {} bytes but only {} follow",
                                       headerLen, bytes.size() - headerStart));
  std::string_view header(reinterpret_cast<const char*>(bytes.data() + headerStart),
                          size_t(headerLen));

  std::string descr;
  bool fortranOrder = false;
  NpyArray out;
  TRNSIM_RETURN_IF_ERROR(HeaderParser(header, origin).parse(descr, fortranOrder, out.shape));
  auto dtype = parseDescr(descr, origin);
  if (!dtype) return dtype.status();
  out.dtype = *dtype;

  // Every partial product stays within int64 (NpyArray::numElements multiplies in order), even
  // when a later 0 makes the array empty.
  uint64_t elements = 1;
  for (int64_t d : out.shape)
    if (__builtin_mul_overflow(elements, uint64_t(d), &elements) ||
        elements > uint64_t(std::numeric_limits<int64_t>::max()))
      return corrupt(origin, fmt::format("the shape {} is too large", npyShapeString(out.shape)));
  if (fortranOrder && out.shape.size() > 1) {
    // A 0-d or 1-d array is the same in either order; anything else must be C order.
    return refused(origin,
                   "the array is in Fortran (column-major) order: save np.ascontiguousarray(a)");
  }
  uint64_t dataBytes = 0;
  const uint64_t available = bytes.size() - headerStart - headerLen;
  const bool tooLarge = __builtin_mul_overflow(elements, uint64_t(out.dtype.itemBytes), &dataBytes);
  if (tooLarge || dataBytes != available)
    return corrupt(origin,
                   fmt::format("shape {} of {} needs {} data bytes but the file holds {} "
                               "(a truncated, padded or mislabelled file)",
                               npyShapeString(out.shape), out.dtype.name(),
                               tooLarge ? std::string("more than 2^64") : std::to_string(dataBytes),
                               available));
  const auto* data = reinterpret_cast<const std::byte*>(bytes.data() + headerStart + headerLen);
  out.data.assign(data, data + dataBytes);
  return out;
}

Expected<NpyArray> loadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status(ErrorCode::kIo,
                  fmt::format("cannot open the .npy file: {}", std::strerror(errno)), path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) return Status(ErrorCode::kIo, "cannot read the .npy file", path);
  return parseNpy(bytes, path);
}

std::vector<uint8_t> encodeNpy(const NpyDType& dtype, std::span<const int64_t> shape,
                               std::span<const std::byte> data) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 dtype.descr(), npyShapeString(shape));
  // As numpy writes it: room for the first dimension to grow to 21 digits (numpy's
  // GROWTH_AXIS_MAX_DIGITS, so a file can be appended to in place), then spaces and a final
  // newline so the data starts at a multiple of 64 bytes.
  if (!shape.empty()) {
    const size_t digits = std::to_string(shape[0]).size();
    if (digits < 21) dict.append(21 - digits, ' ');
  }
  size_t lenBytes = 2;
  uint8_t major = 1;
  if (10 + dict.size() + 1 > 65535) {
    lenBytes = 4;
    major = 2;
  }
  size_t preamble = 8 + lenBytes;
  size_t total = preamble + dict.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  out.push_back(major);
  out.push_back(0);
  for (size_t i = 0; i < lenBytes; ++i) out.push_back(uint8_t(dict.size() >> (8 * i)));
  out.insert(out.end(), dict.begin(), dict.end());
  const auto* d = reinterpret_cast<const uint8_t*>(data.data());
  out.insert(out.end(), d, d + data.size());
  return out;
}

Status saveNpy(const std::string& path, const NpyDType& dtype, std::span<const int64_t> shape,
               std::span<const std::byte> data) {
  std::vector<uint8_t> bytes = encodeNpy(dtype, shape, data);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return Status(ErrorCode::kIo, fmt::format("cannot write: {}", std::strerror(errno)), path);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  out.close();
  if (!out) return Status(ErrorCode::kIo, "cannot write (disk full?)", path);
  return {};
}

}  // namespace trnsim::support
