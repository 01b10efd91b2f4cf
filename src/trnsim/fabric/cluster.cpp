// Functional multi-chip runs (cluster.h): supersteps of "every rank runs to its next
// collective, then every complete collective moves its data", on host threads and, under
// mpirun, across processes. This file: set-up, tensor I/O, timing and the superstep loop;
// cluster_match.cpp decides which collectives run, cluster_data.cpp what they compute.

#include "trnsim/fabric/cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <tuple>

#include "trnsim/fabric/cluster_internal.h"
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

using detail::operandBytes;
using detail::RankInfo;
using detail::RankState;
using detail::SegmentTiming;

}  // namespace

namespace detail {

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

}  // namespace detail

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
  return load(rank, std::make_shared<const Program>(std::move(program)));
}

Status Cluster::load(uint32_t rank, std::shared_ptr<const isa::Program> program) {
  if (rank >= impl_->size)
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("rank {} does not exist: the cluster has ranks 0-{}", rank, impl_->size - 1));
  if (!program) return Status(ErrorCode::kInvalidArgument, "no program to load");
  // A program another rank already loaded was verified then; one the builder stamped for this
  // chip was verified when it was built.
  const bool loadedBefore =
      std::find(impl_->programs.begin(), impl_->programs.end(), program) != impl_->programs.end();
  const bool verified = loadedBefore || isa::isVerifiedFor(*program, impl_->chip);
  if (!verified) {
    Status s = isa::checkProgram(*program, impl_->chip);
    if (!s.isOk())
      return s.withContext(fmt::format("program '{}' of rank {}", program->name, rank));
  }
  impl_->segCache.clear();  // keyed by program address, which a freed program may hand on
  if (isLocal(rank))
    impl_->chips[rank] = std::make_unique<sim::FunctionalChip>(
        impl_->chip, sim::hbmExtentBytes(std::span<const Program>(program.get(), 1)));
  impl_->programs[rank] = std::move(program);
  return {};
}

Status Cluster::loadAll(const isa::Program& program) {
  if (!isa::isVerifiedFor(program, impl_->chip)) {
    Status s = isa::checkProgram(program, impl_->chip);
    if (!s.isOk()) return s.withContext(fmt::format("program '{}'", program.name));
  }
  auto shared = std::make_shared<const Program>(program);
  impl_->segCache.clear();
  const uint64_t extent = sim::hbmExtentBytes(std::span<const Program>(shared.get(), 1));
  for (uint32_t r = 0; r < impl_->size; ++r) {
    impl_->programs[r] = shared;
    if (isLocal(r)) impl_->chips[r] = std::make_unique<sim::FunctionalChip>(impl_->chip, extent);
  }
  return {};
}

Status Cluster::Impl::checkHostMemory() const {
  uint64_t need = 0;
  uint32_t local = 0;
  for (const auto& c : chips) {
    if (!c) continue;
    need += c->pendingHbmHostBytes();
    ++local;
  }
  const uint64_t available = sim::hostMemoryAvailable();
  if (available == 0 || need <= available) return {};
  return Status(ErrorCode::kCapacity,
                fmt::format("the simulated HBM of this process's {} chips needs {:.2f} GB of host "
                            "memory together (1.125 host bytes per simulated byte) and this "
                            "machine has {:.2f} GB available; run timing-only, which touches no "
                            "memory, spread the ranks over processes (MPI), or use smaller "
                            "tensors",
                            local, double(need) / 1e9, double(available) / 1e9));
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
  WireWriter w;
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
    TRNSIM_ASSIGN_OR_RETURN(auto all, impl_->transport->allGather(w.bytes()));
    for (const auto& buf : all) {
      WireReader rd(buf);
      while (rd.ok() && !rd.atEnd()) {
        const uint64_t r = rd.u64(), h = rd.u64();
        if (rd.ok() && r < hashes.size()) hashes[r] = h;
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
                                              bytes, detail::rankListString(f.members)));
  costCache.emplace(key, *c);
  return *c;
}

namespace {

/// Step 2 of a superstep under MPI: every process sends the states of the ranks it ran (`ran`)
/// and learns everyone else's.
Status exchangeRankStates(Transport& transport, std::vector<RankInfo>& ranks,
                          const std::vector<uint32_t>& ran) {
  WireWriter w;
  for (uint32_t r : ran) {
    const RankInfo& ri = ranks[r];
    w.u64(r);
    w.u64(uint64_t(ri.state));
    w.u64(ri.pc);
    w.f64(ri.clockNs);
    w.f64(ri.arrivalNs);
    w.f64(ri.computeNs);
    w.u64(ri.instructions);
    w.status(ri.error);
  }
  TRNSIM_ASSIGN_OR_RETURN(auto all, transport.allGather(w.bytes()));
  for (const auto& buf : all) {
    WireReader rd(buf);
    while (rd.ok() && !rd.atEnd()) {
      const uint64_t r = rd.u64();
      RankInfo tmp;
      tmp.state = static_cast<RankState>(rd.u64());
      tmp.pc = rd.u64();
      tmp.clockNs = rd.f64();
      tmp.arrivalNs = rd.f64();
      tmp.computeNs = rd.f64();
      tmp.instructions = rd.u64();
      tmp.error = rd.status();
      if (!rd.ok() || r >= ranks.size())
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
  return {};
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
    TRNSIM_RETURN_IF_ERROR(im.checkHostMemory());
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
      local[r].timeline.append(st.timeline, ri.clockNs);
      ri.computeNs += st.ns;
      ri.instructions += stop - ri.pc;
      ri.arrivalNs = ri.clockNs + st.ns;
      ri.pc = stop;
      ri.state = stop < p.instructions.size() ? RankState::kWaiting : RankState::kDone;
      if (ri.state == RankState::kDone) ri.clockNs = ri.arrivalNs;
    });
    started = true;

    // 2. Everyone learns every rank's state.
    if (multi) TRNSIM_RETURN_IF_ERROR(exchangeRankStates(*im.transport, ranks, todo));
    for (uint32_t r = 0; r < im.size; ++r)
      if (ranks[r].state == RankState::kError) return ranks[r].error;
    bool allDone = true;
    for (const RankInfo& ri : ranks) allDone = allDone && ri.state == RankState::kDone;
    if (allDone) break;

    // 3. Which collectives have all their members (the same decision in every process).
    TRNSIM_ASSIGN_OR_RETURN(std::vector<detail::Firing> firings, im.findFirings(ranks));

    // 4. Time: each collective starts when its last member arrives.
    std::vector<double> firingEnd;
    for (const detail::Firing& f : firings) {
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
      TRNSIM_ASSIGN_OR_RETURN(uint64_t reduced, im.moveData(firings, ranks, ropts));
      bytesReduced += reduced;
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
