#include "trnsim/profile/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string_view>

#include "trnsim/isa/text.h"
#include "trnsim/profile/json_writer.h"

namespace trnsim::profile {
namespace {

using detail::appendJsonNumber;
using detail::appendJsonString;
using detail::JsonBuffer;

// Track ids inside a core's process: engines at 1..5 (some viewers treat tid 0 specially),
// DMA queue q at kDmaTidBase + q, so engines sort above the queues.
constexpr int64_t kDmaTidBase = 100;

int64_t trackId(const sim::TimelineEvent& e) {
  return e.engine == arch::Engine::kDma ? kDmaTidBase + e.queue
                                        : static_cast<int64_t>(e.engine) + 1;
}

/// Where trace bytes go: a string (traceJson) or a file flushed in large blocks (writeTrace).
class Sink {
 public:
  explicit Sink(std::FILE* file = nullptr) : file_(file) {
    if (file_) out.reserve(kFlushBytes + 4096);
  }

  JsonBuffer out;

  /// Writes the buffer to the file once it is large; no-op for a string sink.
  Status maybeFlush() { return out.size() >= kFlushBytes ? flush() : Status::ok(); }
  Status flush() {
    if (!file_ || out.size() == 0) return Status::ok();
    if (std::fwrite(out.view().data(), 1, out.size(), file_) != out.size()) {
      return Status(ErrorCode::kIo, std::string("cannot write the trace: ") + std::strerror(errno));
    }
    out.clear();
    return Status::ok();
  }

