// `trnsim collective`: the time and bus bandwidth of one collective on a system, from the
// fabric's analytical cost model (docs/fabric.md).
//
//   trnsim collective --system NAME|FILE [--chips N] --op all_reduce --bytes 1GiB
//                     [--algorithm auto|ring|...] [--group-size N --group-stride S] [--alone]
//                     [--skew X] [--json]
//   trnsim collective --system NAME --sweep [--min-bytes 8 --max-bytes 8GiB --factor 2] [--json]

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/topology.h"

namespace trnsim::cli {

namespace {

struct CollectiveArgs {
  std::string system;
  uint64_t chips = 0;
  std::string op = "all_reduce";
  std::string bytes = "1GiB";
  std::string algorithm = "auto";
  uint64_t groupSize = 0;
  uint64_t groupStride = 1;
  bool alone = false;
  double skew = 1.0;
  bool json = false;
  bool sweep = false;
  std::string minBytes = "8";
  std::string maxBytes = "8GiB";
  uint64_t factor = 2;
};

/// "8", "4K", "1MiB", "1GiB", "1GB", "1.5G": bare K/M/G/T and KiB/MiB/GiB/TiB are powers of
/// 1024 (as nccl-tests reads -b/-e); KB/MB/GB/TB are powers of 1000.
Expected<uint64_t> parseBytes(const std::string& text, const std::string& option) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  std::string number = text.substr(0, i), unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto bad = [&] {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' is not a size; write bytes as 8, 4K, 1MiB, 1GiB or 1GB "
                              "(K/KiB = 1024, KB = 1000)",
                              text),
                  option);
  };
  if (number.empty() || number.find('.') != number.rfind('.')) return bad();
  double value = std::strtod(number.c_str(), nullptr);
  double scale = 0;
  const std::vector<std::pair<std::string, double>> units = {{"", 1},
                                                             {"B", 1},
                                                             {"K", 1024.0},
                                                             {"KIB", 1024.0},
                                                             {"KB", 1e3},
                                                             {"M", 1048576.0},
                                                             {"MIB", 1048576.0},
                                                             {"MB", 1e6},
                                                             {"G", 1073741824.0},
                                                             {"GIB", 1073741824.0},
                                                             {"GB", 1e9},
                                                             {"T", 1099511627776.0},
                                                             {"TIB", 1099511627776.0},
                                                             {"TB", 1e12}};
  for (const auto& [u, s] : units) {
    if (u == unit) scale = s;
  }
  if (scale == 0) return bad();
  double bytes = value * scale;
  if (!std::isfinite(bytes) || bytes > 9.2e18) return bad();
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string humanBytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(b);
  int u = 0;
  while (v >= 1024 && u < 4 && std::fmod(v, 1024) == 0) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:g} {}", v, units[u]);
}

std::string humanTime(double s) {
  if (s == 0) return "0 s";
  if (s < 1e-3) return fmt::format("{:.2f} us", s * 1e6);
  if (s < 1) return fmt::format("{:.3f} ms", s * 1e3);
  return fmt::format("{:.3f} s", s);
}

nlohmann::json costJson(const fabric::CollectiveRequest& r, const fabric::CollectiveCost& c) {
  nlohmann::json j;
  j["op"] = std::string(fabric::opName(r.op));
  j["bytes"] = r.bytes;
  j["time_s"] = c.timeS;
  j["algorithm"] = std::string(fabric::algorithmName(c.algorithm));
  j["algbw_gbps"] = c.algbwGbps;
  j["busbw_gbps"] = c.busbwGbps;
  j["ranks"] = c.ranks;
  nlohmann::json phases = nlohmann::json::array();
  for (const fabric::PhaseCost& p : c.phases) {
    phases.push_back({{"name", p.name},
                      {"time_s", p.timeS},
                      {"steps", p.steps},
                      {"bytes_per_rank", p.bytesPerRank}});
  }
  j["phases"] = phases;
  nlohmann::json cands = nlohmann::json::array();
  for (const auto& [a, t] : c.candidates) {
    cands.push_back({{"algorithm", std::string(fabric::algorithmName(a))}, {"time_s", t}});
  }
  j["candidates"] = cands;
  return j;
}

