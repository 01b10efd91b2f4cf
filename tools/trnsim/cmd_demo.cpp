// `trnsim demo [--chip trn2] [--trace FILE]`: the default job. One program on one simulated
// NeuronCore runs a tiled bf16 matmul and then a softmax; the outputs are checked against a
// host reference computed independently in double precision, the summary is printed and a
// trace is written.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "commands.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/softmax.h"
#include "trnsim/profile/profile.h"
#include "trnsim/sim/chip.h"

namespace trnsim::cli {
namespace {

using numerics::DType;

struct DemoArgs {
  std::string chip = "trn2";
  std::string tracePath = "demo_trace.json";
};

constexpr int64_t kM = 512, kK = 1024, kN = 1024;       // matmul out[M, N] = lhsT^T @ rhs
constexpr int64_t kRows = 512, kCols = 1024;            // softmax input

std::vector<float> randomValues(size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  // Round to bf16 here so the host reference sees exactly the values the chip holds.
  for (auto& x : v) x = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(dist(gen)));
  return v;
}

/// Largest |got - ref| / (|ref| + floor) over the matmul output.
double matmulError(const std::vector<float>& lhsT, const std::vector<float>& rhs,
                   const std::vector<float>& out) {
  double worst = 0;
  std::vector<double> row(kN);
  for (int64_t m = 0; m < kM; ++m) {
    std::fill(row.begin(), row.end(), 0.0);
    for (int64_t k = 0; k < kK; ++k) {
      const double a = lhsT[k * kM + m];
      for (int64_t n = 0; n < kN; ++n) row[n] += a * rhs[k * kN + n];
    }
    for (int64_t n = 0; n < kN; ++n)
      worst = std::max(worst, std::abs(out[m * kN + n] - row[n]) / (std::abs(row[n]) + 1.0));
  }
  return worst;
}

double softmaxError(const std::vector<float>& x, const std::vector<float>& out) {
  double worst = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    double mx = -INFINITY, sum = 0;
    for (int64_t c = 0; c < kCols; ++c) mx = std::max(mx, double(x[r * kCols + c]));
    for (int64_t c = 0; c < kCols; ++c) sum += std::exp(x[r * kCols + c] - mx);
    for (int64_t c = 0; c < kCols; ++c) {
      const double ref = std::exp(x[r * kCols + c] - mx) / sum;
      worst = std::max(worst, std::abs(out[r * kCols + c] - ref) / ref);
    }
  }
  return worst;
}

int demoCommand(const DemoArgs& args) {
  auto chip = arch::loadChip(args.chip);
  if (!chip) return printError(chip.status());

  isa::KernelBuilder b(*chip, "demo_matmul_softmax");
  auto lhsT = b.hbm("lhsT", DType::kBF16, {kK, kM}, isa::TensorKind::kInput);
  auto rhs = b.hbm("rhs", DType::kBF16, {kK, kN}, isa::TensorKind::kInput);
  auto mm = b.hbm("mm_out", DType::kBF16, {kM, kN}, isa::TensorKind::kOutput);
  auto x = b.hbm("x", DType::kBF16, {kRows, kCols}, isa::TensorKind::kInput);
  auto sm = b.hbm("sm_out", DType::kBF16, {kRows, kCols}, isa::TensorKind::kOutput);
  if (Status s = kernels::emitMatmul(b, lhsT, rhs, mm); !s) return printError(s);
  if (Status s = kernels::emitSoftmax(b, x, sm); !s) return printError(s);
  auto program = b.finish();
  if (!program) return printError(program.status());

  const auto lhsTv = randomValues(size_t(kK * kM), 1, 1.0f);
  const auto rhsv = randomValues(size_t(kK * kN), 2, 1.0f);
  const auto xv = randomValues(size_t(kRows * kCols), 3, 2.0f);
  sim::Chip c(*chip);
  for (Status s : {c.load({*program}), c.writeFloats("lhsT", lhsTv), c.writeFloats("rhs", rhsv),
                   c.writeFloats("x", xv)})
    if (!s) return printError(s);
  auto run = c.run();
  if (!run) return printError(run.status());
  auto mmOut = c.readFloats("mm_out");
  auto smOut = c.readFloats("sm_out");
  if (!mmOut) return printError(mmOut.status());
  if (!smOut) return printError(smOut.status());

  // bf16 outputs: one rounding of the result is up to 2^-8 relative.
  const double mmErr = matmulError(lhsTv, rhsv, *mmOut);
  const double smErr = softmaxError(xv, *smOut);
  const double tol = 1.0 / 128;
  fmt::print("trnsim demo on {} ({}), one NeuronCore, program of {} instructions\n", chip->name,
             chip->description, program->instructions.size());
  fmt::print("  matmul  {}x{}x{} bf16: max relative error vs host reference {:.2e} ({})\n", kM, kK,
             kN, mmErr, mmErr <= tol ? "ok" : "FAILED");
  fmt::print("  softmax {}x{} bf16:     max relative error vs host reference {:.2e} ({})\n\n",
             kRows, kCols, smErr, smErr <= tol ? "ok" : "FAILED");

  auto summary = profile::summarize(*chip, *run);
  if (!summary) return printError(summary.status());
  fmt::print("{}\n", profile::formatSummary(*summary));
  if (!args.tracePath.empty()) {
    if (Status s = profile::writeTrace(args.tracePath,
                                       profile::singleChipTrace(*chip, c.programs(), run->timeline));
        !s)
      return printError(s);
    fmt::print("trace written to {} (open it in https://ui.perfetto.dev)\n", args.tracePath);
  }
  if (mmErr > tol || smErr > tol) return printError("demo results do not match the reference");
  return 0;
}

}  // namespace

Command addDemoCommand(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Run a tiled bf16 matmul and a softmax on a simulated NeuronCore, checked and timed.");
  cmd->add_option("--chip", args->chip, "Chip name or chip JSON file")->capture_default_str();
  cmd->add_option("--trace", args->tracePath, "Write a Chrome/Perfetto trace JSON to this file")
      ->capture_default_str();
  return {cmd, [args] { return demoCommand(*args); }};
}

}  // namespace trnsim::cli
