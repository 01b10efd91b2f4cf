// Python bindings of the profile layer (submodule trnsim._trnsim.profile).
//
// Minimal for now: timelines come in as lists of dicts (what a Python front end or a test can
// build without sim bindings), summaries go out as the dict of profile::summaryJson and
// traces as JSON text. Key names are documented in docs/profile.md.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/names.h"
#include "trnsim/profile/summary.h"
#include "trnsim/profile/trace.h"
#include "trnsim/profile/trace_check.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::raiseStatus;

arch::ChipConfig chipByName(const std::string& nameOrPath) {
  return pybind::unwrap(arch::loadChip(nameOrPath));
}

template <typename T>
T get(const py::dict& d, const char* key, T fallback) {
  return d.contains(key) ? d[key].cast<T>() : fallback;
}

/// One event from {"core", "engine", "queue", "instruction", "start_ns", "end_ns", "ready_ns",
/// "hbm_bytes", "flops", "after"}; "engine" is a name ("tensor", "dma", ...) or its number.
sim::TimelineEvent toEvent(const py::handle& item, size_t index) {
  if (!py::isinstance<py::dict>(item)) {
    throw py::type_error("timeline event " + std::to_string(index) + " must be a dict");
  }
  const auto d = py::reinterpret_borrow<py::dict>(item);
  sim::TimelineEvent e;
  e.core = get<uint32_t>(d, "core", 0);
  if (d.contains("engine")) {
    py::object engine = d["engine"];
    if (py::isinstance<py::str>(engine)) {
      const auto name = engine.cast<std::string>();
      const auto parsed = isa::parseEngineName(name);
      if (!parsed) {
        throw py::value_error("timeline event " + std::to_string(index) + ": unknown engine '" +
                              name + "'");
      }
      e.engine = *parsed;
    } else {
      e.engine = static_cast<arch::Engine>(engine.cast<uint8_t>());
    }
  }
  e.queue = get<uint16_t>(d, "queue", 0);
  e.instruction = get<uint32_t>(d, "instruction", 0);
  e.startNs = get<double>(d, "start_ns", 0);
  e.endNs = get<double>(d, "end_ns", e.startNs);
  e.readyNs = get<double>(d, "ready_ns", e.startNs);
  e.hbmBytes = get<uint64_t>(d, "hbm_bytes", 0);
  e.flops = get<double>(d, "flops", 0);
  e.after = get<uint32_t>(d, "after", sim::TimelineEvent::kNoInstruction);
  return e;
}

sim::Timeline toTimeline(const py::list& events, double endNs) {
  sim::Timeline t;
  t.events.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) t.events.push_back(toEvent(events[i], i));
  t.endNs = endNs;
  return t;
}

}  // namespace

void bindProfile(py::module_& m) {
  auto sub = m.def_submodule("profile", "Traces and summaries of simulated timelines");

  sub.def(
      "summarize",
      [](const std::string& chip, const py::list& events, double endNs, double hostSeconds,
         double modelFlops, uint64_t instructions) {
        const arch::ChipConfig config = chipByName(chip);
        const sim::Timeline timeline = toTimeline(events, endNs);
        profile::SummaryOptions opts;
        opts.hostSeconds = hostSeconds;
        opts.modelFlops = modelFlops;
        opts.instructions = instructions;
        auto summary = profile::summarize(config, timeline, opts);
        if (!summary) raiseStatus(summary.status());
        return py::module_::import("json").attr("loads")(profile::summaryJson(*summary));
      },
      py::arg("chip"), py::arg("events"), py::arg("end_ns") = 0.0, py::arg("host_seconds") = 0.0,
      py::arg("model_flops") = 0.0, py::arg("instructions") = 0,
      "Summary dict (keys as in docs/profile.md) of a timeline given as a list of event dicts "
      "{core, engine, queue, instruction, start_ns, end_ns, ready_ns, hbm_bytes, flops}; "
      "end_ns 0 = the latest event end.");

  sub.def(
      "trace_json",
      [](const std::string& chip, const py::list& events, double endNs) {
        const arch::ChipConfig config = chipByName(chip);
        const sim::Timeline timeline = toTimeline(events, endNs);
        auto text = profile::traceJson(profile::singleChipTrace(config, {}, timeline));
        if (!text) raiseStatus(text.status());
        return std::move(text).value();
      },
      py::arg("chip"), py::arg("events"), py::arg("end_ns") = 0.0,
      "Chrome/Perfetto trace JSON of a timeline given as a list of event dicts (events are "
      "named 'instruction N': no program is attached).");

  sub.def(
      "check_trace",
      [](const std::string& text) {
        pybind::check(profile::checkTraceRules(text));  // kInvalidArgument: a ValueError
      },
      py::arg("text"),
      "Checks trace JSON text against the trace rules of docs/profile.md (slices on a track "
      "nest, tracks are named, flow arrows pair up inside slices, finite times and counters); "
      "ValueError naming the events that break one.");

  sub.attr("SUMMARY_SCHEMA_VERSION") = profile::kSummarySchemaVersion;
}
