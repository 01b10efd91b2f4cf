#include "trnsim/isa/binary.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "trnsim/isa/names.h"
#include "trnsim/isa/text.h"
#include "trnsim/support/bytes.h"
#include "trnsim/support/hash.h"

// Layout (all integers little-endian; docs/isa.md, "Binary format"):
//   header (32 bytes): magic "TRNSIMPG", u32 version, u32 reserved (0), u64 payload bytes,
//                      u64 FNV-1a 64 checksum of the payload
//   payload: sections, each u32 tag, u64 length, then `length` bytes:
//     'META' name, target          'LOCS' u32 count, count x (string file, u32 line)
//     'TENS' u32 count, tensors    'INST' u32 count, instructions
//     'RGRP' (version 2) u32 groups, each u32 lists, each u32 ranks + ranks x u32
//   strings are u32 length + bytes. Sections come in this order; unknown tags after them are
//   skipped (room for later versions), anything else is an error.

namespace trnsim::isa {
namespace {

constexpr char kMagic[8] = {'T', 'R', 'N', 'S', 'I', 'M', 'P', 'G'};
constexpr size_t kHeaderBytes = 32;

constexpr uint32_t tag(char a, char b, char c, char d) {
  return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
         uint32_t(uint8_t(d)) << 24;
}
constexpr uint32_t kTagMeta = tag('M', 'E', 'T', 'A');
constexpr uint32_t kTagLocs = tag('L', 'O', 'C', 'S');
constexpr uint32_t kTagTens = tag('T', 'E', 'N', 'S');
constexpr uint32_t kTagInst = tag('I', 'N', 'S', 'T');
constexpr uint32_t kTagRgrp = tag('R', 'G', 'R', 'P');

// Smallest encodings, used to refuse counts the remaining bytes cannot hold.
constexpr size_t kMinLocBytes = 4 + 4;
constexpr size_t kMinTensorBytes = 4 + 4 + 4 + 4 + 8 + 4;
constexpr size_t kMinInstBytes = 8 + 2 + 4 + 16 + 32 + 1;
constexpr size_t kMinOperandBytes = 1 + 4 + 4 + 8 + 4 + 8 + 1;
constexpr size_t kDimBytes = 16;

using support::fnv1a64;

using support::ByteReader;
using support::ByteWriter;

/// Starts a section (u32 tag, u64 length); returns where its length goes.
size_t beginSection(ByteWriter& w, uint32_t t) {
  w.u32(t);
  const size_t at = w.size();
  w.u64(0);
  return at;
}

/// Writes the length of the section begun at `at`.
void endSection(ByteWriter& w, size_t at) { w.patchU64(at, w.size() - at - 8); }

void encodeAp(ByteWriter& w, const Operand& o) {
  const AccessPattern& ap = o.ap;
  w.u8(o.slot);
  w.u32(ap.tensor);
  w.u32(ap.partitionOffset);
  w.i64(ap.partitionStride);
  w.u32(ap.partitions);
  w.i64(ap.offset);
  uint8_t n = std::min<uint8_t>(ap.numFree, kMaxFreeDims);
  w.u8(n);
  for (uint8_t k = 0; k < n; ++k) {
    w.i64(ap.free[k].stride);
    w.i64(ap.free[k].count);
  }
}

void decodeTensors(ByteReader& r, Program& p) {
  uint32_t n = r.count("tensor count", kMinTensorBytes);
  p.tensors.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    TensorDecl t;
    t.name = r.str32("tensor name");
    size_t at = r.offset();
    uint8_t space = r.u8("memory space");
    uint8_t dtype = r.u8("dtype");
    uint8_t kind = r.u8("tensor kind");
    r.u8("reserved");
    if (r.ok() && space > static_cast<uint8_t>(MemSpace::kHbm))
      r.failAt(at, fmt::format("tensor {}: memory space {} is not sbuf/psum/hbm", i, space));
    if (r.ok() && dtype >= numerics::kNumDTypes)
      r.failAt(at + 1, fmt::format("tensor {}: dtype {} is not a dtype", i, dtype));
    if (r.ok() && kind > static_cast<uint8_t>(TensorKind::kInOut))
      r.failAt(at + 2, fmt::format("tensor {}: kind {} is not a tensor kind", i, kind));
    t.space = static_cast<MemSpace>(space);
    t.dtype = static_cast<DType>(dtype);
    t.kind = static_cast<TensorKind>(kind);
    uint32_t rank = r.count("tensor rank", 8);
    t.shape.reserve(rank);
    for (uint32_t d = 0; d < rank && r.ok(); ++d) t.shape.push_back(r.i64("shape dim"));
    t.partitionStart = r.u32("partition start");
    t.byteOffset = r.u64("byte offset");
    at = r.offset();
    t.aliasOf = r.u32("alias");
    if (r.ok() && t.aliasOf != kNoTensor && (t.aliasOf >= n || t.aliasOf == i))
      r.failAt(at, fmt::format("tensor {}: alias index {} is not another tensor", i, t.aliasOf));
    p.tensors.push_back(std::move(t));
  }
}

void decodeInstructions(ByteReader& r, Program& p) {
  uint32_t n = r.count("instruction count", kMinInstBytes);
  p.instructions.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    Instruction in;
    size_t at = r.offset();
    uint8_t op = r.u8("opcode");
    uint8_t engine = r.u8("engine");
    uint8_t alu0 = r.u8("op0");
    uint8_t alu1 = r.u8("op1");
    uint8_t reduce = r.u8("reduce_op");
    uint8_t act = r.u8("func");
    in.flags = r.u16("flags");
    if (!r.ok()) return;
    auto bad = [&](size_t off, std::string_view field, int value) {
      r.failAt(at + off,
               fmt::format("instruction {}: {} value {} is out of range", i, field, value));
    };
    if (op >= kNumOpcodes) return bad(0, "opcode", op);
    if (engine >= arch::kNumEngines) return bad(1, "engine", engine);
    if (alu0 >= static_cast<uint8_t>(AluOp::kCount)) return bad(2, "op0", alu0);
    if (alu1 >= static_cast<uint8_t>(AluOp::kCount)) return bad(3, "op1", alu1);
    if (reduce >= static_cast<uint8_t>(AluOp::kCount)) return bad(4, "reduce_op", reduce);
    if (act >= static_cast<uint8_t>(ActFunc::kCount)) return bad(5, "func", act);
    in.opcode = static_cast<Opcode>(op);
    in.engine = static_cast<Engine>(engine);
    in.alu0 = static_cast<AluOp>(alu0);
    in.alu1 = static_cast<AluOp>(alu1);
    in.reduceOp = static_cast<AluOp>(reduce);
    in.act = static_cast<ActFunc>(act);
    in.queue = r.u16("queue");
    size_t locAt = r.offset();
    in.loc = r.u32("location");
    if (r.ok() && in.loc >= p.locations.size())
      r.failAt(locAt, fmt::format("instruction {}: location {} is not in the location table ({} "
                                  "entries)",
                                  i, in.loc, p.locations.size()));
    for (float& v : in.imm) v = r.f32("imm");
    for (int64_t& v : in.iarg) v = r.i64("iarg");
    size_t opsAt = r.offset();
    uint8_t numOps = r.u8("operand count");
    if (!r.ok()) return;
    const OpInfo& info = opInfo(in.opcode);
    if (numOps > info.numOperands || size_t(numOps) * kMinOperandBytes > r.remaining()) {
      r.failAt(opsAt, fmt::format("instruction {}: {} operands, but {} has {} slots", i, numOps,
                                  info.name, info.numOperands));
      return;
    }
    for (uint8_t k = 0; k < numOps && r.ok(); ++k) {
      Operand o;
      size_t slotAt = r.offset();
      o.slot = r.u8("operand slot");
      if (r.ok() && (o.slot >= info.numOperands || (k > 0 && o.slot <= in.operands.back().slot))) {
        r.failAt(slotAt, fmt::format("instruction {}: operand slot {} is unknown or out of order",
                                     i, o.slot));
        return;
      }
      size_t tAt = r.offset();
      o.ap.tensor = r.u32("operand tensor");
      if (r.ok() && o.ap.tensor >= p.tensors.size()) {
        r.failAt(tAt, fmt::format("instruction {}: operand tensor {} does not exist ({} tensors)",
                                  i, o.ap.tensor, p.tensors.size()));
        return;
      }
      o.ap.partitionOffset = r.u32("partition offset");
      o.ap.partitionStride = r.i64("partition stride");
      o.ap.partitions = r.u32("partitions");
      o.ap.offset = r.i64("element offset");
      size_t nfAt = r.offset();
      uint8_t nf = r.u8("free dim count");
      if (r.ok() && (nf > kMaxFreeDims || size_t(nf) * kDimBytes > r.remaining())) {
        r.failAt(nfAt, fmt::format("instruction {}: {} free dims (at most {}, and {} bytes each)",
                                   i, nf, kMaxFreeDims, kDimBytes));
        return;
      }
      o.ap.numFree = nf;
      for (uint8_t d = 0; d < nf; ++d) {
        o.ap.free[d].stride = r.i64("free stride");
        o.ap.free[d].count = r.i64("free count");
      }
      in.operands.push_back(o);
    }
    p.instructions.push_back(std::move(in));
  }
}

}  // namespace

