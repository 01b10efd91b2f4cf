// The `trnsim` command line: parses arguments with CLI11 and hands them to one subcommand
// (each registered by its cmd_<name>.cpp through commands.h's Command).
// This is one of the two places (with the Python bindings) where exceptions are caught: any
// error ends the process with one line "trnsim: error: ..." on stderr and a non-zero status.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"

namespace trnsim::cli {

int printError(const std::string& message) {
  // Control bytes from file names, tensor names or file contents are shown as \xNN, never
  // sent to the terminal raw (an escape sequence in a name could rewrite the screen).
  std::string shown;
  shown.reserve(message.size());
  for (unsigned char c : message) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      shown += fmt::format("\\x{:02x}", c);
    } else {
      shown += char(c);
    }
  }
  std::fflush(stdout);
  fmt::print(stderr, "trnsim: error: {}\n", shown);
  return 1;
}

int printError(const Status& status) { return printError(status.toString()); }

namespace {

/// Exit status for a command line that does not parse (as most Unix tools do).
constexpr int kUsageExitStatus = 2;

int runMain(int argc, char** argv) {
  CLI::App app{"trnsim: a cycle-approximate simulator of Trainium-class accelerator chips.",
               "trnsim"};
  app.set_version_flag("--version", "trnsim " TRNSIM_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'trnsim COMMAND --help' for the options of one command.");

  // Every subcommand, in the order --help lists them; each is added the same way.
  constexpr std::array kAddCommands = {&addInfoCommand, &addRunCommand,    &addDemoCommand,
                                       &addNkiCommand,  &addTorchCommand,  &addCollectiveCommand,
                                       &addPlanCommand, &addClusterCommand};
  std::vector<Command> commands;
  for (auto add : kAddCommands) commands.push_back(add(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (argc <= 1) {
      printError("no command given; run 'trnsim --help' for the list");
    } else {
      std::string helpCommand = "trnsim --help";
      for (const CLI::App* sub : app.get_subcommands()) {
        helpCommand = fmt::format("trnsim {} --help", sub->get_name());
      }
      printError(fmt::format("{} (see '{}')", e.what(), helpCommand));
    }
    return kUsageExitStatus;
  }

  for (const Command& c : commands)
    if (c.cli->parsed()) return c.run();
  return printError("no command given; run 'trnsim --help' for the list");
}

}  // namespace
}  // namespace trnsim::cli

int main(int argc, char** argv) {
  try {
    return trnsim::cli::runMain(argc, argv);
  } catch (const std::exception& e) {
    return trnsim::cli::printError(e.what());
  } catch (...) {
    return trnsim::cli::printError("unknown internal error (please report this as a bug)");
  }
}
