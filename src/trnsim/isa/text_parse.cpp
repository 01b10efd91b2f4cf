// Parsing the text form (docs/isa.md, "Text form"; the printer is text.cpp), line by line,
// with errors that name origin:line:column and what was expected.

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>

#include "trnsim/isa/names.h"
#include "trnsim/isa/text.h"
#include "trnsim/isa/text_syntax.h"

namespace trnsim::isa {
namespace {

using detail::isIdentChar;
using detail::isIdentStart;
using detail::quote;
using detail::readDecimalFloat;

/// A cursor over one line, with errors that name origin:line:column.
class LineParser {
 public:
  LineParser(std::string_view line, const std::string& origin, size_t lineNo)
      : s_(line), origin_(origin), lineNo_(lineNo) {}

  Status error(std::string msg) const { return errorAt(pos_, std::move(msg)); }
  Status errorAt(size_t pos, std::string msg) const {
    return Status(ErrorCode::kParse, std::move(msg),
                  fmt::format("{}:{}:{}", origin_, lineNo_, pos + 1));
  }
  size_t pos() const { return pos_; }

  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  /// End of the line's content (a '#' starts a comment).
  bool atEnd() {
    skipSpace();
    return pos_ >= s_.size() || s_[pos_] == '#';
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  /// What the cursor is looking at, for "found ..." in messages.
  std::string found() const {
    if (pos_ >= s_.size()) return "end of line";
    if (s_[pos_] == '#') return "a comment";
    std::string_view rest = s_.substr(pos_, 12);
    size_t n = 0;
    while (n < rest.size() && rest[n] != ' ' && rest[n] != '\t') ++n;
    return fmt::format("'{}'", n == 0 ? rest.substr(0, 1) : rest.substr(0, n));
  }
  Status expect(char c, std::string_view what) {
    if (accept(c)) return Status::ok();
    return error(fmt::format("expected '{}' {}, found {}", c, what, found()));
  }
  /// A run of identifier characters (may be empty).
  std::string_view word() {
    size_t b = pos_;
    while (pos_ < s_.size() && isIdentChar(s_[pos_])) ++pos_;
    return s_.substr(b, pos_ - b);
  }
  /// A run of characters that can spell a number or a flag list (may be empty).
  std::string_view valueWord() {
    size_t b = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (isIdentChar(c) || c == '.' || c == '+' || c == '-' || c == ':' || c == '|') ++pos_;
      else break;
    }
    return s_.substr(b, pos_ - b);
  }
  /// An optionally signed integer, decimal or 0x-hex.
  std::string_view numberWord() {
    size_t b = pos_;
    if (peek() == '+' || peek() == '-') ++pos_;
    while (pos_ < s_.size() && isIdentChar(s_[pos_])) ++pos_;
    return s_.substr(b, pos_ - b);
  }
  Expected<std::string> quoted() {
    size_t start = pos_;
    if (!accept('"')) return error(fmt::format("expected a quoted string, found {}", found()));
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) return errorAt(start, "unterminated string: add the closing '\"'");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return errorAt(start, "unterminated string: add the closing '\"'");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'x': {
          unsigned v = 0;
          for (int i = 0; i < 2; ++i) {
            char h = peek();
            int d = (h >= '0' && h <= '9')   ? h - '0'
                    : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                    : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                             : -1;
            if (d < 0) return error("expected two hex digits after \\x in a string");
            v = v * 16 + unsigned(d);
            ++pos_;
          }
          out += static_cast<char>(v);
          break;
        }
        default:
          return errorAt(pos_ - 2, fmt::format("unknown escape '\\{}' in a string: use \\\" \\\\ "
                                               "\\n \\t or \\xHH",
                                               e));
      }
    }
  }

  template <typename T>
  Expected<T> integer(std::string_view what) {
    size_t at = pos_;
    std::string_view w = numberWord();
    if (w.empty()) return errorAt(at, fmt::format("expected {}, found {}", what, found()));
    std::optional<T> v = parseInteger<T>(w);
    if (!v) {
      return errorAt(at, fmt::format("expected {} (an integer that fits), found '{}'", what, w));
    }
    return *v;
  }

  template <typename T>
  static std::optional<T> parseInteger(std::string_view w) {
    bool neg = false;
    if (!w.empty() && (w[0] == '+' || w[0] == '-')) {
      neg = w[0] == '-';
      w.remove_prefix(1);
    }
    int base = 10;
    if (w.size() > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X')) {
      base = 16;
      w.remove_prefix(2);
    }
    if (w.empty()) return std::nullopt;
    uint64_t mag = 0;
    auto [ptr, ec] = std::from_chars(w.data(), w.data() + w.size(), mag, base);
    if (ec != std::errc() || ptr != w.data() + w.size()) return std::nullopt;
    if constexpr (std::is_signed_v<T>) {
      if (neg) {
        if (mag == 0) return T{0};
        if (mag > uint64_t(std::numeric_limits<T>::max()) + 1) return std::nullopt;
        return static_cast<T>(-static_cast<T>(mag - 1) - 1);
      }
      if (mag > uint64_t(std::numeric_limits<T>::max())) return std::nullopt;
      return static_cast<T>(mag);
    } else {
      if (neg && mag != 0) return std::nullopt;
      if (mag > uint64_t(std::numeric_limits<T>::max())) return std::nullopt;
      return static_cast<T>(mag);
    }
  }

  Expected<float> floatValue(std::string_view what) {
    size_t at = pos_;
    std::string_view w = valueWord();
    auto bad = [&]() {
      return errorAt(at, fmt::format("expected {} (a number, inf, nan or f32:0xBITS), found '{}'",
                                     what, w));
    };
    if (w.empty()) return errorAt(at, fmt::format("expected {}, found {}", what, found()));
    if (w.rfind("nan:", 0) == 0 || w.rfind("f32:", 0) == 0) {
      auto bits = parseInteger<uint32_t>(w.substr(4));
      if (!bits) return bad();
      return std::bit_cast<float>(*bits);
    }
    if (w == "nan") return std::bit_cast<float>(uint32_t{0x7fc00000u});
    if (w == "inf" || w == "+inf") return std::numeric_limits<float>::infinity();
    if (w == "-inf") return -std::numeric_limits<float>::infinity();
    auto v = readDecimalFloat(w);
    if (!v || !std::isfinite(*v)) return bad();
    return *v;
  }

 private:
  std::string_view s_;
  const std::string& origin_;
  size_t lineNo_;
  size_t pos_ = 0;
};

