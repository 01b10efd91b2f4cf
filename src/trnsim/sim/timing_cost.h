#pragma once
// Per-instruction costs of the timing model, from the chip config alone (no dependencies, no
// contention). docs/sim.md "Timing" gives every formula and the config key behind it.

#include <cstddef>
#include <cstdint>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::sim::detail {

/// TensorE cost of one instruction, split into the LoadStationary and MultiplyMoving stages.
struct TensorCost {
  double lsNs = 0;        ///< LoadStationary (0 for nc_transpose, which has no stationary)
  double mmNs = 0;        ///< MultiplyMoving at full rate, fixed overhead included
  double flops = 0;       ///< 2 * K * M * N (0 for transposes)
  double atPeakNs = 0;    ///< flops / the peak of the operand dtype
  bool hasStationary = false;  ///< a matmul (needs its stationary loaded)
};

/// Static facts of one DMA transfer; the fluid HBM model turns them into time.
struct DmaCost {
  uint64_t movedBytes = 0;     ///< bytes the DMA engines move (the larger of src and dst)
  uint64_t hbmReadBytes = 0;   ///< of them, bytes read from HBM
  uint64_t hbmWriteBytes = 0;  ///< bytes written to HBM
  double capGbps = 0;          ///< the transfer's own rate limit in bytes/ns (alone on the chip)
  double hbmPerMovedByte = 0;  ///< HBM bytes touched per moved byte (0, 1 or 2)
  double fixedNs = 0;          ///< descriptor/semaphore-to-start latency before data flows
};

/// Cycles (engine clock) of a Vector/Scalar/GpSimd/Sync instruction.
double streamCycles(const arch::ChipConfig& chip, const isa::Program& program,
                    const isa::Instruction& inst);
/// Cost of nc_matmul / nc_transpose on TensorE.
TensorCost tensorCost(const arch::ChipConfig& chip, const isa::Program& program,
                      const isa::Instruction& inst);
/// Cost of dma_copy / dma_transpose.
DmaCost dmaCost(const arch::ChipConfig& chip, const isa::Program& program,
                const isa::Instruction& inst);
/// Bandwidth of all the DMA engines of one core together, bytes/ns.
double coreDmaGbps(const arch::ChipConfig& chip);
/// Checks the config numbers the timing model divides by; names the key in the error.
Status checkTimingConfig(const arch::ChipConfig& chip);
/// Checks what the timing model relies on in a program (operand tensors exist, queues in
/// range, the operands an opcode needs are present); errors name the instruction.
Status checkTimingProgram(const arch::ChipConfig& chip, const isa::Program& program);
/// The checks of checkTimingProgram for instruction `index` alone.
Status checkTimingInstruction(const arch::ChipConfig& chip, const isa::Program& program,
                              size_t index);

}  // namespace trnsim::sim::detail