uint64_t payloadChecksum(std::span<const uint8_t> payload) {
  return fnv1a64(payload.data(), payload.size());
}

std::vector<uint8_t> encodeProgram(const Program& program) {
  ByteWriter w;
  for (char c : kMagic) w.u8(uint8_t(c));
  w.u32(kBinaryFormatVersion);
  w.u32(0);
  w.u64(0);  // payload length, patched below
  w.u64(0);  // checksum, patched below

  size_t s = beginSection(w, kTagMeta);
  w.str32(program.name);
  w.str32(program.target);
  endSection(w, s);

  s = beginSection(w, kTagLocs);
  w.u32(static_cast<uint32_t>(program.locations.size()));
  for (const SourceLocation& l : program.locations) {
    w.str32(l.file);
    w.u32(l.line);
  }
  endSection(w, s);

  s = beginSection(w, kTagTens);
  w.u32(static_cast<uint32_t>(program.tensors.size()));
  for (const TensorDecl& t : program.tensors) {
    w.str32(t.name);
    w.u8(static_cast<uint8_t>(t.space));
    w.u8(static_cast<uint8_t>(t.dtype));
    w.u8(static_cast<uint8_t>(t.kind));
    w.u8(0);
    w.u32(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) w.i64(d);
    w.u32(t.partitionStart);
    w.u64(t.byteOffset);
    w.u32(t.aliasOf);
  }
  endSection(w, s);

  s = beginSection(w, kTagInst);
  w.u32(static_cast<uint32_t>(program.instructions.size()));
  for (const Instruction& in : program.instructions) {
    w.u8(static_cast<uint8_t>(in.opcode));
    w.u8(static_cast<uint8_t>(in.engine));
    w.u8(static_cast<uint8_t>(in.alu0));
    w.u8(static_cast<uint8_t>(in.alu1));
    w.u8(static_cast<uint8_t>(in.reduceOp));
    w.u8(static_cast<uint8_t>(in.act));
    w.u16(in.flags);
    w.u16(in.queue);
    w.u32(in.loc);
    for (float v : in.imm) w.f32(v);
    for (int64_t v : in.iarg) w.i64(v);
    w.u8(static_cast<uint8_t>(in.operands.size()));
    for (const Operand& o : in.operands) encodeAp(w, o);
  }
  endSection(w, s);

  s = beginSection(w, kTagRgrp);
  w.u32(static_cast<uint32_t>(program.replicaGroups.size()));
  for (const ReplicaGroup& g : program.replicaGroups) {
    w.u32(static_cast<uint32_t>(g.lists.size()));
    for (const auto& list : g.lists) {
      w.u32(static_cast<uint32_t>(list.size()));
      for (uint32_t r : list) w.u32(r);
    }
  }
  endSection(w, s);

  const uint64_t payload = w.size() - kHeaderBytes;
  w.patchU64(16, payload);
  w.patchU64(24, fnv1a64(w.bytes().subspan(kHeaderBytes)));
  return w.take();
}

