#pragma once
// The rules a trace trnsim writes keeps, so that Perfetto and chrome://tracing draw it as
// the timing model meant (docs/profile.md, "Trace rules"). Every trace the test suite writes
// is checked against them (tests/profile, tests/python/conftest.py).

#include <string_view>

#include "trnsim/support/status.h"

namespace trnsim::profile {

/// Checks Chrome trace-event JSON text (an object with "traceEvents", or a bare event array):
///  - every complete ("X") event has a name, integer pid and tid, finite ts >= 0 and dur >= 0;
///  - slices on one track (pid, tid) nest: two either do not overlap or one contains the
///    other (a partial overlap is drawn wrong);
///  - every track with slices is named by a "thread_name" metadata event;
///  - flow events ("s" start, "f" end) pair up by id, the end no earlier than the start, and
///    each end of an arrow lies inside a slice of its track at its time;
///  - counter ("C") values are finite numbers.
/// kInvalidArgument naming the rule, the events (index, name, track) and their times.
Status checkTraceRules(std::string_view traceJson);

}  // namespace trnsim::profile
