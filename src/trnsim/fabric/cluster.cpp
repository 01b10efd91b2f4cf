// Functional multi-chip runs (cluster.h): supersteps of "every rank runs to its next
// collective, then every complete collective moves its data", on host threads and, under
// mpirun, across processes.

#include "trnsim/fabric/cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <tuple>

#include "trnsim/fabric/transport.h"
#include "trnsim/isa/verify.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional.h"
#include "trnsim/sim/timing.h"
#include "trnsim/support/hash.h"
#include "trnsim/support/parallel.h"
#include "trnsim/support/random.h"

namespace trnsim::fabric {

CollectiveOp collectiveOpOf(isa::Opcode op) {
  switch (op) {
    case isa::Opcode::kAllReduce:
      return CollectiveOp::kAllReduce;
    case isa::Opcode::kAllGather:
      return CollectiveOp::kAllGather;
    case isa::Opcode::kReduceScatter:
      return CollectiveOp::kReduceScatter;
    case isa::Opcode::kAllToAll:
      return CollectiveOp::kAllToAll;
    case isa::Opcode::kCollectivePermute:
      return CollectiveOp::kPermute;
    case isa::Opcode::kSendRecv:
      return CollectiveOp::kSendRecv;
    default:
      return CollectiveOp::kBarrier;
  }
}

namespace {

using isa::Opcode;
using isa::Program;

// ---- little-endian serialization of the per-superstep exchange ----

struct Writer {
  std::vector<std::byte> out;
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  }
  void u64(uint64_t v) { raw(&v, 8); }
  void f64(double v) { raw(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
};

struct Reader {
  std::span<const std::byte> in;
  size_t pos = 0;
  bool ok = true;
  void raw(void* p, size_t n) {
    if (pos + n > in.size()) {
      ok = false;
      std::memset(p, 0, n);
      return;
    }
    std::memcpy(p, in.data() + pos, n);
    pos += n;
  }
  uint64_t u64() {
    uint64_t v = 0;
    raw(&v, 8);
    return v;
  }
  double f64() {
    double v = 0;
    raw(&v, 8);
    return v;
  }
  std::string str() {
    uint64_t n = u64();
    if (!ok || pos + n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(in.data() + pos), size_t(n));
    pos += size_t(n);
    return s;
  }
  std::span<const std::byte> bytes(uint64_t n) {
    if (!ok || pos + n > in.size()) {
      ok = false;
      return {};
    }
    auto s = in.subspan(pos, size_t(n));
    pos += size_t(n);
    return s;
  }
};

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
int64_t operandElements(const Program& p, size_t index, uint8_t slot) {
  const isa::AccessPattern* ap = p.instructions[index].operand(slot);
  return ap == nullptr ? 0 : ap->numElements();
}

numerics::DType operandDType(const Program& p, size_t index, uint8_t slot) {
  const isa::AccessPattern* ap = p.instructions[index].operand(slot);
  return ap == nullptr ? numerics::DType::kFP32 : p.tensors[ap->tensor].dtype;
}

uint64_t operandBytes(const Program& p, size_t index, uint8_t slot) {
  return uint64_t(operandElements(p, index, slot)) *
         numerics::dtypeSize(operandDType(p, index, slot));
}

/// One collective about to run: one rank-list (or one sendrecv component) of one instruction.
struct Firing {
  Opcode op = Opcode::kAllReduce;
  std::vector<uint32_t> members;  ///< in list order (the order of data and reductions)
  size_t listsInGroup = 1;        ///< rank-lists of its replica group (concurrent collectives)
  std::vector<std::pair<uint32_t, uint32_t>> pairs;  ///< permute: (source, target)
};

std::string rankListString(const std::vector<uint32_t>& l) {
  return fmt::format("[{}]", fmt::join(l, ", "));
}

std::string groupString(const isa::ReplicaGroup& g) {
  if (g.allRanks()) return "all ranks";
  std::string s = "[";
  for (size_t i = 0; i < g.lists.size(); ++i) s += (i ? ", " : "") + rankListString(g.lists[i]);
  return s + "]";
}

}  // namespace

struct Cluster::Impl {
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
  Status checkFiring(const Firing& f, const std::vector<RankInfo>& ranks) const;
  uint32_t threads() const {
    return options.threads != 0 ? options.threads
                                : std::max<uint32_t>(1, std::thread::hardware_concurrency());
  }
};

Cluster::Cluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Cluster::~Cluster() = default;
Cluster::Cluster(Cluster&&) noexcept = default;
Cluster& Cluster::operator=(Cluster&&) noexcept = default;

uint32_t Cluster::size() const { return impl_->size; }
uint32_t Cluster::firstLocalRank() const { return impl_->first; }
uint32_t Cluster::endLocalRank() const { return impl_->end; }
int Cluster::process() const { return impl_->transport->process(); }
int Cluster::processes() const { return impl_->transport->processes(); }
const arch::ChipConfig& Cluster::chip() const { return impl_->chip; }
const arch::SystemConfig& Cluster::system() const { return impl_->system; }

namespace {

/// The system that times a chip's collectives when none is given.
Expected<arch::SystemConfig> defaultSystem(const arch::ChipConfig& chip, uint32_t chips) {
  std::string name;
  if (chip.name.rfind("trn1", 0) == 0)
    name = "trn1.32xlarge";
  else if (chip.name.rfind("trn3", 0) == 0)
    name = "trn3-ultraserver";
  else
    name = chips <= 16 ? "trn2.48xlarge" : "trn2-ultraserver";
  auto s = arch::loadSystem(name);
  if (!s.hasValue())
    return s.status().withContext(
        fmt::format("the default system of chip '{}' (give one with --system)", chip.name));
  return s;
}

}  // namespace

Expected<Cluster> Cluster::create(const arch::ChipConfig& chip, const arch::SystemConfig* system,
                                  uint32_t chips, const ClusterOptions& options) {
  if (chips == 0)
    return Status(ErrorCode::kInvalidArgument, "a cluster needs at least one chip (--chips N)");
  auto impl = std::make_unique<Impl>();
  impl->chip = chip;
  impl->size = chips;
  impl->options = options;
  if (system != nullptr) {
    impl->system = *system;
  } else {
    TRNSIM_ASSIGN_OR_RETURN(impl->system, defaultSystem(chip, chips));
  }
  // The cost model wants whole nodes: a cluster of fewer chips uses part of one node.
  const uint32_t perNode = std::max<uint32_t>(impl->system.chipsPerNode, 1);
  impl->modelChips = (chips + perNode - 1) / perNode * perNode;
  auto model = CollectiveModel::create(impl->system, impl->modelChips);
  if (!model.hasValue())
    return model.status().withContext(
        fmt::format("the collective model of system '{}' for {} "
                    "chips",
                    impl->system.name, impl->modelChips));
  impl->model = std::make_unique<CollectiveModel>(std::move(*model));

  bool mpi = options.transport == TransportKind::kMpi ||
             (options.transport == TransportKind::kAuto && launchedByMpi() && mpiBuiltIn());
  if (mpi) {
    TRNSIM_ASSIGN_OR_RETURN(impl->transport, makeMpiTransport());
  } else {
    impl->transport = makeLocalTransport();
  }
  const uint64_t k = uint64_t(impl->transport->process());
  const uint64_t procs = uint64_t(impl->transport->processes());
  impl->first = uint32_t(k * chips / procs);
  impl->end = uint32_t((k + 1) * chips / procs);
  impl->programs.resize(chips);
  impl->chips.resize(chips);
  return Cluster(std::move(impl));
}

Status Cluster::load(uint32_t rank, isa::Program program) {
  if (rank >= impl_->size)
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("rank {} does not exist: the cluster has ranks 0-{}", rank, impl_->size - 1));
  Status s = isa::checkProgram(program, impl_->chip);
  if (!s.isOk()) return s.withContext(fmt::format("program '{}' of rank {}", program.name, rank));
  auto shared = std::make_shared<const Program>(std::move(program));
  impl_->segCache.clear();  // keyed by program address, which a freed program may hand on
  if (isLocal(rank))
    impl_->chips[rank] = std::make_unique<sim::FunctionalChip>(
        impl_->chip, sim::hbmExtentBytes(std::span<const Program>(shared.get(), 1)));
  impl_->programs[rank] = std::move(shared);
  return {};
}

Status Cluster::loadAll(const isa::Program& program) {
  Status s = isa::checkProgram(program, impl_->chip);
  if (!s.isOk()) return s.withContext(fmt::format("program '{}'", program.name));
  auto shared = std::make_shared<const Program>(program);
  impl_->segCache.clear();
  const uint64_t extent = sim::hbmExtentBytes(std::span<const Program>(shared.get(), 1));
  for (uint32_t r = 0; r < impl_->size; ++r) {
    impl_->programs[r] = shared;
    if (isLocal(r)) impl_->chips[r] = std::make_unique<sim::FunctionalChip>(impl_->chip, extent);
  }
  return {};
}

const isa::Program& Cluster::program(uint32_t rank) const { return *impl_->programs.at(rank); }

namespace {

Expected<uint32_t> tensorOf(const Program& p, const std::string& name, uint32_t rank) {
  const uint32_t t = p.findTensor(name);
  if (t == isa::kNoTensor)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("program '{}' of rank {} has no tensor '{}'", p.name, rank, name));
  return t;
}

}  // namespace

