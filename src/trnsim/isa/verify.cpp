#include "trnsim/isa/verify.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "trnsim/isa/names.h"
#include "trnsim/isa/operand_layout.h"

// The verifier never trusts its input: programs come from the builder, but also from files
// and fuzzers, so every index is range-checked and all address arithmetic is overflow-checked
// before anything else reads it.

namespace trnsim::isa {
namespace {

/// Tensors larger than this many elements are refused (2^48: far beyond any chip).
constexpr int64_t kMaxElements = int64_t(1) << 48;
/// The partition quadrant: partition accesses start at multiples of it.
constexpr uint32_t kQuadrant = 32;
/// bn_stats splits the free dim into chunks of at most this many elements (bn_stats_fmax).
constexpr int64_t kBnStatsFmax = 512;
constexpr int64_t kBnStatsRecord = 6;
constexpr int64_t kBnAggrOut = 2;
constexpr int64_t kTop8 = 8;
constexpr int64_t kRngStateWords = 6;

bool mulChecked(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool addChecked(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

/// Product of shape[from:], or nullopt when a dim is not positive or the product is too big.
std::optional<int64_t> shapeProduct(const std::vector<int64_t>& shape, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < shape.size(); ++i) {
    if (shape[i] <= 0 || !mulChecked(n, shape[i], n) || n > kMaxElements) return std::nullopt;
  }
  return n;
}

bool isFp8(DType t) { return t == DType::kFP8E4M3 || t == DType::kFP8E5M2; }
bool isIndexType(DType t) { return t == DType::kInt32 || t == DType::kUInt32; }

bool isReduceOp(AluOp op) {
  switch (op) {
    case AluOp::kAdd: case AluOp::kMultiply: case AluOp::kMax: case AluOp::kMin:
    case AluOp::kAbsMax: case AluOp::kAbsMin: case AluOp::kBitwiseAnd: case AluOp::kBitwiseOr:
    case AluOp::kBitwiseXor: case AluOp::kLogicalAnd: case AluOp::kLogicalOr:
    case AluOp::kLogicalXor:
      return true;
    default:
      return false;
  }
}

bool isCompareOp(AluOp op) { return op >= AluOp::kIsEqual && op <= AluOp::kIsLe; }

std::string engineList(uint8_t mask) {
  std::string s;
  for (int e = 0; e < arch::kNumEngines; ++e) {
    if ((mask & (1u << e)) == 0) continue;
    if (!s.empty()) s += ", ";
    s += arch::engineName(static_cast<Engine>(e));
  }
  return s.empty() ? "none" : s;
}

std::string tensorLabel(const Program& p, uint32_t t) {
  if (t < p.tensors.size() && !p.tensors[t].name.empty())
    return fmt::format("'{}'", p.tensors[t].name);
  return fmt::format("#{}", t);
}

/// A checked summary of a tensor declaration; `ok` is false when it is malformed.
struct TensorFacts {
  bool ok = false;
  int64_t partitions = 1;     ///< on-chip: shape[0]; HBM: 1
  int64_t freeElements = 0;   ///< on-chip: per partition; HBM: all elements
  uint64_t elemBytes = 0;
};

TensorFacts tensorFacts(const TensorDecl& t) {
  TensorFacts f;
  if (!validDType(t.dtype) || !validMemSpace(t.space) || t.shape.empty()) return f;
  auto all = shapeProduct(t.shape, 0);
  if (!all) return f;
  f.elemBytes = numerics::dtypeSize(t.dtype);
  if (t.onChip()) {
    f.partitions = t.shape[0];
    f.freeElements = *shapeProduct(t.shape, 1);
  } else {
    f.freeElements = *all;
  }
  f.ok = true;
  return f;
}

/// A checked summary of one operand's access pattern.
struct ApFacts {
  bool ok = false;        ///< structurally sound and inside its tensor
  int64_t partitions = 0;
  int64_t freeSize = 0;
  DType dtype = DType::kFP32;
  MemSpace space = MemSpace::kSbuf;
};

/// Checks of one instruction; collects every violation it can find.
class InstructionChecker {
 public:
  InstructionChecker(const Program& program, size_t index, const arch::ChipConfig& chip,
                     std::vector<Status>& out)
      : program_(program), index_(index), chip_(chip), out_(out),
        inst_(program.instructions[index]) {}

  void run();

 private:
  void fail(ErrorCode code, std::string message) {
    out_.emplace_back(code, std::move(message), program_.instructionContext(index_));
  }
  std::string_view slotName(int slot) const {
    return info_->operands[static_cast<size_t>(slot)].name;
  }
  const ApFacts* facts(int slot) const {
    const auto& f = facts_[static_cast<size_t>(slot)];
    return f.ok ? &f : nullptr;
  }

  bool checkStructure();
  void checkAccessPattern(int slot, const AccessPattern& ap);
  void checkSpaces();
  void checkShapes();

  // Shape helpers; each silently skips operands that are absent or already reported.
  void sameShape(int slot, int refSlot);
  void scalarTile(int slot, int refSlot);
  void freeEquals(int slot, int64_t want, std::string_view why);
  void samePartitions(int slot, int refSlot);
  void indexDType(int slot);
  void reduceResult(int reduceSlot);
  void checkMatmul();
  void checkTranspose();
  void checkDma();
  void checkCollective();

  const Program& program_;
  size_t index_;
  const arch::ChipConfig& chip_;
  std::vector<Status>& out_;
  const Instruction& inst_;
  const OpInfo* info_ = nullptr;
  std::array<ApFacts, kMaxOperands> facts_{};
  std::array<bool, kMaxOperands> present_{};
};

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

void InstructionChecker::checkMatmul() {
  const ApFacts* dst = facts(0);
  const ApFacts* st = facts(1);
  const ApFacts* mv = facts(2);
  bool doubleRow = inst_.has(kFlagDoubleRow);
  samePartitions(2, 1);
  if (st == nullptr || mv == nullptr) return;
  const AccessPattern& stAp = *inst_.operand(1);
  const AccessPattern& mvAp = *inst_.operand(2);
  int64_t m = st->freeSize;
  int64_t n = mv->freeSize;
  if (doubleRow) {
    if (chip_.pe.fp8Speedup <= 1) {
      fail(ErrorCode::kVerify,
           fmt::format("flag double_row needs a Tensor Engine with an fp8 speed-up (trn2 and "
                       "later); {} has none: split K into two matmuls",
                       chip_.name.empty() ? "this chip" : chip_.name));
    }
    for (int s : {1, 2}) {
      const ApFacts* f = facts(s);
      if (!isFp8(f->dtype)) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: dtype {} with double_row: double_row needs fp8 (float8_e4m3 or "
                         "float8_e5m2) operands",
                         slotName(s), numerics::dtypeName(f->dtype)));
      }
      const AccessPattern& ap = s == 1 ? stAp : mvAp;
      if (ap.numFree < 2 || ap.free[0].count != 2) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: double_row needs a free pattern [2, ...] (the two row groups "
                         "first); got {} free dims with first count {}",
                         slotName(s), ap.numFree, ap.numFree > 0 ? ap.free[0].count : 0));
        return;
      }
    }
    if (inst_.has(kFlagIsTranspose)) {
      fail(ErrorCode::kVerify, "flags double_row and is_transpose cannot be combined");
    }
    m /= 2;
    n /= 2;
  }
  if (st->partitions > chip_.pe.rows) {
    fail(ErrorCode::kVerify,
         fmt::format("stationary: contraction K = {} partitions exceeds the {} PE rows: split K "
                     "and accumulate",
                     st->partitions, chip_.pe.rows));
  }
  if (m > chip_.pe.cols) {
    fail(ErrorCode::kVerify,
         fmt::format("stationary: M = {} exceeds the {} PE columns: split M into tiles of at most "
                     "{}",
                     m, chip_.pe.cols, chip_.pe.cols));
  }
  if (n > chip_.pe.maxMovingFree) {
    fail(ErrorCode::kVerify,
         fmt::format("moving: N = {} exceeds the {}-element moving limit: split N into tiles of "
                     "at most {}",
                     n, chip_.pe.maxMovingFree, chip_.pe.maxMovingFree));
  }
  if (dst == nullptr) return;
  if (dst->partitions != m || dst->freeSize != n) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: shape [P={}, F={}], expected [M={}, N={}]: the result has one "
                     "partition per stationary column and the moving free size",
                     dst->partitions, dst->freeSize, m, n));
  }
  bool dtypeOk = dst->dtype == DType::kFP32 || dst->dtype == DType::kBF16 ||
                 (inst_.has(kFlagIsTranspose) && dst->dtype == mv->dtype);
  if (!dtypeOk) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: dtype {}: matmul results are float32 or bfloat16 in PSUM{}",
                     numerics::dtypeName(dst->dtype),
                     inst_.has(kFlagIsTranspose) ? " (or the moving dtype with is_transpose)" : ""));
  }
}

