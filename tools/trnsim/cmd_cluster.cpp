// `trnsim cluster run PROGRAM --chips N [--system NAME|FILE] [--chip trn2] [--timing-only]
//                    [--input [RANK:]NAME=FILE.npy]... [--output-dir DIR]
//                    [--seed S] [--threads T] [--output-hash] [--json] [--trace FILE]`
// runs one program on every chip of a simulated cluster (SPMD: rank r reads its id from an
// HBM tensor named "rank_id" when the program has one), with real data exchanged by the
// collective instructions (docs/fabric.md, "Functional runs"). Inputs (input and inout HBM
// tensors) come from .npy files (`--input NAME=FILE` for every rank, `--input R:NAME=FILE`
// for rank R, "{rank}" in FILE replaced by the rank; tensor_files.h) or are seeded uniform
// values in [-1, 1), different per rank. --output-dir writes each rank's output and inout HBM
// tensors to DIR/rank<R>/NAME.npy. Under `mpirun -np K trnsim cluster run ...` the chips are
// spread over the K processes, each writes its own ranks' files, and process 0 prints the
// same results as a single process would (host_seconds aside).

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "tensor_files.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/fabric/cluster.h"
#include "trnsim/fabric/transport.h"
#include "trnsim/isa/binary.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/profile/trace.h"

