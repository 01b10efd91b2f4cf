#pragma once
// What a run amounted to: simulated time, engine busy %, Tensor Engine utilization and MFU,
// HBM traffic and bandwidth, and how fast the simulator itself ran. docs/profile.md defines
// every field and its JSON key.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/sim/chip.h"
#include "trnsim/sim/timeline.h"
#include "trnsim/support/status.h"

namespace trnsim::profile {

/// Version of summaryJson's layout; bumped when a key changes meaning or disappears.
inline constexpr int kSummarySchemaVersion = 1;

struct SummaryOptions {
  /// FLOPs the model needs (for MFU); 0 means "the Tensor Engine FLOPs of the timeline".
  double modelFlops = 0;
  double hostSeconds = 0;     ///< wall time the simulation took (0: speed not reported)
  uint64_t instructions = 0;  ///< instructions simulated; 0: from the core stats or events
};

/// One engine of one core over the run.
struct EngineSummary {
  arch::Engine engine = arch::Engine::kTensor;
  double busyNs = 0;
  double busyPercent = 0;     ///< busyNs / simulated time of the run
  uint64_t instructions = 0;  ///< events on this engine (0 when events were not recorded)
  double waitNs = 0;          ///< sum of start - ready: ready instructions waiting for it
};

/// One DMA queue of one core (from events; empty when events were not recorded).
struct DmaQueueSummary {
  uint16_t queue = 0;
  double busyNs = 0;  ///< union of its transfers' intervals
  double busyPercent = 0;
  uint64_t transfers = 0;
  uint64_t hbmBytes = 0;
};

struct CoreSummary {
  uint32_t core = 0;
  double endNs = 0;  ///< when its last instruction ended
  uint64_t instructions = 0;
  std::array<EngineSummary, arch::kNumEngines> engines{};  ///< by arch::Engine
  double dmaAnyBusyNs = 0;  ///< time at least one of its DMA queues was moving data
  double dmaAnyBusyPercent = 0;
  std::vector<DmaQueueSummary> dmaQueues;  ///< by queue number, only queues used
  double tensorFlops = 0;
  double tensorUtilizationPercent = 0;  ///< tensorFlops / (bf16 peak x simulated time)
  double throttledNs = 0;
  uint64_t hbmReadBytes = 0;
  uint64_t hbmWriteBytes = 0;
};

struct Summary {
  std::string chip;    ///< ChipConfig::name
  uint32_t cores = 0;  ///< cores in the timeline (those that ran something)
  double simulatedNs = 0;
  double simulatedUs = 0;
  double peClockGhz = 0;
  double simulatedCycles = 0;  ///< simulatedNs at the Tensor Engine (PE) clock
  uint64_t instructions = 0;

  double tensorFlops = 0;
  double peakFlopsPerCore = 0;  ///< bf16 peak of one core's Tensor Engine, FLOP/s
  /// tensorFlops / (peakFlopsPerCore x cores x simulated time).
  double tensorUtilizationPercent = 0;
  /// The same against each instruction's own dtype peak (fp8 faster, fp32 slower):
  /// sum of CoreTimingStats::tensorFlopsAtPeakNs / (cores x simulated time).
  double tensorDtypeUtilizationPercent = 0;
  double throttledNs = 0;  ///< Tensor Engine time lost to the power throttle, all cores

  double modelFlops = 0;
  bool modelFlopsFromCaller = false;  ///< false: modelFlops = tensorFlops
  double mfuPercent = 0;              ///< modelFlops / (peakFlopsPerCore x cores x time)

  uint64_t hbmReadBytes = 0;
  uint64_t hbmWriteBytes = 0;
  uint64_t hbmBytes = 0;       ///< read + write (or the events' hbmBytes without core stats)
  double hbmAchievedGbps = 0;  ///< hbmBytes / simulated time (GB/s = bytes/ns)
  double hbmPeakGbps = 0;      ///< mem.hbmGbps of the chip
  double hbmUtilizationPercent = 0;

  double hostSeconds = 0;
  double instructionsPerHostSecond = 0;     ///< 0 when hostSeconds is 0
  double simulatedCyclesPerHostSecond = 0;  ///< 0 when hostSeconds is 0

  std::vector<CoreSummary> perCore;
};

/// Summarizes one chip's timeline. Engine busy time comes from Timeline::cores when the
/// timing model filled it, else from the events. Fails (kInvalidArgument) on non-finite or
/// negative times and events with a bad engine.
Expected<Summary> summarize(const arch::ChipConfig& chip, const sim::Timeline& timeline,
                            const SummaryOptions& opts = {});
/// The same for a sim::Chip run: hostSeconds and instructions come from `run` unless `opts`
/// sets them.
Expected<Summary> summarize(const arch::ChipConfig& chip, const sim::RunResult& run,
                            const SummaryOptions& opts = {});

/// A readable table for the terminal.
std::string formatSummary(const Summary& summary);
/// The summary as JSON with stable snake_case keys (docs/profile.md), 2-space indented.
std::string summaryJson(const Summary& summary);

}  // namespace trnsim::profile
