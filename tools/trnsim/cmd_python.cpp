// Commands whose work is Python (`trnsim nki run`, `trnsim torch run`): the process becomes the
// Python interpreter installed beside this executable (the .venv's), running a module of the
// trnsim package with the user's arguments.

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"

namespace trnsim::cli {
namespace {

/// Replaces the process with the Python interpreter beside this executable (the .venv's)
/// running `-m MODULE ARGS...`; returns (an error) only when it cannot start.
int execPythonModule(const std::string& module, const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  std::string python = "python3";
  for (const char* name : {"python", "python3"}) {
    const fs::path candidate = self.parent_path() / name;
    if (!ec && fs::exists(candidate)) {
      python = candidate.string();
      break;
    }
  }
  std::vector<std::string> argvStrings = {python, "-m", module};
  argvStrings.insert(argvStrings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argvStrings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  execvp(argv[0], argv.data());
  return printError(
      fmt::format("cannot start '{}' for {}: {}; install trnsim with `make` so "
                  "its Python environment sits beside the trnsim executable",
                  python, module, std::strerror(errno)));
}

}  // namespace

Command addNkiCommand(CLI::App& app) {
  auto traceback = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("nki", "Run NKI kernels written for Trainium.");
  cmd->require_subcommand(1);
  CLI::App* run = cmd->add_subcommand(
      "run", "Run a Python script of NKI kernels unmodified (as python -m trnsim.nki.compat).");
  run->add_flag("--traceback", *traceback,
                "On an error print Python's full traceback, not one 'trnsim: error:' line "
                "(also TRNSIM_TRACEBACK=1); give it before SCRIPT");
  // SCRIPT and everything after it belong to the script (its own --traceback or --help
  // included): they are the remaining arguments, not options of this command.
  run->prefix_command();
  run->footer("Usage: trnsim nki run [--traceback] SCRIPT [ARGS...]");
  return {cmd, [traceback, run] {
            std::vector<std::string> rest = run->remaining();
            if (rest.empty()) return printError("trnsim nki run: give the Python script to run");
            if (*traceback) rest.insert(rest.begin(), "--traceback");
            return execPythonModule("trnsim.nki.compat", rest);
          }};
}

Command addTorchCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("torch", "Run PyTorch models on the simulated chip.");
  cmd->require_subcommand(1);
  CLI::App* run = cmd->add_subcommand(
      "run",
      "Run a PyTorch script with torch.compile going to trnsim (python -m trnsim.torch.run: "
      "[--chip C] [--dtype bf16] [--timing-only] [--fallback cpu] [--trace F] SCRIPT ARGS...).");
  run->set_help_flag();  // --help, options and the script all go to trnsim.torch.run
  run->allow_extras();
  run->prefix_command();
  return {cmd, [run] { return execPythonModule("trnsim.torch.run", run->remaining()); }};
}

}  // namespace trnsim::cli