Status Cluster::write(uint32_t rank, const std::string& tensor, std::span<const std::byte> data) {
  if (rank >= impl_->size || !impl_->programs[rank])
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("rank {} has no program (load it first)", rank));
  if (!isLocal(rank))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("rank {} lives in MPI process {}, not here (ranks {}-{})", rank,
                              uint64_t(rank) * uint64_t(processes()) / impl_->size, impl_->first,
                              impl_->end - 1));
  const Program& p = *impl_->programs[rank];
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, tensorOf(p, tensor, rank));
  return impl_->chips[rank]->writeTensor(p, 0, t, data);
}

Expected<std::vector<std::byte>> Cluster::read(uint32_t rank, const std::string& tensor) const {
  if (rank >= impl_->size || !impl_->programs[rank] || !isLocal(rank))
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("rank {} has no program in this process", rank));
  const Program& p = *impl_->programs[rank];
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, tensorOf(p, tensor, rank));
  return impl_->chips[rank]->readTensor(p, 0, t);
}

Expected<std::vector<uint64_t>> Cluster::outputHashes() const {
  std::vector<uint64_t> hashes(impl_->size, 0);
  Writer w;
  for (uint32_t r = impl_->first; r < impl_->end; ++r) {
    const Program& p = *impl_->programs[r];
    uint64_t h = support::kFnvOffset;
    for (uint32_t t = 0; t < p.tensors.size(); ++t) {
      const isa::TensorDecl& d = p.tensors[t];
      if (d.space != isa::MemSpace::kHbm ||
          (d.kind != isa::TensorKind::kOutput && d.kind != isa::TensorKind::kInOut))
        continue;
      TRNSIM_ASSIGN_OR_RETURN(auto bytes, impl_->chips[r]->readTensor(p, 0, t));
      h = support::fnv1a64(bytes.data(), bytes.size(), h);
    }
    hashes[r] = h;
    w.u64(r);
    w.u64(h);
  }
  if (impl_->transport->processes() > 1) {
    TRNSIM_ASSIGN_OR_RETURN(auto all, impl_->transport->allGather(w.out));
    for (const auto& buf : all) {
      Reader rd{buf};
      while (rd.ok && rd.pos < buf.size()) {
        const uint64_t r = rd.u64(), h = rd.u64();
        if (rd.ok && r < hashes.size()) hashes[r] = h;
      }
    }
  }
  return hashes;
}

