#include "trnsim/profile/trace_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "trnsim/support/json_load.h"

namespace trnsim::profile {
namespace {

using nlohmann::json;
using Track = std::pair<int64_t, int64_t>;  // (pid, tid)

struct Slice {
  double start = 0, end = 0;  // microseconds, as the file has them
  size_t index = 0;           // in traceEvents
  std::string name;
};

/// Times are printed in microseconds from nanosecond doubles, so an end computed as ts + dur
/// can exceed the next slice's ts by rounding alone: a femtosecond of slack, scaled with time.
double slack(double t) { return 1e-9 + 1e-12 * std::abs(t); }

Status broken(std::string what) {
  return Status(ErrorCode::kInvalidArgument, std::move(what), "trace");
}

std::string trackText(const Track& t) { return fmt::format("pid {} tid {}", t.first, t.second); }

std::string sliceText(const Slice& s) {
  return fmt::format("event {} '{}' [{} us, {} us]", s.index, s.name, s.start, s.end);
}

bool isInteger(const json& e, const char* key) {
  return e.contains(key) && e[key].is_number_integer();
}

bool finiteNumber(const json& e, const char* key) {
  return e.contains(key) && e[key].is_number() && std::isfinite(e[key].get<double>());
}

/// The flow endpoints of one id: "s" and "f" events (index, track, ts).
struct FlowEnd {
  size_t index = 0;
  Track track;
  double ts = 0;
};

}  // namespace

Status checkTraceRules(std::string_view traceJson) {
  // Traces are far larger than configs; the depth and duplicate-key rules still apply.
  Expected<json> parsed = support::parseJsonText(
      traceJson, "trace", support::JsonLimits{.maxBytes = uint64_t{1} << 40});
  if (!parsed) return parsed.status();
  const json& root = *parsed;
  const json* events = &root;
  if (root.is_object()) {
    if (!root.contains("traceEvents") || !root["traceEvents"].is_array()) {
      return broken("the top-level object has no \"traceEvents\" array");
    }
    events = &root["traceEvents"];
  } else if (!root.is_array()) {
    return broken("neither an object with \"traceEvents\" nor an array of events");
  }

  std::map<Track, std::vector<Slice>> slices;
  std::set<Track> named;
  std::map<std::string, std::vector<FlowEnd>> flowStarts, flowEnds;
  for (size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    if (!e.is_object() || !e.contains("ph") || !e["ph"].is_string()) {
      return broken(fmt::format("event {} has no \"ph\" phase", i));
    }
    const std::string ph = e["ph"].get<std::string>();
    const bool hasTrack = isInteger(e, "pid") && isInteger(e, "tid");
    const Track track =
        hasTrack ? Track{e["pid"].get<int64_t>(), e["tid"].get<int64_t>()} : Track{};
    if (ph == "M") {
      if (hasTrack && e.value("name", "") == "thread_name") named.insert(track);
    } else if (ph == "X") {
      if (!e.contains("name") || !e["name"].is_string()) {
        return broken(fmt::format("complete event {} has no name", i));
      }
      if (!hasTrack) return broken(fmt::format("complete event {} has no integer pid and tid", i));
      if (!finiteNumber(e, "ts") || !finiteNumber(e, "dur") || e["ts"].get<double>() < 0 ||
          e["dur"].get<double>() < 0) {
        return broken(fmt::format("complete event {} needs finite ts >= 0 and dur >= 0", i));
      }
      const double ts = e["ts"].get<double>();
      slices[track].push_back({ts, ts + e["dur"].get<double>(), i, e["name"].get<std::string>()});
    } else if (ph == "s" || ph == "f") {
      if (!hasTrack || !finiteNumber(e, "ts") || !e.contains("id")) {
        return broken(fmt::format("flow event {} needs pid, tid, ts and id", i));
      }
      const std::string id = e["id"].dump() + "/" + e.value("cat", "");
      (ph == "s" ? flowStarts : flowEnds)[id].push_back({i, track, e["ts"].get<double>()});
    } else if (ph == "C") {
      if (!e.contains("args") || !e["args"].is_object()) {
        return broken(fmt::format("counter event {} has no args", i));
      }
      for (const auto& [key, value] : e["args"].items()) {
        if (!value.is_number() || !std::isfinite(value.get<double>())) {
          return broken(fmt::format("counter event {} '{}' is not a finite number", i, key));
        }
      }
    }
  }

  for (auto& [track, list] : slices) {
    if (!named.count(track)) {
      return broken(fmt::format("{} has slices but no thread_name", trackText(track)));
    }
    // Sorted by start, longest first: a slice must end inside every open slice it starts in.
    std::stable_sort(list.begin(), list.end(), [](const Slice& a, const Slice& b) {
      return a.start != b.start ? a.start < b.start : a.end > b.end;
    });
    std::vector<const Slice*> open;
    for (const Slice& s : list) {
      while (!open.empty() && open.back()->end <= s.start + slack(s.start)) open.pop_back();
      if (!open.empty() && s.end > open.back()->end + slack(s.end)) {
        return broken(fmt::format("on {}, {} overlaps {} partially: slices on one track must nest",
                                  trackText(track), sliceText(*open.back()), sliceText(s)));
      }
      open.push_back(&s);
    }
  }

  // An arrow end binds to the slice of its track that encloses its time.
  const auto inSlice = [&](const FlowEnd& f) {
    auto it = slices.find(f.track);
    if (it == slices.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [&](const Slice& s) {
      return s.start - slack(s.start) <= f.ts && f.ts <= s.end + slack(s.end);
    });
  };
  for (const auto& [id, starts] : flowStarts) {
    auto ends = flowEnds.find(id);
    if (starts.size() != 1 || ends == flowEnds.end() || ends->second.size() != 1) {
      return broken(fmt::format("flow {} has {} start(s) and {} end(s); it needs one of each", id,
                                starts.size(),
                                ends == flowEnds.end() ? size_t{0} : ends->second.size()));
    }
    const FlowEnd& s = starts.front();
    const FlowEnd& f = ends->second.front();
    if (f.ts + slack(f.ts) < s.ts) {
      return broken(fmt::format("flow {} ends (event {}, {} us) before it starts (event {}, {} us)",
                                id, f.index, f.ts, s.index, s.ts));
    }
    for (const FlowEnd* end : {&s, &f}) {
      if (!inSlice(*end)) {
        return broken(fmt::format("flow {}: event {} at {} us on {} lies in no slice of its track",
                                  id, end->index, end->ts, trackText(end->track)));
      }
    }
  }
  for (const auto& [id, ends] : flowEnds) {
    if (!flowStarts.count(id)) return broken(fmt::format("flow {} ends but never starts", id));
  }
  return Status::ok();
}

}  // namespace trnsim::profile
