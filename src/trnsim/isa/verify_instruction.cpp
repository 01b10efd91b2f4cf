// InstructionChecker, part 1: an instruction's structure (opcode, engine, operand slots),
// each access pattern against its tensor, memory spaces, and the shape helpers the opcode rules
// (verify_rules.cpp) use.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "trnsim/isa/names.h"
#include "trnsim/isa/operand_layout.h"
#include "trnsim/isa/verify_checker.h"

namespace trnsim::isa::detail {

void InstructionChecker::run() {
  if (!checkStructure()) return;
  for (const Operand& o : inst_.operands) checkAccessPattern(o.slot, o.ap);
  checkSpaces();
  checkShapes();
}

bool InstructionChecker::checkStructure() {
  if (!validOpcode(inst_.opcode)) {
    fail(ErrorCode::kVerify,
         fmt::format("opcode value {} is not an opcode: valid values are 0-{}",
                     static_cast<int>(inst_.opcode), kNumOpcodes - 1));
    return false;
  }
  info_ = &opInfo(inst_.opcode);
  bool ok = true;
  if (!validEngine(inst_.engine)) {
    fail(ErrorCode::kVerify, fmt::format("engine value {} is not an engine; {} runs on {}",
                                         static_cast<int>(inst_.engine), info_->name,
                                         engineList(info_->engineMask)));
    ok = false;
  } else if ((info_->engineMask & (1u << static_cast<unsigned>(inst_.engine))) == 0) {
    fail(ErrorCode::kVerify,
         fmt::format("engine {} cannot run {}: use one of {}", arch::engineName(inst_.engine),
                     info_->name, engineList(info_->engineMask)));
  }
  // Enum fields: in range, and left at their defaults when the opcode does not use them.
  auto aluField = [&](AluOp v, bool used, std::string_view field) {
    if (!validAluOp(v)) {
      fail(ErrorCode::kVerify, fmt::format("{} value {} is not an ALU operation (0-{})", field,
                                           static_cast<int>(v),
                                           static_cast<int>(AluOp::kCount) - 1));
    } else if (!used && v != AluOp::kBypass) {
      fail(ErrorCode::kVerify, fmt::format("{} = {} is set but {} has no {}: leave it bypass",
                                           field, aluOpName(v), info_->name, field));
    }
  };
  aluField(inst_.alu0, info_->usesAlu0, "op0");
  aluField(inst_.alu1, info_->usesAlu1, "op1");
  aluField(inst_.reduceOp, info_->usesReduce, "reduce_op");
  if (!validActFunc(inst_.act)) {
    fail(ErrorCode::kVerify,
         fmt::format("func value {} is not an activation function (0-{})",
                     static_cast<int>(inst_.act), static_cast<int>(ActFunc::kCount) - 1));
  } else if (!info_->usesAct && inst_.act != ActFunc::kIdentity) {
    fail(ErrorCode::kVerify, fmt::format("func = {} is set but {} applies no activation function: "
                                         "leave it identity",
                                         actFuncName(inst_.act), info_->name));
  }
  if (uint16_t bad = static_cast<uint16_t>(inst_.flags & ~info_->flagMask); bad != 0) {
    fail(ErrorCode::kVerify,
         fmt::format("flags {} are not accepted by {} (it accepts: {})", flagsToString(bad),
                     info_->name, flagsToString(info_->flagMask)));
  }
  if (inst_.loc >= program_.locations.size()) {
    fail(ErrorCode::kVerify, fmt::format("source location index {} is out of range: the program "
                                         "has {} locations",
                                         inst_.loc, program_.locations.size()));
  }
  if (inst_.opcode == Opcode::kDmaCopy || inst_.opcode == Opcode::kDmaTranspose) {
    uint64_t queues = uint64_t(chip_.dma.enginesPerCore) * chip_.dma.queuesPerEngine;
    if (queues > 0 && inst_.queue >= queues) {
      fail(ErrorCode::kVerify,
           fmt::format("DMA queue {} does not exist: {} has {} DMA queues per core (0-{})",
                       inst_.queue, chip_.name, queues, queues - 1));
    }
  }
  // Operand slots: known, in increasing order, every required one present.
  int lastSlot = -1;
  for (const Operand& o : inst_.operands) {
    if (o.slot >= info_->numOperands) {
      fail(ErrorCode::kVerify, fmt::format("operand slot {} does not exist: {} has {} slots", o.slot,
                                           info_->name, info_->numOperands));
      ok = false;
      continue;
    }
    if (static_cast<int>(o.slot) <= lastSlot) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: operand given twice or out of slot order: list operands once, in "
                       "slot order",
                       slotName(o.slot)));
      ok = false;
    }
    lastSlot = std::max(lastSlot, static_cast<int>(o.slot));
    present_[o.slot] = true;
  }
  for (int s = 0; s < info_->numOperands; ++s) {
    if (!present_[static_cast<size_t>(s)] && !info_->operands[static_cast<size_t>(s)].optional) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: required operand is missing: {} needs it", slotName(s), info_->name));
      ok = false;
    }
  }
  return ok;
}

