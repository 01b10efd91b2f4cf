// The `trnsim` command line: parses arguments with CLI11 and hands them to one subcommand.
// This is one of the two places (with the Python bindings) where exceptions are caught: any
// error ends the process with one line "trnsim: error: ..." on stderr and a non-zero status.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
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

  InfoArgs info;
  CLI::App* infoCmd =
      app.add_subcommand("info", "Print a chip's or a system's configuration and its sources.");
  infoCmd
      ->add_option("NAME", info.chip,
                   "A built-in chip (trn1, trn2, trn3) or system (trn2.48xlarge, dgx-h100, ...: "
                   "configs/systems), or a chip or system JSON file")
      ->required();
  infoCmd->add_flag("--json", info.json, "Print JSON instead of text");

  RunArgs run;
  CLI::App* runCmd =
      app.add_subcommand("run", "Simulate a program (text or binary form) on one chip.");
  runCmd->add_option("PROGRAM", run.programPath, "Program file (text or binary form)")->required();
  runCmd->add_option("--chip", run.chip, "Chip name or chip JSON file")->capture_default_str();
  runCmd
      ->add_option("--input", run.inputs,
                   "NAME=FILE.npy: fill input tensor NAME from a .npy file (repeatable; "
                   "tensors not given get seeded random values)")
      ->type_name("NAME=FILE")
      ->take_all()
      ->allow_extra_args(false);
  runCmd
      ->add_option("--output-dir", run.outputDir,
                   "Write every output and inout HBM tensor to DIR/NAME.npy after the run")
      ->type_name("DIR");
  runCmd->add_flag("--timing-only", run.timingOnly,
                   "Schedule instructions without computing values");
  runCmd->add_option("--trace", run.tracePath, "Write a Chrome/Perfetto trace JSON to this file");
  runCmd->add_flag("--json", run.json, "Print the summary as JSON");

  DemoArgs demo;
  CLI::App* demoCmd = app.add_subcommand(
      "demo",
      "Run a tiled bf16 matmul and a softmax on a simulated NeuronCore, checked and timed.");
  demoCmd->add_option("--chip", demo.chip, "Chip name or chip JSON file")->capture_default_str();
  demoCmd->add_option("--trace", demo.tracePath, "Write a Chrome/Perfetto trace JSON to this file")
      ->capture_default_str();

  NkiRunArgs nkiRun;
  CLI::App* nkiCmd = app.add_subcommand("nki", "Run NKI kernels written for Trainium.");
  nkiCmd->require_subcommand(1);
  CLI::App* nkiRunCmd = nkiCmd->add_subcommand(
      "run", "Run a Python script of NKI kernels unmodified (as python -m trnsim.nki.compat).");
  nkiRunCmd->add_flag("--traceback", nkiRun.traceback,
                      "On an error print Python's full traceback, not one 'trnsim: error:' line "
                      "(also TRNSIM_TRACEBACK=1); give it before SCRIPT");
  // SCRIPT and everything after it belong to the script (its own --traceback or --help
  // included): they are the remaining arguments, not options of this command.
  nkiRunCmd->prefix_command();
  nkiRunCmd->footer("Usage: trnsim nki run [--traceback] SCRIPT [ARGS...]");

  CLI::App* torchCmd = app.add_subcommand("torch", "Run PyTorch models on the simulated chip.");
  torchCmd->require_subcommand(1);
  CLI::App* torchRunCmd = torchCmd->add_subcommand(
      "run",
      "Run a PyTorch script with torch.compile going to trnsim (python -m trnsim.torch.run: "
      "[--chip C] [--dtype bf16] [--timing-only] [--fallback cpu] [--trace F] SCRIPT ARGS...).");
  torchRunCmd->set_help_flag();  // --help, options and the script all go to trnsim.torch.run
  torchRunCmd->allow_extras();
  torchRunCmd->prefix_command();

  struct Registered {
    CLI::App* cmd;
    CommandAction action;
  };
  std::vector<Registered> registered;
  for (auto add : {&addCollectiveCommand, &addPlanCommand, &addClusterCommand}) {
    size_t before = app.get_subcommands({}).size();
    CommandAction action = add(app);
    std::vector<CLI::App*> subs = app.get_subcommands({});
    if (subs.size() > before) registered.push_back({subs.back(), std::move(action)});
  }

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

  if (infoCmd->parsed()) return infoCommand(info);
  if (runCmd->parsed()) return runCommand(run);
  if (demoCmd->parsed()) return demoCommand(demo);
  for (const Registered& r : registered)
    if (r.cmd->parsed()) return r.action();
  if (nkiRunCmd->parsed()) {
    std::vector<std::string> rest = nkiRunCmd->remaining();
    if (rest.empty()) return printError("trnsim nki run: give the Python script to run");
    nkiRun.script = rest.front();
    nkiRun.args.assign(rest.begin() + 1, rest.end());
    return nkiRunCommand(nkiRun);
  }
  if (torchRunCmd->parsed()) return execPythonModule("trnsim.torch.run", torchRunCmd->remaining());
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
