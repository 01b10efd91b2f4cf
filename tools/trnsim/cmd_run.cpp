// `trnsim run PROGRAM [--chip trn2] [--input NAME=FILE.npy]... [--output-dir DIR]
//                    [--timing-only] [--trace out.json] [--json]`: loads a program (text or
// binary form), simulates it on one NeuronCore and prints the summary.
// Input tensors (input and inout) named by --input are read from .npy files (shape equal to
// the tensor's, dtype the tensor's or converted exactly: tensor_files.h); the others are
// filled with seeded uniform values in [-1, 1), the same whichever others come from files, so
// a functional run computes real values and trips the uninitialized-read check only where the
// program itself reads memory nothing wrote. --output-dir writes every output and inout HBM
// tensor as DIR/NAME.npy after the run. Files and the directory are checked before the run.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "commands.h"
#include "tensor_files.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/verify.h"
#include "trnsim/profile/profile.h"
#include "trnsim/sim/chip.h"

namespace trnsim::cli {
namespace {

struct RunArgs {
  std::string programPath;  ///< a program in the text or the binary format
  std::string chip = "trn2";
  std::vector<std::string> inputs;  ///< `--input NAME=FILE.npy` options, as given
  std::string outputDir;            ///< write output tensors as .npy files here when not empty
  bool timingOnly = false;          ///< schedule the instructions without computing values
  uint32_t threads = 0;             ///< host threads for the functional work (0 = all cores)
  std::string tracePath;            ///< write a Chrome/Perfetto trace here when not empty
  bool json = false;                ///< print the summary as JSON instead of text
};

int runCommand(const RunArgs& args) {
  auto chip = arch::loadChip(args.chip);
  if (!chip) return printError(chip.status());
  auto program = isa::loadProgramFile(args.programPath);
  if (!program) return printError(program.status());

  // Inputs and outputs are checked before anything runs.
  auto specs = parseInputSpecs(args.inputs, /*ranks=*/false);
  if (!specs) return printError(specs.status());
  if (args.timingOnly && !specs->empty())
    return printError(
        "--input: a --timing-only run computes no values and reads no inputs; drop --timing-only "
        "or the --input options");
  if (args.timingOnly && !args.outputDir.empty())
    return printError(
        "--output-dir: a --timing-only run computes no values to write; drop --timing-only or "
        "--output-dir");
  const std::vector<uint32_t> inputs = inputTensors(*program, /*hbmOnly=*/false);
  if (Status s = checkInputSpecs(*specs, *program, inputs, 1, args.programPath); !s)
    return printError(s);
  std::map<uint32_t, std::vector<std::byte>> fromFiles;
  const std::map<uint32_t, std::string> files = inputFilesFor(*specs, *program, std::nullopt);
  for (const auto& [t, path] : files) {
    std::string note;
    auto bytes = loadTensorFile(path, program->tensors[t], &note);
    if (!bytes) return printError(bytes.status());
    if (!note.empty()) fmt::print(stderr, "trnsim: note: {}\n", note);
    fromFiles[t] = std::move(*bytes);
  }
  const std::vector<uint32_t> outputs = outputTensors(*program);
  std::vector<std::string> outputNames;
  if (!args.outputDir.empty()) {
    auto names = outputFileNames(*program, outputs);
    if (!names) return printError(names.status().withContext(args.programPath));
    outputNames = std::move(*names);
    if (Status s = prepareOutputDir(args.outputDir); !s) return printError(s);
  }

  sim::Chip c(*chip);
  if (Status s = c.load({*program}); !s) return printError(s.withContext(args.programPath));
  if (!args.timingOnly) {
    std::mt19937 gen(0);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (uint32_t t : inputs) {
      const isa::TensorDecl& d = program->tensors[t];
      // Draw the random values even for tensors from files, so each random input is the same
      // whichever others are given.
      std::vector<float> values(size_t(d.numElements()));
      for (auto& v : values) v = dist(gen);
      Status s = fromFiles.count(t) ? c.write(d.name, fromFiles[t]) : c.writeFloats(d.name, values);
      if (!s) return printError(s);
    }
  }
  sim::RunOptions opts;
  opts.computeValues = !args.timingOnly;
  opts.threads = args.threads;
  opts.recordEvents = !args.tracePath.empty();
  auto run = c.run(opts);
  if (!run) return printError(run.status().withContext(args.programPath));
  auto summary = profile::summarize(*chip, *run);
  if (!summary) return printError(summary.status());

  std::vector<std::string> written;
  for (size_t i = 0; i < outputNames.size(); ++i) {
    const isa::TensorDecl& d = program->tensors[outputs[i]];
    auto bytes = c.read(d.name);
    if (!bytes) return printError(bytes.status());
    std::string path = (std::filesystem::path(args.outputDir) / outputNames[i]).string();
    if (Status s = writeTensorFile(path, d, *bytes); !s) return printError(s);
    written.push_back(std::move(path));
  }

  const bool describeIo = !args.inputs.empty() || !args.outputDir.empty();
  if (args.json) {
    if (!describeIo) {
      fmt::print("{}\n", profile::summaryJson(*summary));
    } else {
      auto j = nlohmann::ordered_json::parse(profile::summaryJson(*summary));
      auto& in = j["inputs"] = nlohmann::ordered_json::object();
      for (uint32_t t : inputs)
        in[program->tensors[t].name] = files.count(t) ? files.at(t) : std::string("random");
      auto& out = j["outputs"] = nlohmann::ordered_json::object();
      for (size_t i = 0; i < written.size(); ++i)
        out[program->tensors[outputs[i]].name] = written[i];
      fmt::print("{}\n", j.dump(2));
    }
  } else {
    fmt::print("{}: {} instructions on {}{}\n", args.programPath, program->instructions.size(),
               chip->name, args.timingOnly ? " (timing only)" : "");
    if (!args.timingOnly && !inputs.empty()) {
      std::vector<std::string> parts;
      for (uint32_t t : inputs)
        parts.push_back(files.count(t)
                            ? fmt::format("{} <- {}", program->tensors[t].name, files.at(t))
                            : fmt::format("{} random", program->tensors[t].name));
      fmt::print("inputs: {}{}\n", fmt::join(parts, ", "),
                 files.size() < inputs.size() ? " (random: seeded uniform in [-1, 1))" : "");
    }
    fmt::print("{}\n", profile::formatSummary(*summary));
    if (!written.empty()) fmt::print("outputs written: {}\n", fmt::join(written, ", "));
  }
  if (!args.tracePath.empty()) {
    if (Status s = profile::writeTrace(
            args.tracePath, profile::singleChipTrace(*chip, c.programs(), run->timeline));
        !s)
      return printError(s);
    if (!args.json) fmt::print("trace written to {}\n", args.tracePath);
  }
  return 0;
}

}  // namespace

Command addRunCommand(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd =
      app.add_subcommand("run", "Simulate a program (text or binary form) on one chip.");
  cmd->add_option("PROGRAM", args->programPath, "Program file (text or binary form)")->required();
  cmd->add_option("--chip", args->chip, "Chip name or chip JSON file")->capture_default_str();
  cmd->add_option("--input", args->inputs,
                  "NAME=FILE.npy: fill input tensor NAME from a .npy file (repeatable; "
                  "tensors not given get seeded random values)")
      ->type_name("NAME=FILE")
      ->take_all()
      ->allow_extra_args(false);
  cmd->add_option("--output-dir", args->outputDir,
                  "Write every output and inout HBM tensor to DIR/NAME.npy after the run")
      ->type_name("DIR");
  cmd->add_flag("--timing-only", args->timingOnly,
                "Schedule instructions without computing values");
  cmd->add_option("--threads", args->threads,
                  "Host threads for the functional work inside an instruction (0 = one per "
                  "host core); the results are the same for any count")
      ->capture_default_str();
  cmd->add_option("--trace", args->tracePath, "Write a Chrome/Perfetto trace JSON to this file");
  cmd->add_flag("--json", args->json, "Print the summary as JSON");
  return {cmd, [args] { return runCommand(*args); }};
}

}  // namespace trnsim::cli
