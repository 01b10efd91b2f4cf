// Verification once: programs carry a stamp of what the verifier accepted (verify.h), so a
// program the builder verified is not verified again where it is loaded.

#include <algorithm>
#include <bit>

#include "trnsim/isa/verify.h"
#include "trnsim/support/hash.h"

namespace trnsim::isa {
namespace {

/// The fields the verifier and the simulator read: free dims past numFree mean nothing.
void hashOperand(support::WordHasher& h, uint8_t slot, const AccessPattern& ap) {
  h.word(uint64_t(ap.tensor) | uint64_t(ap.partitionOffset) << 32);
  h.word(uint64_t(ap.partitions) | uint64_t(ap.numFree) << 32 | uint64_t(slot) << 40);
  h.word(uint64_t(ap.partitionStride));
  h.word(uint64_t(ap.offset));
  for (size_t k = 0; k < std::min<size_t>(ap.numFree, ap.free.size()); ++k) {
    h.word(uint64_t(ap.free[k].stride));
    h.word(uint64_t(ap.free[k].count));
  }
}

void hashInstruction(support::WordHasher& h, const Instruction& in) {
  h.word(uint64_t(in.opcode) | uint64_t(in.engine) << 8 | uint64_t(in.alu0) << 16 |
         uint64_t(in.alu1) << 24 | uint64_t(in.reduceOp) << 32 | uint64_t(in.act) << 40 |
         uint64_t(in.flags) << 48);
  h.word(uint64_t(in.queue) | uint64_t(in.loc) << 16 | uint64_t(in.operands.size()) << 48);
  h.word(uint64_t(std::bit_cast<uint32_t>(in.imm[0])) | uint64_t(std::bit_cast<uint32_t>(in.imm[1]))
                                                            << 32);
  h.word(uint64_t(std::bit_cast<uint32_t>(in.imm[2])) | uint64_t(std::bit_cast<uint32_t>(in.imm[3]))
                                                            << 32);
  for (int64_t v : in.iarg) h.word(uint64_t(v));
  for (const Operand& o : in.operands) hashOperand(h, o.slot, o.ap);
}

}  // namespace

uint64_t programFingerprint(const Program& program) {
  // The fast in-process hash (support/hash.h): computed on every load, never leaves the process.
  support::WordHasher h;
  h.text(program.name);
  h.text(program.target);
  h.word(program.tensors.size());
  for (const TensorDecl& t : program.tensors) {
    h.text(t.name);
    h.word(uint64_t(t.space) | uint64_t(t.dtype) << 8 | uint64_t(t.kind) << 16 |
           uint64_t(t.aliasOf) << 32);
    h.word(t.partitionStart);
    h.word(t.byteOffset);
    h.word(t.shape.size());
    for (int64_t d : t.shape) h.word(uint64_t(d));
  }
  h.word(program.instructions.size());
  for (const Instruction& in : program.instructions) hashInstruction(h, in);
  h.word(program.locations.size());
  for (const SourceLocation& l : program.locations) {
    h.text(l.file);
    h.word(l.line);
  }
  h.word(program.replicaGroups.size());
  for (const ReplicaGroup& g : program.replicaGroups) {
    h.word(g.lists.size());
    for (const auto& list : g.lists) {
      h.word(list.size());
      for (uint32_t r : list) h.word(r);
    }
  }
  return h.value();
}

bool isVerifiedFor(const Program& program, const arch::ChipConfig& chip) {
  const VerifiedStamp& s = program.verified;
  return s.program != 0 && s.chip == arch::chipFingerprint(chip) &&
         s.program == programFingerprint(program);
}

Status ensureVerified(Program& program, const arch::ChipConfig& chip) {
  if (isVerifiedFor(program, chip)) return Status::ok();
  Status s = checkProgram(program, chip);
  if (s.isOk()) detail::stampVerified(program, chip);
  return s;
}

namespace detail {

void stampVerified(Program& program, const arch::ChipConfig& chip) {
  // 0 means "never verified": a fingerprint of 0 (one in 2^64) is stored as 1.
  const uint64_t fp = programFingerprint(program);
  program.verified = {arch::chipFingerprint(chip), fp != 0 ? fp : 1};
}

}  // namespace detail
}  // namespace trnsim::isa
