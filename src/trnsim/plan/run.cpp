// The whole run and the search, bound to a Planner and the catalogs (model parameter counts,
// prices). The arithmetic lives in reliability.cpp and search.cpp, which need neither.

#include "trnsim/plan/run.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "trnsim/support/parallel.h"

namespace trnsim::plan {

namespace {

/// Fills in the checkpoint size (when 0, from `defaultBytes`) and the price (when 0, from the
/// catalog; a system the catalog does not price stays unpriced, with a note).
ReliabilityModel resolve(const arch::SystemConfig& system, ReliabilityModel r, double defaultBytes,
                         std::string& note) {
  if (!(r.checkpointBytes > 0)) r.checkpointBytes = defaultBytes;
  if (!(r.usdPerNodeHour > 0)) {
    auto prices = arch::loadPrices(r.priceCatalog);
    if (!prices) {
      note = fmt::format("cost not computed: {}", prices.status().toString());
    } else if (auto it = prices->bySystem.find(system.name); it != prices->bySystem.end()) {
      r.usdPerNodeHour = it->second.usdPerNodeHour;
    } else {
      note = fmt::format("cost not computed: price catalog '{}' has no price for system '{}'",
                         prices->name, system.name);
    }
  }
  return r;
}

Expected<RunEstimate> finish(const arch::SystemConfig& system, uint64_t chips, double tokensPerStep,
                             const StepEstimate& step, double tokens, const ReliabilityModel& r,
                             double defaultBytes) {
  std::string note;
  ReliabilityModel resolved = resolve(system, r, defaultBytes, note);
  TRNSIM_ASSIGN_OR_RETURN(RunEstimate run,
                          estimateRunWith(system, chips, tokensPerStep, step, tokens, resolved));
  if (!note.empty()) run.note = run.note.empty() ? note : run.note + "; " + note;
  return run;
}

}  // namespace

double defaultCheckpointBytes(const ModelConfig& model) {
  return model.totalParams() * kCheckpointBytesPerParam;
}

Expected<RunEstimate> estimateRunFor(const arch::SystemConfig& system, uint64_t chips,
                                     const Workload& w, const StepEstimate& step, double tokens,
                                     const ReliabilityModel& reliability) {
  double tokensPerStep = static_cast<double>(w.globalBatch) * static_cast<double>(w.seq);
  return finish(system, chips, tokensPerStep, step, tokens, reliability,
                defaultCheckpointBytes(w.model));
}

Expected<RunEstimate> estimateRun(const Planner& planner, const Workload& w,
                                  const StepEstimate& step, double tokens,
                                  const ReliabilityModel& reliability) {
  return estimateRunFor(planner.system(), planner.chips(), w, step, tokens, reliability);
}

Expected<RunEstimate> estimateRun(const Planner& planner, const StepEstimate& step, double tokens,
                                  const ReliabilityModel& reliability) {
  // Without the model: the unique bytes of weights and optimizer state over all chips. Weights
  // are replicated over dp unless ZeRO-3 shards them; optimizer state unless ZeRO >= 1.
  const Parallelism& p = step.parallelism;
  double chips = static_cast<double>(planner.chips());
  double dp = std::max<uint32_t>(p.dp, 1);
  double weights = step.memory.weights * chips / (p.zero >= 3 ? 1.0 : dp);
  double optimizer = step.memory.optimizer * chips / (p.zero >= 1 ? 1.0 : dp);
  return finish(planner.system(), planner.chips(), 0, step, tokens, reliability,
                weights + optimizer);
}

Expected<SearchResult> search(const Planner& planner, const Workload& w,
                              const SearchOptions& options) {
  const arch::SystemConfig& system = planner.system();
  SearchSpace space;
  space.chips = planner.chips();
  space.ranksPerChip = std::max<uint32_t>(system.accel.ranksPerChip, 1);
  space.fp8Available = system.accel.peakTflopsFp8 > 0;
  space.chipsPerNode = std::max<uint32_t>(system.chipsPerNode, 1);
  space.wattsPerChip = system.accel.powerWatts;
  if (options.objective == Objective::kCost) {
    std::string note;
    ReliabilityModel r = resolve(system, ReliabilityModel{}, 0, note);
    if (!(r.usdPerNodeHour > 0))
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("cannot search for the cheapest plan: {}", note), "--objective");
    space.usdPerNodeHour = r.usdPerNodeHour;
  }
  const bool compiled = planner.computeModel() == ComputeModelKind::kCompiled;
  StepFunction step = [&planner](const Workload& wl, const Parallelism& p) {
    return planner.estimate(wl, p, ComputeModelKind::kKernels);
  };
  if (!compiled) {
    TRNSIM_ASSIGN_OR_RETURN(SearchResult r, searchWith(step, w, space, options));
    r.computeModel = r.best.computeModel;
    return r;
  }
  // Rank everything with the kernel composition (microseconds per candidate), then re-time the
  // best few with compiled layers (seconds per new per-rank shape, cached) and re-rank them.
  const auto started = std::chrono::steady_clock::now();
  SearchSpace wide = space;
  wide.topCount = std::max(space.topCount, planner.options().compiledRerank);
  TRNSIM_ASSIGN_OR_RETURN(SearchResult r, searchWith(step, w, wide, options));
  std::vector<Expected<StepEstimate>> timed(r.top.size(), Status());
  support::parallelFor(r.top.size(), options.threads, [&](size_t i) {
    timed[i] = planner.estimate(w, r.top[i].parallelism, ComputeModelKind::kCompiled);
  });
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < timed.size(); ++i) {
    if (!timed[i])
      return timed[i].status().withContext(
          fmt::format("re-timing the search's candidate {} with compiled layers (--compute-model "
                      "kernels skips them)",
                      i + 1));
    order.emplace_back(objectiveScore(*timed[i], space, options.objective), i);
  }
  std::stable_sort(order.begin(), order.end());
  std::vector<StepEstimate> top;
  for (size_t k = 0; k < order.size() && k < std::max<size_t>(space.topCount, 1); ++k)
    top.push_back(std::move(timed[order[k].second]).value());
  r.reranked = timed.size();
  r.top = std::move(top);
  r.best = r.top.front();
  r.computeModel = r.best.computeModel;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return r;
}

}  // namespace trnsim::plan