// ---------------------------------------------------------------------------------------------
// Timing

Expected<std::shared_ptr<SegmentTiming>> Cluster::Impl::timeSegment(const Program& p, size_t begin,
                                                                    size_t stop, bool events) {
  const auto key = std::make_tuple(&p, begin, stop);
  {
    std::lock_guard lock(segMutex);
    if (auto it = segCache.find(key); it != segCache.end()) return it->second;
  }
  auto seg = std::make_shared<SegmentTiming>();
  if (stop > begin) {
    Program piece;
    piece.name = p.name;
    piece.target = p.target;
    piece.tensors = p.tensors;
    piece.locations = p.locations;
    piece.instructions.assign(p.instructions.begin() + std::ptrdiff_t(begin),
                              p.instructions.begin() + std::ptrdiff_t(stop));
    const Program* perCore[] = {&piece};
    sim::TimingOptions topts;
    topts.recordEvents = events;
    TRNSIM_ASSIGN_OR_RETURN(seg->timeline, sim::simulateTiming(chip, perCore, topts));
    for (auto& e : seg->timeline.events) {
      e.instruction += uint32_t(begin);
      if (e.after != sim::TimelineEvent::kNoInstruction) e.after += uint32_t(begin);
    }
    seg->ns = seg->timeline.endNs;
  }
  std::lock_guard lock(segMutex);
  return segCache.emplace(key, std::move(seg)).first->second;
}

Expected<CollectiveCost> Cluster::Impl::cost(const Firing& f, uint64_t bytes) {
  const CollectiveOp op = collectiveOpOf(f.op);
  const uint64_t n = f.members.size();
  if (n <= 1 || (op != CollectiveOp::kBarrier && bytes == 0)) {
    CollectiveCost c;  // a rank alone (or nothing to move): a local copy, no fabric time
    c.ranks = n;
    return c;
  }
  // The rank-list as the model's regular group: size n, stride between consecutive members
  // when they are evenly spaced (else 1), in the model's ranks (ranksPerChip per chip).
  std::vector<uint32_t> sorted = f.members;
  std::sort(sorted.begin(), sorted.end());
  uint64_t stride = sorted[1] - sorted[0];
  for (size_t i = 2; i < sorted.size(); ++i)
    if (sorted[i] - sorted[i - 1] != stride) stride = 1;
  if (stride == 0 || stride * (n - 1) >= modelChips) stride = 1;
  GroupSpec group;
  group.size = n;
  group.stride = stride * std::max<uint32_t>(system.accel.ranksPerChip, 1);
  group.concurrentGroups = f.listsInGroup > 1;
  const auto key =
      std::make_tuple(int(op), bytes, group.size, group.stride, group.concurrentGroups);
  if (auto it = costCache.find(key); it != costCache.end()) return it->second;
  // A group the model cannot place as a regular pattern (a size that does not tile the
  // system) is timed alone, then as the next size that does: an upper bound.
  CollectiveRequest req;
  req.op = op;
  req.bytes = bytes;
  req.group = group;
  auto c = model->estimate(req);
  const uint64_t rpc = std::max<uint32_t>(system.accel.ranksPerChip, 1);
  for (uint64_t m = n; !c.hasValue() && m <= modelChips; ++m) {
    req.group.size = m;
    req.group.stride = rpc;
    req.group.concurrentGroups = false;
    auto retry = model->estimate(req);
    if (retry.hasValue()) c = std::move(retry);
  }
  if (!c.hasValue())
    return c.status().withContext(fmt::format("timing {} of {} bytes on ranks {}", opName(op),
                                              bytes, rankListString(f.members)));
  costCache.emplace(key, *c);
  return *c;
}

// ---------------------------------------------------------------------------------------------
// Matching: which collectives can run now

namespace {

/// The rank-list of `rank` in replica group `g` (every rank when it has no lists).
std::optional<std::vector<uint32_t>> listOf(const isa::ReplicaGroup& g, uint32_t rank,
                                            uint32_t size) {
  if (g.allRanks()) {
    std::vector<uint32_t> all(size);
    std::iota(all.begin(), all.end(), 0u);
    return all;
  }
  for (const auto& l : g.lists)
    if (std::find(l.begin(), l.end(), rank) != l.end()) return l;
  return std::nullopt;
}

std::string waitDescription(const Program& p, const RankInfo& r, uint32_t rank) {
  if (r.state == RankState::kDone) return fmt::format("rank {} has finished its program", rank);
  const isa::Instruction& in = p.instructions[r.pc];
  std::string what = p.instructionContext(r.pc);
  if (in.opcode == Opcode::kSendRecv)
    return fmt::format("rank {} waits at {} (send to {}, receive from {})", rank, what, in.iarg[0],
                       in.iarg[1]);
  const int64_t g = in.iarg[0];
  std::string group = g >= 0 && uint64_t(g) < p.replicaGroups.size()
                          ? groupString(p.replicaGroups[size_t(g)])
                          : fmt::format("replica group {}", g);
  return fmt::format("rank {} waits at {} on {}", rank, what, group);
}

}  // namespace

