// `trnsim info NAME [--json]`: a chip's or a system's configuration, with the public source of
// each number. NAME is a built-in chip (trn2), a built-in system (trn2.48xlarge, dgx-h100) or
// a path to a chip or system JSON file (a file with a "scale_up" key is a system).

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "commands.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"

namespace trnsim::cli {
namespace {

/// `trnsim info NAME [--json]`
struct InfoArgs {
  std::string chip;  ///< a built-in chip or system name, or a path to a JSON file
  bool json = false;
};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

/// True when NAME denotes a system rather than a chip.
bool isSystem(const std::string& name) {
  if (contains(arch::builtinChipNames(), name)) return false;
  if (contains(arch::builtinSystemNames(), name)) return true;
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
    std::ifstream in(name, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("\"scale_up\"") != std::string::npos;
  }
  return false;
}

int print(const std::string& text) {
  fmt::print("{}{}", text, (!text.empty() && text.back() == '\n') ? "" : "\n");
  return 0;
}

int infoCommand(const InfoArgs& args) {
  const bool json = args.json;
  if (isSystem(args.chip)) {
    Expected<arch::SystemConfig> system = arch::loadSystem(args.chip);
    if (!system) return printError(system.status());
    return print(json ? arch::systemToJson(*system) : arch::describeSystem(*system));
  }
  const bool looksLikeFile = args.chip.find(".json") != std::string::npos;
  if (!looksLikeFile && !contains(arch::builtinChipNames(), args.chip)) {
    std::string chips;
    for (const std::string& n : arch::builtinChipNames()) chips += (chips.empty() ? "" : ", ") + n;
    std::string systems;
    for (const std::string& n : arch::builtinSystemNames())
      systems += (systems.empty() ? "" : ", ") + n;
    return printError(fmt::format(
        "unknown chip or system '{}': built-in chips are {}; built-in systems are {}; or give a "
        "path to a chip or system .json file",
        args.chip, chips, systems));
  }
  Expected<arch::ChipConfig> chip = arch::loadChip(args.chip);
  if (!chip) return printError(chip.status());
  return print(json ? arch::chipToJson(*chip) : arch::describeChip(*chip));
}

}  // namespace

Command addInfoCommand(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd =
      app.add_subcommand("info", "Print a chip's or a system's configuration and its sources.");
  cmd->add_option("NAME", args->chip,
                  "A built-in chip (trn1, trn2, trn3) or system (trn2.48xlarge, dgx-h100, ...: "
                  "configs/systems), or a chip or system JSON file")
      ->required();
  cmd->add_flag("--json", args->json, "Print JSON instead of text");
  return {cmd, [args] { return infoCommand(*args); }};
}

}  // namespace trnsim::cli