void InstructionChecker::checkTranspose() {
  const ApFacts* dst = facts(0);
  const ApFacts* data = facts(1);
  if (data != nullptr) {
    int64_t limitP = inst_.engine == Engine::kTensor ? chip_.pe.rows : kQuadrant;
    int64_t limitF = inst_.engine == Engine::kTensor ? chip_.pe.cols : kQuadrant;
    if (data->partitions > limitP || data->freeSize > limitF) {
      fail(ErrorCode::kVerify,
           fmt::format("data: [P={}, F={}] is too large for a {} engine transpose: at most "
                       "[{}, {}]",
                       data->partitions, data->freeSize, arch::engineName(inst_.engine), limitP,
                       limitF));
    }
  }
  if (dst != nullptr && data != nullptr &&
      (dst->partitions != data->freeSize || dst->freeSize != data->partitions)) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: shape [P={}, F={}], expected [P={}, F={}]: a transpose swaps data's "
                     "partitions and free size",
                     dst->partitions, dst->freeSize, data->freeSize, data->partitions));
  }
}

void InstructionChecker::checkDma() {
  const ApFacts* dst = facts(0);
  const ApFacts* src = facts(1);
  if (inst_.opcode == Opcode::kDmaTranspose) {
    if (!chip_.dma.supportsTranspose()) {
      fail(ErrorCode::kVerify,
           fmt::format("{} has no DMA transpose: transpose on the Tensor Engine (nc_transpose)",
                       chip_.name.empty() ? "this chip" : chip_.name));
    }
    for (int s : {0, 1}) {
      const ApFacts* f = facts(s);
      if (f == nullptr) continue;
      size_t bytes = numerics::dtypeSize(f->dtype);
      if (bytes != 2 && bytes != 4) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: dtype {} ({} byte): dma_transpose moves 2- or 4-byte elements",
                         slotName(s), numerics::dtypeName(f->dtype), bytes));
      }
    }
    if (dst != nullptr && src != nullptr) {
      if (dst->dtype != src->dtype) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: dtype {} differs from src dtype {}: dma_transpose does not cast",
                         numerics::dtypeName(dst->dtype), numerics::dtypeName(src->dtype)));
      }
      if (dst->partitions != src->freeSize || dst->freeSize != src->partitions) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: shape [P={}, F={}], expected [P={}, F={}]: a transpose swaps "
                         "src's partitions and free size",
                         dst->partitions, dst->freeSize, src->freeSize, src->partitions));
      }
    }
    return;
  }
  bool indirectSrc = inst_.has(kFlagIndirectSrc);
  bool indirectDst = inst_.has(kFlagIndirectDst);
  bool hasIndex = present_[2];
  if (indirectSrc && indirectDst) {
    fail(ErrorCode::kVerify, "flags indirect_src and indirect_dst cannot be combined: a dma_copy "
                             "gathers or scatters, not both");
    return;
  }
  if (!indirectSrc && !indirectDst) {
    if (hasIndex) {
      fail(ErrorCode::kVerify, "index: given without indirect_src or indirect_dst: set one of "
                               "them or drop the index");
    }
    if (inst_.has(kFlagOobSkip)) {
      fail(ErrorCode::kVerify, "flag oob_skip applies only to indirect copies (indirect_src or "
                               "indirect_dst)");
    }
    if (dst != nullptr && src != nullptr) {
      int64_t nd = dst->partitions * dst->freeSize;
      int64_t ns = src->partitions * src->freeSize;
      if (nd != ns) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: {} elements but src has {}: a dma_copy moves equal element counts",
                         nd, ns));
      }
    }
    return;
  }
  if (!hasIndex) {
    fail(ErrorCode::kVerify,
         fmt::format("index: required with {}: give a [rows, 1] int32/uint32 index tile",
                     indirectSrc ? "indirect_src" : "indirect_dst"));
    return;
  }
  indexDType(2);
  freeEquals(2, 1, "an index operand holds one row index per partition ([rows, 1])");
  if (dst != nullptr && src != nullptr && dst->freeSize != src->freeSize) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: row length {} differs from src row length {}: indirect copies move "
                     "whole rows",
                     dst->freeSize, src->freeSize));
  }
  samePartitions(2, indirectSrc ? 0 : 1);
}

