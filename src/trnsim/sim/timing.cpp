#include "trnsim/sim/timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

#include "trnsim/sim/timing_cost.h"
#include "trnsim/sim/timing_deps.h"
#include "trnsim/sim/timing_fluid.h"
#include "trnsim/sim/timing_program.h"

namespace trnsim::sim {
namespace {

using arch::Engine;
using detail::Dep;
using detail::kFirstQueueUnit;

constexpr double kInf = std::numeric_limits<double>::infinity();
/// Instructions decoded ahead of the simulated time, per core, while some wait on a DMA.
constexpr size_t kDecodeWindow = size_t(1) << 15;
constexpr int kComputeEngines = 5;  // Tensor, Vector, Scalar, GpSimd, Sync
/// The watchdog's bound, in simulated ns, on one instruction's duration and on any time the
/// model reaches: 1e6 simulated seconds. A double still resolves well below a ns there (0.125
/// ns at 1e15), so times up to it stay meaningful; beyond it only a config with absurd rates
/// (a clock of 1e-20 GHz) gets, and the model says so instead of printing its arithmetic.
constexpr double kMaxSimulatedNs = 1e15;

/// An instruction decoded but not yet scheduled: it waits for its engine or queue, or for a
/// dependency whose end is not known yet (a DMA in flight, or behind one).
/// 32 bytes: a core's FIFOs hold up to kDecodeWindow of them, beyond the host's L2 cache.
struct Pending {
  uint32_t inst = 0;
  uint32_t depBegin = 0;  ///< its unresolved dependencies: depPool[depBegin, +depCount)
  uint32_t depFrom = TimelineEvent::kNoInstruction;  ///< the dependency that set depReady
  uint32_t depCount = 0;
  double lowerBound = 0;  ///< from pruned accesses
  double depReady = 0;    ///< latest end of the dependencies already resolved

  /// Waits on another engine or queue at all (semaphore cost): every resolved dependency
  /// sets depFrom.
  bool hasDep() const { return depCount > 0 || depFrom != TimelineEvent::kNoInstruction; }

  /// Dependency `producer` ends at `endNs`.
  void noteDependency(uint32_t producer, double endNs) {
    if (depFrom == TimelineEvent::kNoInstruction || endNs > depReady) {
      depReady = std::max(depReady, endNs);
      depFrom = producer;
    }
  }
};

static_assert(sizeof(Pending) == 32);

/// FIFO of pending instructions of one engine or DMA queue.
struct Fifo {
  std::vector<Pending> items;
  size_t head = 0;
  /// (Compares addresses: a vector's size is a division by sizeof(Pending).)
  bool empty() const { return items.begin() + std::ptrdiff_t(head) == items.end(); }
  Pending& front() { return items[head]; }
  void pop() {
    ++head;
    if (empty()) {
      items.clear();
      head = 0;
    } else if (head >= 4096 && head * 2 >= items.size()) {
      items.erase(items.begin(), items.begin() + std::ptrdiff_t(head));
      head = 0;
    }
  }
};

struct EngineState {
  double freeNs = 0;
  bool used = false;
  Fifo pending;
};

struct QueueState {
  double freeNs = 0;
  bool busy = false;    ///< a transfer of this queue is in flight
  bool listed = false;  ///< in CoreSim::queuesWithPending
  double inflightStartNs = 0;
  Fifo pending;
};

/// TensorE pipeline: LoadStationary into the background weight buffer, then MultiplyMoving.
struct TensorState {
  double lsFreeNs = 0;       ///< LoadStationary unit free
  double mmFreeNs = 0;       ///< MultiplyMoving free (end of the last instruction)
  double prevMmStartNs = 0;  ///< the background buffer frees up when the previous MM starts
  double busyUntilNs = 0;
  double rampNs = 0;  ///< busy time since the throttle last armed (full rate at throttle.rampNs)
  std::deque<std::pair<double, double>> recent;  ///< recent MM intervals, for re-arming
};

struct CoreSim {
  uint32_t index = 0;
  const isa::Program* program = nullptr;
  const detail::ProgramTable* table = nullptr;
  std::vector<double> endNs;
  /// Its events, indexed by instruction, when recording: its part of TimingRun::events_ (the
  /// cores' parts follow each other in core order, as the Timeline lists them).
  TimelineEvent* events = nullptr;
  detail::DependencyTracker tracker;
  std::array<EngineState, kComputeEngines> engines{};
  TensorState tensor;
  std::vector<QueueState> queues;
  std::vector<uint32_t> queuesWithPending;
  std::vector<uint32_t> depPool;
  size_t liveDeps = 0;
  size_t decodeNext = 0;
  size_t pendingCount = 0;
  CoreTimingStats stats;
  std::vector<std::pair<double, double>> dmaIntervals;
  std::vector<Dep> scratch;
};

/// A DMA whose data starts to flow at `enterNs` (after its fixed latency).
struct DmaStart {
  double enterNs;
  uint64_t seq;
  uint32_t core;
  uint32_t inst;
  bool operator>(const DmaStart& o) const {
    return enterNs != o.enterNs ? enterNs > o.enterNs : seq > o.seq;
  }
};

class TimingRun {
 public:
  TimingRun(const arch::ChipConfig& chip, const TimingOptions& opts) : chip_(chip), opts_(opts) {}