void InstructionChecker::checkAccessPattern(int slot, const AccessPattern& ap) {
  std::string_view name = slotName(slot);
  ApFacts& f = facts_[static_cast<size_t>(slot)];
  if (ap.tensor >= program_.tensors.size()) {
    fail(ErrorCode::kVerify, fmt::format("{}: tensor index {} does not exist (the program has {} "
                                         "tensors)",
                                         name, ap.tensor, program_.tensors.size()));
    return;
  }
  const TensorDecl& t = program_.tensors[ap.tensor];
  TensorFacts tf = tensorFacts(t);
  if (!tf.ok) {
    fail(ErrorCode::kVerify, fmt::format("{}: tensor {} has a malformed declaration: fix the "
                                         "tensor first",
                                         name, tensorLabel(program_, ap.tensor)));
    return;
  }
  if (ap.numFree > kMaxFreeDims) {
    fail(ErrorCode::kVerify, fmt::format("{}: {} free dims; an access pattern has at most {}", name,
                                         ap.numFree, kMaxFreeDims));
    return;
  }
  if (ap.partitions < 1) {
    fail(ErrorCode::kVerify, fmt::format("{}: partition count 0; an access needs at least one "
                                         "partition",
                                         name));
    return;
  }
  int64_t freeSize = 1;
  for (int k = 0; k < ap.numFree; ++k) {
    const Dim& d = ap.free[static_cast<size_t>(k)];
    if (d.count < 1) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: free dim {} has count {}; counts must be at least 1", name, k, d.count));
      return;
    }
    if (!mulChecked(freeSize, d.count, freeSize) || freeSize > kMaxElements) {
      fail(ErrorCode::kOutOfBounds, fmt::format("{}: the free size overflows; no tensor is that "
                                                "large",
                                                name));
      return;
    }
  }
  // Lowest and highest element index reached; strides may be negative.
  int64_t lo = ap.offset;
  int64_t hi = ap.offset;
  bool overflow = false;
  auto span = [&](int64_t stride, int64_t count) {
    int64_t reach = 0;
    if (!mulChecked(stride, count - 1, reach)) {
      overflow = true;
      return;
    }
    if (!addChecked(reach < 0 ? lo : hi, reach, reach < 0 ? lo : hi)) overflow = true;
  };
  for (int k = 0; k < ap.numFree; ++k) span(ap.free[size_t(k)].stride, ap.free[size_t(k)].count);
  if (t.onChip()) {
    if (ap.partitionStride != 1) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: partition stride {} on {}: on-chip accesses cover contiguous "
                       "partitions (stride 1)",
                       name, ap.partitionStride, memSpaceName(t.space)));
      return;
    }
    if (uint64_t(ap.partitionOffset) + ap.partitions > uint64_t(tf.partitions)) {
      fail(ErrorCode::kOutOfBounds,
           fmt::format("{}: partitions {}..{} are outside tensor {} with {} partitions", name,
                       ap.partitionOffset, uint64_t(ap.partitionOffset) + ap.partitions - 1,
                       tensorLabel(program_, ap.tensor), tf.partitions));
      return;
    }
  } else {
    if (ap.partitionOffset != 0) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: partition offset {} on an HBM tensor: HBM patterns put their start "
                       "in the element offset; set the partition offset to 0",
                       name, ap.partitionOffset));
      return;
    }
    span(ap.partitionStride, ap.partitions);
  }
  if (overflow) {
    fail(ErrorCode::kOutOfBounds,
         fmt::format("{}: the pattern's address arithmetic overflows: offset and strides are far "
                     "outside tensor {}",
                     name, tensorLabel(program_, ap.tensor)));
    return;
  }
  if (lo < 0 || hi >= tf.freeElements) {
    fail(ErrorCode::kOutOfBounds,
         fmt::format("{}: reaches {} index {}, outside tensor {} ({} elements{}): keep offset + "
                     "sum(stride * (count - 1)) inside the tensor",
                     name, t.onChip() ? "free" : "element", lo < 0 ? lo : hi,
                     tensorLabel(program_, ap.tensor), tf.freeElements,
                     t.onChip() ? " per partition" : ""));
    return;
  }
  f.partitions = ap.partitions;
  f.freeSize = freeSize;
  f.dtype = t.dtype;
  f.space = t.space;
  f.ok = true;

  bool engineOp = inst_.engine != Engine::kDma;
  if (t.onChip() && engineOp) {
    // Partition start rule of the compute engines (quadrants of 32 partitions).
    uint64_t start = uint64_t(t.partitionStart) + ap.partitionOffset;
    uint32_t p = ap.partitions;
    bool allowed = p > 2 * kQuadrant    ? start == 0
                   : p > kQuadrant      ? (start == 0 || start == 2 * kQuadrant)
                                        : (start % kQuadrant == 0 && start < 4 * kQuadrant);
    if (!allowed) {
      std::string_view rule =
          p > 2 * kQuadrant ? "an access of more than 64 partitions must start at partition 0"
          : p > kQuadrant   ? "a 33-64 partition access must start at partition 0 or 64"
                            : "an access of at most 32 partitions must start at partition 0, 32, "
                              "64 or 96";
      fail(ErrorCode::kVerify, fmt::format("{}: partition start {} is not allowed for {} "
                                           "partitions: {}",
                                           name, start, p, rule));
    }
    if (t.space == MemSpace::kPsum && chip_.mem.psumBankBytesPerPartition > 0) {
      uint64_t bank = chip_.mem.psumBankBytesPerPartition;
      uint64_t first = t.byteOffset + uint64_t(lo) * tf.elemBytes;
      uint64_t last = t.byteOffset + (uint64_t(hi) + 1) * tf.elemBytes - 1;
      if (first / bank != last / bank) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: PSUM bytes {}..{} of each partition straddle banks {} and {}: an "
                         "engine operand must stay inside one {}-byte PSUM bank",
                         name, first, last, first / bank, last / bank, bank));
      }
    }
  }
}