void InstructionChecker::checkShapes() {
  switch (inst_.opcode) {
    case Opcode::kNcMatmul: checkMatmul(); break;
    case Opcode::kNcTranspose: checkTranspose(); break;
    case Opcode::kActivation:
      sameShape(1, 0);
      scalarTile(2, 1);
      scalarTile(3, 1);
      reduceResult(4);
      break;
    case Opcode::kTensorTensor:
      sameShape(1, 0);
      sameShape(2, 0);
      break;
    case Opcode::kTensorScalar:
      sameShape(1, 0);
      scalarTile(2, 1);
      scalarTile(3, 1);
      if (present_[3] && inst_.alu1 == AluOp::kBypass) {
        fail(ErrorCode::kVerify, "operand1: given, but op1 is bypass: set op1 or drop operand1");
      }
      break;
    case Opcode::kScalarTensorTensor:
      sameShape(1, 0);
      scalarTile(2, 1);
      sameShape(3, 0);
      break;
    case Opcode::kTensorReduce: {
      samePartitions(0, 1);
      if (validAluOp(inst_.alu0) && !isReduceOp(inst_.alu0)) {
        fail(ErrorCode::kVerify, fmt::format("op0 {} cannot reduce: use add, multiply, max, min, "
                                             "abs_max, abs_min or a bitwise/logical op",
                                             aluOpName(inst_.alu0)));
      }
      const AccessPattern* data = inst_.operand(1);
      if (data == nullptr || facts(1) == nullptr) break;
      int64_t mask = inst_.iarg[0];
      int64_t allDims = (int64_t(1) << data->numFree) - 1;
      if (mask < 1 || (mask & ~allDims) != 0) {
        fail(ErrorCode::kVerify,
             fmt::format("axis_mask {:#x} must select at least one of data's {} free dims (bits "
                         "0-{})",
                         mask, data->numFree, int(data->numFree) - 1));
        break;
      }
      int64_t kept = 1;
      for (int k = 0; k < data->numFree; ++k)
        if ((mask & (int64_t(1) << k)) == 0) kept *= data->free[size_t(k)].count;
      freeEquals(0, kept, "dst holds the product of the dims that are not reduced");
      break;
    }
    case Opcode::kTensorPartitionReduce:
      if (validAluOp(inst_.alu0) && !isReduceOp(inst_.alu0)) {
        fail(ErrorCode::kVerify, fmt::format("op0 {} cannot reduce", aluOpName(inst_.alu0)));
      }
      if (const ApFacts* d = facts(0); d != nullptr && d->partitions != 1) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: {} partitions; a partition reduce writes one partition",
                         d->partitions));
      }
      if (const ApFacts* d = facts(1); d != nullptr) freeEquals(0, d->freeSize, "dst F == data F");
      break;
    case Opcode::kTensorCopy:
    case Opcode::kReciprocal:
      sameShape(1, 0);
      break;
    case Opcode::kTensorCopyPredicated:
      sameShape(1, 0);
      sameShape(2, 0);
      break;
    case Opcode::kTensorTensorScan:
      sameShape(1, 0);
      sameShape(2, 0);
      scalarTile(3, 1);
      break;
    case Opcode::kMemset:
    case Opcode::kIota:
    case Opcode::kRng:
      break;
    case Opcode::kAffineSelect:
      sameShape(1, 0);
      if (validAluOp(inst_.alu0) && !isCompareOp(inst_.alu0)) {
        fail(ErrorCode::kVerify, fmt::format("op0 {} is not a comparison: use is_equal, "
                                             "not_equal, is_gt, is_ge, is_lt or is_le",
                                             aluOpName(inst_.alu0)));
      }
      break;
    case Opcode::kRangeSelect:
      sameShape(1, 0);
      scalarTile(2, 0);
      scalarTile(3, 0);
      for (AluOp op : {inst_.alu0, inst_.alu1}) {
        if (validAluOp(op) && !isCompareOp(op)) {
          fail(ErrorCode::kVerify, fmt::format("op {} is not a comparison: range_select compares "
                                               "indices with is_gt, is_ge, is_lt, is_le, ...",
                                               aluOpName(op)));
        }
      }
      reduceResult(4);
      break;
    case Opcode::kSelectReduce:
      sameShape(1, 0);
      sameShape(2, 0);
      sameShape(3, 0);
      reduceResult(4);
      break;
    case Opcode::kBnStats:
      samePartitions(0, 1);
      if (const ApFacts* d = facts(1); d != nullptr) {
        int64_t chunks = (d->freeSize + kBnStatsFmax - 1) / kBnStatsFmax;
        freeEquals(0, kBnStatsRecord * chunks,
                   fmt::format("6 values per chunk of at most {} data elements", kBnStatsFmax));
      }
      break;
    case Opcode::kBnAggr:
      samePartitions(0, 1);
      if (const ApFacts* d = facts(1); d != nullptr && d->freeSize % kBnStatsRecord != 0) {
        fail(ErrorCode::kVerify, fmt::format("data: free size {} is not a multiple of 6: bn_aggr "
                                             "reads whole bn_stats records",
                                             d->freeSize));
      }
      freeEquals(0, kBnAggrOut, "bn_aggr writes (mean, variance)");
      break;
    case Opcode::kMax8:
      samePartitions(0, 1);
      freeEquals(0, kTop8, "max8 writes the 8 largest values");
      if (const ApFacts* d = facts(1); d != nullptr && d->freeSize < kTop8) {
        fail(ErrorCode::kVerify,
             fmt::format("data: free size {}; max8 needs at least 8 values", d->freeSize));
      }
      break;
    case Opcode::kNcFindIndex8:
      samePartitions(0, 1);
      samePartitions(2, 1);
      freeEquals(2, kTop8, "nc_find_index8 looks up 8 values");
      freeEquals(0, kTop8, "nc_find_index8 writes 8 indices");
      indexDType(0);
      break;
    case Opcode::kNcMatchReplace8:
      sameShape(1, 0);
      samePartitions(2, 1);
      freeEquals(2, kTop8, "nc_match_replace8 replaces 8 values");
      if (present_[3]) {
        samePartitions(3, 1);
        freeEquals(3, kTop8, "dst_idx receives 8 indices");
        indexDType(3);
      }
      break;
    case Opcode::kLocalGather: {
      samePartitions(1, 0);
      samePartitions(2, 0);
      indexDType(2);
      int64_t perIdx = inst_.iarg[0];
      int64_t valid = inst_.iarg[1];
      if (perIdx < 1 || valid < 1) {
        fail(ErrorCode::kVerify,
             fmt::format("num_elem_per_idx = {} and num_valid_indices = {} must both be at least 1",
                         perIdx, valid));
        break;
      }
      if (const ApFacts* ix = facts(2); ix != nullptr && valid > ix->freeSize) {
        fail(ErrorCode::kVerify,
             fmt::format("num_valid_indices = {} exceeds the {} index slots of index", valid,
                         ix->freeSize));
      }
      int64_t need = 0;
      if (const ApFacts* d = facts(0);
          d != nullptr && (!mulChecked(perIdx, valid, need) || need > d->freeSize)) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: free size {} cannot hold num_valid_indices x num_elem_per_idx = "
                         "{} x {} elements",
                         d->freeSize, valid, perIdx));
      }
      break;
    }
    case Opcode::kDropout:
      sameShape(1, 0);
      if (present_[2]) {
        scalarTile(2, 1);
      } else if (!(inst_.imm[0] >= 0.0f && inst_.imm[0] <= 1.0f)) {
        fail(ErrorCode::kVerify,
             fmt::format("prob = {} is not a probability: give a value in [0, 1]", inst_.imm[0]));
      }
      break;
    case Opcode::kRand2:
      scalarTile(1, 0);
      scalarTile(2, 0);
      break;
    case Opcode::kSetRngSeed:
      break;
    case Opcode::kRandSetState:
    case Opcode::kRandGetState:
      freeEquals(0, kRngStateWords, "the RNG state is 6 words per partition");
      if (const ApFacts* d = facts(0);
          d != nullptr && !(isIndexType(d->dtype))) {
        fail(ErrorCode::kVerify, fmt::format("{}: dtype {}: RNG state words are uint32 (or int32)",
                                             slotName(0), numerics::dtypeName(d->dtype)));
      }
      break;
    case Opcode::kDmaCopy:
    case Opcode::kDmaTranspose:
      checkDma();
      break;
    case Opcode::kAllReduce:
    case Opcode::kAllGather:
    case Opcode::kReduceScatter:
    case Opcode::kAllToAll:
    case Opcode::kCollectivePermute:
    case Opcode::kSendRecv:
    case Opcode::kCoreBarrier:
      checkCollective();
      break;
    case Opcode::kCount:
      break;
  }
}