  Expected<Timeline> run(std::span<const isa::Program* const> perCore);

 private:
  double floorNs(const CoreSim& c) const;
  void decode(CoreSim& c);
  void progress(CoreSim& c);
  bool resolvable(CoreSim& c, Pending& p);
  void schedule(CoreSim& c, const Pending& p);
  void scheduleTensor(CoreSim& c, uint32_t inst, double readyNs, double& startNs, double& endNs);
  double throttledNs(TensorState& t, double startNs, double costNs);
  void finishDma(CoreSim& c, uint32_t inst, double endNs);
  void compactDeps(CoreSim& c);
  /// The watchdog: records an error (the first one wins) when instruction `inst` of `c` would
  /// run for a non-finite, negative or over-long time, or end beyond kMaxSimulatedNs.
  void watch(const CoreSim& c, uint32_t inst, double startNs, double endNs) {
    const double duration = endNs - startNs;
    // Written so that NaN fails every test.
    if (duration >= 0 && duration <= kMaxSimulatedNs && endNs <= kMaxSimulatedNs) return;
    watchFailed(c, inst, startNs, endNs);
  }
  /// The slow part of watch(): names the instruction (kept out of the scheduler's hot path).
  [[gnu::noinline]] void watchFailed(const CoreSim& c, uint32_t inst, double startNs,
                                     double endNs);
  /// The error of the watchdog for a DMA data phase that would end at `endNs` (> the bound).
  void watchFluid(double tNextNs);

  Status error_;  ///< the first watchdog error; the run stops at once when set

