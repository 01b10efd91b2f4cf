#pragma once
// How sure a plan is: which published runs the compute model of a system was validated against
// (docs/validation.md), the worst error it showed there, and what the plan assumes beyond that.
// The figures come from configs/plan/validation.json, which tools/plan_validation.py writes and
// tests/python/test_plan_validation.py checks against the planner's current predictions.

#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/system_config.h"

namespace trnsim::plan {

struct Confidence {
  /// One sentence: what the figures rest on ("validated against ...", "extrapolated from ...",
  /// "not validated: ...").
  std::string basis;
  bool direct = false;     ///< this system's own chip was in the validation set
  double errorBand = 0;    ///< worst |relative error| of the validation behind it; 0 = none
  std::vector<std::string> assumptions;  ///< terms not checked against any published run
};

/// The confidence of a plan for `system` timed by `computeModel` ("compiled", "kernels",
/// "roofline").
Confidence confidenceOf(const arch::SystemConfig& system, std::string_view computeModel);

}  // namespace trnsim::plan