 private:
  static constexpr size_t kFlushBytes = size_t(1) << 20;
  std::FILE* file_;
};

Status validate(const TraceInput& input) {
  for (size_t c = 0; c < input.chips.size(); ++c) {
    const ChipTrace& chip = input.chips[c];
    const std::string where = "trace chip " + std::to_string(c) + " (" + chip.name + ")";
    if (!chip.timeline) {
      return Status(ErrorCode::kInvalidArgument, "no timeline given", where);
    }
    const auto& events = chip.timeline->events;
    for (size_t i = 0; i < events.size(); ++i) {
      const sim::TimelineEvent& e = events[i];
      const auto bad = [&](const std::string& what) {
        return Status(ErrorCode::kInvalidArgument, what,
                      where + ", timeline event " + std::to_string(i));
      };
      if (static_cast<int>(e.engine) >= arch::kNumEngines) {
        return bad("engine " + std::to_string(static_cast<int>(e.engine)) + " does not exist");
      }
      if (!std::isfinite(e.startNs) || !std::isfinite(e.endNs) || !std::isfinite(e.readyNs) ||
          !std::isfinite(e.flops)) {
        return bad("non-finite time or flops");
      }
      if (e.endNs < e.startNs) return bad("ends before it starts");
    }
  }
  return Status::ok();
}

/// The name of the chip's processes: its given name, or "chip N" when it has none.
std::string chipLabel(const ChipTrace& chip, size_t index) {
  return chip.name.empty() ? "chip " + std::to_string(index) : chip.name;
}

std::string dmaTrackName(uint16_t queue, const arch::ChipConfig* config) {
  std::string name = "dma q" + std::to_string(queue);
  if (config && config->dma.queuesPerEngine > 0) {
    const uint32_t perEngine = config->dma.queuesPerEngine;
    name += " (engine " + std::to_string(queue / perEngine) + " queue " +
            std::to_string(queue % perEngine) + ")";
  }
  return name;
}

void beginEvent(JsonBuffer& out, bool& first) {
  out += first ? "\n" : ",\n";
  first = false;
}

void metadata(JsonBuffer& out, bool& first, int64_t pid, const int64_t* tid, std::string_view what,
              std::string_view argKey, const std::string* textValue, int64_t numberValue) {
  beginEvent(out, first);
  out += "{\"ph\":\"M\",\"pid\":";
  appendJsonNumber(out, pid);
  if (tid) {
    out += ",\"tid\":";
    appendJsonNumber(out, *tid);
  }
  out += ",\"name\":";
  appendJsonString(out, what);
  out += ",\"args\":{";
  appendJsonString(out, argKey);
  out += ':';
  if (textValue) {
    appendJsonString(out, *textValue);
  } else {
    appendJsonNumber(out, numberValue);
  }
  out += "}}";
}

void nameProcess(JsonBuffer& out, bool& first, int64_t pid, const std::string& name) {
  metadata(out, first, pid, nullptr, "process_name", "name", &name, 0);
  metadata(out, first, pid, nullptr, "process_sort_index", "sort_index", nullptr, pid);
}

void nameTrack(JsonBuffer& out, bool& first, int64_t pid, int64_t tid, const std::string& name,
               int64_t sortIndex) {
  metadata(out, first, pid, &tid, "thread_name", "name", &name, 0);
  metadata(out, first, pid, &tid, "thread_sort_index", "sort_index", nullptr, sortIndex);
}

/// Appends "HBM" counter events for the events selected by `pick`: the summed transfer rate,
/// each transfer's bytes spread evenly over its duration. Piecewise constant, exactly 0 when
/// nothing is in flight.
template <typename Pick>
Status hbmCounter(Sink& sink, bool& first, int64_t pid,
                  const std::vector<sim::TimelineEvent>& events, Pick pick) {
  struct Edge {
    double ns;
    double gbps;  // bytes/ns added (start) or removed (end)
    int active;
  };
  std::vector<Edge> edges;
  for (const sim::TimelineEvent& e : events) {
    if (e.hbmBytes == 0 || !(e.endNs > e.startNs) || !pick(e)) continue;
    const double rate = static_cast<double>(e.hbmBytes) / (e.endNs - e.startNs);
    edges.push_back({e.startNs, rate, 1});
    edges.push_back({e.endNs, -rate, -1});
  }
  if (edges.empty()) return Status::ok();
  std::stable_sort(edges.begin(), edges.end(),
                   [](const Edge& a, const Edge& b) { return a.ns < b.ns; });
  double rate = 0;
  int active = 0;
  double last = -1;
  for (size_t i = 0; i < edges.size();) {
    const double ns = edges[i].ns;
    for (; i < edges.size() && edges[i].ns == ns; ++i) {
      rate += edges[i].gbps;
      active += edges[i].active;
    }
    // Rounded to 1e-6 GB/s (1 KB/s) so that float residue of the running sum (81.91999999999999)
    // does not show.
    const double value = active == 0 ? 0.0 : std::round(std::max(rate, 0.0) * 1e6) / 1e6;
    if (active == 0) rate = 0;  // drop rounding residue
    if (value == last) continue;
    last = value;
    JsonBuffer& out = sink.out;
    beginEvent(out, first);
    out += "{\"ph\":\"C\",\"name\":\"HBM\",\"pid\":";
    appendJsonNumber(out, pid);
    out += ",\"ts\":";
    appendJsonNumber(out, ns / 1000.0);
    out += ",\"args\":{\"GB/s\":";
    appendJsonNumber(out, value);
    out += "}}";
    TRNSIM_RETURN_IF_ERROR(sink.maybeFlush());
  }
  return Status::ok();
}

/// What names one core's events, prepared once per trace: the program and its source
/// locations as ready-escaped JSON strings ("file:line", or empty when unknown).
struct CoreNaming {
  const isa::Program* program = nullptr;
  std::vector<std::string> locJson;  // "" = unknown
};

CoreNaming prepareNaming(const isa::Program* program) {
  CoreNaming naming;
  naming.program = program;
  if (!program) return naming;
  naming.locJson.resize(program->locations.size());
  for (size_t i = 1; i < program->locations.size(); ++i) {
    const isa::SourceLocation& loc = program->locations[i];
    if (loc.file.empty() && loc.line == 0) continue;
    JsonBuffer escaped;
    appendJsonString(escaped, loc.file + ":" + std::to_string(loc.line));
    naming.locJson[i] = escaped.take();
  }
  return naming;
}

/// Opcode names as JSON string literals, escaped once.
const std::vector<std::string>& opcodeNamesJson() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v(isa::kNumOpcodes);
    for (int op = 0; op < isa::kNumOpcodes; ++op) {
      JsonBuffer escaped;
      appendJsonString(escaped, isa::opcodeName(static_cast<isa::Opcode>(op)));
      v[size_t(op)] = escaped.take();
    }
    return v;
  }();
  return names;
}

