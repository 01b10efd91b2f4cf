#include "trnsim/profile/summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

namespace trnsim::profile {
namespace {

double percent(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

/// Length of the union of [start, end) intervals.
double unionNs(std::vector<std::pair<double, double>> spans) {
  std::sort(spans.begin(), spans.end());
  double total = 0, curStart = 0, curEnd = 0;
  bool open = false;
  for (const auto& [s, e] : spans) {
    if (open && s <= curEnd) {
      curEnd = std::max(curEnd, e);
      continue;
    }
    if (open) total += curEnd - curStart;
    curStart = s;
    curEnd = e;
    open = true;
  }
  if (open) total += curEnd - curStart;
  return total;
}

Status validate(const sim::Timeline& timeline) {
  const auto bad = [](const std::string& what, const std::string& where) {
    return Status(ErrorCode::kInvalidArgument, what, where);
  };
  if (!std::isfinite(timeline.endNs) || timeline.endNs < 0) {
    return bad("the timeline's end time is not a finite, non-negative number", "summary");
  }
  for (size_t i = 0; i < timeline.events.size(); ++i) {
    const sim::TimelineEvent& e = timeline.events[i];
    const std::string where = "summary, timeline event " + std::to_string(i);
    if (static_cast<int>(e.engine) >= arch::kNumEngines) {
      return bad("engine " + std::to_string(static_cast<int>(e.engine)) + " does not exist", where);
    }
    if (!std::isfinite(e.startNs) || !std::isfinite(e.endNs) || !std::isfinite(e.readyNs) ||
        !std::isfinite(e.flops) || e.startNs < 0 || e.endNs < e.startNs) {
      return bad("times must be finite with 0 <= start <= end", where);
    }
  }
  for (size_t c = 0; c < timeline.cores.size(); ++c) {
    const sim::CoreTimingStats& s = timeline.cores[c];
    bool ok = std::isfinite(s.endNs) && std::isfinite(s.tensorFlops) &&
              std::isfinite(s.tensorFlopsAtPeakNs) && std::isfinite(s.throttledNs);
    for (double b : s.busyNs) ok = ok && std::isfinite(b) && b >= 0;
    if (!ok) return bad("non-finite or negative statistics", "summary, core " + std::to_string(c));
  }
  return Status::ok();
}

}  // namespace

Expected<Summary> summarize(const arch::ChipConfig& chip, const sim::Timeline& timeline,
                            const SummaryOptions& opts) {
  TRNSIM_RETURN_IF_ERROR(validate(timeline));
  Summary s;
  s.chip = chip.name;

  // Simulated time: the timeline's end, or the latest thing it recorded when that is unset.
  double endNs = timeline.endNs;
  for (const auto& c : timeline.cores) endNs = std::max(endNs, c.endNs);
  for (const auto& e : timeline.events) endNs = std::max(endNs, e.endNs);
  s.simulatedNs = endNs;
  s.simulatedUs = endNs / 1000.0;
  s.peClockGhz = chip.pe.clockGhz;
  s.simulatedCycles = endNs * chip.pe.clockGhz;

  // Per-core: statistics from the timing model where it filled them, events for the rest.
  std::map<uint32_t, CoreSummary> cores;
  for (size_t c = 0; c < timeline.cores.size(); ++c) cores[uint32_t(c)].core = uint32_t(c);
  struct EventTotals {
    std::array<std::vector<std::pair<double, double>>, arch::kNumEngines> engineSpans;
    std::map<uint16_t, std::vector<std::pair<double, double>>> queueSpans;
    std::vector<std::pair<double, double>> dmaSpans;
    double endNs = 0, flops = 0;
    uint64_t hbmBytes = 0;
  };
  std::map<uint32_t, EventTotals> totals;
  for (const auto& e : timeline.events) {
    CoreSummary& core = cores[e.core];
    core.core = e.core;
    EventTotals& t = totals[e.core];
    const auto engine = static_cast<size_t>(e.engine);
    t.engineSpans[engine].emplace_back(e.startNs, e.endNs);
    core.engines[engine].instructions += 1;
    core.engines[engine].waitNs += std::max(0.0, e.startNs - e.readyNs);
    t.endNs = std::max(t.endNs, e.endNs);
    t.flops += e.flops;
    t.hbmBytes += e.hbmBytes;
    if (e.engine == arch::Engine::kDma) {
      t.queueSpans[e.queue].emplace_back(e.startNs, e.endNs);
      t.dmaSpans.emplace_back(e.startNs, e.endNs);
      auto it = std::find_if(core.dmaQueues.begin(), core.dmaQueues.end(),
                             [&](const DmaQueueSummary& q) { return q.queue == e.queue; });
      if (it == core.dmaQueues.end()) {
        core.dmaQueues.push_back({});
        it = core.dmaQueues.end() - 1;
        it->queue = e.queue;
      }
      it->transfers += 1;
      it->hbmBytes += e.hbmBytes;
    }
  }

  const double peak = chip.peakBf16FlopsPerCore();
  const double seconds = endNs * 1e-9;
  double flopsAtPeakNs = 0;
  uint64_t eventHbmBytes = 0;
  bool haveStats = false;
  for (auto& [index, core] : cores) {
    const sim::CoreTimingStats* stats =
        index < timeline.cores.size() ? &timeline.cores[index] : nullptr;
    const EventTotals* t = totals.count(index) ? &totals.at(index) : nullptr;
    for (int e = 0; e < arch::kNumEngines; ++e) {
      EngineSummary& engine = core.engines[size_t(e)];
      engine.engine = static_cast<arch::Engine>(e);
      engine.busyNs = stats ? stats->busyNs[size_t(e)] : t ? unionNs(t->engineSpans[size_t(e)]) : 0;
      engine.busyPercent = percent(engine.busyNs, endNs);
      if (!t && stats) {  // no events recorded: the timing model's own counts
        engine.instructions = stats->engineInstructions[size_t(e)];
        engine.waitNs = stats->stallNs[size_t(e)];
      }
    }
    if (t) {
      for (auto& q : core.dmaQueues) {
        q.busyNs = unionNs(t->queueSpans.at(q.queue));
        q.busyPercent = percent(q.busyNs, endNs);
      }
      std::sort(core.dmaQueues.begin(), core.dmaQueues.end(),
                [](const auto& a, const auto& b) { return a.queue < b.queue; });
      core.dmaAnyBusyNs = unionNs(t->dmaSpans);
      core.dmaAnyBusyPercent = percent(core.dmaAnyBusyNs, endNs);
      eventHbmBytes += t->hbmBytes;
    }
    if (stats) {
      haveStats = true;
      core.endNs = stats->endNs;
      core.instructions = stats->instructions;
      core.tensorFlops = stats->tensorFlops;
      core.throttledNs = stats->throttledNs;
      core.hbmReadBytes = stats->hbmReadBytes;
      core.hbmWriteBytes = stats->hbmWriteBytes;
      flopsAtPeakNs += stats->tensorFlopsAtPeakNs;
    }
    if (t) {
      if (!stats || core.endNs == 0) core.endNs = t->endNs;
      if (!stats || core.instructions == 0) {
        uint64_t n = 0;
        for (const auto& engine : core.engines) n += engine.instructions;
        core.instructions = n;
      }
      if (!stats) core.tensorFlops = t->flops;
    }
    core.tensorUtilizationPercent = percent(core.tensorFlops, peak * seconds);

    s.instructions += core.instructions;
    s.tensorFlops += core.tensorFlops;
    s.throttledNs += core.throttledNs;
    s.hbmReadBytes += core.hbmReadBytes;
    s.hbmWriteBytes += core.hbmWriteBytes;
    s.perCore.push_back(std::move(core));
  }
  s.cores = uint32_t(s.perCore.size());
  if (opts.instructions != 0) s.instructions = opts.instructions;

  const double peakTotal = peak * s.cores * seconds;  // FLOPs the run could have done
  s.peakFlopsPerCore = peak;
  s.tensorUtilizationPercent = percent(s.tensorFlops, peakTotal);
  s.tensorDtypeUtilizationPercent = percent(flopsAtPeakNs, double(s.cores) * endNs);
  s.modelFlopsFromCaller = opts.modelFlops > 0;
  s.modelFlops = s.modelFlopsFromCaller ? opts.modelFlops : s.tensorFlops;
  s.mfuPercent = percent(s.modelFlops, peakTotal);

  s.hbmBytes = haveStats ? s.hbmReadBytes + s.hbmWriteBytes : eventHbmBytes;
  s.hbmAchievedGbps = endNs > 0 ? double(s.hbmBytes) / endNs : 0;  // bytes/ns = GB/s
  s.hbmPeakGbps = chip.mem.hbmGbps;
  s.hbmUtilizationPercent = percent(s.hbmAchievedGbps, s.hbmPeakGbps);

  s.hostSeconds = opts.hostSeconds > 0 && std::isfinite(opts.hostSeconds) ? opts.hostSeconds : 0;
  if (s.hostSeconds > 0) {
    s.instructionsPerHostSecond = double(s.instructions) / s.hostSeconds;
    s.simulatedCyclesPerHostSecond = s.simulatedCycles / s.hostSeconds;
  }
  return s;
}

Expected<Summary> summarize(const arch::ChipConfig& chip, const sim::RunResult& run,
                            const SummaryOptions& opts) {
  SummaryOptions o = opts;
  if (o.hostSeconds == 0) o.hostSeconds = run.hostSeconds;
  if (o.instructions == 0) o.instructions = run.instructions;
  return summarize(chip, run.timeline, o);
}

namespace {

/// 1234567 -> "1.23 M": three significant digits and an SI prefix.
std::string si(double value, std::string_view unit) {
  static constexpr const char* kPrefixes[] = {"", "k", "M", "G", "T", "P", "E"};
  size_t i = 0;
  double v = value;
  while (std::fabs(v) >= 1000 && i + 1 < std::size(kPrefixes)) {
    v /= 1000;
    ++i;
  }
  return fmt::format("{:.3g} {}{}", v, kPrefixes[i], unit);
}

}  // namespace

std::string formatSummary(const Summary& s) {
  std::string out;
  auto line = [&](std::string_view label, const std::string& value) {
    out += fmt::format("{:<22}{}\n", label, value);
  };
  out += fmt::format("trnsim summary: {}, {} core{}\n", s.chip, s.cores, s.cores == 1 ? "" : "s");
  line("simulated time", fmt::format("{:.3f} us ({:.0f} cycles at {:g} GHz)", s.simulatedUs,
                                     s.simulatedCycles, s.peClockGhz));
  line("instructions", fmt::format("{}", s.instructions));
  line("TensorE utilization",
       fmt::format("{:.1f}% of bf16 peak ({}FLOP of {}FLOP/s per core); {:.1f}% of dtype peak",
                   s.tensorUtilizationPercent, si(s.tensorFlops, ""), si(s.peakFlopsPerCore, ""),
                   s.tensorDtypeUtilizationPercent));
  line("MFU", fmt::format("{:.1f}% (model {}FLOP{})", s.mfuPercent, si(s.modelFlops, ""),
                          s.modelFlopsFromCaller ? "" : ", = TensorE FLOPs"));
  if (s.throttledNs > 0) line("TensorE throttled", fmt::format("{:.3f} us", s.throttledNs / 1000));
  line("HBM", fmt::format("read {}B, written {}B; {:.1f} GB/s of {:g} GB/s ({:.1f}%)",
                          si(double(s.hbmReadBytes), ""), si(double(s.hbmWriteBytes), ""),
                          s.hbmAchievedGbps, s.hbmPeakGbps, s.hbmUtilizationPercent));
  if (s.hostSeconds > 0) {
    line("simulator speed",
         fmt::format("{}instr/s, {}cycles/s ({:.3f} s host)", si(s.instructionsPerHostSecond, ""),
                     si(s.simulatedCyclesPerHostSecond, ""), s.hostSeconds));
  }
  // "stall us" sums start - ready over an engine's instructions: how long ready instructions
  // waited for it. Waits of queued instructions overlap, so the sum can exceed the run.
  out += fmt::format("\n{:<6}{:<14}{:>12}{:>9}{:>12}{:>16}{:>11}\n", "core", "engine", "busy us",
                     "busy %", "instrs", "stall us (sum)", "HBM");
  for (const CoreSummary& core : s.perCore) {
    for (const EngineSummary& e : core.engines) {
      if (e.busyNs == 0 && e.instructions == 0) continue;
      out += fmt::format("{:<6}{:<14}{:>12.3f}{:>8.1f}%{:>12}{:>16.3f}\n", core.core,
                         arch::engineName(e.engine), e.busyNs / 1000, e.busyPercent, e.instructions,
                         e.waitNs / 1000);
    }
    if (!core.dmaQueues.empty()) {
      out += fmt::format("{:<6}{:<14}{:>12.3f}{:>8.1f}%\n", core.core, "dma (any q)",
                         core.dmaAnyBusyNs / 1000, core.dmaAnyBusyPercent);
    }
    for (const DmaQueueSummary& q : core.dmaQueues) {
      out += fmt::format("{:<6}{:<14}{:>12.3f}{:>8.1f}%{:>12}{:>16}{:>11}\n", core.core,
                         fmt::format("  dma q{}", q.queue), q.busyNs / 1000, q.busyPercent,
                         q.transfers, "", si(double(q.hbmBytes), "B"));
    }
  }
  out +=
      "stall us (sum): over an engine's instructions, start - inputs ready (waiting for the "
      "engine); overlapping waits add up\n";
  return out;
}

std::string summaryJson(const Summary& s) {
  using Json = nlohmann::ordered_json;
  Json j;
  j["schema_version"] = kSummarySchemaVersion;
  j["chip"] = s.chip;
  j["cores"] = s.cores;
  j["simulated"] = {{"ns", s.simulatedNs},
                    {"us", s.simulatedUs},
                    {"cycles", s.simulatedCycles},
                    {"pe_clock_ghz", s.peClockGhz}};
  j["instructions"] = s.instructions;
  j["tensor"] = {{"flops", s.tensorFlops},
                 {"peak_flops_per_core", s.peakFlopsPerCore},
                 {"utilization_percent", s.tensorUtilizationPercent},
                 {"dtype_utilization_percent", s.tensorDtypeUtilizationPercent},
                 {"throttled_ns", s.throttledNs}};
  j["mfu"] = {{"model_flops", s.modelFlops},
              {"model_flops_from_caller", s.modelFlopsFromCaller},
              {"percent", s.mfuPercent}};
  j["hbm"] = {{"read_bytes", s.hbmReadBytes}, {"write_bytes", s.hbmWriteBytes},
              {"bytes", s.hbmBytes},          {"achieved_gbps", s.hbmAchievedGbps},
              {"peak_gbps", s.hbmPeakGbps},   {"utilization_percent", s.hbmUtilizationPercent}};
  j["host"] = {{"seconds", s.hostSeconds},
               {"instructions_per_second", s.instructionsPerHostSecond},
               {"simulated_cycles_per_second", s.simulatedCyclesPerHostSecond}};
  Json perCore = Json::array();
  for (const CoreSummary& core : s.perCore) {
    Json c;
    c["core"] = core.core;
    c["end_ns"] = core.endNs;
    c["instructions"] = core.instructions;
    c["tensor_flops"] = core.tensorFlops;
    c["tensor_utilization_percent"] = core.tensorUtilizationPercent;
    c["throttled_ns"] = core.throttledNs;
    c["hbm_read_bytes"] = core.hbmReadBytes;
    c["hbm_write_bytes"] = core.hbmWriteBytes;
    Json engines = Json::object();
    for (const EngineSummary& e : core.engines) {
      engines[std::string(arch::engineName(e.engine))] = {{"busy_ns", e.busyNs},
                                                          {"busy_percent", e.busyPercent},
                                                          {"instructions", e.instructions},
                                                          {"wait_ns", e.waitNs}};
    }
    c["engines"] = std::move(engines);
    c["dma_any_busy_ns"] = core.dmaAnyBusyNs;
    c["dma_any_busy_percent"] = core.dmaAnyBusyPercent;
    Json queues = Json::array();
    for (const DmaQueueSummary& q : core.dmaQueues) {
      queues.push_back({{"queue", q.queue},
                        {"busy_ns", q.busyNs},
                        {"busy_percent", q.busyPercent},
                        {"transfers", q.transfers},
                        {"hbm_bytes", q.hbmBytes}});
    }
    c["dma_queues"] = std::move(queues);
    perCore.push_back(std::move(c));
  }
  j["per_core"] = std::move(perCore);
  // replace: a chip name with invalid UTF-8 must not throw out of the core.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace trnsim::profile
