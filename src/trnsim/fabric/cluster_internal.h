#pragma once
// What the files of fabric::Cluster share (cluster.cpp: set-up, timing and the superstep loop;
// cluster_match.cpp: which collectives can run; cluster_data.cpp: what they compute). Internal
// to the fabric layer.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "trnsim/fabric/cluster.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/transport.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional.h"
#include "trnsim/sim/timeline.h"

namespace trnsim::fabric::detail {

using isa::Opcode;

enum class RankState : uint8_t { kReady, kWaiting, kDone, kError };

/// What every process knows about every rank.
struct RankInfo {
  RankState state = RankState::kReady;
  size_t pc = 0;         ///< next instruction (kWaiting: the collective it waits at)
  double clockNs = 0;    ///< its time when it left its last collective (or 0)
  double arrivalNs = 0;  ///< kWaiting: when it arrived at the collective
  double computeNs = 0;
  double exposedCommNs = 0;
  double commNs = 0;
  uint64_t instructions = 0;
  Status error;  ///< kError
};

/// A timed segment of a program, cached: SPMD ranks share their segments' timing.
struct SegmentTiming {
  sim::Timeline timeline;
  double ns = 0;
};

/// Elements of a program's operand (row-major over its pattern).
int64_t operandElements(const isa::Program& p, size_t index, uint8_t slot);
/// The dtype of a program's operand (fp32 when the instruction has no such operand).
numerics::DType operandDType(const isa::Program& p, size_t index, uint8_t slot);
uint64_t operandBytes(const isa::Program& p, size_t index, uint8_t slot);

/// One collective about to run: one rank-list (or one sendrecv component) of one instruction.
struct Firing {
  Opcode op = Opcode::kAllReduce;
  std::vector<uint32_t> members;  ///< in list order (the order of data and reductions)
  size_t listsInGroup = 1;        ///< rank-lists of its replica group (concurrent collectives)
  std::vector<std::pair<uint32_t, uint32_t>> pairs;  ///< permute: (source, target)
};

std::string rankListString(const std::vector<uint32_t>& l);
std::string groupString(const isa::ReplicaGroup& g);

}  // namespace trnsim::fabric::detail

namespace trnsim::fabric {

struct Cluster::Impl {
  using Program = isa::Program;
  using Firing = detail::Firing;
  using RankInfo = detail::RankInfo;
  using SegmentTiming = detail::SegmentTiming;

  arch::ChipConfig chip;
  arch::SystemConfig system;
  uint32_t size = 0;
  uint32_t first = 0, end = 0;
  ClusterOptions options;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<CollectiveModel> model;
  uint32_t modelChips = 0;
  std::vector<std::shared_ptr<const Program>> programs;
  std::vector<std::unique_ptr<sim::FunctionalChip>> chips;  ///< local ranks only
  std::map<std::tuple<const Program*, size_t, size_t>, std::shared_ptr<SegmentTiming>> segCache;
  std::mutex segMutex;
  std::map<std::tuple<int, uint64_t, uint64_t, uint64_t, bool>, CollectiveCost> costCache;

  Expected<std::shared_ptr<SegmentTiming>> timeSegment(const Program& p, size_t begin, size_t stop,
                                                       bool events);
  Expected<CollectiveCost> cost(const Firing& f, uint64_t bytes);
  /// Whether this process can hold the simulated HBM of all its local chips at once (each
  /// chip checks only its own when it first touches its memory, and ranks run in parallel).
  Status checkHostMemory() const;
  /// Which collectives have all their members now (cluster_match.cpp); every process decides
  /// the same. A deadlock (none can, and some rank still waits) is an error naming each rank's
  /// wait.
  Expected<std::vector<Firing>> findFirings(const std::vector<RankInfo>& ranks) const;
  Status checkFiring(const Firing& f, const std::vector<RankInfo>& ranks) const;
  /// Moves the data of the firing collectives into the local ranks' destinations
  /// (cluster_data.cpp); exchanges what other processes need under MPI. Returns the bytes
  /// reduced.
  Expected<uint64_t> moveData(const std::vector<Firing>& firings,
                              const std::vector<RankInfo>& ranks,
                              const std::vector<sim::RunOptions>& ropts);
  bool isLocal(uint32_t rank) const { return rank >= first && rank < end; }
  uint32_t threads() const {
    return options.threads != 0 ? options.threads
                                : std::max<uint32_t>(1, std::thread::hardware_concurrency());
  }
};

}  // namespace trnsim::fabric
