#pragma once
// One simulated chip: HBM shared by its NeuronCores, each core with SBUF, PSUM and engines.
// Functional execution computes values; the timing model schedules the same instructions.
// Values never depend on timing.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/timeline.h"
#include "trnsim/support/status.h"

namespace trnsim::sim {

struct RunOptions {
  bool computeValues = true;        ///< false: timing-only (no memory is touched)
  bool computeTiming = true;        ///< false: functional only
  bool recordEvents = true;         ///< keep per-instruction timeline events
  bool detectUninitialized = true;  ///< error on reading memory nothing wrote
  uint64_t seed = 0;                ///< RNG instructions and stochastic rounding
  numerics::Rounding rounding = numerics::Rounding::kNearestEven;  ///< on every write
  /// Host threads for functional work: independent cores' programs at once
  /// (FunctionalChip::coresIndependent), else the work inside one instruction (nc_matmul's
  /// output columns; the partitions of large elementwise instructions); 0 = one per host core.
  /// Values and timing are the same for every count.
  uint32_t threads = 0;
};

struct RunResult {
  Timeline timeline;        ///< empty when !computeTiming
  double simulatedNs = 0;   ///< timeline.endNs
  uint64_t instructions = 0;
  double hostSeconds = 0;   ///< wall time the run took on this computer
};

class FunctionalChip;  // sim/functional.h

class Chip {
 public:
  explicit Chip(arch::ChipConfig config);
  ~Chip();
  Chip(Chip&&) noexcept;
  Chip& operator=(Chip&&) noexcept;

  const arch::ChipConfig& config() const { return config_; }

  /// Loads one program per core (programs.size() <= coresPerChip). HBM tensors of all the
  /// programs share one chip-wide address space, so equal addresses alias across cores.
  /// Each program is verified (isa::ensureVerified) unless it carries a stamp for this chip
  /// that its contents still match (KernelBuilder::finish stamps what it builds): a program
  /// the verifier refuses is refused here, for functional and timing-only runs alike.
  Status load(std::vector<isa::Program> programs);
  const std::vector<isa::Program>& programs() const { return programs_; }

  /// Host -> HBM tensor `name` of core `core`'s program: raw bytes of its dtype, row-major.
  Status write(const std::string& name, std::span<const std::byte> data, uint32_t core = 0);
  Expected<std::vector<std::byte>> read(const std::string& name, uint32_t core = 0) const;
  /// The same through fp32, converted (RNE) to/from the tensor's dtype.
  Status writeFloats(const std::string& name, std::span<const float> data, uint32_t core = 0);
  Expected<std::vector<float>> readFloats(const std::string& name, uint32_t core = 0) const;
  /// The same into `out`, which must hold the tensor's element count (a caller's own buffer,
  /// such as a numpy array: no vector of the whole tensor on the way).
  Status readFloats(const std::string& name, std::span<float> out, uint32_t core = 0) const;

  /// Runs every loaded program (functional: core 0, then core 1, ...; timing: all at once).
  Expected<RunResult> run(const RunOptions& opts = {});

 private:
  arch::ChipConfig config_;
  std::vector<isa::Program> programs_;
  std::unique_ptr<FunctionalChip> functional_;
};

}  // namespace trnsim::sim
