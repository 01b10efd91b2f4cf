#include "trnsim/isa/text.h"

#include <fmt/format.h>

#include <bit>
#include <charconv>
#include <cmath>

#include "trnsim/isa/names.h"
#include "trnsim/isa/text_syntax.h"

// Printing the text form (docs/isa.md, "Text form"); the parser is text_parse.cpp:
// The text form, line by line (docs/isa.md, "Text form"):
//   program "name" target="trn2"
//   loc 1 "kernel.py":42
//   tensor %x sbuf bfloat16 [128, 512] at p0+0x0 kind=input alias=%base
//   nc_matmul.tensor dst=%acc[p0:128, +0, 512@1] stationary=... flags=accumulate loc=1
// Everything after '#' outside a string is a comment.

namespace trnsim::isa {
namespace {

using detail::isBareName;
using detail::quote;
using detail::readDecimalFloat;

std::string formatFloat(float v) {
  uint32_t bits = std::bit_cast<uint32_t>(v);
  if (std::isnan(v)) return fmt::format("nan:{:#010x}", bits);
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec == std::errc()) {
    std::string_view s(buf, static_cast<size_t>(ptr - buf));
    auto back = readDecimalFloat(s);
    if (back && std::bit_cast<uint32_t>(*back) == bits) return std::string(s);
  }
  return fmt::format("f32:{:#010x}", bits);  // exact even where decimal parsing is lossy
}

/// How a reference to tensor `t` is spelled: its name when that is unique, else its index.
std::string tensorRef(const Program& p, uint32_t t) {
  if (t < p.tensors.size()) {
    const std::string& name = p.tensors[t].name;
    bool unique = !name.empty();
    for (size_t i = 0; unique && i < p.tensors.size(); ++i)
      if (i != t && p.tensors[i].name == name) unique = false;
    if (unique) return "%" + (isBareName(name) ? name : quote(name));
  }
  return fmt::format("%#{}", t);
}

std::string tensorDeclName(const TensorDecl& t) {
  return "%" + (isBareName(t.name) ? t.name : quote(t.name));
}

std::string printAp(const Program& p, const AccessPattern& ap) {
  std::string s = tensorRef(p, ap.tensor);
  s += fmt::format("[p{}:{}", ap.partitionOffset, uint64_t(ap.partitionOffset) + ap.partitions);
  if (ap.partitionStride != 1) s += fmt::format("@{}", ap.partitionStride);
  s += fmt::format(", {}{}", ap.offset < 0 ? "" : "+", ap.offset);
  int n = std::min<int>(ap.numFree, kMaxFreeDims);
  for (int k = 0; k < n; ++k)
    s += fmt::format(", {}@{}", ap.free[size_t(k)].count, ap.free[size_t(k)].stride);
  s += ']';
  return s;
}

std::string printInst(const Program& p, const Instruction& in) {
  std::string s;
  if (!validOpcode(in.opcode)) return fmt::format("opcode{}", static_cast<int>(in.opcode));
  const OpInfo& info = opInfo(in.opcode);
  s += info.name;
  s += '.';
  s += validEngine(in.engine) ? std::string(arch::engineName(in.engine))
                              : fmt::format("engine{}", static_cast<int>(in.engine));
  for (const Operand& o : in.operands) {
    if (o.slot < info.numOperands) s += fmt::format(" {}=", info.operands[o.slot].name);
    else s += fmt::format(" slot{}=", o.slot);
    s += printAp(p, o.ap);
  }
  auto alu = [](AluOp op) {
    return validAluOp(op) ? std::string(aluOpName(op)) : fmt::format("{}", static_cast<int>(op));
  };
  if (info.usesAct || in.act != ActFunc::kIdentity)
    s += " func=" + (validActFunc(in.act) ? std::string(actFuncName(in.act))
                                          : fmt::format("{}", static_cast<int>(in.act)));
  if (info.usesAlu0 || in.alu0 != AluOp::kBypass) s += " op0=" + alu(in.alu0);
  if (info.usesAlu1 || in.alu1 != AluOp::kBypass) s += " op1=" + alu(in.alu1);
  if (info.usesReduce || in.reduceOp != AluOp::kBypass) s += " reduce_op=" + alu(in.reduceOp);
  for (size_t i = 0; i < in.imm.size(); ++i) {
    bool named = !info.immNames[i].empty();
    if (!named && std::bit_cast<uint32_t>(in.imm[i]) == 0) continue;
    s += fmt::format(" {}={}", named ? std::string(info.immNames[i]) : fmt::format("imm{}", i),
                     formatFloat(in.imm[i]));
  }
  for (size_t i = 0; i < in.iarg.size(); ++i) {
    bool named = !info.intNames[i].empty();
    if (!named && in.iarg[i] == 0) continue;
    s += fmt::format(" {}={}", named ? std::string(info.intNames[i]) : fmt::format("iarg{}", i),
                     in.iarg[i]);
  }
  if (in.flags != 0) s += " flags=" + flagsToString(in.flags);
  if (in.queue != 0 || in.engine == Engine::kDma) s += fmt::format(" queue={}", in.queue);
  if (in.loc != 0) s += fmt::format(" loc={}", in.loc);
  return s;
}

bool printableForComment(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

std::string printAccessPattern(const Program& program, const AccessPattern& ap) {
  return printAp(program, ap);
}

std::string printInstruction(const Program& program, const Instruction& inst) {
  return printInst(program, inst);
}

std::string printProgram(const Program& program) {
  std::string out = "# trnsim program, text form 1 (docs/isa.md)\n";
  out += fmt::format("program {} target={}\n", quote(program.name), quote(program.target));
  for (size_t i = 0; i < program.locations.size(); ++i) {
    const SourceLocation& l = program.locations[i];
    if (i == 0 && l == SourceLocation{}) continue;
    out += fmt::format("loc {} {}:{}\n", i, quote(l.file), l.line);
  }
  for (const TensorDecl& t : program.tensors) {
    out += fmt::format("tensor {} {} {} [", tensorDeclName(t),
                       validMemSpace(t.space) ? memSpaceName(t.space) : "?",
                       validDType(t.dtype) ? numerics::dtypeName(t.dtype) : "?");
    for (size_t i = 0; i < t.shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", t.shape[i]);
    out += "] at ";
    if (t.onChip() || t.partitionStart != 0) out += fmt::format("p{}+", t.partitionStart);
    out += fmt::format("{:#x}", t.byteOffset);
    if (t.kind != TensorKind::kInternal)
      out += fmt::format(" kind={}", validTensorKind(t.kind) ? tensorKindName(t.kind) : "?");
    if (t.aliasOf != kNoTensor) out += " alias=" + tensorRef(program, t.aliasOf);
    out += '\n';
  }
  for (size_t i = 0; i < program.replicaGroups.size(); ++i) {
    out += fmt::format("replica_group {} [", i);
    const auto& lists = program.replicaGroups[i].lists;
    for (size_t l = 0; l < lists.size(); ++l)
      out += fmt::format("{}[{}]", l ? ", " : "", fmt::join(lists[l], ", "));
    out += "]\n";
  }
  for (const Instruction& in : program.instructions) {
    out += printInst(program, in);
    if (in.loc != 0 && in.loc < program.locations.size()) {
      const SourceLocation& l = program.locations[in.loc];
      if (!l.file.empty() && printableForComment(l.file))
        out += fmt::format("  # {}:{}", l.file, l.line);
    }
    out += '\n';
  }
  return out;
}

}  // namespace trnsim::isa
