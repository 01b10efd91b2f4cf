#pragma once
// Timelines as Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open:
// a process per chip core, a track (thread) per engine and per DMA queue (with overlap lanes
// where the timing model overlaps instructions), one complete ("X") event per instruction,
// dependency arrows ("s"/"f" flows) and HBM bandwidth counters ("C"). docs/profile.md has the
// format.
//
// The trace does not care who recorded the timeline (one chip's timing model, the fabric's
// multi-chip run): it takes timelines plus, optionally, the programs that name instructions.

#include <span>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/sim/timeline.h"
#include "trnsim/support/status.h"

namespace trnsim::profile {

/// One chip's timeline and what names its events. Pointers are borrowed, not owned.
struct ChipTrace {
  std::string name;                         ///< label of its processes ("trn2", "chip 3")
  const sim::Timeline* timeline = nullptr;  ///< required
  /// Program of each core (index = TimelineEvent::core); a missing or null entry, or an
  /// instruction index past its end, gives events named "instruction N" without operands.
  std::vector<const isa::Program*> programs;
  /// Optional: splits DMA queue numbers into engine and queue in track names.
  const arch::ChipConfig* config = nullptr;
};

/// Everything one trace file shows.
struct TraceInput {
  std::vector<ChipTrace> chips;
};

struct TraceOptions {
  bool instructionText = true;  ///< args.text: the instruction in the ISA text form
  /// One arg per operand slot ("dst", "moving", ...). Off by default: args.text already
  /// holds the operands, and printing them twice makes big traces slower to write.
  bool operandArgs = false;
  bool hbmCounters = true;  ///< "HBM GB/s" counter tracks per core and per chip
  /// A flow arrow from each instruction's last dependency (TimelineEvent::after) to it, when
  /// the two sit on different tracks.
  bool dependencyArrows = true;
};

/// A single-chip input: one program per core, as sim::Chip::programs() holds them.
TraceInput singleChipTrace(const arch::ChipConfig& chip, std::span<const isa::Program> programs,
                           const sim::Timeline& timeline);

/// The trace as JSON text. Deterministic: the same input gives the same bytes. Fails
/// (kInvalidArgument) on a missing timeline, a non-finite time, end < start or a bad engine.
Expected<std::string> traceJson(const TraceInput& input, const TraceOptions& opts = {});

/// Streams the trace to `path` (kIo when it cannot be written; the input errors of traceJson).
Status writeTrace(const std::string& path, const TraceInput& input, const TraceOptions& opts = {});

}  // namespace trnsim::profile