void appendEvent(JsonBuffer& out, bool& first, int64_t pid, int64_t tid,
                 const sim::TimelineEvent& e, const CoreNaming& naming, const TraceOptions& opts) {
  const isa::Program* program = naming.program;
  const isa::Instruction* inst = program && e.instruction < program->instructions.size()
                                     ? &program->instructions[e.instruction]
                                     : nullptr;
  beginEvent(out, first);
  out += "{\"ph\":\"X\",\"name\":";
  if (inst && static_cast<int>(inst->opcode) < isa::kNumOpcodes) {
    out += opcodeNamesJson()[static_cast<size_t>(inst->opcode)];
  } else {
    out += "\"instruction ";
    appendJsonNumber(out, uint64_t{e.instruction});
    out += '"';
  }
  out += ",\"cat\":";
  appendJsonString(out, arch::engineName(e.engine));
  out += ",\"pid\":";
  appendJsonNumber(out, pid);
  out += ",\"tid\":";
  appendJsonNumber(out, tid);
  out += ",\"ts\":";
  appendJsonNumber(out, e.startNs / 1000.0);
  out += ",\"dur\":";
  appendJsonNumber(out, (e.endNs - e.startNs) / 1000.0);
  out += ",\"args\":{\"instruction\":";
  appendJsonNumber(out, uint64_t{e.instruction});
  if (inst) {
    if (opts.instructionText) {
      out += ",\"text\":";
      appendJsonString(out, isa::printInstruction(*program, *inst));
    }
    if (opts.operandArgs) {
      const isa::OpInfo& info = isa::opInfo(inst->opcode);
      for (const isa::Operand& op : inst->operands) {
        out += ',';
        if (op.slot < info.numOperands) {
          appendJsonString(out, info.operands[op.slot].name);
        } else {
          appendJsonString(out, "operand" + std::to_string(op.slot));
        }
        out += ':';
        appendJsonString(out, isa::printAccessPattern(*program, op.ap));
      }
    }
    if (inst->loc < naming.locJson.size() && !naming.locJson[inst->loc].empty()) {
      out += ",\"loc\":";
      out += naming.locJson[inst->loc];
    }
  }
  if (e.engine == arch::Engine::kDma) {
    out += ",\"queue\":";
    appendJsonNumber(out, uint64_t{e.queue});
  }
  out += ",\"wait_ns\":";
  appendJsonNumber(out, std::max(0.0, e.startNs - e.readyNs));
  if (e.hbmBytes != 0) {
    out += ",\"hbm_bytes\":";
    appendJsonNumber(out, e.hbmBytes);
  }
  if (e.flops != 0) {
    out += ",\"flops\":";
    appendJsonNumber(out, e.flops);
  }
  out += "}}";
}

/// One end of a dependency arrow: 's' at the producer, 'f' (bound to the enclosing slice) at
/// the consumer.
void appendFlow(JsonBuffer& out, bool& first, char phase, uint64_t id, int64_t pid, int64_t tid,
                double ns) {
  beginEvent(out, first);
  out += phase == 's' ? "{\"ph\":\"s\"" : "{\"ph\":\"f\",\"bp\":\"e\"";
  out += ",\"name\":\"dependency\",\"cat\":\"dependency\",\"id\":";
  appendJsonNumber(out, id);
  out += ",\"pid\":";
  appendJsonNumber(out, pid);
  out += ",\"tid\":";
  appendJsonNumber(out, tid);
  out += ",\"ts\":";
  appendJsonNumber(out, ns / 1000.0);
  out += '}';
}