class ProgramParser {
 public:
  ProgramParser(std::string_view text, const std::string& origin) : text_(text), origin_(origin) {}

  Expected<Program> run();

 private:
  Status parseLine(LineParser& lp);
  Status parseHeader(LineParser& lp);
  Status parseLoc(LineParser& lp);
  Status parseTensor(LineParser& lp);
  Status parseReplicaGroup(LineParser& lp);
  Status parseInstruction(LineParser& lp, std::string_view head, size_t headPos);
  /// A reference: %name, %"quoted name" or %#index. `allowIndex` false for declarations.
  Status parseRef(LineParser& lp, bool allowIndex, std::string& name, std::optional<uint32_t>& index);
  Expected<uint32_t> resolveRef(LineParser& lp, size_t at);
  Expected<AccessPattern> parseAp(LineParser& lp);
  Status parseAttribute(LineParser& lp, Instruction& in, const OpInfo& info, std::string_view key,
                        size_t at, size_t vat, uint32_t& seen);

  struct PendingAlias {
    uint32_t tensor;
    std::string name;
    std::optional<uint32_t> index;
    size_t line, col;
  };

  std::string_view text_;
  const std::string& origin_;
  Program program_;
  bool sawHeader_ = false;
  std::unordered_map<std::string, uint32_t> byName_;  ///< first tensor of each name
  std::vector<PendingAlias> aliases_;
  size_t lineNo_ = 0;
};

