#pragma once
// The profile layer: traces (trace.h) and summaries (summary.h) of recorded timelines.

#include "trnsim/profile/summary.h"  // IWYU pragma: export
#include "trnsim/profile/trace.h"    // IWYU pragma: export