void InstructionChecker::checkCollective() {
  const Opcode op = inst_.opcode;
  const uint64_t queues = uint64_t(chip_.dma.enginesPerCore) * chip_.dma.queuesPerEngine;
  if (queues > 0 && inst_.queue >= queues) {
    fail(ErrorCode::kVerify,
         fmt::format("DMA queue {} does not exist: {} has {} DMA queues per core (0-{})",
                     inst_.queue, chip_.name, queues, queues - 1));
  }
  if ((op == Opcode::kAllReduce || op == Opcode::kReduceScatter) &&
      !(inst_.reduceOp == AluOp::kAdd || inst_.reduceOp == AluOp::kMax ||
        inst_.reduceOp == AluOp::kMin)) {
    fail(ErrorCode::kVerify,
         fmt::format("reduce_op {}: {} reduces with add, max or min (nl.add, nl.maximum, "
                     "nl.minimum)",
                     validAluOp(inst_.reduceOp) ? aluOpName(inst_.reduceOp) : "?", info_->name));
  }
  // The rank group: an index into the program's replica-group table.
  size_t listSize = 0;  // members per rank-list; 0 = every rank (known only when run)
  if (op == Opcode::kSendRecv) {
    for (int k = 0; k < 3; ++k) {
      if (inst_.iarg[size_t(k)] < 0 || inst_.iarg[size_t(k)] > INT32_MAX) {
        fail(ErrorCode::kVerify, fmt::format("{} = {}: must be a rank (0 to 2^31-1)",
                                             info_->intNames[size_t(k)], inst_.iarg[size_t(k)]));
      }
    }
  } else {
    const int64_t g = inst_.iarg[0];
    const std::string_view field = info_->intNames[0];
    if (g < 0 || uint64_t(g) >= program_.replicaGroups.size()) {
      fail(ErrorCode::kVerify,
           fmt::format("{} = {} is not in the program's replica-group table ({} entries): add "
                       "the group with KernelBuilder::replicaGroup() and use its index",
                       field, g, program_.replicaGroups.size()));
    } else {
      const ReplicaGroup& rg = program_.replicaGroups[size_t(g)];
      std::vector<uint32_t> seen, targets;
      for (size_t l = 0; l < rg.lists.size(); ++l) {
        const auto& list = rg.lists[l];
        if (op == Opcode::kCollectivePermute) {
          if (list.size() != 2) {
            fail(ErrorCode::kVerify,
                 fmt::format("{} {}: entry {} has {} ranks; each is one (source, target) pair",
                             field, g, l, list.size()));
            return;
          }
          if (std::find(seen.begin(), seen.end(), list[0]) != seen.end() ||
              std::find(targets.begin(), targets.end(), list[1]) != targets.end()) {
            fail(ErrorCode::kVerify,
                 fmt::format("{} {}: pair {} ({} -> {}) repeats a source or a target: each rank "
                             "sends at most once and receives at most once",
                             field, g, l, list[0], list[1]));
            return;
          }
          seen.push_back(list[0]);
          targets.push_back(list[1]);
          continue;
        }
        if (list.empty()) {
          fail(ErrorCode::kVerify, fmt::format("replica group {}: rank-list {} is empty", g, l));
          return;
        }
        if (l > 0 && list.size() != rg.lists[0].size()) {
          fail(ErrorCode::kVerify,
               fmt::format("replica group {}: rank-list {} has {} ranks but list 0 has {}: all "
                           "lists of a group have the same size",
                           g, l, list.size(), rg.lists[0].size()));
          return;
        }
        for (uint32_t r : list) {
          if (std::find(seen.begin(), seen.end(), r) != seen.end()) {
            fail(ErrorCode::kVerify,
                 fmt::format("replica group {}: rank {} appears twice: the rank-lists must be "
                             "disjoint",
                             g, r));
            return;
          }
          seen.push_back(r);
        }
      }
      if (op != Opcode::kCollectivePermute && !rg.lists.empty()) listSize = rg.lists[0].size();
    }
  }
  if (op == Opcode::kCoreBarrier) return;
  const ApFacts* dst = facts(0);
  const ApFacts* src = facts(1);
  if (dst == nullptr || src == nullptr) return;
  if (dst->dtype != src->dtype) {
    fail(ErrorCode::kVerify,
         fmt::format("dst is {} but src is {}: a collective moves one dtype (convert first with "
                     "tensor_copy)",
                     numerics::dtypeName(dst->dtype), numerics::dtypeName(src->dtype)));
  }
  if ((op == Opcode::kAllReduce || op == Opcode::kReduceScatter) && !numerics::isFloat(src->dtype)) {
    fail(ErrorCode::kVerify,
         fmt::format("src is {}: {} reduces floating-point data (in fp32); convert integers first",
                     numerics::dtypeName(src->dtype), info_->name));
  }
  const int64_t nd = dst->partitions * dst->freeSize;
  const int64_t ns = src->partitions * src->freeSize;
  const bool gather = op == Opcode::kAllGather;
  const bool scatter = op == Opcode::kReduceScatter;
  if (!gather && !scatter) {
    if (nd != ns) {
      fail(ErrorCode::kVerify, fmt::format("dst has {} elements but src has {}: {} needs equal "
                                           "counts",
                                           nd, ns, info_->name));
    } else if (op == Opcode::kAllToAll && listSize > 0 && ns % int64_t(listSize) != 0) {
      fail(ErrorCode::kVerify,
           fmt::format("src has {} elements, not a multiple of the {} ranks of each rank-list: "
                       "all_to_all sends one equal chunk to each member",
                       ns, listSize));
    }
    return;
  }
  const int64_t big = gather ? nd : ns;
  const int64_t small = gather ? ns : nd;
  if (listSize > 0 && big != small * int64_t(listSize)) {
    fail(ErrorCode::kVerify,
         fmt::format("{} has {} elements but {} has {}: with {} ranks per rank-list it needs {} x "
                     "{} = {}",
                     gather ? "dst" : "src", big, gather ? "src" : "dst", small, listSize,
                     listSize, small, small * int64_t(listSize)));
  } else if (listSize == 0 && (small == 0 || big % small != 0)) {
    fail(ErrorCode::kVerify,
         fmt::format("{} has {} elements, not a multiple of the {} elements of {}",
                     gather ? "dst" : "src", big, small, gather ? "src" : "dst"));
  }
}