Expected<Program> ProgramParser::run() {
  size_t start = 0;
  while (start <= text_.size()) {
    size_t end = text_.find('\n', start);
    if (end == std::string_view::npos) end = text_.size();
    std::string_view line = text_.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++lineNo_;
    LineParser lp(line, origin_, lineNo_);
    if (!lp.atEnd()) TRNSIM_RETURN_IF_ERROR(parseLine(lp));
    if (end == text_.size()) break;
    start = end + 1;
  }
  for (const PendingAlias& a : aliases_) {
    uint32_t target = kNoTensor;
    if (a.index) {
      target = *a.index;
    } else if (auto it = byName_.find(a.name); it != byName_.end()) {
      target = it->second;
    }
    if (target >= program_.tensors.size() || target == a.tensor) {
      return Status(ErrorCode::kParse,
                    fmt::format("alias names tensor {}, which is not another declared tensor",
                                a.index ? fmt::format("#{}", *a.index) : quote(a.name)),
                    fmt::format("{}:{}:{}", origin_, a.line, a.col));
    }
    program_.tensors[a.tensor].aliasOf = target;
  }
  return std::move(program_);
}

Status ProgramParser::parseLine(LineParser& lp) {
  size_t at = lp.pos();
  size_t b = lp.pos();
  std::string_view head = lp.word();
  if (lp.peek() == '.') {  // opcode.engine
    lp.accept('.');
    lp.word();
  }
  head = std::string_view(head.data(), lp.pos() - b);
  if (head.empty()) {
    return lp.error(fmt::format("expected 'program', 'loc', 'tensor' or an instruction, found {}",
                                lp.found()));
  }
  if (head == "program") return parseHeader(lp);
  if (head == "loc") return parseLoc(lp);
  if (head == "tensor") return parseTensor(lp);
  if (head == "replica_group") return parseReplicaGroup(lp);
  return parseInstruction(lp, head, at);
}

// replica_group INDEX [[r, r, ...], [r, ...]]   (no lists: [] = every rank)
Status ProgramParser::parseReplicaGroup(LineParser& lp) {
  lp.skipSpace();
  size_t at = lp.pos();
  TRNSIM_ASSIGN_OR_RETURN(uint64_t index, lp.integer<uint64_t>("a replica group index"));
  if (index != program_.replicaGroups.size()) {
    return lp.errorAt(at, fmt::format("replica group index {} out of sequence: expected {}",
                                      index, program_.replicaGroups.size()));
  }
  ReplicaGroup g;
  lp.skipSpace();
  TRNSIM_RETURN_IF_ERROR(lp.expect('[', "to open the list of rank-lists"));
  lp.skipSpace();
  if (!lp.accept(']')) {
    while (true) {
      lp.skipSpace();
      TRNSIM_RETURN_IF_ERROR(lp.expect('[', "to open a rank-list"));
      std::vector<uint32_t> list;
      lp.skipSpace();
      if (!lp.accept(']')) {
        while (true) {
          lp.skipSpace();
          TRNSIM_ASSIGN_OR_RETURN(uint32_t r, lp.integer<uint32_t>("a rank"));
          list.push_back(r);
          lp.skipSpace();
          if (lp.accept(']')) break;
          TRNSIM_RETURN_IF_ERROR(lp.expect(',', "between ranks (or ']' to close the list)"));
        }
      }
      g.lists.push_back(std::move(list));
      lp.skipSpace();
      if (lp.accept(']')) break;
      TRNSIM_RETURN_IF_ERROR(lp.expect(',', "between rank-lists (or ']' to close the group)"));
    }
  }
  if (!lp.atEnd()) return lp.error(fmt::format("expected end of line, found {}", lp.found()));
  program_.replicaGroups.push_back(std::move(g));
  return Status::ok();
}