  const arch::ChipConfig& chip_;
  TimingOptions opts_;
  std::vector<std::unique_ptr<detail::ProgramTable>> tables_;  ///< one per distinct program
  std::array<double, kComputeEngines> semNs_{};  ///< semaphore wait per compute engine
  std::vector<CoreSim> cores_;
  std::vector<TimelineEvent> events_;  ///< every core's events, when recording
  detail::FluidDma fluid_;
  std::priority_queue<DmaStart, std::vector<DmaStart>, std::greater<>> starts_;
  double dmaCoreGbps_ = 0;  ///< detail::coreDmaGbps(chip_)
  uint64_t seq_ = 0;
  double nowNs_ = 0;
};

double TimingRun::floorNs(const CoreSim& c) const {
  // Every later instruction of a used engine starts after that engine is free, and every
  // later DMA after the current time, so accesses that ended before all of these are settled.
  double f = nowNs_;
  const TensorState& t = c.tensor;
  if (c.engines[0].used) f = std::min(f, std::max(t.lsFreeNs, t.prevMmStartNs));
  for (int e = 1; e < kComputeEngines; ++e) {
    if (c.engines[e].used) f = std::min(f, c.engines[e].freeNs);
  }
  return f;
}

void TimingRun::decode(CoreSim& c) {
  const detail::ProgramTable& table = *c.table;
  const size_t n = table.insts.size();
  const double floor = table.staticDeps ? 0 : floorNs(c);
  while (c.decodeNext < n && c.pendingCount < kDecodeWindow && error_.isOk()) {
    const uint32_t i = uint32_t(c.decodeNext++);
    const detail::InstInfo& ii = table.insts[i];
    const uint32_t unit = ii.unit;
    Pending p;
    p.inst = i;
    p.depBegin = uint32_t(c.depPool.size());
    auto note = [&](uint32_t d) {
      double e = c.endNs[d];
      if (e >= 0) {
        p.noteDependency(d, e);
      } else {
        c.depPool.push_back(d);
        ++p.depCount;
      }
    };
    if (table.staticDeps) {
      for (const uint32_t d : table.depsOf(ii)) note(d);
    } else {
      c.scratch.clear();
      c.tracker.access(i, unit, table.boxesOf(ii), c.scratch, p.lowerBound, c.endNs.data(),
                       floor);
      for (const Dep& d : c.scratch) note(d.inst);
    }
    Fifo* fifo;
    bool unitFree;
    if (unit >= kFirstQueueUnit) {
      QueueState& q = c.queues[unit - kFirstQueueUnit];
      fifo = &q.pending;
      unitFree = !q.busy;
      if (!(fifo->empty() && unitFree && p.depCount == 0) && !q.listed) {
        q.listed = true;
        c.queuesWithPending.push_back(unit - kFirstQueueUnit);
      }
    } else {
      fifo = &c.engines[unit].pending;
      unitFree = true;
    }
    if (fifo->empty() && unitFree && p.depCount == 0) {
      c.depPool.resize(p.depBegin);
      schedule(c, p);
    } else {
      fifo->items.push_back(p);
      c.liveDeps += p.depCount;
      ++c.pendingCount;
    }
  }
}

bool TimingRun::resolvable(CoreSim& c, Pending& p) {
  // Fold resolved dependencies into depReady, keep the rest.
  uint32_t keep = 0;
  for (uint32_t k = 0; k < p.depCount; ++k) {
    uint32_t d = c.depPool[p.depBegin + k];
    double e = c.endNs[d];
    if (e >= 0) {
      p.noteDependency(d, e);
    } else {
      c.depPool[p.depBegin + keep++] = d;
    }
  }
  c.liveDeps -= p.depCount - keep;
  p.depCount = keep;
  return keep == 0;
}

void TimingRun::progress(CoreSim& c) {
  while (error_.isOk()) {
    bool progressed = false;
    for (int e = 0; e < kComputeEngines; ++e) {
      Fifo& f = c.engines[e].pending;
      while (!f.empty() && resolvable(c, f.front())) {
        Pending p = f.front();
        f.pop();
        --c.pendingCount;
        schedule(c, p);
        progressed = true;
      }
    }
    size_t keepQ = 0;
    for (size_t k = 0; k < c.queuesWithPending.size(); ++k) {
      uint32_t qi = c.queuesWithPending[k];
      QueueState& q = c.queues[qi];
      if (!q.busy && !q.pending.empty() && resolvable(c, q.pending.front())) {
        Pending p = q.pending.front();
        q.pending.pop();
        --c.pendingCount;
        schedule(c, p);  // makes the queue busy: at most one per queue per pass
        progressed = true;
      }
      if (q.pending.empty()) {
        q.listed = false;
      } else {
        c.queuesWithPending[keepQ++] = qi;
      }
    }
    c.queuesWithPending.resize(keepQ);
    size_t before = c.decodeNext;
    decode(c);
    if (c.decodeNext != before) progressed = true;
    if (c.depPool.size() > 4 * c.liveDeps + 65536) compactDeps(c);
    if (!progressed) break;
  }
}

void TimingRun::compactDeps(CoreSim& c) {
  std::vector<uint32_t> pool;
  pool.reserve(c.liveDeps + 1024);
  auto move = [&](Fifo& f) {
    for (size_t k = f.head; k < f.items.size(); ++k) {
      Pending& p = f.items[k];
      uint32_t begin = uint32_t(pool.size());
      for (uint32_t d = 0; d < p.depCount; ++d) pool.push_back(c.depPool[p.depBegin + d]);
      p.depBegin = begin;
    }
  };
  for (auto& e : c.engines) move(e.pending);
  for (auto& q : c.queues) move(q.pending);
  c.depPool.swap(pool);
}

double TimingRun::throttledNs(TensorState& t, double startNs, double costNs) {
  const auto& th = chip_.pe.throttle;
  if (!th.enabled || costNs <= 0) return costNs;
  if (th.rearmIdleNs > 0) {
    const double windowStart = startNs - th.rearmIdleNs;
    while (!t.recent.empty() && t.recent.front().second <= windowStart) t.recent.pop_front();
    // Utilisation only falls while the PE idles, so checking the window that ends where an
    // idle gap ends finds every window below the threshold.
    if (t.rampNs > 0 && startNs > t.mmFreeNs) {
      double busy = 0;
      for (const auto& [s, e] : t.recent) busy += std::max(0.0, e - std::max(s, windowStart));
      if (busy < th.rearmThreshold * th.rearmIdleNs) t.rampNs = 0;
    }
  }
  double duration = costNs;
  const double s = th.startFraction, r = th.rampNs;
  if (r > 0 && t.rampNs < r && s < 1) {
    // Rate rises linearly from s to 1 over r ns of busy time: work(tau) = s*tau +
    // (1-s)*tau^2/(2r) up to tau = r, then one unit of work per ns.
    const double a = (1 - s) / (2 * r);
    auto work = [&](double tau) { return s * tau + a * tau * tau; };
    const double target = work(t.rampNs) + costNs;
    const double workAtFull = work(r);
    double tau1;
    if (target <= workAtFull) {
      tau1 = (-s + std::sqrt(s * s + 4 * a * target)) / (2 * a);
    } else {
      tau1 = r + (target - workAtFull);
    }
    duration = tau1 - t.rampNs;
    t.rampNs = std::min(r, tau1);
  }
  if (th.rearmIdleNs > 0) t.recent.emplace_back(startNs, startNs + duration);
  return duration;
}

void TimingRun::scheduleTensor(CoreSim& c, uint32_t i, double readyNs, double& startNs,
                               double& endNs) {
  const detail::InstInfo& ii = c.table->insts[i];
  const detail::TensorCost& cost = c.table->tensorCosts[ii.costIndex];
  TensorState& t = c.tensor;
  double mmStart;
  if (cost.hasStationary) {
    if (ii.reload) {
      // Background load: overlaps the previous MultiplyMoving once that one has started.
      double lsStart = std::max({readyNs, t.lsFreeNs, t.prevMmStartNs});
      double lsEnd = lsStart + cost.lsNs;
      t.lsFreeNs = lsEnd;
      mmStart = std::max(lsEnd, t.mmFreeNs);
      startNs = lsStart;
    } else {
      mmStart = std::max(readyNs, t.mmFreeNs);
      startNs = mmStart;
    }
  } else {
    mmStart = std::max({readyNs, t.mmFreeNs, t.lsFreeNs});
    startNs = mmStart;
  }
  const double duration = throttledNs(t, mmStart, cost.mmNs);
  c.stats.throttledNs += duration - cost.mmNs;
  endNs = mmStart + duration;
  t.prevMmStartNs = mmStart;
  t.mmFreeNs = endNs;
  c.stats.busyNs[0] += std::max(0.0, endNs - std::max(startNs, t.busyUntilNs));
  t.busyUntilNs = std::max(t.busyUntilNs, endNs);
  c.stats.tensorFlops += cost.flops;
  c.stats.tensorFlopsAtPeakNs += cost.atPeakNs;
  if (opts_.recordEvents) c.events[i].flops = cost.flops;
}

void TimingRun::schedule(CoreSim& c, const Pending& p) {
  const detail::InstInfo& ii = c.table->insts[p.inst];
  const uint32_t unit = ii.unit;
  double depReady = p.depReady;
  const double inputsReady = std::max(p.lowerBound, depReady);
  ++c.stats.instructions;
  if (unit < kFirstQueueUnit) {
    EngineState& eng = c.engines[unit];
    eng.used = true;
    const double semNs = p.hasDep() ? semNs_[unit] : 0;
    const double ready = std::max(p.lowerBound, p.hasDep() ? depReady + semNs : 0.0);
    double start, end;
    if (unit == 0) {
      scheduleTensor(c, p.inst, ready, start, end);
    } else {
      start = std::max(eng.freeNs, ready);
      end = start + ii.streamNs;
      c.stats.busyNs[unit] += end - start;
    }
    watch(c, p.inst, start, end);
    eng.freeNs = end;
    ++c.stats.engineInstructions[unit];
    c.stats.stallNs[unit] += std::max(0.0, start - inputsReady);
    c.endNs[p.inst] = end;
    c.stats.endNs = std::max(c.stats.endNs, end);
    if (opts_.recordEvents) {
      TimelineEvent& ev = c.events[p.inst];
      ev.core = c.index;
      ev.engine = static_cast<Engine>(unit);
      ev.instruction = p.inst;
      ev.startNs = start;
      ev.endNs = end;
      ev.readyNs = inputsReady;
      if (p.depReady >= p.lowerBound) ev.after = p.depFrom;
    }
    return;
  }
  QueueState& q = c.queues[unit - kFirstQueueUnit];
  // DMA: the fixed latency (descriptors, semaphore to start) runs from when the inputs are
  // ready and overlaps the queue's previous transfer; the data then flows after the previous
  // transfer of the queue (FIFO). Data never starts before the current time of the bandwidth
  // model (see kDecodeWindow).
  const detail::DmaCost& cost = c.table->dmaCosts[ii.costIndex];
  const double enter = std::max({inputsReady + cost.fixedNs, q.freeNs, nowNs_});
  const double start = std::min(enter, std::max(inputsReady, q.freeNs));
  q.busy = true;
  ++c.stats.engineInstructions[size_t(Engine::kDma)];
  c.stats.stallNs[size_t(Engine::kDma)] += std::max(0.0, start - inputsReady);
  c.stats.hbmReadBytes += cost.hbmReadBytes;
  c.stats.hbmWriteBytes += cost.hbmWriteBytes;
  if (opts_.recordEvents) {
    TimelineEvent& ev = c.events[p.inst];
    ev.core = c.index;
    ev.engine = Engine::kDma;
    ev.queue = uint16_t(unit - kFirstQueueUnit);
    ev.instruction = p.inst;
    ev.startNs = start;
    ev.readyNs = inputsReady;
    if (p.depReady >= p.lowerBound) ev.after = p.depFrom;
    ev.hbmBytes = cost.hbmReadBytes + cost.hbmWriteBytes;
  }
  q.inflightStartNs = start;
  // The fastest this transfer can go (alone on the chip), so that a DMA whose rates make it
  // absurdly slow is named here rather than after the bandwidth model has drained it.
  double rate = std::min(cost.capGbps, dmaCoreGbps_);
  if (cost.hbmPerMovedByte > 0) rate = std::min(rate, chip_.mem.hbmGbps / cost.hbmPerMovedByte);
  const double aloneNs = cost.movedBytes == 0 ? 0.0 : double(cost.movedBytes) / rate;
  watch(c, p.inst, start, enter + aloneNs);
  starts_.push(DmaStart{enter, seq_++, c.index, p.inst});
}

void TimingRun::finishDma(CoreSim& c, uint32_t inst, double endNs) {
  const uint32_t qi = c.table->insts[inst].unit - kFirstQueueUnit;
  QueueState& q = c.queues[qi];
  q.busy = false;
  q.freeNs = endNs;
  c.dmaIntervals.emplace_back(q.inflightStartNs, endNs);
  watch(c, inst, q.inflightStartNs, endNs);
  c.endNs[inst] = endNs;
  c.stats.endNs = std::max(c.stats.endNs, endNs);
  if (opts_.recordEvents) c.events[inst].endNs = endNs;
  if (!q.pending.empty() && !q.listed) {
    q.listed = true;
    c.queuesWithPending.push_back(qi);
  }
}

/// The length of the union of `intervals` ([start, end] pairs, listed in order of end as
/// transfers finish; sorted so here if not), summed piece by piece in order of time. `pieces`
/// is scratch.
double unionLength(std::vector<std::pair<double, double>>& intervals,
                   std::vector<double>& pieces) {
  auto byEnd = [](const auto& a, const auto& b) { return a.second < b.second; };
  if (!std::is_sorted(intervals.begin(), intervals.end(), byEnd)) {
    std::stable_sort(intervals.begin(), intervals.end(), byEnd);
  }
  // From the last end back, each piece of the union grows leftwards until an interval ends
  // before it starts; no earlier interval can reach a piece already closed to its right.
  pieces.clear();
  double lo = 0, hi = -1;  // the piece being grown (none while hi < lo)
  for (auto it = intervals.rbegin(); it != intervals.rend(); ++it) {
    const auto [s, e] = *it;
    if (hi >= lo && e >= lo) {
      lo = std::min(lo, s);
      continue;
    }
    if (hi >= lo) pieces.push_back(hi - lo);
    lo = s;
    hi = e;
  }
  if (hi >= lo) pieces.push_back(hi - lo);
  double total = 0;
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
    if (*it > 0) total += *it;
  }
  return total;
}

/// The config keys that set how long an instruction of `unit` takes, for watchdog messages.
std::string rateKeysOf(const arch::ChipConfig& chip, uint32_t unit) {
  if (unit >= kFirstQueueUnit) {
    return fmt::format(
        "dma.engine_gbps = {}, dma.sustained_gbps_per_core = {}, memory.hbm_gbps "
        "= {}, dma.fixed_latency_ns = {}",
        chip.dma.engineGbps, chip.dma.sustainedGbpsPerCore, chip.mem.hbmGbps,
        chip.dma.fixedLatencyNs);
  }
  if (unit == 0) return fmt::format("pe.clock_ghz = {}", chip.pe.clockGhz);
  const Engine e = static_cast<Engine>(unit);
  const std::string_view name = arch::engineName(e);
  const arch::StreamEngineConfig& s = chip.stream(e);
  return fmt::format("{}.clock_ghz = {}, {}.elems_per_cycle_32/16/8 = {}/{}/{}", name, s.clockGhz,
                     name, s.elemsPerCycle32, s.elemsPerCycle16, s.elemsPerCycle8);
}

std::string engineOf(uint32_t unit) {
  if (unit >= kFirstQueueUnit) return fmt::format("dma queue {}", unit - kFirstQueueUnit);
  return std::string(arch::engineName(static_cast<Engine>(unit)));
}

void TimingRun::watchFailed(const CoreSim& c, uint32_t inst, double startNs, double endNs) {
  const double duration = endNs - startNs;
  if (!error_.isOk()) return;
  const uint32_t unit = c.table->insts[inst].unit;
  std::string what;
  if (!(duration >= 0 && duration <= kMaxSimulatedNs)) {
    what = fmt::format("would take {:.6g} simulated seconds (the bound is {:g} s per instruction)",
                       duration * 1e-9, kMaxSimulatedNs * 1e-9);
  } else {
    what = fmt::format("would end at {:.6g} simulated seconds (the bound is {:g} s)", endNs * 1e-9,
                       kMaxSimulatedNs * 1e-9);
  }
  error_ =
      Status(ErrorCode::kConfig,
             fmt::format("timing watchdog: {} instruction {} starting at simulated time {:.6g} s "
                         "{}; the chip's rates make it absurdly slow ({}): fix the chip config "
                         "(valid ranges: docs/configs.md)",
                         engineOf(unit), inst, startNs * 1e-9, what, rateKeysOf(chip_, unit)),
             c.program->instructionContext(inst))
          .withContext(fmt::format(
              "{}: core {}", chip_.sourceFile.empty() ? chip_.name : chip_.sourceFile, c.index));
}

void TimingRun::watchFluid(double tNextNs) {
  // Name the transfer that would reach the time: the next to start, or the next to finish.
  if (!starts_.empty() && starts_.top().enterNs <= tNextNs) {
    const DmaStart& s = starts_.top();
    watch(cores_[s.core], s.inst, nowNs_, s.enterNs);
    return;
  }
  double best = kInf;
  const detail::FluidDma::Transfer* which = nullptr;
  for (const auto& tr : fluid_.active()) {
    const double t = tr.rateGbps > 0 ? tr.remainingBytes / tr.rateGbps : kInf;
    if (which == nullptr || t < best) {
      best = t;
      which = &tr;
    }
  }
  if (which != nullptr) {
    const CoreSim& c = cores_[which->core];
    watch(c, which->inst,
          c.queues[c.table->insts[which->inst].unit - kFirstQueueUnit].inflightStartNs, tNextNs);
  }
  if (error_.isOk()) {
    error_ = Status(ErrorCode::kInternal,
                    fmt::format("timing model reached simulated time {:.6g} s with no "
                                "instruction to blame",
                                tNextNs * 1e-9));
  }
}

Expected<Timeline> TimingRun::run(std::span<const isa::Program* const> perCore) {
  TRNSIM_RETURN_IF_ERROR(detail::checkTimingConfig(chip_));
  if (perCore.size() > chip_.coresPerChip) {
    return Status(ErrorCode::kInvalidArgument, fmt::format("{} programs for a chip with {} cores",
                                                           perCore.size(), chip_.coresPerChip));
  }
  const uint32_t queues = chip_.dma.enginesPerCore * chip_.dma.queuesPerEngine;
  semNs_[0] = chip_.semaphoreWaitCycles / chip_.pe.clockGhz;
  for (int e = 1; e < kComputeEngines; ++e) {
    semNs_[e] = chip_.semaphoreWaitCycles / chip_.stream(static_cast<Engine>(e)).clockGhz;
  }
  cores_.resize(perCore.size());
  for (size_t k = 0; k < perCore.size(); ++k) {
    if (perCore[k] == nullptr) {
      return Status(ErrorCode::kInvalidArgument, fmt::format("no program for core {}", k));
    }
    // One table per distinct program (cores often run the same one); building it checks it.
    const detail::ProgramTable* table = nullptr;
    for (const auto& t : tables_) {
      if (t->program == perCore[k]) table = t.get();
    }
    if (table == nullptr) {
      auto t = std::make_unique<detail::ProgramTable>();
      const bool shared = std::count(perCore.begin(), perCore.end(), perCore[k]) > 1;
      Status s = t->build(chip_, *perCore[k], shared);
      if (!s.isOk()) return s.withContext(fmt::format("core {}", k));
      table = t.get();
      tables_.push_back(std::move(t));
    }
    CoreSim& c = cores_[k];
    c.index = uint32_t(k);
    c.program = perCore[k];
    c.table = table;
    const size_t n = c.program->instructions.size();
    c.endNs.assign(n, -1.0);
    if (!table->staticDeps) c.tracker.init(table->memory);
    c.queues.assign(queues, QueueState{});
  }
  if (opts_.recordEvents) {
    size_t total = 0;
    for (const CoreSim& c : cores_) total += c.program->instructions.size();
    events_.assign(total, TimelineEvent{});
    size_t at = 0;
    for (CoreSim& c : cores_) {
      c.events = events_.data() + at;
      at += c.program->instructions.size();
    }
  }
  dmaCoreGbps_ = detail::coreDmaGbps(chip_);
  fluid_.init(uint32_t(cores_.size()), dmaCoreGbps_, chip_.mem.hbmGbps);
  for (CoreSim& c : cores_) progress(c);

  // Every pass either starts a DMA or finishes one, or moves time forward (FluidDma finishes
  // a transfer whose remaining time the current time cannot resolve), so the loop ends.
  std::vector<detail::FluidDma::Transfer> done;
  while (error_.isOk()) {
    const double tStart = starts_.empty() ? kInf : starts_.top().enterNs;
    const double tDone = fluid_.nextCompletionNs();
    if (tStart == kInf && tDone == kInf) break;
    if (!(std::min(tStart, tDone) <= kMaxSimulatedNs)) {
      watchFluid(std::min(tStart, tDone));
      break;
    }
    if (tDone <= tStart) {
      fluid_.advanceTo(tDone);
      nowNs_ = std::max(nowNs_, tDone);
      done.clear();
      fluid_.takeFinished(done);
      for (const auto& tr : done) finishDma(cores_[tr.core], tr.inst, nowNs_);
      // Completions first, then what they unblock, core by core (deterministic order).
      for (const auto& tr : done) progress(cores_[tr.core]);
    } else {
      fluid_.advanceTo(tStart);
      nowNs_ = std::max(nowNs_, tStart);
      while (!starts_.empty() && starts_.top().enterNs <= tStart) {
        DmaStart s = starts_.top();
        starts_.pop();
        CoreSim& c = cores_[s.core];
        const detail::DmaCost& cost = c.table->dmaCosts[c.table->insts[s.inst].costIndex];
        if (cost.movedBytes == 0) {
          finishDma(c, s.inst, nowNs_);
          progress(c);
          continue;
        }
        detail::FluidDma::Transfer tr;
        tr.core = s.core;
        tr.inst = s.inst;
        tr.remainingBytes = double(cost.movedBytes);
        tr.capGbps = cost.capGbps;
        tr.hbmPerMovedByte = cost.hbmPerMovedByte;
        fluid_.add(tr);
      }
    }
    fluid_.recomputeRates();
  }

  if (!error_.isOk()) return error_;
  Timeline tl;
  tl.cores.reserve(cores_.size());
  std::vector<double> pieces;
  for (CoreSim& c : cores_) {
    if (c.decodeNext != c.program->instructions.size() || c.pendingCount != 0) {
      return Status(
          ErrorCode::kInternal,
          fmt::format("timing model stalled at instruction {} of core {}", c.decodeNext, c.index));
    }
    c.stats.busyNs[static_cast<int>(Engine::kDma)] = unionLength(c.dmaIntervals, pieces);
    tl.endNs = std::max(tl.endNs, c.stats.endNs);
    tl.cores.push_back(c.stats);
  }
  tl.events = std::move(events_);
  return tl;
}

}  // namespace