Expected<Program> decodeProgram(std::span<const uint8_t> bytes, const std::string& origin) {
  ByteReader h(bytes, origin);
  if (bytes.size() < kHeaderBytes) {
    return Status(ErrorCode::kCorrupt,
                  fmt::format("{} bytes is shorter than the {}-byte header at byte 0", bytes.size(),
                              kHeaderBytes),
                  origin);
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status(ErrorCode::kCorrupt,
                  "bad magic at byte 0: not a trnsim binary program (expected \"TRNSIMPG\")",
                  origin);
  }
  h.sub(8);
  uint32_t version = h.u32("version");
  if (version < kOldestBinaryFormatVersion || version > kBinaryFormatVersion) {
    return Status(
        ErrorCode::kCorrupt,
        fmt::format(
            "format version {} at byte 8: this trnsim reads versions {} to {}{}", version,
            kOldestBinaryFormatVersion, kBinaryFormatVersion,
            version > kBinaryFormatVersion ? " (the file comes from a newer trnsim: upgrade)" : ""),
        origin);
  }
  uint32_t reserved = h.u32("reserved");
  if (reserved != 0) {
    return Status(ErrorCode::kCorrupt,
                  fmt::format("reserved header field is {:#x} at byte 12 (must be 0)", reserved),
                  origin);
  }
  uint64_t payload = h.u64("payload length");
  uint64_t sum = h.u64("checksum");
  if (payload != bytes.size() - kHeaderBytes) {
    return Status(ErrorCode::kCorrupt,
                  fmt::format("payload length {} at byte 16, but the file has {} bytes after the "
                              "header (truncated or padded)",
                              payload, bytes.size() - kHeaderBytes),
                  origin);
  }
  uint64_t actual = fnv1a64(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes);
  if (actual != sum) {
    return Status(ErrorCode::kCorrupt,
                  fmt::format("checksum mismatch at byte 24: header says {:#018x}, payload hashes "
                              "to {:#018x}",
                              sum, actual),
                  origin);
  }

  Program p;
  p.locations.clear();
  ByteReader r(bytes.subspan(kHeaderBytes), origin, kHeaderBytes);
  const uint32_t order[] = {kTagMeta, kTagLocs, kTagTens, kTagInst, kTagRgrp};
  const char* names[] = {"META", "LOCS", "TENS", "INST", "RGRP"};
  const int sections = version >= 2 ? 5 : 4;
  for (int sec = 0; sec < sections && r.ok(); ++sec) {
    size_t at = r.offset();
    uint32_t t = r.u32("section tag");
    uint64_t len = r.u64("section length");
    if (!r.ok()) break;
    if (t != order[sec]) {
      r.failAt(
          at, fmt::format("expected section {} (section {} of {})", names[sec], sec + 1, sections));
      break;
    }
    if (len > r.remaining()) {
      r.failAt(at + 4, fmt::format("section {} claims {} bytes but only {} remain", names[sec], len,
                                   r.remaining()));
      break;
    }
    ByteReader s = r.sub(size_t(len));
    switch (sec) {
      case 0:
        p.name = s.str32("program name");
        p.target = s.str32("target");
        break;
      case 1: {
        uint32_t n = s.count("location count", kMinLocBytes);
        if (s.ok() && n == 0) s.fail("the location table is empty (entry 0 must exist)");
        p.locations.reserve(n);
        for (uint32_t i = 0; i < n && s.ok(); ++i) {
          SourceLocation l;
          l.file = s.str32("location file");
          l.line = s.u32("location line");
          p.locations.push_back(std::move(l));
        }
        break;
      }
      case 2:
        decodeTensors(s, p);
        break;
      case 3:
        decodeInstructions(s, p);
        break;
      case 4: {
        uint32_t n = s.count("replica group count", 4);
        p.replicaGroups.reserve(n);
        for (uint32_t g = 0; g < n && s.ok(); ++g) {
          ReplicaGroup group;
          uint32_t lists = s.count("rank-list count", 4);
          group.lists.reserve(lists);
          for (uint32_t l = 0; l < lists && s.ok(); ++l) {
            uint32_t ranks = s.count("rank count", 4);
            std::vector<uint32_t> list;
            list.reserve(ranks);
            for (uint32_t k = 0; k < ranks && s.ok(); ++k) list.push_back(s.u32("rank"));
            group.lists.push_back(std::move(list));
          }
          p.replicaGroups.push_back(std::move(group));
        }
        break;
      }
    }
    if (!s.ok()) return s.error();
    if (s.remaining() != 0) {
      return Status(ErrorCode::kCorrupt,
                    fmt::format("{} unread bytes at the end of section {} at byte {}",
                                s.remaining(), names[sec], s.offset()),
                    origin);
    }
  }
  // Later versions may append sections; this one skips them.
  while (r.ok() && r.remaining() > 0) {
    r.u32("section tag");
    uint64_t len = r.u64("section length");
    if (!r.ok()) break;
    if (len > r.remaining()) {
      r.fail(fmt::format("section claims {} bytes but only {} remain", len, r.remaining()));
      break;
    }
    r.sub(size_t(len));
  }
  if (!r.ok()) return r.error();
  return p;
}