Status ProgramParser::parseHeader(LineParser& lp) {
  if (sawHeader_) return lp.error("a second 'program' line: a file holds one program");
  sawHeader_ = true;
  lp.skipSpace();
  TRNSIM_ASSIGN_OR_RETURN(program_.name, lp.quoted());
  while (!lp.atEnd()) {
    size_t at = lp.pos();
    std::string_view key = lp.word();
    if (key != "target") {
      return lp.errorAt(at, fmt::format("expected 'target=\"chip\"' or end of line, found {}",
                                        key.empty() ? lp.found() : quote(key)));
    }
    TRNSIM_RETURN_IF_ERROR(lp.expect('=', "after 'target'"));
    TRNSIM_ASSIGN_OR_RETURN(program_.target, lp.quoted());
  }
  return Status::ok();
}

Status ProgramParser::parseLoc(LineParser& lp) {
  lp.skipSpace();
  size_t at = lp.pos();
  TRNSIM_ASSIGN_OR_RETURN(uint64_t index, lp.integer<uint64_t>("a location index"));
  SourceLocation loc;
  lp.skipSpace();
  TRNSIM_ASSIGN_OR_RETURN(loc.file, lp.quoted());
  TRNSIM_RETURN_IF_ERROR(lp.expect(':', "between the file and the line number"));
  TRNSIM_ASSIGN_OR_RETURN(loc.line, lp.integer<uint32_t>("a line number"));
  if (!lp.atEnd()) return lp.error(fmt::format("expected end of line, found {}", lp.found()));
  if (index == 0 && program_.locations.size() == 1) {
    program_.locations[0] = std::move(loc);
  } else if (index == program_.locations.size()) {
    program_.locations.push_back(std::move(loc));
  } else {
    return lp.errorAt(at, fmt::format("location index {} out of sequence: expected {}", index,
                                      program_.locations.size()));
  }
  return Status::ok();
}

Status ProgramParser::parseRef(LineParser& lp, bool allowIndex, std::string& name,
                               std::optional<uint32_t>& index) {
  lp.skipSpace();
  if (!lp.accept('%')) {
    return lp.error(fmt::format("expected a tensor reference (%name, %\"name\"{}), found {}",
                                allowIndex ? " or %#index" : "", lp.found()));
  }
  if (lp.peek() == '#') {
    if (!allowIndex) return lp.error("a declaration needs a name, not an index");
    lp.accept('#');
    TRNSIM_ASSIGN_OR_RETURN(uint32_t i, lp.integer<uint32_t>("a tensor index"));
    index = i;
    return Status::ok();
  }
  if (lp.peek() == '"') {
    TRNSIM_ASSIGN_OR_RETURN(name, lp.quoted());
    return Status::ok();
  }
  std::string_view w = lp.word();
  if (w.empty() || !isIdentStart(w[0])) {
    return lp.error("expected a tensor name after '%': letters, digits and '_', or a quoted name");
  }
  name = std::string(w);
  return Status::ok();
}

Expected<uint32_t> ProgramParser::resolveRef(LineParser& lp, size_t at) {
  std::string name;
  std::optional<uint32_t> index;
  TRNSIM_RETURN_IF_ERROR(parseRef(lp, true, name, index));
  if (index) {
    if (*index >= program_.tensors.size()) {
      return lp.errorAt(at, fmt::format("tensor #{} is not declared (so far {} tensors)", *index,
                                        program_.tensors.size()));
    }
    return *index;
  }
  auto it = byName_.find(name);
  if (it == byName_.end()) {
    return lp.errorAt(at, fmt::format("tensor {} is not declared: declare it with a 'tensor' line "
                                      "before its first use",
                                      quote(name)));
  }
  return it->second;
}