Expected<Timeline> simulateTiming(const arch::ChipConfig& chip,
                                  std::span<const isa::Program* const> perCore,
                                  const TimingOptions& opts) {
  TimingRun run(chip, opts);
  return run.run(perCore);
}

double instructionCostNs(const arch::ChipConfig& chip, const isa::Program& program,
                         const isa::Instruction& inst) {
  if (static_cast<int>(inst.opcode) >= isa::kNumOpcodes) return 0;
  for (const isa::Operand& o : inst.operands) {
    if (o.ap.tensor >= program.tensors.size()) return 0;
  }
  switch (inst.engine) {
    case Engine::kTensor: {
      if (!(chip.pe.clockGhz > 0)) return 0;
      const detail::TensorCost c = detail::tensorCost(chip, program, inst);
      return c.lsNs + c.mmNs;
    }
    case Engine::kDma: {
      const detail::DmaCost c = detail::dmaCost(chip, program, inst);
      if (c.movedBytes == 0) return c.fixedNs;
      double rate = std::min(c.capGbps, detail::coreDmaGbps(chip));
      if (c.hbmPerMovedByte > 0) rate = std::min(rate, chip.mem.hbmGbps / c.hbmPerMovedByte);
      return rate > 0 ? c.fixedNs + double(c.movedBytes) / rate : kInf;
    }
    case Engine::kVector:
    case Engine::kScalar:
    case Engine::kGpSimd:
    case Engine::kSync: {
      const double clock = chip.stream(inst.engine).clockGhz;
      return clock > 0 ? detail::streamCycles(chip, program, inst) / clock : 0;
    }
  }
  return 0;
}

}  // namespace trnsim::sim