/// Follows aliasOf links to the tensor that owns the memory (bounded against cycles).
uint32_t aliasRoot(const Program& p, uint32_t t) {
  for (size_t steps = 0; steps <= p.tensors.size(); ++steps) {
    uint32_t next = p.tensors[t].aliasOf;
    if (next >= p.tensors.size() || next == t) return t;
    t = next;
  }
  return t;
}

/// Overlapping placements of tensors that are live at the same time (and are not views of
/// one another). A tensor is live from its first to its last use; HBM inputs and outputs for
/// the whole program.
void checkOverlaps(const Program& p, std::vector<Status>& out) {
  constexpr size_t kUnused = SIZE_MAX;
  struct Placed {
    uint32_t tensor;
    uint64_t begin, end;          // bytes (per partition on chip)
    uint64_t pBegin, pEnd;        // partitions
    size_t first = kUnused, last = 0;
  };
  std::vector<size_t> first(p.tensors.size(), kUnused), last(p.tensors.size(), 0);
  for (size_t i = 0; i < p.instructions.size(); ++i) {
    for (const Operand& o : p.instructions[i].operands) {
      if (o.ap.tensor >= p.tensors.size()) continue;
      uint32_t root = aliasRoot(p, o.ap.tensor);  // a view's use keeps its base live
      first[root] = std::min(first[root], i);
      last[root] = std::max(last[root], i);
    }
  }
  for (int space = 0; space < 3; ++space) {
    std::vector<Placed> placed;
    for (uint32_t t = 0; t < p.tensors.size(); ++t) {
      const TensorDecl& d = p.tensors[t];
      if (static_cast<int>(d.space) != space || d.aliasOf != kNoTensor) continue;
      TensorFacts f = tensorFacts(d);
      if (!f.ok) continue;
      Placed pl{t, 0, 0, 0, 1};
      int64_t bytes = 0;
      if (!mulChecked(f.freeElements, int64_t(f.elemBytes), bytes)) continue;
      pl.begin = d.byteOffset;
      if (__builtin_add_overflow(d.byteOffset, uint64_t(bytes), &pl.end)) continue;
      if (d.onChip()) {
        pl.pBegin = d.partitionStart;
        pl.pEnd = uint64_t(d.partitionStart) + uint64_t(f.partitions);
      }
      bool wholeProgram = !d.onChip() && d.kind != TensorKind::kInternal;
      pl.first = wholeProgram ? 0 : first[t];
      pl.last = wholeProgram ? SIZE_MAX : last[t];
      if (pl.first == kUnused && !wholeProgram) continue;
      placed.push_back(pl);
    }
    std::sort(placed.begin(), placed.end(),
              [](const Placed& a, const Placed& b) { return a.begin < b.begin; });
    for (size_t i = 0; i < placed.size(); ++i) {
      for (size_t j = i + 1; j < placed.size() && placed[j].begin < placed[i].end; ++j) {
        const Placed& a = placed[i];
        const Placed& b = placed[j];
        if (a.pEnd <= b.pBegin || b.pEnd <= a.pBegin) continue;
        if (a.last < b.first || b.last < a.first) continue;
        uint32_t lo = std::min(a.tensor, b.tensor), hi = std::max(a.tensor, b.tensor);
        out.emplace_back(
            ErrorCode::kCapacity,
            fmt::format("tensors {} and {} overlap in {} (bytes {}..{} and {}..{}) while both are "
                        "live: place them apart or end one's use before the other's first use",
                        tensorLabel(p, lo), tensorLabel(p, hi),
                        memSpaceName(static_cast<MemSpace>(space)), a.begin, a.end - 1, b.begin,
                        b.end - 1),
            fmt::format("tensor {}", tensorLabel(p, hi)));
      }
    }
  }
}

}  // namespace