Status ProgramParser::parseTensor(LineParser& lp) {
  TensorDecl t;
  std::optional<uint32_t> unusedIndex;
  TRNSIM_RETURN_IF_ERROR(parseRef(lp, false, t.name, unusedIndex));
  lp.skipSpace();
  size_t at = lp.pos();
  std::string_view space = lp.word();
  auto ms = parseMemSpaceName(space);
  if (!ms) return lp.errorAt(at, fmt::format("expected sbuf, psum or hbm, found {}", space.empty() ? lp.found() : quote(space)));
  t.space = *ms;
  lp.skipSpace();
  at = lp.pos();
  std::string_view dt = lp.word();
  auto dtype = numerics::parseDType(dt);
  if (!dtype) {
    return lp.errorAt(at, fmt::format("expected a dtype (bfloat16, float32, int32, ...), found {}",
                                      dt.empty() ? lp.found() : quote(dt)));
  }
  t.dtype = *dtype;
  lp.skipSpace();
  TRNSIM_RETURN_IF_ERROR(lp.expect('[', "to open the shape"));
  lp.skipSpace();
  if (!lp.accept(']')) {
    while (true) {
      lp.skipSpace();
      TRNSIM_ASSIGN_OR_RETURN(int64_t d, lp.integer<int64_t>("a shape dimension"));
      t.shape.push_back(d);
      lp.skipSpace();
      if (lp.accept(']')) break;
      TRNSIM_RETURN_IF_ERROR(lp.expect(',', "or ']' in the shape"));
    }
  }
  lp.skipSpace();
  at = lp.pos();
  if (lp.word() != "at") {
    return lp.errorAt(at, fmt::format("expected 'at' and the placement (p0+0x0, or 0x0 for HBM), "
                                      "found {}",
                                      lp.found()));
  }
  lp.skipSpace();
  if (lp.accept('p')) {
    TRNSIM_ASSIGN_OR_RETURN(t.partitionStart, lp.integer<uint32_t>("the first partition"));
    TRNSIM_RETURN_IF_ERROR(lp.expect('+', "between the partition and the byte offset"));
  }
  TRNSIM_ASSIGN_OR_RETURN(t.byteOffset, lp.integer<uint64_t>("a byte offset"));
  bool sawKind = false, sawAlias = false;
  while (!lp.atEnd()) {
    at = lp.pos();
    std::string_view key = lp.word();
    if (key == "kind" && !sawKind) {
      sawKind = true;
      TRNSIM_RETURN_IF_ERROR(lp.expect('=', "after 'kind'"));
      size_t vat = lp.pos();
      std::string_view v = lp.word();
      auto k = parseTensorKindName(v);
      if (!k) return lp.errorAt(vat, "expected internal, input, output or inout after 'kind='");
      t.kind = *k;
    } else if (key == "alias" && !sawAlias) {
      sawAlias = true;
      TRNSIM_RETURN_IF_ERROR(lp.expect('=', "after 'alias'"));
      PendingAlias a{static_cast<uint32_t>(program_.tensors.size()), {}, {}, lineNo_, lp.pos() + 1};
      TRNSIM_RETURN_IF_ERROR(parseRef(lp, true, a.name, a.index));
      aliases_.push_back(std::move(a));
    } else {
      return lp.errorAt(at, fmt::format("expected kind=... or alias=... (each at most once), "
                                        "found {}",
                                        key.empty() ? lp.found() : quote(key)));
    }
  }
  if (program_.tensors.size() >= kNoTensor) return lp.error("too many tensors");
  byName_.emplace(t.name, static_cast<uint32_t>(program_.tensors.size()));
  program_.tensors.push_back(std::move(t));
  return Status::ok();
}