void InstructionChecker::checkSpaces() {
  bool dma = info_->engineMask == (1u << static_cast<unsigned>(Engine::kDma));
  for (int s = 0; s < info_->numOperands; ++s) {
    const ApFacts* f = facts(s);
    if (f == nullptr) continue;
    if (!dma && f->space == MemSpace::kHbm) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: {} reads and writes SBUF/PSUM only, but this operand is in HBM: move "
                       "the data on chip with dma_copy first",
                       slotName(s), info_->name));
    }
  }
  bool peOp = inst_.opcode == Opcode::kNcMatmul ||
              (inst_.opcode == Opcode::kNcTranspose && inst_.engine == Engine::kTensor);
  if (!peOp) return;
  for (int s = 0; s < info_->numOperands; ++s) {
    const ApFacts* f = facts(s);
    if (f == nullptr || f->space == MemSpace::kHbm) continue;
    bool isDst = s == 0;
    MemSpace want = isDst ? MemSpace::kPsum : MemSpace::kSbuf;
    if (f->space != want) {
      fail(ErrorCode::kVerify,
           fmt::format("{}: the Tensor Engine {} {}, but this operand is in {}", slotName(s),
                       isDst ? "writes its result to" : "reads its inputs from",
                       isDst ? "PSUM" : "SBUF", memSpaceName(f->space)));
    }
  }
}

