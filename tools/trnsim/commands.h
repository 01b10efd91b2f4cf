#pragma once
// The subcommands of the `trnsim` executable. main.cpp parses the command line into these
// argument structs and calls one function; each function returns the process exit status.
// Errors the user can act on are printed as one line by printError() and give a non-zero
// status; anything thrown is caught in main() and reported the same way.

#include <functional>
#include <string>
#include <vector>

#include "trnsim/support/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace trnsim::cli {

/// `trnsim info CHIP [--json]`
struct InfoArgs {
  std::string chip;  ///< a built-in chip name ("trn2") or a path to a chip JSON file
  bool json = false;
};

/// `trnsim run PROGRAM [--chip trn2] [--input NAME=FILE.npy]... [--output-dir DIR]
///  [--timing-only] [--trace out.json] [--json]`
struct RunArgs {
  std::string programPath;  ///< a program in the text or the binary format
  std::string chip = "trn2";
  std::vector<std::string> inputs;  ///< `--input NAME=FILE.npy` options, as given
  std::string outputDir;            ///< write output tensors as .npy files here when not empty
  bool timingOnly = false;          ///< schedule the instructions without computing values
  std::string tracePath;            ///< write a Chrome/Perfetto trace here when not empty
  bool json = false;                ///< print the summary as JSON instead of text
};

/// `trnsim demo [--chip trn2] [--trace FILE]`
struct DemoArgs {
  std::string chip = "trn2";
  std::string tracePath = "demo_trace.json";
};

/// `trnsim nki run SCRIPT [ARGS...]`
struct NkiRunArgs {
  std::string script;
  std::vector<std::string> args;
  bool traceback = false;  ///< --traceback: Python's full traceback on an error
};

int infoCommand(const InfoArgs& args);
/// Replaces the process with the Python interpreter beside this executable (the .venv's)
/// running `-m trnsim.nki.compat SCRIPT ARGS...`; returns only on failure.
int nkiRunCommand(const NkiRunArgs& args);
/// Replaces the process with the Python interpreter beside this executable running
/// `-m MODULE ARGS...`; returns (an error) only when it cannot start.
int execPythonModule(const std::string& module, const std::vector<std::string>& args);
int runCommand(const RunArgs& args);
int demoCommand(const DemoArgs& args);

/// Commands added since the first release register themselves: each adds its subcommand and
/// options to `app` and returns what to run when that subcommand was given (options are bound
/// to state the returned function owns). main.cpp calls each once.
using CommandAction = std::function<int()>;
CommandAction addCollectiveCommand(::CLI::App& app);  ///< cmd_collective.cpp
CommandAction addPlanCommand(::CLI::App& app);        ///< cmd_plan.cpp
CommandAction addClusterCommand(::CLI::App& app);     ///< cmd_cluster.cpp (multi-chip runs)

/// Prints "trnsim: error: <message>" to stderr and returns the exit status for failures (1).
int printError(const std::string& message);
/// The same for a Status: "trnsim: error: <where>: <message>".
int printError(const Status& status);

}  // namespace trnsim::cli