Expected<AccessPattern> ProgramParser::parseAp(LineParser& lp) {
  AccessPattern ap;
  size_t at = lp.pos();
  TRNSIM_ASSIGN_OR_RETURN(ap.tensor, resolveRef(lp, at));
  TRNSIM_RETURN_IF_ERROR(lp.expect('[', "to open the access pattern, like [p0:128, +0, 512@1]"));
  lp.skipSpace();
  TRNSIM_RETURN_IF_ERROR(lp.expect('p', "to start the partition range, like p0:128"));
  TRNSIM_ASSIGN_OR_RETURN(ap.partitionOffset, lp.integer<uint32_t>("the first partition"));
  TRNSIM_RETURN_IF_ERROR(lp.expect(':', "in the partition range start:stop"));
  size_t stopAt = lp.pos();
  TRNSIM_ASSIGN_OR_RETURN(uint64_t stop, lp.integer<uint64_t>("the partition stop"));
  if (stop < ap.partitionOffset || stop - ap.partitionOffset > UINT32_MAX) {
    return lp.errorAt(stopAt, fmt::format("partition stop {} must be at least the start {}", stop,
                                          ap.partitionOffset));
  }
  ap.partitions = static_cast<uint32_t>(stop - ap.partitionOffset);
  if (lp.accept('@')) {
    TRNSIM_ASSIGN_OR_RETURN(ap.partitionStride, lp.integer<int64_t>("the partition stride"));
  }
  lp.skipSpace();
  TRNSIM_RETURN_IF_ERROR(lp.expect(',', "after the partition range"));
  lp.skipSpace();
  TRNSIM_ASSIGN_OR_RETURN(ap.offset, lp.integer<int64_t>("the element offset (+N or -N)"));
  while (true) {
    lp.skipSpace();
    if (lp.accept(']')) break;
    TRNSIM_RETURN_IF_ERROR(lp.expect(',', "or ']' in the access pattern"));
    lp.skipSpace();
    if (ap.numFree >= kMaxFreeDims) {
      return lp.error(fmt::format("more than {} free dims: an access pattern has at most {}",
                                  kMaxFreeDims, kMaxFreeDims));
    }
    Dim& d = ap.free[ap.numFree];
    TRNSIM_ASSIGN_OR_RETURN(d.count, lp.integer<int64_t>("a free dim count (count@stride)"));
    TRNSIM_RETURN_IF_ERROR(lp.expect('@', "between a free dim's count and stride"));
    TRNSIM_ASSIGN_OR_RETURN(d.stride, lp.integer<int64_t>("a free dim stride"));
    ++ap.numFree;
  }
  return ap;
}

