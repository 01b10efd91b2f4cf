// `trnsim cluster`: not built yet (placeholder so main.cpp can register it).

#include <CLI/CLI.hpp>

#include "commands.h"

namespace trnsim::cli {

CommandAction addClusterCommand(CLI::App& /*app*/) { return {}; }

}  // namespace trnsim::cli