/// The tracks one core's events use: track id -> lanes (1 + its sub-tracks).
struct CoreTracks {
  std::map<int64_t, uint32_t> lanes;
  bool hbm = false;
};

/// Lane l > 0 of track t has id t + l * kLaneTidStride (engines are 1..5, DMA queues
/// kDmaTidBase + q with q < kLaneTidStride - kDmaTidBase).
constexpr int64_t kLaneTidStride = 100000;

/// The lane of each event within its (core, track): an instruction that starts before the
/// previous one on its engine or queue has ended (TensorE loading the next weights under the
/// running matmul, a DMA's fixed latency under the queue's previous transfer) goes on a
/// sub-track, so slices on one track never partially overlap: Perfetto nests the slices of a
/// track by time and draws a partial overlap wrong. First fit over events sorted by start.
std::vector<uint32_t> assignLanes(const std::vector<sim::TimelineEvent>& events) {
  std::map<std::pair<uint32_t, int64_t>, std::vector<uint32_t>> byTrack;
  for (uint32_t i = 0; i < events.size(); ++i) {
    byTrack[{events[i].core, trackId(events[i])}].push_back(i);
  }
  std::vector<uint32_t> lane(events.size(), 0);
  std::vector<double> laneEnd;
  for (auto& [track, order] : byTrack) {
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return events[a].startNs < events[b].startNs; });
    laneEnd.clear();
    for (uint32_t i : order) {
      const sim::TimelineEvent& e = events[i];
      uint32_t l = 0;
      while (l < laneEnd.size() && laneEnd[l] > e.startNs) ++l;
      if (l == laneEnd.size()) laneEnd.push_back(e.endNs);
      laneEnd[l] = e.endNs;
      lane[i] = l;
    }
  }
  return lane;
}

std::string trackName(int64_t tid, const arch::ChipConfig* config) {
  if (tid >= kDmaTidBase) return dmaTrackName(uint16_t(tid - kDmaTidBase), config);
  return std::string(arch::engineName(static_cast<arch::Engine>(tid - 1)));
}