Status ProgramParser::parseInstruction(LineParser& lp, std::string_view head, size_t headPos) {
  Instruction in;
  std::string_view opName = head.substr(0, head.find('.'));
  auto op = parseOpcodeName(opName);
  if (!op) {
    return lp.errorAt(headPos, fmt::format("unknown opcode {}: expected 'program', 'loc', 'tensor' "
                                           "or an nki.isa instruction name",
                                           quote(opName)));
  }
  in.opcode = *op;
  const OpInfo& info = opInfo(*op);
  in.engine = info.defaultEngine;
  if (size_t dot = head.find('.'); dot != std::string_view::npos) {
    std::string_view e = head.substr(dot + 1);
    auto engine = parseEngineName(e);
    if (!engine) {
      return lp.errorAt(headPos + dot + 1,
                        fmt::format("unknown engine {}: expected tensor, vector, scalar, gpsimd, "
                                    "sync or dma",
                                    quote(e)));
    }
    in.engine = *engine;
  }
  uint32_t seen = 0;  // bits: 0-4 operand slots, 5 op0, 6 op1, 7 reduce, 8 func, 9 flags,
                      // 10 queue, 11 loc, 12-15 imm, 16-19 iarg
  auto once = [&](int bit, size_t at, std::string_view key) -> Status {
    if (seen & (1u << bit)) return lp.errorAt(at, fmt::format("{} given twice", quote(key)));
    seen |= 1u << bit;
    return Status::ok();
  };
  while (!lp.atEnd()) {
    size_t at = lp.pos();
    std::string_view key = lp.word();
    if (key.empty()) return lp.error(fmt::format("expected key=value, found {}", lp.found()));
    TRNSIM_RETURN_IF_ERROR(lp.expect('=', fmt::format("after {}", quote(key))));
    size_t vat = lp.pos();
    if (lp.peek() == '%') {
      int slot = -1;
      for (int s = 0; s < info.numOperands; ++s)
        if (info.operands[size_t(s)].name == key) slot = s;
      if (slot < 0) {
        std::string names;
        for (int s = 0; s < info.numOperands; ++s)
          names += (s ? ", " : "") + std::string(info.operands[size_t(s)].name);
        return lp.errorAt(at, fmt::format("{} has no operand {}: its operands are {}", info.name,
                                          quote(key), names));
      }
      TRNSIM_RETURN_IF_ERROR(once(slot, at, key));
      TRNSIM_ASSIGN_OR_RETURN(AccessPattern ap, parseAp(lp));
      in.operands.push_back(Operand{static_cast<uint8_t>(slot), ap});
    } else {
      TRNSIM_RETURN_IF_ERROR(parseAttribute(lp, in, info, key, at, vat, seen));
    }
    // A value must end at a separator.
    char c = lp.peek();
    if (c != '\0' && c != ' ' && c != '\t' && c != '#') {
      return lp.error(fmt::format("unexpected {} after the value of {}", lp.found(), quote(key)));
    }
  }
  // A named immediate left out would read as 0 without a word: require it, unless an operand
  // of the same name feeds it or it is an ALU operand (operand0, operand1) whose ALU is bypass.
  for (size_t i = 0; i < info.immNames.size(); ++i) {
    const std::string_view name = info.immNames[i];
    if (name.empty() || (seen & (1u << (12 + i)))) continue;
    bool hasOperand = false, fed = false;
    for (int slot = 0; slot < info.numOperands; ++slot) {
      if (info.operands[size_t(slot)].name != name) continue;
      hasOperand = true;
      fed = seen & (1u << slot);
    }
    if (fed || (name == "operand0" && in.alu0 == AluOp::kBypass) ||
        (name == "operand1" && in.alu1 == AluOp::kBypass))
      continue;
    return lp.errorAt(headPos, fmt::format("{} needs {}=<value>{}: a left-out immediate would "
                                           "read as 0",
                                           info.name, name,
                                           hasOperand ? fmt::format(" or {}=%tensor", name) : ""));
  }
  std::sort(in.operands.begin(), in.operands.end(),
            [](const Operand& a, const Operand& b) { return a.slot < b.slot; });
  program_.instructions.push_back(std::move(in));
  return Status::ok();
}

