#pragma once
// The subcommands of the `trnsim` executable, each registered the same way (Command), and the
// error printing they share. Each command returns the process exit status. Errors the user can act
// on are printed as one line by printError() and give a non-zero status; anything thrown is caught
// in main() and reported the same way.

#include <functional>
#include <string>
#include <vector>

#include "trnsim/support/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace trnsim::cli {

/// One subcommand of `trnsim`. Each cmd_<name>.cpp has one function `add<Name>Command(app)`
/// that adds its subcommand and options to `app` and returns it with what to run when it was
/// given (the options are bound to state that `run` owns). main.cpp lists these functions in
/// one table, calls each once, and runs the one whose subcommand was parsed.
struct Command {
  ::CLI::App* cli = nullptr;  ///< the subcommand, as added to the app
  std::function<int()> run;   ///< runs it; returns the process exit status
};

Command addInfoCommand(::CLI::App& app);        ///< cmd_info.cpp
Command addRunCommand(::CLI::App& app);         ///< cmd_run.cpp
Command addDemoCommand(::CLI::App& app);        ///< cmd_demo.cpp
Command addNkiCommand(::CLI::App& app);         ///< cmd_python.cpp (`nki run`)
Command addTorchCommand(::CLI::App& app);       ///< cmd_python.cpp (`torch run`)
Command addCollectiveCommand(::CLI::App& app);  ///< cmd_collective.cpp
Command addPlanCommand(::CLI::App& app);        ///< cmd_plan.cpp
Command addClusterCommand(::CLI::App& app);     ///< cmd_cluster.cpp (multi-chip runs)

/// Prints "trnsim: error: <message>" to stderr and returns the exit status for failures (1).
int printError(const std::string& message);
/// The same for a Status: "trnsim: error: <where>: <message>".
int printError(const Status& status);

}  // namespace trnsim::cli
