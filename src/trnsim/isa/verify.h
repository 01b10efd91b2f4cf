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
/// Every violation in the program (tensors, instructions, overlapping live allocations).
std::vector<Status> verifyProgram(const Program& program, const arch::ChipConfig& chip);
/// Ok, or the first violation (its message says how many more there are).
Status checkProgram(const Program& program, const arch::ChipConfig& chip);

}  // namespace trnsim::isa
