// `trnsim run PROGRAM [--chip trn2] [--timing-only] [--trace out.json] [--json]`: loads a
// program (text or binary form), simulates it on one NeuronCore and prints the summary.
// Input HBM tensors are filled with seeded uniform values in [-1, 1) (there is no input file
// yet), so a functional run computes real values and trips the uninitialized-read check
// only where the program itself reads memory nothing wrote.

#include <fmt/format.h>

#include <random>
#include <vector>

#include "commands.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/verify.h"
#include "trnsim/profile/profile.h"
#include "trnsim/sim/chip.h"

namespace trnsim::cli {

int runCommand(const RunArgs& args) {
  auto chip = arch::loadChip(args.chip);
  if (!chip) return printError(chip.status());
  auto program = isa::loadProgramFile(args.programPath);
  if (!program) return printError(program.status());

  sim::Chip c(*chip);
  if (Status s = c.load({*program}); !s) return printError(s.withContext(args.programPath));
  if (!args.timingOnly) {
    std::mt19937 gen(0);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (const auto& t : program->tensors) {
      if (t.kind != isa::TensorKind::kInput && t.kind != isa::TensorKind::kInOut) continue;
      std::vector<float> values(size_t(t.numElements()));
      for (auto& v : values) v = dist(gen);
      if (Status s = c.writeFloats(t.name, values); !s) return printError(s);
    }
  }
  sim::RunOptions opts;
  opts.computeValues = !args.timingOnly;
  opts.recordEvents = !args.tracePath.empty();
  auto run = c.run(opts);
  if (!run) return printError(run.status().withContext(args.programPath));
  auto summary = profile::summarize(*chip, *run);
  if (!summary) return printError(summary.status());
  if (args.json) {
    fmt::print("{}\n", profile::summaryJson(*summary));
  } else {
    fmt::print("{}: {} instructions on {}{}\n", args.programPath, program->instructions.size(),
               chip->name, args.timingOnly ? " (timing only)" : "");
    fmt::print("{}\n", profile::formatSummary(*summary));
  }
  if (!args.tracePath.empty()) {
    if (Status s = profile::writeTrace(args.tracePath,
                                       profile::singleChipTrace(*chip, c.programs(), run->timeline));
        !s)
      return printError(s);
    if (!args.json) fmt::print("trace written to {}\n", args.tracePath);
  }
  return 0;
}

}  // namespace trnsim::cli