Status emitTrace(const TraceInput& input, const TraceOptions& opts, Sink& sink) {
  JsonBuffer& out = sink.out;
  out += "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"trnsim\",\"chips\":[";
  for (size_t c = 0; c < input.chips.size(); ++c) {
    if (c) out += ',';
    appendJsonString(out, chipLabel(input.chips[c], c));
  }
  out += "]},\"traceEvents\":[";
  bool first = true;
  int64_t nextPid = 1;
  uint64_t nextFlow = 1;
  for (size_t c = 0; c < input.chips.size(); ++c) {
    const ChipTrace& chip = input.chips[c];
    const std::string label = chipLabel(chip, c);
    const auto& events = chip.timeline->events;

    const std::vector<uint32_t> lanes = assignLanes(events);
    std::map<uint32_t, CoreTracks> cores;
    bool chipHbm = false;
    for (size_t i = 0; i < events.size(); ++i) {
      const sim::TimelineEvent& e = events[i];
      CoreTracks& tracks = cores[e.core];
      uint32_t& n = tracks.lanes[trackId(e)];
      n = std::max(n, lanes[i] + 1);
      if (e.hbmBytes != 0 && e.endNs > e.startNs) tracks.hbm = chipHbm = true;
    }

    // A chip-wide process carries the HBM counter that all its cores share.
    if (opts.hbmCounters && chipHbm) {
      const int64_t pid = nextPid++;
      nameProcess(out, first, pid, label + " HBM");
      TRNSIM_RETURN_IF_ERROR(
          hbmCounter(sink, first, pid, events, [](const sim::TimelineEvent&) { return true; }));
    }
    std::map<uint32_t, int64_t> pids;
    for (const auto& [core, tracks] : cores) {
      const int64_t pid = nextPid++;
      pids[core] = pid;
      nameProcess(out, first, pid, label + " core " + std::to_string(core));
      for (const auto& [tid, count] : tracks.lanes) {
        const std::string name = trackName(tid, chip.config);
        for (uint32_t l = 0; l < count; ++l) {
          nameTrack(out, first, pid, tid + kLaneTidStride * l,
                    l == 0 ? name : fmt::format("{} (overlap lane {})", name, l), tid * 1000 + l);
        }
      }
      if (opts.hbmCounters && tracks.hbm) {
        const uint32_t thisCore = core;
        TRNSIM_RETURN_IF_ERROR(hbmCounter(
            sink, first, pid, events, [thisCore](const auto& e) { return e.core == thisCore; }));
      }
    }
    std::vector<CoreNaming> naming;
    for (const isa::Program* program : chip.programs) naming.push_back(prepareNaming(program));
    const CoreNaming none;
    const auto tidOf = [&](size_t i) { return trackId(events[i]) + kLaneTidStride * lanes[i]; };
    for (size_t i = 0; i < events.size(); ++i) {
      const sim::TimelineEvent& e = events[i];
      appendEvent(out, first, pids[e.core], tidOf(i), e,
                  e.core < naming.size() ? naming[e.core] : none, opts);
      TRNSIM_RETURN_IF_ERROR(sink.maybeFlush());
    }
    if (opts.dependencyArrows) {
      // (core, instruction) -> event, for the arrows' producers.
      std::map<std::pair<uint32_t, uint32_t>, size_t> eventOf;
      for (size_t i = 0; i < events.size(); ++i) {
        eventOf[{events[i].core, events[i].instruction}] = i;
      }
      for (size_t i = 0; i < events.size(); ++i) {
        const sim::TimelineEvent& e = events[i];
        if (e.after == sim::TimelineEvent::kNoInstruction) continue;
        auto from = eventOf.find({e.core, e.after});
        if (from == eventOf.end() || tidOf(from->second) == tidOf(i)) continue;
        const sim::TimelineEvent& p = events[from->second];
        // The start sits inside the producer's slice (its middle: a slice's ends are shared
        // with its neighbours), the end binds to the consumer's slice at its start.
        appendFlow(out, first, 's', nextFlow, pids[p.core], tidOf(from->second),
                   (p.startNs + p.endNs) / 2);
        appendFlow(out, first, 'f', nextFlow, pids[e.core], tidOf(i), e.startNs);
        ++nextFlow;
        TRNSIM_RETURN_IF_ERROR(sink.maybeFlush());
      }
    }
  }
  out += "\n]}\n";
  return sink.flush();
}

}  // namespace

TraceInput singleChipTrace(const arch::ChipConfig& chip, std::span<const isa::Program> programs,
                           const sim::Timeline& timeline) {
  ChipTrace trace;
  trace.name = chip.name;
  trace.timeline = &timeline;
  trace.config = &chip;
  for (const isa::Program& p : programs) trace.programs.push_back(&p);
  TraceInput input;
  input.chips.push_back(std::move(trace));
  return input;
}

Expected<std::string> traceJson(const TraceInput& input, const TraceOptions& opts) {
  TRNSIM_RETURN_IF_ERROR(validate(input));
  Sink sink;
  size_t events = 0;
  for (const ChipTrace& chip : input.chips) events += chip.timeline->events.size();
  sink.out.reserve(256 + events * (opts.instructionText ? 400 : 250));
  TRNSIM_RETURN_IF_ERROR(emitTrace(input, opts, sink));
  return sink.out.take();
}

Status writeTrace(const std::string& path, const TraceInput& input, const TraceOptions& opts) {
  TRNSIM_RETURN_IF_ERROR(validate(input));
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) {
    return Status(ErrorCode::kIo, std::string("cannot open for writing: ") + std::strerror(errno),
                  path);
  }
  Sink sink(file);
  Status status = emitTrace(input, opts, sink);
  if (std::fclose(file) != 0 && status.isOk()) {
    status = Status(ErrorCode::kIo, std::string("cannot write the trace: ") + std::strerror(errno));
  }
  return status.isOk() ? status : status.withContext(path);
}

}  // namespace trnsim::profile
