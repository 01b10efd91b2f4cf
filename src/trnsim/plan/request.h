#pragma once
// One `trnsim plan` request as the CLI (tools/trnsim/cmd_plan.cpp) and Python
// (trnsim.plan.estimate) make it: the checks done before any work is started.

#include <string>

#include "trnsim/support/status.h"

namespace trnsim::plan {

/// Whether the HTML report can be written to `path` (its folder exists, the file can be
/// created or overwritten), checked before a search that may take minutes. Leaves no file
/// behind. Errors are at "--report" and say what to do.
Status checkReportPath(const std::string& path);

}  // namespace trnsim::plan
