#include "trnsim/compiler/text.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace trnsim::compiler {
namespace {

std::string_view kindName(ValueKind k) {
  switch (k) {
    case ValueKind::kInput:
      return "input";
    case ValueKind::kParam:
      return "param";
    case ValueKind::kNode:
      return "";
  }
  return "";
}

std::string quoted(const std::string& s) { return attrString(Attr{s}); }

void printNode(const Graph& g, const Node& n, int indent, std::string& out) {
  const std::string pad(size_t(indent), ' ');
  std::vector<std::string> outs, ins;
  for (uint32_t v : n.outputs)
    outs.push_back(fmt::format("%{}: {}", g.values[v].name, typeString(g.values[v].type)));
  for (uint32_t v : n.inputs) ins.push_back("%" + g.values[v].name);
  out += fmt::format("{}{} = {}({})", pad, fmt::join(outs, ", "), n.op, fmt::join(ins, ", "));
  if (!n.attrs.empty()) {
    std::vector<std::string> as;
    for (const auto& [k, v] : n.attrs) as.push_back(fmt::format("{}={}", k, attrString(v)));
    out += fmt::format(" {{{}}}", fmt::join(as, ", "));
  }
  if (!n.loc.empty()) out += " @" + quoted(n.loc);
  if (!n.body.empty()) {
    out += " {\n";
    for (const Node& b : n.body) printNode(g, b, indent + 2, out);
    out += pad + "}";
  }
  out += "\n";
}

/// A hand-written recursive-descent parser over the text, tracking line and column.
class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Expected<Graph> parse() {
    Graph g;
    skipSpace();
    if (!keyword("graph")) return fail("expected 'graph' at the start");
    auto name = identifier();
    if (!name) return fail("expected the graph's name after 'graph'");
    g.name = *name;
    if (!expect('(')) return status_;
    skipSpace();
    if (!peek(')')) {
      do {
        auto v = valueDecl(g, true);
        if (!v) return status_;
        g.inputs.push_back(*v);
      } while (accept(','));
    }
    if (!expect(')') || !expect('{')) return status_;
    for (;;) {
      skipSpace();
      if (keyword("return")) {
        skipSpace();
        if (peek('%')) {
          do {
            auto v = useValue(g);
            if (!v) return status_;
            g.outputs.push_back(*v);
          } while (accept(','));
        }
        break;
      }
      Node n;
      if (!node(g, n)) return status_;
      g.nodes.push_back(std::move(n));
    }
    if (!expect('}')) return status_;
    skipSpace();
    if (pos_ != s_.size()) return fail("unexpected text after the graph's closing '}'");
    return g;
  }

 private:
  void error(const std::string& msg) {
    if (status_.isOk())
      status_ = Status(ErrorCode::kParse,
                       fmt::format("line {}, column {}: {}", line_, pos_ - lineStart_ + 1, msg));
  }
  Status fail(const std::string& msg) {
    error(msg);
    return status_;
  }