void InstructionChecker::samePartitions(int slot, int refSlot) {
  const ApFacts* a = facts(slot);
  const ApFacts* r = facts(refSlot);
  if (a == nullptr || r == nullptr) return;
  if (a->partitions != r->partitions) {
    fail(ErrorCode::kVerify,
         fmt::format("{}: {} partitions, but {} has {}: {} operands work partition by partition "
                     "and must agree on P",
                     slotName(slot), a->partitions, slotName(refSlot), r->partitions, info_->name));
  }
}

void InstructionChecker::sameShape(int slot, int refSlot) {
  const ApFacts* a = facts(slot);
  const ApFacts* r = facts(refSlot);
  if (a == nullptr || r == nullptr) return;
  if (a->partitions != r->partitions || a->freeSize != r->freeSize) {
    fail(ErrorCode::kVerify,
         fmt::format("{}: shape [P={}, F={}] does not match {} [P={}, F={}]: elementwise "
                     "operands must agree on partitions and free size",
                     slotName(slot), a->partitions, a->freeSize, slotName(refSlot), r->partitions,
                     r->freeSize));
  }
}

void InstructionChecker::scalarTile(int slot, int refSlot) {
  const ApFacts* a = facts(slot);
  if (a == nullptr) return;
  if (a->freeSize != 1) {
    fail(ErrorCode::kVerify,
         fmt::format("{}: free size {}, but a per-partition scalar is a [P, 1] tile (free size 1)",
                     slotName(slot), a->freeSize));
  }
  samePartitions(slot, refSlot);
}

void InstructionChecker::freeEquals(int slot, int64_t want, std::string_view why) {
  const ApFacts* a = facts(slot);
  if (a == nullptr || a->freeSize == want) return;
  fail(ErrorCode::kVerify,
       fmt::format("{}: free size {}, expected {}: {}", slotName(slot), a->freeSize, want, why));
}

void InstructionChecker::indexDType(int slot) {
  const ApFacts* a = facts(slot);
  if (a == nullptr || isIndexType(a->dtype)) return;
  fail(ErrorCode::kVerify, fmt::format("{}: dtype {} cannot hold indices: use int32 or uint32",
                                       slotName(slot), numerics::dtypeName(a->dtype)));
}

void InstructionChecker::reduceResult(int reduceSlot) {
  bool present = present_[static_cast<size_t>(reduceSlot)];
  if (inst_.reduceOp != AluOp::kBypass && validAluOp(inst_.reduceOp)) {
    if (!isReduceOp(inst_.reduceOp)) {
      fail(ErrorCode::kVerify,
           fmt::format("reduce_op {} cannot reduce: use add, multiply, max, min, abs_max, abs_min "
                       "or a bitwise/logical and/or/xor",
                       aluOpName(inst_.reduceOp)));
    }
    if (!present) {
      fail(ErrorCode::kVerify, fmt::format("{}: reduce_op is {} but there is no {} operand to "
                                           "receive the reduction",
                                           slotName(reduceSlot), aluOpName(inst_.reduceOp),
                                           slotName(reduceSlot)));
    }
  } else if (present) {
    fail(ErrorCode::kVerify, fmt::format("{}: given, but reduce_op is bypass: set a reduce_op or "
                                         "drop the operand",
                                         slotName(reduceSlot)));
  }
  scalarTile(reduceSlot, 0);
}


}  // namespace trnsim::isa::detail