Status Cluster::Impl::checkFiring(const Firing& f, const std::vector<RankInfo>& ranks) const {
  // Every member runs the same kind of collective on the same sizes and dtypes.
  const uint32_t r0 = f.members[0];
  const Program& p0 = *programs[r0];
  const size_t i0 = ranks[r0].pc;
  const isa::Instruction& in0 = p0.instructions[i0];
  for (uint32_t r : f.members) {
    const Program& p = *programs[r];
    const size_t i = ranks[r].pc;
    const isa::Instruction& in = p.instructions[i];
    auto mismatch = [&](const std::string& what) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("ranks {} and {} disagree on {} {}: {}; every member of a "
                                "rank-list must make the same call",
                                r0, r, opcodeName(in.opcode), rankListString(f.members), what),
                    fmt::format("rank {} {} / rank {} {}", r0, p0.instructionContext(i0), r,
                                p.instructionContext(i)));
    };
    if (f.op == Opcode::kSendRecv) continue;  // checked pairwise by the caller
    if (in.reduceOp != in0.reduceOp)
      return mismatch(fmt::format("reduce_op {} vs {}", isa::aluOpName(in0.reduceOp),
                                  isa::aluOpName(in.reduceOp)));
    if (f.op == Opcode::kCoreBarrier) continue;
    for (uint8_t slot = 0; slot < 2; ++slot) {
      if (operandDType(p, i, slot) != operandDType(p0, i0, slot) ||
          operandElements(p, i, slot) != operandElements(p0, i0, slot))
        return mismatch(fmt::format(
            "{} is {} x {} vs {} x {}", slot == 0 ? "dst" : "src", operandElements(p0, i0, slot),
            numerics::dtypeName(operandDType(p0, i0, slot)), operandElements(p, i, slot),
            numerics::dtypeName(operandDType(p, i, slot))));
    }
  }
  if (f.op == Opcode::kSendRecv || f.op == Opcode::kCoreBarrier ||
      f.op == Opcode::kCollectivePermute)
    return {};
  const int64_t n = int64_t(f.members.size());
  const int64_t nd = operandElements(p0, i0, 0), ns = operandElements(p0, i0, 1);
  bool ok = true;
  std::string need;
  switch (f.op) {
    case Opcode::kAllGather:
      ok = nd == n * ns;
      need = fmt::format("dst of {} x src ({}) elements", n, n * ns);
      break;
    case Opcode::kReduceScatter:
      ok = ns == n * nd;
      need = fmt::format("src of {} x dst ({}) elements", n, n * nd);
      break;
    case Opcode::kAllToAll:
      ok = ns % n == 0;
      need = fmt::format("a multiple of {} elements", n);
      break;
    default:
      break;
  }
  if (!ok)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} on the {} ranks {} needs {}; dst has {}, src {}",
                              opcodeName(f.op), n, rankListString(f.members), need, nd, ns),
                  fmt::format("rank {} {}", r0, p0.instructionContext(i0)));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Data: what each firing collective computes

namespace {

constexpr size_t kChunkElems = size_t(1) << 16;

/// acc[i] = op(acc[i], in[i]) in fp32 (kBypass: acc = in), in chunks over host threads.
/// Max and min propagate NaN; the result per element does not depend on the chunking.
void combineInto(std::vector<float>& acc, std::span<const std::byte> in, numerics::DType dt,
                 isa::AluOp op, uint32_t threads) {
  const size_t es = numerics::dtypeSize(dt);
  const size_t count = acc.size();
  support::parallelFor((count + kChunkElems - 1) / kChunkElems, threads, [&](size_t c) {
    const size_t b = c * kChunkElems, e = std::min(count, b + kChunkElems);
    float* a = acc.data() + b;
    if (op == isa::AluOp::kBypass) {
      numerics::convertToFloat(dt, in.data() + b * es, a, e - b);
      return;
    }
    std::vector<float> tmp(e - b);
    numerics::convertToFloat(dt, in.data() + b * es, tmp.data(), e - b);
    const size_t n = e - b;
    switch (op) {
      case isa::AluOp::kMax:
        for (size_t i = 0; i < n; ++i) a[i] = std::isnan(tmp[i]) || tmp[i] > a[i] ? tmp[i] : a[i];
        break;
      case isa::AluOp::kMin:
        for (size_t i = 0; i < n; ++i) a[i] = std::isnan(tmp[i]) || tmp[i] < a[i] ? tmp[i] : a[i];
        break;
      default:
        for (size_t i = 0; i < n; ++i) a[i] += tmp[i];
        break;
    }
  });
}

/// acc[first, first + count) rounded (RNE) to dt into out.
void toDType(const std::vector<float>& acc, size_t first, size_t count, numerics::DType dt,
             std::byte* out, uint32_t threads) {
  const size_t es = numerics::dtypeSize(dt);
  support::parallelFor((count + kChunkElems - 1) / kChunkElems, threads, [&](size_t c) {
    const size_t b = c * kChunkElems, e = std::min(count, b + kChunkElems);
    numerics::convertFromFloat(dt, acc.data() + first + b, out + b * es, e - b);
  });
}

}  // namespace