Status verifyTensor(const Program& program, uint32_t tensorIndex, const arch::ChipConfig& chip) {
  if (tensorIndex >= program.tensors.size()) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("tensor index {} does not exist (the program has {} tensors)",
                              tensorIndex, program.tensors.size()));
  }
  const TensorDecl& t = program.tensors[tensorIndex];
  std::string where = fmt::format("tensor {}", tensorLabel(program, tensorIndex));
  auto err = [&](ErrorCode c, std::string msg) { return Status(c, std::move(msg), where); };
  if (!validMemSpace(t.space)) {
    return err(ErrorCode::kVerify, fmt::format("memory space value {} is not sbuf, psum or hbm",
                                               static_cast<int>(t.space)));
  }
  if (!validDType(t.dtype)) {
    return err(ErrorCode::kVerify,
               fmt::format("dtype value {} is not a dtype", static_cast<int>(t.dtype)));
  }
  if (!validTensorKind(t.kind)) {
    return err(ErrorCode::kVerify,
               fmt::format("kind value {} is not a tensor kind", static_cast<int>(t.kind)));
  }
  if (t.shape.empty()) {
    return err(ErrorCode::kVerify, "empty shape: a tensor needs at least one dimension");
  }
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] <= 0) {
      return err(ErrorCode::kVerify, fmt::format("shape dim {} is {}: dimensions must be positive",
                                                 i, t.shape[i]));
    }
  }
  TensorFacts f = tensorFacts(t);
  if (!f.ok) {
    return err(ErrorCode::kCapacity,
               fmt::format("shape has more than 2^48 elements: no memory holds it"));
  }
  if (t.aliasOf != kNoTensor) {
    if (t.aliasOf >= program.tensors.size() || t.aliasOf == tensorIndex) {
      return err(ErrorCode::kVerify,
                 fmt::format("alias of tensor index {}, which is not another tensor of the program",
                             t.aliasOf));
    }
    if (program.tensors[t.aliasOf].space != t.space) {
      return err(ErrorCode::kVerify,
                 fmt::format("a view in {} of tensor {} in {}: a view shares its base's memory "
                             "space",
                             memSpaceName(t.space), tensorLabel(program, t.aliasOf),
                             memSpaceName(program.tensors[t.aliasOf].space)));
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(uint64_t(f.freeElements), f.elemBytes, &bytes)) bytes = UINT64_MAX;
  if (t.onChip()) {
    if (f.partitions > chip.mem.sbufPartitions) {
      return err(ErrorCode::kVerify,
                 fmt::format("{} partitions (shape[0]); on-chip tensors have 1 to {} partitions: "
                             "put the partition dimension first and tile it",
                             f.partitions, chip.mem.sbufPartitions));
    }
    if (uint64_t(t.partitionStart) + uint64_t(f.partitions) > chip.mem.sbufPartitions) {
      return err(ErrorCode::kCapacity,
                 fmt::format("partitions {}..{} do not exist: {} has partitions 0..{}",
                             t.partitionStart, uint64_t(t.partitionStart) + f.partitions - 1,
                             memSpaceName(t.space), chip.mem.sbufPartitions - 1));
    }
    uint64_t capacity = t.space == MemSpace::kSbuf ? chip.mem.sbufBytesPerPartition
                                                   : chip.psumBytesPerPartition();
    uint64_t end = 0;
    if (__builtin_add_overflow(t.byteOffset, bytes, &end) || end > capacity) {
      return err(ErrorCode::kCapacity,
                 fmt::format("bytes {}..{} of each partition lie outside {} ({} bytes per "
                             "partition): make the tile smaller or place it lower",
                             t.byteOffset, t.byteOffset + bytes - 1, memSpaceName(t.space),
                             capacity));
    }
  } else {
    if (t.partitionStart != 0) {
      return err(ErrorCode::kVerify, fmt::format("partition start {} on an HBM tensor: HBM has no "
                                                 "partitions; set it to 0",
                                                 t.partitionStart));
    }
    uint64_t end = 0;
    if (__builtin_add_overflow(t.byteOffset, bytes, &end) ||
        (chip.mem.hbmBytes > 0 && end > chip.mem.hbmBytes)) {
      return err(ErrorCode::kCapacity,
                 fmt::format("bytes {:#x}..{:#x} lie outside HBM ({} bytes)", t.byteOffset,
                             t.byteOffset + bytes - 1, chip.mem.hbmBytes));
    }
  }
  if (t.aliasOf != kNoTensor) {
    // A view must stay inside its base's memory.
    const TensorDecl& b = program.tensors[t.aliasOf];
    TensorFacts bf = tensorFacts(b);
    if (bf.ok) {
      uint64_t baseBytes = uint64_t(bf.freeElements) * bf.elemBytes;
      bool inside = t.byteOffset >= b.byteOffset && t.byteOffset + bytes <= b.byteOffset + baseBytes;
      if (t.onChip()) {
        inside = inside && t.partitionStart >= b.partitionStart &&
                 uint64_t(t.partitionStart) + f.partitions <=
                     uint64_t(b.partitionStart) + uint64_t(bf.partitions);
      }
      if (!inside) {
        return err(ErrorCode::kCapacity,
                   fmt::format("view reaches outside its base tensor {}: a view may cover the "
                               "same bytes per partition or fewer",
                               tensorLabel(program, t.aliasOf)));
      }
    }
  }
  return Status::ok();
}

