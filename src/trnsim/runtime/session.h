#pragma once
// The runtime: compiled graphs loaded on a simulated chip, with device tensors in simulated HBM
// (parameters uploaded once and kept across calls), functional or timing-only runs, and run
// records that feed `profile` (summary, trace) like every other run. A Session caches
// executables by (IR text, chip), so the same graph compiles once per process.

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/sim/chip.h"
#include "trnsim/support/status.h"

namespace trnsim::runtime {

/// One finished run of an executable.
struct RunRecord {
  arch::ChipConfig chip;
  std::shared_ptr<const std::vector<isa::Program>> programs;
  sim::RunResult result;
  double modelFlops = 0;  ///< matmul FLOPs of the graph (for MFU)
};

class Executable {
 public:
  Executable(compiler::Compiled compiled, const arch::ChipConfig& chip);

  const compiler::Graph& graph() const { return graph_; }
  const isa::Program& program() const { return programs_->front(); }
  const arch::ChipConfig& chip() const { return chip_.config(); }
  std::vector<std::string> inputNames() const;  ///< graph inputs, params included, in order
  std::vector<std::string> paramNames() const;
  std::vector<std::string> outputNames() const;
  /// FLOPs of the graph's matmuls (2 M N K each) and attention (4 B H Sq Sk D, halved when causal).
  double matmulFlops() const { return matmulFlops_; }

  /// Writes a graph input or param (raw bytes of its dtype, row-major) into simulated HBM;
  /// it stays there across runs.
  Status upload(const std::string& name, std::span<const std::byte> data);
  /// Whether every graph input has been uploaded at least once.
  Status checkInputsPresent() const;
  /// Runs the program (timingOnly: no values are computed or needed). `rounding` applies to
  /// every write of a narrower float (stochastic: as Neuron's stochastic-rounding mode, with
  /// bits drawn from `seed`).
  Expected<RunRecord> run(bool timingOnly,
                          numerics::Rounding rounding = numerics::Rounding::kNearestEven,
                          uint64_t seed = 0);
  /// An output's bytes after a functional run.
  Expected<std::vector<std::byte>> read(const std::string& outputName) const;

 private:
  compiler::Graph graph_;
  std::shared_ptr<const std::vector<isa::Program>> programs_;
  sim::Chip chip_;
  Status loadStatus_;
  std::set<std::string> uploaded_;
  double matmulFlops_ = 0;
};

/// Executables by (IR text, chip name), compiled on first use.
class Session {
 public:
  Expected<std::shared_ptr<Executable>> compile(const std::string& irText,
                                                const arch::ChipConfig& chip,
                                                const compiler::PipelineOptions& opts = {});
  size_t compiles() const { return compiles_; }
  size_t cacheHits() const { return hits_; }

 private:
  std::map<std::string, std::weak_ptr<Executable>> cache_;
  size_t compiles_ = 0, hits_ = 0;
};

/// A stable hex hash of (IR text, chip name): the cache key of a compiled graph.
std::string cacheKey(const std::string& irText, const std::string& chipName);

}  // namespace trnsim::runtime
