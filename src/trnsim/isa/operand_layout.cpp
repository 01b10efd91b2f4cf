// Operand byte layouts, and the verifier's operand-overlap rule that is written on them.

#include "trnsim/isa/operand_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <utility>
#include <vector>

namespace trnsim::isa {

namespace {

/// a * b wrapping like two's complement: the product where it fits. Where it does not, the
/// factor is a stride of a dim with count 1 (any stride is valid there, and never used).
int64_t wrappingProduct(int64_t a, int64_t b) { return int64_t(uint64_t(a) * uint64_t(b)); }

}  // namespace

OperandLayout operandLayout(const TensorDecl& d, const AccessPattern& ap, int64_t rowBytes) {
  OperandLayout v;
  v.space = d.space;
  v.esize = int64_t(numerics::dtypeSize(d.dtype));
  v.P = ap.partitions;
  v.nd = std::min<int>(ap.numFree, kMaxFreeDims);
  v.onChip = d.onChip();
  v.F = 1;
  for (size_t k = 0; k < size_t(v.nd); ++k) {
    const size_t inner = 4 - size_t(v.nd) + k;  // its place in the normalised nest
    v.apCount[k] = ap.free[k].count;
    v.count[inner] = ap.free[k].count;
    v.stride[inner] = wrappingProduct(ap.free[k].stride, v.esize);
    v.F *= ap.free[k].count;
  }
  if (v.nd == 0) v.stride[3] = v.esize;
  // Byte extent of one row relative to the element (p, 0...).
  int64_t lo = 0, hi = 0;
  for (size_t k = 0; k < 4; ++k) {
    if (v.count[k] <= 0) continue;
    const int64_t span = (v.count[k] - 1) * v.stride[k];
    lo += std::min<int64_t>(span, 0);
    hi += std::max<int64_t>(span, 0);
  }
  if (v.onChip) {
    v.row0 = int64_t(d.partitionStart) + ap.partitionOffset;
    const int64_t start = int64_t(d.byteOffset) + ap.offset * v.esize;
    v.lo = start + lo;
    v.hi = start + hi + v.esize;
    v.base = v.row0 * rowBytes + start;
    v.rowStride = rowBytes;
  } else {
    v.row0 = 0;
    v.base = int64_t(d.byteOffset) + ap.offset * v.esize;
    v.rowStride = wrappingProduct(ap.partitionStride, v.esize);
    const int64_t pspan = v.P > 0 ? int64_t(v.P - 1) * v.rowStride : 0;
    v.lo = v.base + lo + std::min<int64_t>(pspan, 0);
    v.hi = v.base + hi + std::max<int64_t>(pspan, 0) + v.esize;
  }
  return v;
}

uint32_t elementwiseSlots(const Instruction& in) {
  constexpr uint32_t kSrc = 1u << 1;  // slot 1: data, src, on_true, ...
  switch (in.opcode) {
    case Opcode::kActivation:
    case Opcode::kTensorScalar:
    case Opcode::kTensorCopy:
    case Opcode::kAffineSelect:
    case Opcode::kRangeSelect:
    case Opcode::kReciprocal:
    case Opcode::kDropout:
    case Opcode::kNcMatchReplace8:
    case Opcode::kAllReduce:
    case Opcode::kCollectivePermute:
    case Opcode::kSendRecv:
      return kSrc;
    case Opcode::kTensorTensor:
    case Opcode::kTensorCopyPredicated:
    case Opcode::kTensorTensorScan:
    case Opcode::kSelectReduce:
      return kSrc | (1u << 2);
    case Opcode::kScalarTensorTensor:
      return kSrc | (1u << 3);
    case Opcode::kDmaCopy:
      return (in.flags & (kFlagIndirectSrc | kFlagIndirectDst)) ? 0u : kSrc;
    default:
      return 0;
  }
}

namespace {

/// Same memory, and the same byte for every element (the dims that iterate compared).
bool sameLayout(const OperandLayout& a, const OperandLayout& b) {
  if (a.space != b.space || a.base != b.base || a.P != b.P || a.esize != b.esize || a.F != b.F)
    return false;
  if (a.P > 1 && a.rowStride != b.rowStride) return false;
  std::array<std::pair<int64_t, int64_t>, 4> da{}, db{};
  size_t na = 0, nb = 0;
  for (size_t k = 0; k < 4; ++k) {
    if (a.count[k] > 1) da[na++] = {a.count[k], a.stride[k]};
    if (b.count[k] > 1) db[nb++] = {b.count[k], b.stride[k]};
  }
  return na == nb && std::equal(da.begin(), da.begin() + na, db.begin());
}

/// True when some byte of `r` in [lo, hi) is also a byte of `w` (same memory, rows known to
/// intersect). On chip every row (partition) of an operand touches the same bytes of its
/// row, so one row of each is compared; HBM is one flat row. A byte map of what w touches.
bool bytesShared(OperandLayout w, OperandLayout r, int64_t lo, int64_t hi) {
  for (OperandLayout* v : {&w, &r}) {
    if (!v->onChip) continue;
    v->base -= v->row0 * v->rowStride;  // element (0, 0, ...)'s byte within its row
    v->P = 1;
  }
  std::vector<uint8_t> map(size_t(hi - lo), 0);
  auto mapIndex = [&](int64_t off) -> int64_t { return off >= lo && off < hi ? off - lo : -1; };
  forEachRun(w, [&](int64_t, int64_t off, int64_t n, int64_t s) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t b = 0; b < w.esize; ++b)
        if (int64_t i = mapIndex(off + j * s + b); i >= 0) map[size_t(i)] = 1;
    return true;
  });
  bool clash = false;
  forEachRun(r, [&](int64_t, int64_t off, int64_t n, int64_t s) {
    for (int64_t j = 0; j < n && !clash; ++j)
      for (int64_t b = 0; b < r.esize; ++b)
        if (int64_t i = mapIndex(off + j * s + b); i >= 0 && map[size_t(i)] != 0) {
          clash = true;
          break;
        }
    return !clash;
  });
  return clash;
}

}  // namespace