Status verifyInstruction(const Program& program, size_t index, const arch::ChipConfig& chip) {
  if (index >= program.instructions.size()) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("instruction index {} does not exist (the program has {})", index,
                              program.instructions.size()));
  }
  std::vector<Status> errors;
  InstructionChecker(program, index, chip, errors).run();
  return errors.empty() ? Status::ok() : errors.front();
}

/// Every violation of instruction `index` (the verifier's full report for it).
std::vector<Status> verifyInstructionAll(const Program& program, size_t index,
                                         const arch::ChipConfig& chip) {
  std::vector<Status> errors;
  if (index < program.instructions.size()) InstructionChecker(program, index, chip, errors).run();
  return errors;
}

namespace {

std::atomic<uint64_t> programVerifications{0};

void checkLocationTable(const Program& program, std::vector<Status>& errors) {
  if (program.locations.empty()) {
    errors.emplace_back(ErrorCode::kVerify,
                        "the location table is empty: entry 0 (unknown location) must exist",
                        "program");
  }
}

void checkOperandOverlapAt(const Program& program, size_t index, const arch::ChipConfig& chip,
                           std::vector<Status>& errors) {
  if (Status s = checkOperandOverlap(program, index, chip); !s.isOk())
    errors.push_back(std::move(s));
}

/// Ok, or the first violation with "(and N more violations)".
Status firstViolation(const std::vector<Status>& errors) {
  if (errors.empty()) return Status::ok();
  const Status& first = errors.front();
  if (errors.size() == 1) return first;
  return Status(first.code(),
                fmt::format("{} (and {} more violation{})", first.message(), errors.size() - 1,
                            errors.size() == 2 ? "" : "s"),
                first.where());
}

}  // namespace