Expected<Program> loadProgramFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status(ErrorCode::kIo,
                  "is a directory; give a program file (the text form, .tsim, or a binary)", path);
  }
  std::vector<uint8_t> bytes;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status(ErrorCode::kIo, "cannot open the program file for reading", path);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return Status(ErrorCode::kIo, "error while reading the program file", path);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kIo, std::string("cannot read the program file: ") + e.what(), path);
  }
  Expected<Program> program =
      bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0
          ? decodeProgram(bytes, path)
          : parseProgram(
                std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
  if (program && program->instructions.empty()) {
    return Status(ErrorCode::kParse,
                  bytes.empty() ? "the program file is empty: nothing to run"
                                : "the program has no instructions (only declarations or "
                                  "comments): nothing to run",
                  path);
  }
  return program;
}

Status saveProgramFile(const Program& program, const std::string& path) {
  auto endsWith = [&](std::string_view suffix) {
    return path.size() >= suffix.size() &&
           std::string_view(path).substr(path.size() - suffix.size()) == suffix;
  };
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status(ErrorCode::kIo, "cannot open the program file for writing", path);
  if (endsWith(".tsim") || endsWith(".txt")) {
    std::string text = printProgram(program);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  } else {
    std::vector<uint8_t> bytes = encodeProgram(program);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  out.close();
  if (!out) return Status(ErrorCode::kIo, "error while writing the program file", path);
  return Status::ok();
}

}  // namespace trnsim::isa