Status checkOperandOverlap(const Program& program, size_t index, const arch::ChipConfig& chip) {
  const Instruction& in = program.instructions[index];
  const OpInfo& info = opInfo(in.opcode);
  const uint32_t ew = elementwiseSlots(in);
  struct Entry {
    uint8_t slot = 0;
    OperandLayout v;
  };
  std::array<Entry, kMaxOperands> writes, reads;
  size_t numWrites = 0, numReads = 0;
  for (const Operand& op : in.operands) {
    if (op.slot >= info.numOperands || op.ap.tensor >= program.tensors.size()) continue;
    const Access acc = info.operands[op.slot].access;
    const TensorDecl& d = program.tensors[op.ap.tensor];
    const OperandLayout v = operandLayout(d, op.ap, int64_t(partitionRowBytes(chip, d.space)));
    if (v.numElements() == 0) continue;
    if ((acc == Access::kWrite || acc == Access::kReadWrite) && numWrites < writes.size())
      writes[numWrites++] = {op.slot, v};
    if (acc == Access::kRead && numReads < reads.size()) reads[numReads++] = {op.slot, v};
  }
  auto describe = [&](uint8_t slot) {
    const AccessPattern* ap = in.operand(slot);
    return fmt::format("operand '{}' (tensor '{}')", info.operands[slot].name,
                       program.tensors[ap->tensor].name);
  };
  for (size_t i = 0; i < numWrites; ++i) {
    const uint8_t ws = writes[i].slot;
    const OperandLayout& w = writes[i].v;
    for (size_t j = 0; j < numReads; ++j) {
      const uint8_t rs = reads[j].slot;
      const OperandLayout& r = reads[j].v;
      if (w.space != r.space) continue;
      const int64_t rowA0 = w.onChip ? w.row0 : 0, rowA1 = w.onChip ? w.row0 + w.P : 1;
      const int64_t rowB0 = r.onChip ? r.row0 : 0, rowB1 = r.onChip ? r.row0 + r.P : 1;
      const int64_t row0 = std::max(rowA0, rowB0), row1 = std::min(rowA1, rowB1);
      const int64_t lo = std::max(w.lo, r.lo), hi = std::min(w.hi, r.hi);
      if (row0 >= row1 || lo >= hi) continue;  // bounding boxes are disjoint
      if (ws == 0 && (ew & (1u << rs)) != 0 && sameLayout(w, r)) continue;  // in place
      if (!bytesShared(w, r, lo, hi)) continue;
      return {ErrorCode::kVerify,
              fmt::format("{} overlaps {}: the result would be undefined; write it to "
                          "memory the instruction does not read (only an identical, "
                          "element-for-element in-place operand is allowed, and only for "
                          "elementwise instructions)",
                          describe(ws), describe(rs)),
              program.instructionContext(index)};
    }
  }
  return {};
}

}  // namespace trnsim::isa