  void skipSpace() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        lineStart_ = ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '/') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  bool peek(char c) {
    skipSpace();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  bool accept(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }
  bool expect(char c) {
    if (accept(c)) return true;
    error(fmt::format("expected '{}'", c));
    return false;
  }
  static bool identChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  }
  std::optional<std::string> identifier() {
    skipSpace();
    size_t b = pos_;
    while (pos_ < s_.size() && identChar(s_[pos_])) ++pos_;
    if (b == pos_) return std::nullopt;
    return std::string(s_.substr(b, pos_ - b));
  }
  bool keyword(std::string_view k) {
    skipSpace();
    if (s_.substr(pos_, k.size()) != k) return false;
    if (pos_ + k.size() < s_.size() && identChar(s_[pos_ + k.size()])) return false;
    pos_ += k.size();
    return true;
  }
  std::optional<std::string> valueName() {
    if (!expect('%')) return std::nullopt;
    size_t b = pos_;
    while (pos_ < s_.size() && identChar(s_[pos_])) ++pos_;
    if (b == pos_) {
      error("expected a value name after '%'");
      return std::nullopt;
    }
    return std::string(s_.substr(b, pos_ - b));
  }
  std::optional<int64_t> integer() {
    skipSpace();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s_.data() + pos_, s_.data() + s_.size(), v);
    if (ec != std::errc()) {
      error("expected an integer");
      return std::nullopt;
    }
    pos_ = size_t(p - s_.data());
    return v;
  }
  std::optional<TensorType> type() {
    auto dt = identifier();
    if (!dt) {
      error("expected a type like f32[2, 3]");
      return std::nullopt;
    }
    std::optional<DType> d = numerics::parseDType(*dt);
    if (*dt == "i32")
      d = DType::kInt32;
    else if (*dt == "i16")
      d = DType::kInt16;
    else if (*dt == "i8")
      d = DType::kInt8;
    else if (*dt == "u8")
      d = DType::kUInt8;
    else if (*dt == "u16")
      d = DType::kUInt16;
    else if (*dt == "u32")
      d = DType::kUInt32;
    else if (*dt == "f8e4m3")
      d = DType::kFP8E4M3;
    else if (*dt == "f8e5m2")
      d = DType::kFP8E5M2;
    else if (*dt == "f8e3m4")
      d = DType::kFP8E3M4;
    if (!d) {
      error(
          fmt::format("unknown dtype '{}': use f32, bf16, f16, f8e4m3, f8e5m2, f8e3m4, i32, i16, "
                      "i8, u32, u16 or u8",
                      *dt));
      return std::nullopt;
    }
    TensorType t{*d, {}};
    if (!expect('[')) return std::nullopt;
    if (!peek(']')) {
      do {
        auto v = integer();
        if (!v) return std::nullopt;
        if (*v < 0) {
          error(fmt::format("dimension {} is negative", *v));
          return std::nullopt;
        }
        t.shape.push_back(*v);
      } while (accept(','));
    }
    if (!expect(']')) return std::nullopt;
    // Element counts must stay far from int64 overflow (2^48 elements is 1 PiB of fp32).
    constexpr int64_t kMaxElements = int64_t(1) << 48;
    int64_t n = 1;
    for (int64_t dim : t.shape) {
      if (dim != 0 && n > kMaxElements / dim) {
        error(fmt::format("type {} has more than 2^48 elements", typeString(t)));
        return std::nullopt;
      }
      n *= dim;
    }
    return t;
  }
  std::optional<uint32_t> valueDecl(Graph& g, bool graphInput) {
    auto name = valueName();
    if (!name || !expect(':')) return std::nullopt;
    auto t = type();
    if (!t) return std::nullopt;
    ValueKind kind = ValueKind::kNode;
    if (graphInput) {
      auto k = identifier();
      if (k == "input")
        kind = ValueKind::kInput;
      else if (k == "param")
        kind = ValueKind::kParam;
      else {
        error("a graph input is 'input' or 'param' after its type");
        return std::nullopt;
      }
    }
    auto id = g.addValue(*name, *t, kind);
    if (!id) {
      error(id.status().message());
      return std::nullopt;
    }
    return *id;
  }
  std::optional<uint32_t> useValue(const Graph& g) {
    auto name = valueName();
    if (!name) return std::nullopt;
    int64_t id = g.find(*name);
    if (id < 0) {
      error(fmt::format("value %{} is used before it is defined", *name));
      return std::nullopt;
    }
    return uint32_t(id);
  }
  std::optional<std::string> stringLiteral() {
    if (!expect('"')) return std::nullopt;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\n') break;
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size() || s_[pos_] != '"') {
      error("unterminated string");
      return std::nullopt;
    }
    ++pos_;
    return out;
  }
  std::optional<Attr> attrValue() {
    skipSpace();
    if (peek('"')) {
      auto s = stringLiteral();
      if (!s) return std::nullopt;
      return Attr{*s};
    }
    if (accept('[')) {
      std::vector<int64_t> v;
      if (!peek(']')) {
        do {
          auto i = integer();
          if (!i) return std::nullopt;
          v.push_back(*i);
        } while (accept(','));
      }
      if (!expect(']')) return std::nullopt;
      return Attr{v};
    }
    size_t b = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '.'))
      ++pos_;
    std::string tok(s_.substr(b, pos_ - b));
    if (tok == "inf") return Attr{std::numeric_limits<double>::infinity()};
    if (tok == "-inf") return Attr{-std::numeric_limits<double>::infinity()};
    if (tok == "nan") return Attr{std::numeric_limits<double>::quiet_NaN()};
    if (tok.empty()) {
      error("expected an attribute value (integer, float, [list] or \"string\")");
      return std::nullopt;
    }
    const bool isFloat = tok.find_first_of(".eE") != std::string::npos;
    if (!isFloat) {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
      if (ec == std::errc() && p == tok.data() + tok.size()) return Attr{v};
    } else {
      double d = 0;
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), d);
      if (ec == std::errc() && p == tok.data() + tok.size()) return Attr{d};
    }
    pos_ = b;
    error(fmt::format("bad attribute value '{}'", tok));
    return std::nullopt;
  }
  bool node(Graph& g, Node& n) {
    // Outputs first: they are declared only once the inputs are parsed (a node cannot read
    // its own result), so collect names and types, then define them.
    std::vector<std::pair<std::string, TensorType>> outs;
    do {
      auto name = valueName();
      if (!name || !expect(':')) return false;
      auto t = type();
      if (!t) return false;
      outs.emplace_back(*name, *t);
    } while (accept(','));
    if (!expect('=')) return false;
    auto op = identifier();
    if (!op) {
      error("expected an op name after '='");
      return false;
    }
    n.op = *op;
    if (!expect('(')) return false;
    if (!peek(')')) {
      do {
        auto v = useValue(g);
        if (!v) return false;
        n.inputs.push_back(*v);
      } while (accept(','));
    }
    if (!expect(')')) return false;
    // Attributes `{k=v, ...}`: a '{' followed by an identifier and '='; a body starts with '%'.
    if (peek('{')) {
      size_t save = pos_, saveLine = line_, saveStart = lineStart_;
      ++pos_;
      if (!peek('%') && !peek('}')) {
        do {
          auto key = identifier();
          if (!key) {
            error("expected an attribute name");
            return false;
          }
          if (!expect('=')) return false;
          auto v = attrValue();
          if (!v) return false;
          if (n.attrs.count(*key)) {
            error(fmt::format("attribute '{}' is given twice", *key));
            return false;
          }
          n.attrs.emplace(*key, std::move(*v));
        } while (accept(','));
        if (!expect('}')) return false;
      } else {
        pos_ = save;
        line_ = saveLine;
        lineStart_ = saveStart;
      }
    }
    if (peek('@')) {
      ++pos_;
      auto loc = stringLiteral();
      if (!loc) return false;
      n.loc = *loc;
    }
    const bool hasBody = peek('{');
    if (hasBody) {
      ++pos_;
      while (!peek('}')) {
        if (pos_ >= s_.size()) {
          error("unterminated node body: expected '}'");
          return false;
        }
        Node b;
        if (!node(g, b)) return false;
        n.body.push_back(std::move(b));
      }
      ++pos_;
    }
    for (auto& [name, t] : outs) {
      // A fused node's outputs are defined by its body; the outer line repeats them.
      int64_t existing = g.find(name);
      if (hasBody && existing >= 0) {
        if (!(g.values[size_t(existing)].type == t)) {
          error(fmt::format("%{}: the fused node gives type {} but its body defines {}", name,
                            typeString(t), typeString(g.values[size_t(existing)].type)));
          return false;
        }
        n.outputs.push_back(uint32_t(existing));
        continue;
      }
      auto id = g.addValue(name, t, ValueKind::kNode);
      if (!id) {
        error(id.status().message());
        return false;
      }
      n.outputs.push_back(*id);
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0, line_ = 1, lineStart_ = 0;
  Status status_;
};

}  // namespace

std::string printGraph(const Graph& g) {
  std::vector<std::string> ins;
  for (uint32_t v : g.inputs)
    ins.push_back(fmt::format("%{}: {} {}", g.values[v].name, typeString(g.values[v].type),
                              kindName(g.values[v].kind)));
  std::string out = fmt::format("graph {}({}) {{\n", g.name, fmt::join(ins, ", "));
  for (const Node& n : g.nodes) printNode(g, n, 2, out);
  std::vector<std::string> outs;
  for (uint32_t v : g.outputs) outs.push_back("%" + g.values[v].name);
  out += outs.empty() ? "  return\n" : fmt::format("  return {}\n", fmt::join(outs, ", "));
  return out + "}\n";
}

Expected<Graph> parseGraph(std::string_view text) { return Parser(text).parse(); }

}  // namespace trnsim::compiler