int runCollective(const CollectiveArgs& args) {
  Expected<arch::SystemConfig> system = arch::loadSystem(args.system);
  if (!system) return printError(system.status().withContext("--system"));
  Expected<fabric::CollectiveOp> op = fabric::parseOp(args.op);
  if (!op) return printError(Status(op.status().code(), op.status().message(), "--op"));
  Expected<fabric::Algorithm> algorithm = fabric::parseAlgorithm(args.algorithm);
  if (!algorithm) {
    return printError(
        Status(algorithm.status().code(), algorithm.status().message(), "--algorithm"));
  }
  uint64_t chips = args.chips;
  if (chips == 0) {
    chips = 1;
    for (const arch::FabricDim& d : system->scaleUp) chips *= d.size;
  }
  Expected<fabric::CollectiveModel> model = fabric::CollectiveModel::create(*system, chips);
  if (!model) return printError(model.status().withContext("--chips"));

  fabric::CollectiveRequest request;
  request.op = *op;
  request.algorithm = *algorithm;
  request.group = {args.groupSize, args.groupStride, !args.alone};
  request.skew = args.skew;

  auto estimate = [&](uint64_t bytes) -> Expected<fabric::CollectiveCost> {
    request.bytes = bytes;
    Expected<fabric::CollectiveCost> c = model->estimate(request);
    if (!c) {
      const Status& s = c.status();
      std::string where = s.where();
      if (where.find("group") != std::string::npos)
        where = "--group-size/--group-stride";
      else if (where.find("algorithm") != std::string::npos || s.code() == ErrorCode::kUnsupported)
        where = "--algorithm";
      else if (where.find("skew") != std::string::npos)
        where = "--skew";
      return Status(s.code(), s.message(), where);
    }
    return c;
  };

  const std::string header =
      fmt::format("{}: {} chips x {} ranks per chip; {}", system->name, model->chips(),
                  model->topology().ranksPerChip(), model->topology().describe());

  if (args.sweep) {
    Expected<uint64_t> lo = parseBytes(args.minBytes, "--min-bytes");
    if (!lo) return printError(lo.status());
    Expected<uint64_t> hi = parseBytes(args.maxBytes, "--max-bytes");
    if (!hi) return printError(hi.status());
    if (*lo == 0 || *hi < *lo) {
      return printError(Status(ErrorCode::kInvalidArgument,
                               "the sweep needs 0 < --min-bytes <= --max-bytes", "--min-bytes"));
    }
    if (args.factor < 2) {
      return printError(Status(ErrorCode::kInvalidArgument, "must be at least 2", "--factor"));
    }
    nlohmann::json rows = nlohmann::json::array();
    std::string table = fmt::format("# {}\n# {} over {} ranks (nccl-tests bus bandwidth)\n", header,
                                    args.op, args.groupSize ? args.groupSize : model->ranks());
    table += fmt::format("# {:>14} {:>14} {:>12} {:>12}  {}\n", "size(B)", "time(us)",
                         "algbw(GB/s)", "busbw(GB/s)", "algorithm");
    for (uint64_t b = *lo; b <= *hi; b *= args.factor) {
      Expected<fabric::CollectiveCost> c = estimate(b);
      if (!c) return printError(c.status());
      if (args.json) {
        nlohmann::json j = costJson(request, *c);
        j["system"] = system->name;
        j["chips"] = model->chips();
        rows.push_back(j);
      } else {
        table += fmt::format("  {:>14} {:>14.2f} {:>12.2f} {:>12.2f}  {}\n", b, c->timeS * 1e6,
                             c->algbwGbps, c->busbwGbps, fabric::algorithmName(c->algorithm));
      }
      if (b > *hi / args.factor) break;
    }
    fmt::print("{}", args.json ? rows.dump(2) + "\n" : table);
    return 0;
  }

  Expected<uint64_t> bytes = parseBytes(args.bytes, "--bytes");
  if (!bytes) return printError(bytes.status());
  Expected<fabric::CollectiveCost> c = estimate(*bytes);
  if (!c) return printError(c.status());
  if (args.json) {
    nlohmann::json j = costJson(request, *c);
    j["system"] = system->name;
    j["chips"] = model->chips();
    j["topology"] = model->topology().describe();
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  std::string text = header + "\n";
  text += fmt::format("{} of {} over {} ranks: {}  algorithm {}\n", args.op, humanBytes(*bytes),
                      c->ranks, humanTime(c->timeS), fabric::algorithmName(c->algorithm));
  text += fmt::format("algbw {:.2f} GB/s  busbw {:.2f} GB/s\n", c->algbwGbps, c->busbwGbps);
  if (!c->phases.empty()) text += "phases:\n";
  for (const fabric::PhaseCost& p : c->phases) {
    text += fmt::format("  {:>12}  {}\n", humanTime(p.timeS), p.name);
  }
  if (!c->candidates.empty()) text += "candidates:\n";
  for (const auto& [a, t] : c->candidates) {
    text += fmt::format("  {:>12}  {}{}\n", humanTime(t), fabric::algorithmName(a),
                        a == c->algorithm ? "  (chosen)" : "");
  }
  fmt::print("{}", text);
  return 0;
}

}  // namespace

Command addCollectiveCommand(CLI::App& app) {
  auto args = std::make_shared<CollectiveArgs>();
  CLI::App* cmd = app.add_subcommand(
      "collective", "Time one collective (or a size sweep) with the fabric's cost model.");
  cmd->add_option("--system", args->system, "Built-in system name or a system JSON file")
      ->required();
  cmd->add_option("--chips", args->chips, "Chips in the cluster (default: one scale-up domain)");
  cmd->add_option("--op", args->op,
                  "all_reduce, reduce_scatter, all_gather, all_to_all, broadcast, send_recv, "
                  "permute or barrier")
      ->capture_default_str();
  cmd->add_option("--bytes", args->bytes,
                  "Bytes per rank buffer as nccl-tests counts them: 8, 4K, 1MiB, 1GiB, 1GB")
      ->capture_default_str();
  cmd->add_option("--algorithm", args->algorithm,
                  "auto, ring, bidirectional_ring, torus, halving_doubling, direct, "
                  "hierarchical or in_network")
      ->capture_default_str();
  cmd->add_option("--group-size", args->groupSize, "Ranks per group (default: every rank)");
  cmd->add_option("--group-stride", args->groupStride, "Rank distance between group members")
      ->capture_default_str();
  cmd->add_flag("--alone", args->alone,
                "Only the first group runs (default: every group of that shape runs at once)");
  cmd->add_option("--skew", args->skew, "all_to_all(v): busiest rank's bytes / mean (>= 1)");
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->add_flag("--sweep", args->sweep, "nccl-tests-style sweep from --min-bytes to --max-bytes");
  cmd->add_option("--min-bytes", args->minBytes, "Sweep start")->capture_default_str();
  cmd->add_option("--max-bytes", args->maxBytes, "Sweep end")->capture_default_str();
  cmd->add_option("--factor", args->factor, "Sweep step factor (2 or 4 ...)")
      ->capture_default_str();
  return {cmd, [args] { return runCollective(*args); }};
}

}  // namespace trnsim::cli
