#include "trnsim/isa/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "trnsim/isa/names.h"
#include "trnsim/isa/operand_layout.h"
#include "trnsim/isa/verify_checker.h"

// The verifier's entry points: tensor declarations, one instruction (InstructionChecker in
// verify_instruction.cpp and verify_rules.cpp), and whole programs with the overlap of live
// tensors.

namespace trnsim::isa {
namespace {

using detail::InstructionChecker;
using detail::mulChecked;
using detail::tensorFacts;
using detail::TensorFacts;
using detail::tensorLabel;

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
