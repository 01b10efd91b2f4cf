#pragma once
// The verifier: checks instructions against the hardware's rules and explains each violation.

#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::isa {

/// Checks one tensor declaration (shape, partitions, placement inside SBUF/PSUM).
Status verifyTensor(const Program& program, uint32_t tensorIndex, const arch::ChipConfig& chip);
/// Checks instruction `index` of `program`; the error names the instruction and operand.
Status verifyInstruction(const Program& program, size_t index, const arch::ChipConfig& chip);
/// Every violation of instruction `index` (verifyInstruction returns the first of these).
std::vector<Status> verifyInstructionAll(const Program& program, size_t index,
                                         const arch::ChipConfig& chip);
/// Every violation in the program: the location table, each tensor (verifyTensor), each
/// instruction (verifyInstruction, then the operand-overlap rule: no written operand shares a
/// byte with a read one, except an identical in-place operand of an elementwise instruction),
/// and live tensors whose placements overlap. Always checks, stamp or not.
std::vector<Status> verifyProgram(const Program& program, const arch::ChipConfig& chip);
/// Ok, or the first violation (its message says how many more there are).
Status checkProgram(const Program& program, const arch::ChipConfig& chip);

// ---- verification once ----
// A program is verified once against a chip config and stamped (Program::verified); loading
// it again (sim::Chip::load) only compares fingerprints. KernelBuilder::finish stamps what it
// hands over (it checked each tensor and instruction as it was added); programs parsed from
// text or binary, or built by hand, carry no stamp and are verified where they are loaded.

/// A 64-bit fingerprint of everything in `program` that the verifier or the simulator reads
/// (name, target, tensors, instructions with their access patterns' first numFree dims,
/// locations, replica groups; not the stamp). Changing one value (an offset, a stride, a flag)
/// always changes it; any other change does but for a 2^-64 chance.
uint64_t programFingerprint(const Program& program);
/// True when `program` carries a stamp for `chip` (arch::chipFingerprint) that its contents
/// still match.
bool isVerifiedFor(const Program& program, const arch::ChipConfig& chip);
/// Ok at once when isVerifiedFor(program, chip); otherwise checkProgram, stamping the program
/// when it passes.
Status ensureVerified(Program& program, const arch::ChipConfig& chip);
/// How many times verifyProgram (checkProgram, ensureVerified without a valid stamp) checked
/// a whole program in this process: for tests that a verified program is not checked again.
uint64_t programVerificationCount();

namespace detail {
/// For KernelBuilder::finish: the rules verifyProgram adds to verifyTensor and
/// verifyInstruction (the location table, the operand-overlap rule, overlapping live tensors),
/// for a program whose every tensor and instruction already passed those. On success the
/// program is stamped as verified for `chip`.
Status finishVerification(Program& program, const arch::ChipConfig& chip);
/// Stamps `program`, as it is now, as verified for `chip`.
void stampVerified(Program& program, const arch::ChipConfig& chip);
}  // namespace detail

}  // namespace trnsim::isa
