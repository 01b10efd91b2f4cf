#pragma once
// A readable text form of programs that round-trips: parseProgram(printProgram(p)) == p.

#include <string>
#include <string_view>

#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::isa {

std::string printAccessPattern(const Program& program, const AccessPattern& ap);
std::string printInstruction(const Program& program, const Instruction& inst);
std::string printProgram(const Program& program);
/// Parses the text form; errors name `origin`:line:column and what was expected.
Expected<Program> parseProgram(std::string_view text, const std::string& origin);

}  // namespace trnsim::isa