namespace trnsim::cli {
namespace {

struct ClusterRunArgs {
  std::string programPath;
  uint32_t chips = 2;
  std::string system;  ///< empty: the chip's default system
  std::string chip = "trn2";
  bool timingOnly = false;
  uint64_t seed = 0;
  uint32_t threads = 0;
  bool outputHash = false;
  bool json = false;
  std::string tracePath;
  std::vector<std::string> inputs;  ///< `--input [RANK:]NAME=FILE` options, as given
  std::string outputDir;            ///< write outputs to DIR/rank<R>/NAME.npy when not empty
};

/// Tensor index -> the bytes to write instead of random values, for one rank.
using FileInputs = std::map<uint32_t, std::shared_ptr<const std::vector<std::byte>>>;

std::string rankDir(const std::string& dir, uint32_t rank) {
  return (std::filesystem::path(dir) / fmt::format("rank{}", rank)).string();
}

/// Inputs of one rank: from `files`, else seeded uniform in [-1, 1), one stream per
/// (seed, rank, tensor).
Status writeInputs(fabric::Cluster& c, uint32_t rank, uint64_t seed, const FileInputs& files) {
  const isa::Program& p = c.program(rank);
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    const isa::TensorDecl& d = p.tensors[t];
    if (d.space != isa::MemSpace::kHbm ||
        (d.kind != isa::TensorKind::kInput && d.kind != isa::TensorKind::kInOut) ||
        d.name == fabric::kRankTensorName)
      continue;
    if (auto f = files.find(uint32_t(t)); f != files.end()) {
      TRNSIM_RETURN_IF_ERROR(c.write(rank, d.name, *f->second));
      continue;
    }
    std::mt19937_64 gen(seed * 0x9e3779b97f4a7c15ull + uint64_t(rank) * 1000003ull + t);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> values(size_t(std::max<int64_t>(d.numElements(), 0)));
    for (float& v : values) v = dist(gen);
    std::vector<std::byte> bytes(values.size() * numerics::dtypeSize(d.dtype));
    numerics::convertFromFloat(d.dtype, values.data(), bytes.data(), values.size());
    TRNSIM_RETURN_IF_ERROR(c.write(rank, d.name, bytes));
  }
  return {};
}

int clusterRun(const ClusterRunArgs& args) {
  // Under mpirun every process checks the same inputs and the cluster hands every process the
  // same run error (naming the rank), so those print once, from process 0. What a process
  // sees alone (its ranks' inputs and output files) it prints itself, naming the process.
  const int mpiProcess = fabric::launchedByMpi() ? fabric::launchedProcessIndex() : -1;
  auto shared = [&](const auto& error) { return mpiProcess > 0 ? 1 : printError(error); };
  auto local = [&](const Status& error) {
    return printError(mpiProcess >= 0 ? error.withContext(fmt::format("MPI process {}", mpiProcess))
                                      : error);
  };
  auto chip = arch::loadChip(args.chip);
  if (!chip) return shared(chip.status());
  std::unique_ptr<arch::SystemConfig> system;
  if (!args.system.empty()) {
    auto s = arch::loadSystem(args.system);
    if (!s) return shared(s.status());
    system = std::make_unique<arch::SystemConfig>(std::move(*s));
  }
  auto program = isa::loadProgramFile(args.programPath);
  if (!program) return shared(program.status());
  fabric::ClusterOptions copts;
  copts.threads = args.threads;
  auto cluster = fabric::Cluster::create(*chip, system.get(), args.chips, copts);
  if (!cluster) return shared(cluster.status());
  fabric::Cluster& c = *cluster;
  if (Status s = c.loadAll(*program); !s) return shared(s.withContext(args.programPath));

  // Input files and the output directory, checked before the run. Every process checks every
  // rank's files (cheap: a file given for all ranks is read once), so under MPI all processes
  // fail alike instead of some waiting for the others in the run.
  auto specs = parseInputSpecs(args.inputs, /*ranks=*/true);
  if (!specs) return shared(specs.status());
  if (args.timingOnly && !specs->empty())
    return shared(
        "--input: a --timing-only run computes no values and reads no inputs; drop --timing-only "
        "or the --input options");
  if (args.timingOnly && !args.outputDir.empty())
    return shared(
        "--output-dir: a --timing-only run computes no values to write; drop --timing-only or "
        "--output-dir");
  const std::vector<uint32_t> inputs =
      inputTensors(*program, /*hbmOnly=*/true, fabric::kRankTensorName);
  if (Status s = checkInputSpecs(*specs, *program, inputs, c.size(), args.programPath); !s)
    return shared(s);
  std::vector<std::map<uint32_t, std::string>> inputFiles(c.size());
  std::vector<FileInputs> fileInputs(c.size());
  std::map<std::pair<uint32_t, std::string>, std::shared_ptr<const std::vector<std::byte>>> loaded;
  for (uint32_t r = 0; r < c.size(); ++r) {
    inputFiles[r] = inputFilesFor(*specs, *program, r);
    for (const auto& [t, path] : inputFiles[r]) {
      auto& slot = loaded[{t, path}];
      if (!slot) {
        std::string note;
        auto bytes = loadTensorFile(path, program->tensors[t], &note);
        if (!bytes) return shared(bytes.status());
        if (!note.empty() && c.process() == 0) fmt::print(stderr, "trnsim: note: {}\n", note);
        slot = std::make_shared<const std::vector<std::byte>>(std::move(*bytes));
      }
      if (c.isLocal(r)) fileInputs[r][t] = slot;
    }
  }
  loaded.clear();
  const std::vector<uint32_t> outputs = outputTensors(*program);
  std::vector<std::string> outputNames;
  if (!args.outputDir.empty()) {
    auto names = outputFileNames(*program, outputs);
    if (!names) return shared(names.status().withContext(args.programPath));
    outputNames = std::move(*names);
    // Every rank's folder from every process, for the same reason as the inputs.
    for (uint32_t r = 0; r < c.size(); ++r)
      if (Status s = prepareOutputDir(rankDir(args.outputDir, r)); !s) return shared(s);
  }

  if (!args.timingOnly)
    for (uint32_t r = c.firstLocalRank(); r < c.endLocalRank(); ++r)
      if (Status s = writeInputs(c, r, args.seed, fileInputs[r]); !s) return local(s);
  fabric::ClusterRunOptions ropts;
  ropts.computeValues = !args.timingOnly;
  ropts.recordEvents = !args.tracePath.empty();
  ropts.seed = args.seed;
  auto run = c.run(ropts);
  if (!run) return shared(run.status().withContext(args.programPath));
  std::vector<uint64_t> hashes;
  if (args.outputHash && !args.timingOnly) {
    auto h = c.outputHashes();
    if (!h) return shared(h.status());
    hashes = std::move(*h);
  }
  const fabric::ClusterResult& res = *run;

  // Each process writes the outputs of its own ranks.
  auto outputPath = [&](uint32_t r, size_t i) {
    return (std::filesystem::path(rankDir(args.outputDir, r)) / outputNames[i]).string();
  };
  for (uint32_t r = c.firstLocalRank(); r < c.endLocalRank() && !outputNames.empty(); ++r) {
    for (size_t i = 0; i < outputNames.size(); ++i) {
      const isa::TensorDecl& d = program->tensors[outputs[i]];
      auto bytes = c.read(r, d.name);
      if (!bytes) return local(bytes.status());
      if (Status s = writeTensorFile(outputPath(r, i), d, *bytes); !s) return local(s);
    }
  }
  const bool describeIo = !args.inputs.empty() || !args.outputDir.empty();

  if (!args.tracePath.empty()) {
    // Each process holds the timelines of its own ranks; process 0 writes those.
    if (c.process() == 0) {
      profile::TraceInput in;
      for (uint32_t r = c.firstLocalRank(); r < c.endLocalRank(); ++r) {
        profile::ChipTrace t;
        t.name = fmt::format("rank {}", r);
        t.timeline = &res.ranks[r].run.timeline;
        t.programs = {&c.program(r)};
        t.config = &c.chip();
        in.chips.push_back(std::move(t));
      }
      if (Status s = profile::writeTrace(args.tracePath, in); !s) return local(s);
    }
  }
  if (c.process() != 0) return 0;

  if (args.json) {
    nlohmann::ordered_json j;
    j["program"] = program->name;
    j["chip"] = chip->name;
    j["system"] = c.system().name;
    j["chips"] = c.size();
    j["processes"] = c.processes();
    j["timing_only"] = args.timingOnly;
    j["simulated_ns"] = res.simulatedNs;
    j["compute_ns"] = res.computeNs;
    j["exposed_comm_ns"] = res.exposedCommNs;
    j["comm_ns"] = res.commNs;
    j["comm_tax"] = res.commTax;
    j["overlap"] = res.overlap;
    j["supersteps"] = res.supersteps;
    j["host_seconds"] = res.hostSeconds;
    j["bytes_reduced"] = res.bytesReduced;
    auto& cols = j["collectives"] = nlohmann::ordered_json::array();
    for (const auto& rec : res.collectives) {
      nlohmann::ordered_json e;
      e["op"] = fabric::opName(rec.op);
      e["instruction"] = rec.instruction;
      e["ranks"] = rec.ranks;
      e["bytes"] = rec.bytes;
      e["start_ns"] = rec.startNs;
      e["end_ns"] = rec.endNs;
      e["time_s"] = (rec.endNs - rec.startNs) * 1e-9;
      e["algorithm"] = fabric::algorithmName(rec.algorithm);
      e["algbw_gbps"] = rec.algbwGbps;
      e["busbw_gbps"] = rec.busbwGbps;
      cols.push_back(std::move(e));
    }
    auto& ranks = j["ranks"] = nlohmann::ordered_json::array();
    for (uint32_t r = 0; r < c.size(); ++r) {
      nlohmann::ordered_json e;
      e["rank"] = r;
      e["simulated_ns"] = res.ranks[r].run.simulatedNs;
      e["compute_ns"] = res.ranks[r].computeNs;
      e["exposed_comm_ns"] = res.ranks[r].exposedCommNs;
      e["instructions"] = res.ranks[r].run.instructions;
      if (!hashes.empty()) e["output_hash"] = fmt::format("{:016x}", hashes[r]);
      if (describeIo) {
        auto& in = e["inputs"] = nlohmann::ordered_json::object();
        for (uint32_t t : inputs)
          in[program->tensors[t].name] =
              inputFiles[r].count(t) ? inputFiles[r].at(t) : std::string("random");
        auto& out = e["outputs"] = nlohmann::ordered_json::object();
        for (size_t i = 0; i < outputNames.size(); ++i)
          out[program->tensors[outputs[i]].name] = outputPath(r, i);
      }
      ranks.push_back(std::move(e));
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{}: {} chips of {} on {} ({} process{}){}\n", args.programPath, c.size(), chip->name,
             c.system().name, c.processes(), c.processes() == 1 ? "" : "es",
             args.timingOnly ? ", timing only" : "");
  if (!args.timingOnly && !inputs.empty()) {
    std::vector<std::string> parts;
    bool anyRandom = false;
    for (uint32_t t : inputs) {
      const std::string& name = program->tensors[t].name;
      bool forAll = false;
      uint32_t ranksGiven = 0;
      for (const InputSpec& spec : *specs) {
        if (program->findTensor(spec.tensor) != t) continue;
        forAll |= !spec.rank;
        ranksGiven += spec.rank ? 1 : 0;
        parts.push_back(spec.rank ? fmt::format("{} <- {} (rank {})", name, spec.path, *spec.rank)
                                  : fmt::format("{} <- {}", name, spec.path));
      }
      if (!forAll && ranksGiven < c.size()) {
        parts.push_back(ranksGiven ? fmt::format("{} random on the other ranks", name)
                                   : fmt::format("{} random", name));
        anyRandom = true;
      }
    }
    fmt::print("inputs: {}{}\n", fmt::join(parts, ", "),
               anyRandom ? " (random: seeded uniform in [-1, 1), per rank)" : "");
  }
  fmt::print("simulated time   {:.3f} us\n", res.simulatedNs * 1e-3);
  fmt::print("compute          {:.3f} us (mean over ranks)\n", res.computeNs * 1e-3);
  fmt::print("exposed comm     {:.3f} us (mean over ranks; waiting for peers included)\n",
             res.exposedCommNs * 1e-3);
  fmt::print("comm tax         {:.1f}% of the step; overlap {:.1f}%\n", res.commTax * 100,
             res.overlap * 100);
  // Collectives, one line per instruction (its rank-lists together).
  struct Row {
    fabric::CollectiveOp op;
    uint64_t bytes = 0, lists = 0, ranks = 0;
    double start = 1e300, end = 0, busbw = 0;
    std::string algorithm;
  };
  std::map<size_t, Row> rows;
  for (const auto& rec : res.collectives) {
    Row& row = rows[rec.instruction];
    row.op = rec.op;
    row.bytes = rec.bytes;
    row.lists += 1;
    row.ranks = rec.ranks.size();
    row.start = std::min(row.start, rec.startNs);
    row.end = std::max(row.end, rec.endNs);
    row.busbw = rec.busbwGbps;
    row.algorithm = std::string(fabric::algorithmName(rec.algorithm));
  }
  if (!rows.empty()) {
    fmt::print("{:>5}  {:<18} {:>12} {:>11} {:>12} {:>12}  {:<18} {:>10}\n", "inst", "op", "bytes",
               "lists x n", "start us", "end us", "algorithm", "busbw GB/s");
    for (const auto& [inst, row] : rows)
      fmt::print("{:>5}  {:<18} {:>12} {:>11} {:>12.3f} {:>12.3f}  {:<18} {:>10.1f}\n", inst,
                 fabric::opName(row.op), row.bytes, fmt::format("{} x {}", row.lists, row.ranks),
                 row.start * 1e-3, row.end * 1e-3, row.algorithm, row.busbw);
  }
  for (uint32_t r = 0; r < hashes.size(); ++r)
    fmt::print("rank {} output hash {:016x}\n", r, hashes[r]);
  fmt::print("host: {:.3f} s, {} supersteps, {:.2f} GB reduced ({:.2f} GB/s)\n", res.hostSeconds,
             res.supersteps, double(res.bytesReduced) * 1e-9,
             res.hostSeconds > 0 ? double(res.bytesReduced) * 1e-9 / res.hostSeconds : 0.0);
  if (!outputNames.empty())
    fmt::print("outputs written: {}/rank{{0..{}}}/{{{}}}\n", args.outputDir, c.size() - 1,
               fmt::join(outputNames, ","));
  if (!args.tracePath.empty()) fmt::print("trace written to {}\n", args.tracePath);
  return 0;
}

}  // namespace

Command addClusterCommand(CLI::App& app) {
  auto args = std::make_shared<ClusterRunArgs>();
  CLI::App* cluster =
      app.add_subcommand("cluster", "Run programs on many simulated chips")->require_subcommand(1);
  CLI::App* run = cluster->add_subcommand(
      "run", "Run one program on every chip (SPMD) with real collectives; works under mpirun");
  run->add_option("program", args->programPath, "Program file (text or binary form)")->required();
  run->add_option("--chips", args->chips, "Number of chips (ranks 0..N-1)")->required();
  run->add_option("--system", args->system,
                  "System that times the collectives (default: the chip's, e.g. trn2.48xlarge)");
  run->add_option("--chip", args->chip, "Chip config name or JSON file")->capture_default_str();
  run->add_flag("--timing-only", args->timingOnly, "Time without computing values");
  run->add_option("--input", args->inputs,
                  "[RANK:]NAME=FILE.npy: fill input tensor NAME of every rank (or of rank RANK) "
                  "from a .npy file; {rank} in FILE becomes the rank (repeatable)")
      ->type_name("[RANK:]NAME=FILE")
      ->take_all()
      ->allow_extra_args(false);
  run->add_option("--output-dir", args->outputDir,
                  "Write each rank's output and inout HBM tensors to DIR/rank<R>/NAME.npy")
      ->type_name("DIR");
  run->add_option("--seed", args->seed, "Seed of the random inputs and RNG instructions")
      ->capture_default_str();
  run->add_option("--threads", args->threads, "Host threads (0 = all cores)")
      ->capture_default_str();
  run->add_flag("--output-hash", args->outputHash,
                "Print a hash of each rank's outputs (compare runs across layouts)");
  run->add_flag("--json", args->json, "Print the results as JSON");
  run->add_option("--trace", args->tracePath, "Write a Chrome/Perfetto trace of the ranks");
  return {cluster, [args, run]() -> int {
            if (!run->parsed()) return printError("trnsim cluster: give a subcommand (run)");
            return clusterRun(*args);
          }};
}

}  // namespace trnsim::cli
