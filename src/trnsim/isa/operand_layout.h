#pragma once
// Where an operand's elements lie in bytes of its memory: an access pattern over a tensor,
// resolved against one core's SBUF or PSUM (partition-major rows) or the chip's flat HBM.
// The verifier's operand-overlap rule and the functional interpreter's gathers and scatters
// walk operands through this one description (docs/sim.md, "Functional execution").

#include <array>
#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::isa {

/// Bytes of one partition row of on-chip memory `space`: SBUF's sbufBytesPerPartition, PSUM's
/// banks x bank bytes (HBM has no rows: PSUM's value, unused).
inline uint64_t partitionRowBytes(const arch::ChipConfig& chip, MemSpace space) {
  return space == MemSpace::kSbuf ? chip.mem.sbufBytesPerPartition : chip.psumBytesPerPartition();
}

/// An operand's elements as byte offsets: P rows (partitions) `rowStride` apart, each a loop
/// nest of four dims (the pattern's free dims, innermost last, padded with count 1 in front).
struct OperandLayout {
  MemSpace space = MemSpace::kSbuf;
  int64_t esize = 4;      ///< bytes per element
  int64_t base = 0;       ///< byte offset of element (0, 0, ...)
  int64_t rowStride = 0;  ///< bytes between consecutive partitions (rows)
  uint32_t P = 0;
  int nd = 0;                                  ///< free dims as given in the access pattern
  std::array<int64_t, 4> apCount{1, 1, 1, 1};  ///< the access pattern's free counts
  // Normalised loop nest: 4 dims, the innermost last (padded with count 1 at the front).
  std::array<int64_t, 4> count{1, 1, 1, 1};
  std::array<int64_t, 4> stride{0, 0, 0, 0};  ///< bytes
  int64_t F = 1;
  // Bounding box: rows [row0, row0 + P) and bytes [lo, hi) inside a row (on-chip), or one row
  // of flat bytes (HBM).
  bool onChip = false;
  int64_t row0 = 0;
  int64_t lo = 0, hi = 0;

  int64_t numElements() const { return int64_t(P) * F; }
};

/// The layout of `ap` over tensor `d`; `rowBytes` is partitionRowBytes of d's space (unused
/// for HBM). Free counts must not be negative (the verifier refuses them; the interpreter
/// checks before it asks). Nothing here checks bounds.
OperandLayout operandLayout(const TensorDecl& d, const AccessPattern& ap, int64_t rowBytes);

/// Calls fn(elementIndex, byteOffset, runLength, runStrideBytes) for each innermost run of
/// `v`, in row-major order. fn returns false to stop.
template <class Fn>
void forEachRun(const OperandLayout& v, Fn&& fn) {
  int64_t idx = 0;
  const int64_t n = v.count[3];
  const int64_t s = v.stride[3];
  for (uint32_t p = 0; p < v.P; ++p) {
    const int64_t rowBase = v.base + int64_t(p) * v.rowStride;
    for (int64_t a = 0; a < v.count[0]; ++a)
      for (int64_t b = 0; b < v.count[1]; ++b)
        for (int64_t c = 0; c < v.count[2]; ++c) {
          const int64_t off = rowBase + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
          if (!fn(idx, off, n, s)) return;
          idx += n;
        }
  }
}

/// Which read operands are paired element by element with dst (slot 0), so that an identical
/// in-place operand is well defined. Bit i = slot i.
uint32_t elementwiseSlots(const Instruction& in);

/// The operand-overlap rule for instruction `index` of `program` (which must have passed
/// verifyInstruction: its patterns lie inside their tensors): no operand it writes may share
/// a byte with an operand it reads, except an identical, element-for-element in-place operand
/// of an elementwise instruction. kVerify naming both operands and the instruction, or ok.
Status checkOperandOverlap(const Program& program, size_t index, const arch::ChipConfig& chip);

}  // namespace trnsim::isa
