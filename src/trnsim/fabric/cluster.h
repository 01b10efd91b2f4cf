#pragma once
// Functional multi-chip runs: N simulated chips, each running a program, exchanging real data
// through the collective instructions (isa: all_reduce, all_gather, reduce_scatter,
// all_to_all, collective_permute, sendrecv, core_barrier). docs/fabric.md, "Functional runs".
//
// In this version one rank = one chip running one program on its core 0; ranks are 0..N-1.
// Execution goes in supersteps: every rank runs up to its next collective (ranks run at once
// on host threads), then every collective whose rank-list has fully arrived moves its data.
// Reductions accumulate in fp32 in rank-list order and round once (RNE) to the dtype, so the
// bits do not depend on how ranks are placed on threads or processes. A program that cannot
// progress (ranks waiting on different collectives) is an error naming every waiting rank and
// its instruction, never a hang.
//
// Time: each segment between collectives is timed by the chip's timing model (sim/timing.h)
// starting from idle engines; a collective starts when the last member of its rank-list
// arrives and lasts what fabric::CollectiveModel says for the system. Collectives block: no
// compute overlaps them in this version (ClusterResult::overlap is 0).
//
// Under `mpirun -np K` (transport kMpi or kAuto), process k simulates ranks
// [k*N/K, (k+1)*N/K); the processes exchange what arrives at each superstep, and every one of
// them computes the same clocks and bits as a single process would.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/sim/chip.h"
#include "trnsim/support/status.h"

namespace trnsim::fabric {

/// The SPMD rank convention: before a run, an HBM tensor of this name (any integer or float
/// dtype, any shape) is filled with the rank's id on every rank. nki.collectives.rank_id()
/// reads it.
inline constexpr const char* kRankTensorName = "rank_id";

class Transport;  // fabric/transport.h

/// How the ranks' processes talk (in-process: threads and shared memory; MPI: mpirun).
enum class TransportKind : uint8_t {
  kAuto,     ///< MPI when the process was started by mpirun and MPI is built in, else local
  kLocal,    ///< one process
  kMpi,      ///< MPI (an error when trnsim was built without it)
};

struct ClusterOptions {
  /// Host threads running this process's ranks; 0 = std::thread::hardware_concurrency().
  uint32_t threads = 0;
  TransportKind transport = TransportKind::kAuto;
};

struct ClusterRunOptions {
  bool computeValues = true;  ///< false: timing-only (collectives move no data)
  bool recordEvents = false;  ///< keep per-instruction timeline events (for traces)
  bool detectUninitialized = true;
  uint64_t seed = 0;  ///< RNG instructions; each rank mixes in its rank id
};

/// One collective as it ran: one rank-list of one collective instruction.
struct CollectiveRecord {
  CollectiveOp op = CollectiveOp::kAllReduce;
  size_t instruction = 0;       ///< index in the members' program
  std::vector<uint32_t> ranks;  ///< the rank-list, in list order
  uint64_t bytes = 0;           ///< nccl-tests size (collective.h): the per-rank buffer
  double startNs = 0;           ///< when the last member arrived
  double endNs = 0;
  Algorithm algorithm = Algorithm::kRing;
  double algbwGbps = 0;
  double busbwGbps = 0;
};

struct RankResult {
  sim::RunResult run;      ///< simulatedNs = this rank's end; timeline: its segments
  double computeNs = 0;    ///< time in its own instructions
  double exposedCommNs = 0;  ///< time in collectives, waiting for peers included
};

struct ClusterResult {
  std::vector<RankResult> ranks;  ///< per rank (every rank, also under MPI)
  double simulatedNs = 0;         ///< the last rank's end
  std::vector<CollectiveRecord> collectives;  ///< in the order they ran
  double computeNs = 0;       ///< mean over ranks
  double exposedCommNs = 0;   ///< mean over ranks
  double commNs = 0;          ///< mean over ranks of the time collectives took (no waiting)
  double commTax = 0;         ///< exposedCommNs / simulatedNs
  double overlap = 0;         ///< fraction of commNs hidden behind compute (0 here)
  uint64_t supersteps = 0;
  double hostSeconds = 0;
  uint64_t bytesReduced = 0;  ///< sum over reductions of per-rank bytes x members (host work)
};

/// N simulated chips joined by a system's fabric.
class Cluster {
 public:
  /// `chips` chips of `chip`; `system` (may be null: the chip's default system, trn2 ->
  /// trn2.48xlarge, up to 16 chips; more: the trn2 UltraServer, then EFA) times collectives.
  static Expected<Cluster> create(const arch::ChipConfig& chip, const arch::SystemConfig* system,
                                  uint32_t chips, const ClusterOptions& options = {});
  ~Cluster();
  Cluster(Cluster&&) noexcept;
  Cluster& operator=(Cluster&&) noexcept;

  uint32_t size() const;            ///< ranks (= chips)
  /// Ranks this process simulates: [first, end). All of them without MPI.
  uint32_t firstLocalRank() const;
  uint32_t endLocalRank() const;
  bool isLocal(uint32_t rank) const { return rank >= firstLocalRank() && rank < endLocalRank(); }
  /// The MPI process index (0 without MPI); print results only where this is 0.
  int process() const;
  int processes() const;
  const arch::ChipConfig& chip() const;
  const arch::SystemConfig& system() const;

  /// Loads `program` on `rank` (checked by the verifier). Under MPI only local ranks keep it,
  /// but every process must load every rank (it needs them to check the collectives).
  Status load(uint32_t rank, isa::Program program);
  /// The same for a program several ranks share: it is verified once however many ranks load
  /// it (the NKI front end loads one traced program on every rank).
  Status load(uint32_t rank, std::shared_ptr<const isa::Program> program);
  /// SPMD: the same program on every rank.
  Status loadAll(const isa::Program& program);
  const isa::Program& program(uint32_t rank) const;

  /// Host <-> HBM tensor of a local rank (raw bytes of its dtype, row-major).
  Status write(uint32_t rank, const std::string& tensor, std::span<const std::byte> data);
  Expected<std::vector<std::byte>> read(uint32_t rank, const std::string& tensor) const;

  Expected<ClusterResult> run(const ClusterRunOptions& opts = {});

  /// Per rank (all of them, in every process), FNV-1a 64 of its output and inout HBM tensors'
  /// bytes, in declaration order: compares runs across thread counts and MPI layouts.
  Expected<std::vector<uint64_t>> outputHashes() const;

 private:
  struct Impl;
  explicit Cluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The fabric op of a collective opcode (all_reduce -> kAllReduce, sendrecv -> kSendRecv,
/// core_barrier -> kBarrier, ...).
CollectiveOp collectiveOpOf(isa::Opcode op);

}  // namespace trnsim::fabric