std::vector<Status> verifyProgram(const Program& program, const arch::ChipConfig& chip) {
  programVerifications.fetch_add(1, std::memory_order_relaxed);
  std::vector<Status> errors;
  checkLocationTable(program, errors);
  bool tensorsOk = true;
  for (uint32_t t = 0; t < program.tensors.size(); ++t) {
    Status s = verifyTensor(program, t, chip);
    if (!s.isOk()) {
      tensorsOk = false;
      errors.push_back(std::move(s));
    }
  }
  for (size_t i = 0; i < program.instructions.size(); ++i) {
    const size_t before = errors.size();
    InstructionChecker(program, i, chip, errors).run();
    // The overlap rule reads byte layouts: only of sound tensors and patterns.
    if (tensorsOk && errors.size() == before) checkOperandOverlapAt(program, i, chip, errors);
  }
  if (tensorsOk) checkOverlaps(program, errors);
  return errors;
}

Status checkProgram(const Program& program, const arch::ChipConfig& chip) {
  return firstViolation(verifyProgram(program, chip));
}

uint64_t programVerificationCount() { return programVerifications.load(std::memory_order_relaxed); }

namespace detail {

Status finishVerification(Program& program, const arch::ChipConfig& chip) {
  std::vector<Status> errors;
  checkLocationTable(program, errors);
  for (size_t i = 0; i < program.instructions.size(); ++i)
    checkOperandOverlapAt(program, i, chip, errors);
  checkOverlaps(program, errors);
  Status s = firstViolation(errors);
  if (s.isOk()) stampVerified(program, chip);
  return s;
}

}  // namespace detail

}  // namespace trnsim::isa
