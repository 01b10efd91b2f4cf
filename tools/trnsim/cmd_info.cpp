// `trnsim info CHIP [--json]`: a chip's configuration, with the public source of each number.

#include <fmt/core.h>

#include "commands.h"

#include "trnsim/arch/chip_config.h"

namespace trnsim::cli {

int infoCommand(const InfoArgs& args) {
  Expected<arch::ChipConfig> chip = arch::loadChip(args.chip);
  if (!chip) return printError(chip.status());
  const std::string text = args.json ? arch::chipToJson(*chip) : arch::describeChip(*chip);
  fmt::print("{}{}", text, (!text.empty() && text.back() == '\n') ? "" : "\n");
  return 0;
}

}  // namespace trnsim::cli
