#pragma once
// The verifier's internals (verify.cpp, verify_instruction.cpp, verify_rules.cpp): checked
// arithmetic, summaries of tensors and access patterns, and InstructionChecker, which collects
// every violation of one instruction. Not part of the isa layer's interface.
//
// The verifier never trusts its input: programs come from the builder, but also from files
// and fuzzers, so every index is range-checked and all address arithmetic is overflow-checked
// before anything else reads it.

#include <fmt/format.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/isa/names.h"
#include "trnsim/support/status.h"

namespace trnsim::isa::detail {

/// Tensors larger than this many elements are refused (2^48: far beyond any chip).
inline constexpr int64_t kMaxElements = int64_t(1) << 48;
/// The partition quadrant: partition accesses start at multiples of it.
inline constexpr uint32_t kQuadrant = 32;
/// bn_stats splits the free dim into chunks of at most this many elements (bn_stats_fmax).
inline constexpr int64_t kBnStatsFmax = 512;
inline constexpr int64_t kBnStatsRecord = 6;
inline constexpr int64_t kBnAggrOut = 2;
inline constexpr int64_t kTop8 = 8;
inline constexpr int64_t kRngStateWords = 6;

inline bool mulChecked(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
inline bool addChecked(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

/// Product of shape[from:], or nullopt when a dim is not positive or the product is too big.
inline std::optional<int64_t> shapeProduct(const std::vector<int64_t>& shape, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < shape.size(); ++i) {
    if (shape[i] <= 0 || !mulChecked(n, shape[i], n) || n > kMaxElements) return std::nullopt;
  }
  return n;
}

inline bool isFp8(DType t) { return t == DType::kFP8E4M3 || t == DType::kFP8E5M2; }
inline bool isIndexType(DType t) { return t == DType::kInt32 || t == DType::kUInt32; }

inline bool isReduceOp(AluOp op) {
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

inline bool isCompareOp(AluOp op) { return op >= AluOp::kIsEqual && op <= AluOp::kIsLe; }

inline std::string engineList(uint8_t mask) {
  std::string s;
  for (int e = 0; e < arch::kNumEngines; ++e) {
    if ((mask & (1u << e)) == 0) continue;
    if (!s.empty()) s += ", ";
    s += arch::engineName(static_cast<Engine>(e));
  }
  return s.empty() ? "none" : s;
}

inline std::string tensorLabel(const Program& p, uint32_t t) {
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

inline TensorFacts tensorFacts(const TensorDecl& t) {
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

}  // namespace trnsim::isa::detail