Expected<ClusterResult> Cluster::run(const ClusterRunOptions& opts) {
  Impl& im = *impl_;
  const auto hostStart = std::chrono::steady_clock::now();
  for (uint32_t r = 0; r < im.size; ++r)
    if (!im.programs[r])
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("rank {} has no program: call load(rank, program) or loadAll", r));
  const uint32_t nthreads = im.threads();
  const bool multi = im.transport->processes() > 1;
  std::vector<RankInfo> ranks(im.size);
  std::vector<sim::RunResult> local(im.size);
  std::vector<sim::RunOptions> ropts(im.size);
  for (uint32_t r = 0; r < im.size; ++r) {
    ropts[r].computeValues = opts.computeValues;
    ropts[r].detectUninitialized = opts.detectUninitialized;
    uint64_t state = opts.seed ^ (uint64_t(r) * support::kGolden);
    ropts[r].seed = support::splitmix64(state);
    local[r].timeline.cores.resize(1);
  }
  // The SPMD rank tensor.
  if (opts.computeValues) {
    for (uint32_t r = im.first; r < im.end; ++r) {
      const Program& p = *im.programs[r];
      const uint32_t t = p.findTensor(kRankTensorName);
      if (t == isa::kNoTensor || p.tensors[t].space != isa::MemSpace::kHbm) continue;
      const auto& d = p.tensors[t];
      std::vector<float> v(size_t(std::max<int64_t>(d.numElements(), 0)), float(r));
      std::vector<std::byte> bytes(v.size() * numerics::dtypeSize(d.dtype));
      numerics::convertFromFloat(d.dtype, v.data(), bytes.data(), v.size());
      TRNSIM_RETURN_IF_ERROR(im.chips[r]->writeTensor(p, 0, t, bytes));
    }
  }

  ClusterResult result;
  uint64_t bytesReduced = 0;
  bool started = false;
  while (true) {
    ++result.supersteps;
    // 1. Every ready local rank runs to its next collective (or its end).
    std::vector<uint32_t> todo;
    for (uint32_t r = im.first; r < im.end; ++r)
      if (ranks[r].state == RankState::kReady) todo.push_back(r);
    support::parallelFor(todo.size(), nthreads, [&](size_t i) {
      const uint32_t r = todo[i];
      RankInfo& ri = ranks[r];
      const Program& p = *im.programs[r];
      size_t stop = ri.pc;
      while (stop < p.instructions.size() && !isa::isCollective(p.instructions[stop].opcode))
        ++stop;
      if (opts.computeValues) {
        auto ran = im.chips[r]->runRange(p, 0, ri.pc, stop, ropts[r], !started);
        if (!ran.hasValue()) {
          ri.state = RankState::kError;
          ri.error = ran.status().withContext(fmt::format("rank {}", r));
          return;
        }
      }
      auto seg = im.timeSegment(p, ri.pc, stop, opts.recordEvents);
      if (!seg.hasValue()) {
        ri.state = RankState::kError;
        ri.error = seg.status().withContext(fmt::format("rank {}", r));
        return;
      }
      const SegmentTiming& st = **seg;
      sim::Timeline& tl = local[r].timeline;
      for (const auto& e : st.timeline.events) {
        sim::TimelineEvent ev = e;
        ev.startNs += ri.clockNs;
        ev.endNs += ri.clockNs;
        ev.readyNs += ri.clockNs;
        tl.events.push_back(ev);
      }
      if (!st.timeline.cores.empty()) {
        const auto& c = st.timeline.cores[0];
        auto& acc = tl.cores[0];
        for (size_t e = 0; e < c.busyNs.size(); ++e) {
          acc.busyNs[e] += c.busyNs[e];
          acc.engineInstructions[e] += c.engineInstructions[e];
          acc.stallNs[e] += c.stallNs[e];
        }
        acc.tensorFlops += c.tensorFlops;
        acc.tensorFlopsAtPeakNs += c.tensorFlopsAtPeakNs;
        acc.hbmReadBytes += c.hbmReadBytes;
        acc.hbmWriteBytes += c.hbmWriteBytes;
        acc.instructions += c.instructions;
        acc.throttledNs += c.throttledNs;
      }
      ri.computeNs += st.ns;
      ri.instructions += stop - ri.pc;
      ri.arrivalNs = ri.clockNs + st.ns;
      ri.pc = stop;
      ri.state = stop < p.instructions.size() ? RankState::kWaiting : RankState::kDone;
      if (ri.state == RankState::kDone) ri.clockNs = ri.arrivalNs;
    });
    started = true;

    // 2. Everyone learns every rank's state.
    if (multi) {
      Writer w;
      for (uint32_t r : todo) {
        const RankInfo& ri = ranks[r];
        w.u64(r);
        w.u64(uint64_t(ri.state));
        w.u64(ri.pc);
        w.f64(ri.clockNs);
        w.f64(ri.arrivalNs);
        w.f64(ri.computeNs);
        w.u64(ri.instructions);
        w.u64(uint64_t(ri.error.code()));
        w.str(ri.error.message());
        w.str(ri.error.where());
      }
      TRNSIM_ASSIGN_OR_RETURN(auto all, im.transport->allGather(w.out));
      for (const auto& buf : all) {
        Reader rd{buf};
        while (rd.ok && rd.pos < buf.size()) {
          const uint64_t r = rd.u64();
          RankInfo tmp;
          tmp.state = static_cast<RankState>(rd.u64());
          tmp.pc = rd.u64();
          tmp.clockNs = rd.f64();
          tmp.arrivalNs = rd.f64();
          tmp.computeNs = rd.f64();
          tmp.instructions = rd.u64();
          const auto code = static_cast<ErrorCode>(rd.u64());
          std::string message = rd.str();
          std::string where = rd.str();
          if (code != ErrorCode::kOk)
            tmp.error = Status(code, std::move(message), std::move(where));
          if (!rd.ok || r >= im.size)
            return Status(ErrorCode::kCorrupt, "malformed rank states from another MPI process");
          RankInfo& ri = ranks[r];
          ri.state = tmp.state;
          ri.pc = tmp.pc;
          ri.clockNs = tmp.clockNs;
          ri.arrivalNs = tmp.arrivalNs;
          ri.computeNs = tmp.computeNs;
          ri.instructions = tmp.instructions;
          ri.error = std::move(tmp.error);
        }
      }
    }
    for (uint32_t r = 0; r < im.size; ++r)
      if (ranks[r].state == RankState::kError) return ranks[r].error;
    bool allDone = true;
    for (const RankInfo& ri : ranks) allDone = allDone && ri.state == RankState::kDone;
    if (allDone) break;

    // 3. Which collectives have all their members (the same decision in every process).
    std::vector<Firing> firings;
    std::vector<uint8_t> taken(im.size, 0);
    for (uint32_t r = 0; r < im.size; ++r) {
      const RankInfo& ri = ranks[r];
      if (ri.state != RankState::kWaiting || taken[r]) continue;
      const Program& p = *im.programs[r];
      const isa::Instruction& in = p.instructions[ri.pc];
      const std::string where = fmt::format("rank {} {}", r, p.instructionContext(ri.pc));
      if (in.opcode == Opcode::kSendRecv) continue;  // below
      const int64_t g = in.iarg[0];
      const isa::ReplicaGroup& rg = p.replicaGroups[size_t(g)];
      for (const auto& l : rg.lists)
        for (uint32_t m : l)
          if (m >= im.size)
            return Status(ErrorCode::kInvalidArgument,
                          fmt::format("replica group {} names rank {}, but the cluster has {} "
                                      "ranks (0-{})",
                                      g, m, im.size, im.size - 1),
                          where);
      Firing f;
      f.op = in.opcode;
      if (in.opcode == Opcode::kCollectivePermute) {
        f.members.resize(im.size);
        std::iota(f.members.begin(), f.members.end(), 0u);
        for (const auto& pr : rg.lists) f.pairs.emplace_back(pr[0], pr[1]);
      } else {
        auto l = listOf(rg, r, im.size);
        if (!l)
          return Status(ErrorCode::kInvalidArgument,
                        fmt::format("rank {} is not in replica group {} ({}): every rank that "
                                    "calls {} must be in one of its rank-lists",
                                    r, g, groupString(rg), opcodeName(in.opcode)),
                        where);
        f.members = std::move(*l);
        f.listsInGroup = std::max<size_t>(rg.lists.size(), 1);
      }
      bool complete = true;
      for (uint32_t m : f.members) {
        const RankInfo& mi = ranks[m];
        if (mi.state != RankState::kWaiting || taken[m]) {
          complete = false;
          break;
        }
        const Program& pm = *im.programs[m];
        const isa::Instruction& im2 = pm.instructions[mi.pc];
        if (im2.opcode != in.opcode || im2.iarg[0] < 0 ||
            uint64_t(im2.iarg[0]) >= pm.replicaGroups.size() ||
            pm.replicaGroups[size_t(im2.iarg[0])] != rg) {
          complete = false;
          break;
        }
      }
      if (!complete) continue;
      TRNSIM_RETURN_IF_ERROR(im.checkFiring(f, ranks));
      for (uint32_t m : f.members) taken[m] = 1;
      firings.push_back(std::move(f));
    }
    // sendrecv: the largest set of waiting ranks whose peers wait for them, pairwise.
    {
      std::vector<uint8_t> cand(im.size, 0);
      for (uint32_t r = 0; r < im.size; ++r) {
        const RankInfo& ri = ranks[r];
        if (ri.state != RankState::kWaiting || taken[r]) continue;
        const isa::Instruction& in = im.programs[r]->instructions[ri.pc];
        if (in.opcode != Opcode::kSendRecv) continue;
        if (in.iarg[0] >= int64_t(im.size) || in.iarg[1] >= int64_t(im.size))
          return Status(ErrorCode::kInvalidArgument,
                        fmt::format("sendrecv names rank {}, but the cluster has {} ranks (0-{})",
                                    std::max(in.iarg[0], in.iarg[1]), im.size, im.size - 1),
                        fmt::format("rank {} {}", r, im.programs[r]->instructionContext(ri.pc)));
        cand[r] = 1;
      }
      auto peers = [&](uint32_t r) {
        const isa::Instruction& in = im.programs[r]->instructions[ranks[r].pc];
        return std::make_pair(uint32_t(in.iarg[0]), uint32_t(in.iarg[1]));
      };
      for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < im.size; ++r) {
          if (!cand[r]) continue;
          auto [to, from] = peers(r);
          bool ok = cand[to] && peers(to).second == r && cand[from] && peers(from).first == r;
          if (!ok) {
            cand[r] = 0;
            changed = true;
          }
        }
      }
      // Components (joined by send edges), each one collective.
      std::vector<uint8_t> seen(im.size, 0);
      for (uint32_t r = 0; r < im.size; ++r) {
        if (!cand[r] || seen[r]) continue;
        Firing f;
        f.op = Opcode::kSendRecv;
        for (uint32_t cur = r; !seen[cur]; cur = peers(cur).first) {
          seen[cur] = 1;
          f.members.push_back(cur);
        }
        std::sort(f.members.begin(), f.members.end());
        for (uint32_t m : f.members) {
          const uint32_t from = peers(m).second;
          const Program& pm = *im.programs[m];
          const Program& pf = *im.programs[from];
          if (operandBytes(pm, ranks[m].pc, 0) != operandBytes(pf, ranks[from].pc, 1) ||
              operandDType(pm, ranks[m].pc, 0) != operandDType(pf, ranks[from].pc, 1))
            return Status(
                ErrorCode::kInvalidArgument,
                fmt::format("rank {} receives {} bytes of {} from rank {}, which sends "
                            "{} bytes of {}: sendrecv peers move equal tensors",
                            m, operandBytes(pm, ranks[m].pc, 0),
                            numerics::dtypeName(operandDType(pm, ranks[m].pc, 0)), from,
                            operandBytes(pf, ranks[from].pc, 1),
                            numerics::dtypeName(operandDType(pf, ranks[from].pc, 1))),
                fmt::format("rank {} {} / rank {} {}", m, pm.instructionContext(ranks[m].pc), from,
                            pf.instructionContext(ranks[from].pc)));
          taken[m] = 1;
        }
        firings.push_back(std::move(f));
      }
    }
    if (firings.empty()) {
      std::string lines;
      int shown = 0;
      for (uint32_t r = 0; r < im.size && shown < 16; ++r, ++shown)
        lines += "\n  " + waitDescription(*im.programs[r], ranks[r], r);
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("deadlock: no collective can complete (ranks call different "
                                "collectives, or a rank-list member never arrives):{}",
                                lines));
    }

    // 4. Time: each collective starts when its last member arrives.
    std::vector<double> firingEnd;
    for (const Firing& f : firings) {
      const uint32_t r0 = f.members[0];
      const Program& p0 = *im.programs[r0];
      const size_t i0 = ranks[r0].pc;
      uint64_t bytes = 0;
      switch (f.op) {
        case Opcode::kAllGather:
          bytes = operandBytes(p0, i0, 0);
          break;
        case Opcode::kCoreBarrier:
          bytes = 0;
          break;
        default:
          bytes = operandBytes(p0, i0, 1);
          break;
      }
      TRNSIM_ASSIGN_OR_RETURN(CollectiveCost c, im.cost(f, bytes));
      double start = 0;
      for (uint32_t m : f.members) start = std::max(start, ranks[m].arrivalNs);
      const double endNs = start + c.timeS * 1e9;
      firingEnd.push_back(endNs);
      CollectiveRecord rec;
      rec.op = collectiveOpOf(f.op);
      rec.instruction = i0;
      rec.ranks = f.members;
      rec.bytes = bytes;
      rec.startNs = start;
      rec.endNs = endNs;
      rec.algorithm = c.algorithm;
      rec.algbwGbps = c.algbwGbps;
      rec.busbwGbps = c.busbwGbps;
      result.collectives.push_back(std::move(rec));
      for (uint32_t m : f.members) {
        RankInfo& mi = ranks[m];
        mi.exposedCommNs += endNs - mi.arrivalNs;
        mi.commNs += endNs - start;
        if (m >= im.first && m < im.end) {
          const isa::Instruction& in = im.programs[m]->instructions[mi.pc];
          sim::TimelineEvent ev;
          ev.engine = arch::Engine::kDma;
          ev.queue = in.queue;
          ev.instruction = uint32_t(mi.pc);
          ev.readyNs = mi.arrivalNs;
          ev.startNs = start;
          ev.endNs = endNs;
          if (opts.recordEvents) local[m].timeline.events.push_back(ev);
        }
      }
    }

    // 5. Data.
    if (opts.computeValues) {
      // Per firing, the members' sent bytes: read locally, exchanged under MPI.
      std::vector<std::vector<std::vector<std::byte>>> sent(firings.size());
      Status readError;
      for (size_t fi = 0; fi < firings.size() && readError.isOk(); ++fi) {
        const Firing& f = firings[fi];
        sent[fi].resize(f.members.size());
        if (f.op == Opcode::kCoreBarrier) continue;
        // One process reduces straight from the chips, one member at a time (memory).
        if (!multi && (f.op == Opcode::kAllReduce || f.op == Opcode::kReduceScatter)) continue;
        for (size_t k = 0; k < f.members.size(); ++k) {
          const uint32_t m = f.members[k];
          if (!(m >= im.first && m < im.end)) continue;
          if (f.op == Opcode::kCollectivePermute) {
            bool sends = false;
            for (auto [s, t] : f.pairs) sends = sends || s == m;
            if (!sends) continue;
          }
          auto b = im.chips[m]->readOperand(*im.programs[m], 0, ranks[m].pc, 1, ropts[m]);
          if (!b.hasValue()) {
            readError = b.status().withContext(fmt::format("rank {}", m));
            break;
          }
          sent[fi][k] = std::move(*b);
        }
      }
      if (multi) {
        Writer w;
        w.u64(uint64_t(readError.code()));
        w.str(readError.message());
        w.str(readError.where());
        for (size_t fi = 0; fi < firings.size(); ++fi)
          for (size_t k = 0; k < firings[fi].members.size(); ++k) {
            const uint32_t m = firings[fi].members[k];
            if (!(m >= im.first && m < im.end) || sent[fi][k].empty()) continue;
            w.u64(fi);
            w.u64(k);
            w.u64(sent[fi][k].size());
            w.raw(sent[fi][k].data(), sent[fi][k].size());
          }
        TRNSIM_ASSIGN_OR_RETURN(auto all, im.transport->allGather(w.out));
        for (const auto& buf : all) {
          Reader rd{buf};
          const auto code = static_cast<ErrorCode>(rd.u64());
          std::string message = rd.str();
          std::string where = rd.str();
          if (code != ErrorCode::kOk && readError.isOk())
            readError = Status(code, std::move(message), std::move(where));
          while (rd.ok && rd.pos < buf.size()) {
            const uint64_t fi = rd.u64(), k = rd.u64(), n = rd.u64();
            auto bytes = rd.bytes(n);
            if (!rd.ok || fi >= firings.size() || k >= firings[fi].members.size())
              return Status(ErrorCode::kCorrupt, "malformed collective data from another process");
            sent[fi][k].assign(bytes.begin(), bytes.end());
          }
        }
      }
      if (!readError.isOk()) return readError;

      for (size_t fi = 0; fi < firings.size(); ++fi) {
        const Firing& f = firings[fi];
        if (f.op == Opcode::kCoreBarrier) continue;
        const size_t n = f.members.size();
        const uint32_t r0 = f.members[0];
        const Program& p0 = *im.programs[r0];
        const isa::Instruction& in0 = p0.instructions[ranks[r0].pc];
        const numerics::DType dt = operandDType(p0, ranks[r0].pc, 1);
        const size_t es = numerics::dtypeSize(dt);
        std::vector<std::span<const std::byte>> inputs(n);
        for (size_t k = 0; k < n; ++k) inputs[k] = sent[fi][k];
        auto deliver = [&](uint32_t m, std::span<const std::byte> data) -> Status {
          if (!(m >= im.first && m < im.end)) return {};
          return im.chips[m]->writeOperand(*im.programs[m], 0, ranks[m].pc, 0, data, ropts[m]);
        };
        switch (f.op) {
          case Opcode::kAllReduce:
          case Opcode::kReduceScatter: {
            // fp32 accumulation in list order, member by member (the order of every element's
            // sum is the list order, whatever the chunking over threads).
            const size_t total = size_t(operandElements(p0, ranks[r0].pc, 1));
            std::vector<float> acc(total);
            std::vector<std::byte> owned;
            for (size_t k = 0; k < n; ++k) {
              std::span<const std::byte> in = inputs[k];
              if (in.empty() && total > 0) {
                // In place when the operand is contiguous (no copy), else a copy.
                const uint32_t m = f.members[k];
                auto direct =
                    im.chips[m]->operandBytesInPlace(*im.programs[m], 0, ranks[m].pc, 1, ropts[m]);
                if (!direct.hasValue())
                  return direct.status().withContext(fmt::format("rank {}", m));
                in = *direct;
                if (in.empty()) {
                  auto b = im.chips[m]->readOperand(*im.programs[m], 0, ranks[m].pc, 1, ropts[m]);
                  if (!b.hasValue()) return b.status().withContext(fmt::format("rank {}", m));
                  owned = std::move(*b);
                  in = owned;
                }
              }
              combineInto(acc, in, dt, k == 0 ? isa::AluOp::kBypass : in0.reduceOp, nthreads);
            }
            owned = {};
            bytesReduced += total * es * n;
            if (f.op == Opcode::kAllReduce) {
              std::vector<std::byte> out(total * es);
              toDType(acc, 0, total, dt, out.data(), nthreads);
              for (uint32_t m : f.members) TRNSIM_RETURN_IF_ERROR(deliver(m, out));
            } else {
              const size_t chunk = total / n;
              std::vector<std::byte> out(chunk * es);
              for (size_t k = 0; k < n; ++k) {
                if (!(f.members[k] >= im.first && f.members[k] < im.end)) continue;
                toDType(acc, k * chunk, chunk, dt, out.data(), nthreads);
                TRNSIM_RETURN_IF_ERROR(deliver(f.members[k], out));
              }
            }
            break;
          }
          case Opcode::kAllGather: {
            std::vector<std::byte> out;
            out.reserve(inputs[0].size() * n);
            for (const auto& in : inputs) out.insert(out.end(), in.begin(), in.end());
            for (uint32_t m : f.members) TRNSIM_RETURN_IF_ERROR(deliver(m, out));
            break;
          }
          case Opcode::kAllToAll: {
            const size_t chunk = inputs[0].size() / n;
            for (size_t k = 0; k < n; ++k) {
              std::vector<std::byte> out(inputs[0].size());
              for (size_t j = 0; j < n; ++j)
                std::memcpy(out.data() + j * chunk, inputs[j].data() + k * chunk, chunk);
              TRNSIM_RETURN_IF_ERROR(deliver(f.members[k], out));
            }
            break;
          }
          case Opcode::kCollectivePermute:
            for (auto [s, t] : f.pairs) TRNSIM_RETURN_IF_ERROR(deliver(t, inputs[s]));
            break;
          case Opcode::kSendRecv:
            for (size_t k = 0; k < n; ++k) {
              const uint32_t m = f.members[k];
              const uint32_t from = uint32_t(im.programs[m]->instructions[ranks[m].pc].iarg[1]);
              const size_t kf =
                  size_t(std::find(f.members.begin(), f.members.end(), from) - f.members.begin());
              TRNSIM_RETURN_IF_ERROR(deliver(m, inputs[kf]));
            }
            break;
          default:
            break;
        }
      }
    }
    for (size_t fi = 0; fi < firings.size(); ++fi) {
      for (uint32_t m : firings[fi].members) {
        RankInfo& mi = ranks[m];
        mi.clockNs = firingEnd[fi];
        mi.pc += 1;
        mi.instructions += 1;
        mi.state = RankState::kReady;
      }
    }
  }

  // Results: the same in every process.
  result.ranks.resize(im.size);
  for (uint32_t r = 0; r < im.size; ++r) {
    RankResult& rr = result.ranks[r];
    rr.run = std::move(local[r]);
    rr.run.simulatedNs = ranks[r].clockNs;
    rr.run.timeline.endNs = ranks[r].clockNs;
    if (!rr.run.timeline.cores.empty()) rr.run.timeline.cores[0].endNs = ranks[r].clockNs;
    rr.run.instructions = ranks[r].instructions;
    rr.computeNs = ranks[r].computeNs;
    rr.exposedCommNs = ranks[r].exposedCommNs;
    result.simulatedNs = std::max(result.simulatedNs, ranks[r].clockNs);
    result.computeNs += ranks[r].computeNs / im.size;
    result.exposedCommNs += ranks[r].exposedCommNs / im.size;
    result.commNs += ranks[r].commNs / im.size;
  }
  result.commTax = result.simulatedNs > 0 ? result.exposedCommNs / result.simulatedNs : 0;
  result.overlap =
      result.commNs > 0 ? std::max(0.0, 1.0 - result.exposedCommNs / result.commNs) : 0;
  result.bytesReduced = bytesReduced;
  result.hostSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - hostStart).count();
  for (uint32_t r = 0; r < im.size; ++r) result.ranks[r].run.hostSeconds = result.hostSeconds;
  return result;
}

}  // namespace trnsim::fabric