Status ProgramParser::parseAttribute(LineParser& lp, Instruction& in, const OpInfo& info,
                                     std::string_view key, size_t at, size_t vat, uint32_t& seen) {
  auto once = [&](int bit, size_t pos, std::string_view k) -> Status {
    if (seen & (1u << bit)) return lp.errorAt(pos, fmt::format("{} given twice", quote(k)));
    seen |= 1u << bit;
    return Status::ok();
  };
  {
    auto aluValue = [&](AluOp& field, int bit) -> Status {
      TRNSIM_RETURN_IF_ERROR(once(bit, at, key));
      std::string_view v = lp.word();
      auto a = parseAluOpName(v);
      if (!a) {
        return lp.errorAt(vat, fmt::format("unknown ALU operation {}: expected add, subtract, "
                                           "multiply, max, is_ge, bypass, ...",
                                           quote(v)));
      }
      field = *a;
      return Status::ok();
    };
    if (key == "op0") {
      TRNSIM_RETURN_IF_ERROR(aluValue(in.alu0, 5));
    } else if (key == "op1") {
      TRNSIM_RETURN_IF_ERROR(aluValue(in.alu1, 6));
    } else if (key == "reduce_op") {
      TRNSIM_RETURN_IF_ERROR(aluValue(in.reduceOp, 7));
    } else if (key == "func") {
      TRNSIM_RETURN_IF_ERROR(once(8, at, key));
      std::string_view v = lp.word();
      auto f = parseActFuncName(v);
      if (!f) {
        return lp.errorAt(vat, fmt::format("unknown activation function {}: expected identity, "
                                           "exp, tanh, gelu, silu, ...",
                                           quote(v)));
      }
      in.act = *f;
    } else if (key == "flags") {
      TRNSIM_RETURN_IF_ERROR(once(9, at, key));
      std::string_view v = lp.valueWord();
      if (v != "none") {
        size_t b = 0;
        while (b <= v.size()) {
          size_t e = v.find('|', b);
          if (e == std::string_view::npos) e = v.size();
          std::string_view part = v.substr(b, e - b);
          if (auto f = parseFlagName(part)) {
            in.flags = static_cast<uint16_t>(in.flags | *f);
          } else if (auto raw = LineParser::parseInteger<uint16_t>(part); raw && part.size() > 2 &&
                                                                          part[0] == '0') {
            in.flags = static_cast<uint16_t>(in.flags | *raw);
          } else {
            return lp.errorAt(vat + b, fmt::format("unknown flag {}: expected accumulate, "
                                                   "double_row, is_transpose, negate, reverse0, "
                                                   "reverse1, reverse_pred, indirect_src, "
                                                   "indirect_dst, oob_skip or none",
                                                   quote(part)));
          }
          b = e + 1;
        }
      }
    } else if (key == "queue") {
      TRNSIM_RETURN_IF_ERROR(once(10, at, key));
      TRNSIM_ASSIGN_OR_RETURN(in.queue, lp.integer<uint16_t>("a DMA queue (0-65535)"));
    } else if (key == "loc") {
      TRNSIM_RETURN_IF_ERROR(once(11, at, key));
      TRNSIM_ASSIGN_OR_RETURN(in.loc, lp.integer<uint32_t>("a location index"));
      if (in.loc >= program_.locations.size()) {
        return lp.errorAt(vat, fmt::format("location {} is not declared: add a 'loc {} \"file\":"
                                           "line' line first",
                                           in.loc, in.loc));
      }
    } else {
      int imm = -1, iarg = -1;
      for (int i = 0; i < 4; ++i) {
        if (info.immNames[size_t(i)] == key || fmt::format("imm{}", i) == key) imm = i;
        if (info.intNames[size_t(i)] == key || fmt::format("iarg{}", i) == key) iarg = i;
      }
      if (imm >= 0) {
        TRNSIM_RETURN_IF_ERROR(once(12 + imm, at, key));
        TRNSIM_ASSIGN_OR_RETURN(in.imm[size_t(imm)], lp.floatValue(fmt::format("a value for {}", key)));
      } else if (iarg >= 0) {
        TRNSIM_RETURN_IF_ERROR(once(16 + iarg, at, key));
        TRNSIM_ASSIGN_OR_RETURN(in.iarg[size_t(iarg)],
                                lp.integer<int64_t>(fmt::format("an integer for {}", key)));
      } else {
        std::string keys;
        for (int s = 0; s < info.numOperands; ++s) keys += std::string(info.operands[size_t(s)].name) + ", ";
        for (auto n : info.immNames)
          if (!n.empty()) keys += std::string(n) + ", ";
        for (auto n : info.intNames)
          if (!n.empty()) keys += std::string(n) + ", ";
        if (info.usesAct) keys += "func, ";
        if (info.usesAlu0) keys += "op0, ";
        if (info.usesAlu1) keys += "op1, ";
        if (info.usesReduce) keys += "reduce_op, ";
        keys += "flags, queue, loc";
        return lp.errorAt(at, fmt::format("{} has no attribute {}: expected one of {}", info.name,
                                          quote(key), keys));
      }
    }
  }
  return Status::ok();
}

}  // namespace

Expected<Program> parseProgram(std::string_view text, const std::string& origin) {
  return ProgramParser(text, origin).run();
}

}  // namespace trnsim::isa
