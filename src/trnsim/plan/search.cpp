// The parallelism search: enumerate every configuration that divides properly, evaluate each
// with the step model on all cores, keep the best few. Deterministic for any thread count:
// candidates have a fixed order and equal scores are ranked by that order.

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <vector>

#include "trnsim/plan/plan_internal.h"
#include "trnsim/plan/run.h"
#include "trnsim/support/parallel.h"

namespace trnsim::plan {

namespace {

/// Bounds of the searched degrees that have no natural bound (docs/plan.md, "Search").
constexpr uint32_t kMaxCp = 16;
constexpr uint32_t kMaxVpp = 8;
constexpr uint32_t kMaxMicrobatch = 8;

/// The divisors of n up to limit, ascending. O(min(limit, sqrt(n))): a model's layer count
/// (up to 2^32) enters as ceil(layers / pp) with a small limit, so it costs nothing.
std::vector<uint64_t> divisorsOf(uint64_t n, uint64_t limit) {
  std::vector<uint64_t> out;
  if (limit == 0) return out;
  if (limit < n / limit) {  // limit^2 < n: no divisor above sqrt(n) is small enough
    for (uint64_t d = 1; d <= limit; ++d)
      if (n % d == 0) out.push_back(d);
    return out;
  }
  for (uint64_t d = 1; d * d <= n; ++d) {
    if (n % d) continue;
    if (d <= limit) out.push_back(d);
    if (d != n / d && n / d <= limit) out.push_back(n / d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Scored {
  double score = 0;
  size_t index = 0;
  StepEstimate estimate;
};

bool better(const Scored& a, const Scored& b) {
  if (a.score != b.score) return a.score < b.score;
  return a.index < b.index;
}

/// Keeps the `limit` best of what it is offered (by score, then index).
void offer(std::vector<Scored>& top, size_t limit, Scored s) {
  if (top.size() == limit && !better(s, top.back())) return;
  auto at = std::upper_bound(top.begin(), top.end(), s, better);
  top.insert(at, std::move(s));
  if (top.size() > limit) top.pop_back();
}

Status fixedError(std::string_view option, uint64_t value, const std::string& why) {
  return Status(ErrorCode::kInvalidArgument, fmt::format("{} {} {}", option, value, why),
                std::string(option));
}

}  // namespace

std::string_view objectiveName(Objective o) {
  switch (o) {
    case Objective::kTime:
      return "time";
    case Objective::kCost:
      return "cost";
    case Objective::kEnergy:
      return "energy";
  }
  return "?";
}

Expected<Objective> parseObjective(std::string_view name) {
  for (Objective o : {Objective::kTime, Objective::kCost, Objective::kEnergy})
    if (objectiveName(o) == name) return o;
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("unknown objective '{}'; expected time, cost or energy", name),
                "--objective");
}

double objectiveScore(const StepEstimate& e, const SearchSpace& space, Objective objective) {
  switch (objective) {
    case Objective::kTime:
      return e.stepTimeS;
    case Objective::kCost: {
      if (!(space.usdPerNodeHour > 0)) return e.stepTimeS;
      uint64_t perNode = std::max<uint32_t>(space.chipsPerNode, 1);
      double nodes = static_cast<double>((space.chips + perNode - 1) / perNode);
      return e.stepTimeS / 3600.0 * nodes * space.usdPerNodeHour;
    }
    case Objective::kEnergy:
      if (!(space.wattsPerChip > 0)) return e.stepTimeS;
      return e.stepTimeS * static_cast<double>(space.chips) * space.wattsPerChip;
  }
  return e.stepTimeS;
}

Expected<std::vector<Parallelism>> searchCandidates(const Workload& w, const SearchSpace& space,
                                                    const SearchOptions& o) {
  const ModelConfig& m = w.model;
  if (space.chips == 0)
    return Status(ErrorCode::kInvalidArgument, "chips must be at least 1", "--chips");
  if (w.globalBatch == 0)
    return Status(ErrorCode::kInvalidArgument, "the global batch must be at least 1",
                  "--global-batch");
  if (w.seq == 0)
    return Status(ErrorCode::kInvalidArgument, "the sequence length must be at least 1", "--seq");
  if (m.layers == 0 || m.heads == 0)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("model '{}' has no layers or heads", m.name), "--model");
  const uint64_t ranks = space.chips * std::max<uint32_t>(space.ranksPerChip, 1);
  const Parallelism& f = o.fixed;
  const uint32_t kvHeads = m.kvHeads ? m.kvHeads : m.heads;
  const std::string rankText =
      fmt::format("the rank count {} ({} chips x {} ranks per chip)", ranks, space.chips,
                  std::max<uint32_t>(space.ranksPerChip, 1));

  // Fixed degrees are checked one by one so the error names the option at fault.
  if (o.fixTp) {
    if (f.tp == 0 || ranks % f.tp) return fixedError("--tp", f.tp, "does not divide " + rankText);
    if (m.heads % f.tp)
      return fixedError("--tp", f.tp, fmt::format("does not divide the model's {} heads", m.heads));
  }
  if (o.fixCp && (f.cp == 0 || ranks % f.cp))
    return fixedError("--cp", f.cp, "does not divide " + rankText);
  if (o.fixPp) {
    if (f.pp == 0 || ranks % f.pp) return fixedError("--pp", f.pp, "does not divide " + rankText);
    // The fixed plan's stage rule (uneven stages allowed), so --search accepts what a plan does.
    if (Status stages = detail::checkPipelineStages(m, f.pp, 1); !stages)
      return Status(ErrorCode::kInvalidArgument, stages.message(), "--pp");
  }
  if (o.fixDp && (f.dp == 0 || ranks % f.dp))
    return fixedError("--dp", f.dp, "does not divide " + rankText);
  if (o.fixDp && w.globalBatch % f.dp)
    return fixedError(
        "--dp", f.dp,
        fmt::format("does not divide the global batch of {} sequences", w.globalBatch));
  if (o.fixEp && f.ep > 1 && m.experts <= 1)
    return fixedError("--ep", f.ep, fmt::format("needs a MoE model; '{}' is dense", m.name));
  if (o.fixEp && (f.ep == 0 || (m.experts > 1 && m.experts % f.ep)))
    return fixedError("--ep", f.ep,
                      fmt::format("does not divide the model's {} experts", m.experts));
  if (o.fixVpp && f.vpp == 0) return fixedError("--vpp", f.vpp, "must be at least 1");
  if (o.fixVpp && o.fixPp) {
    if (Status stages = detail::checkPipelineStages(m, f.pp, f.vpp); !stages)
      return Status(ErrorCode::kInvalidArgument, stages.message(), "--vpp");
  }
  if (o.fixMicrobatch && (f.microbatch == 0 || w.globalBatch % f.microbatch))
    return fixedError(
        "--microbatch", f.microbatch,
        fmt::format("does not divide the global batch of {} sequences", w.globalBatch));
  if (o.fixZero && f.zero > 3) return fixedError("--zero", f.zero, "must be 0, 1, 2 or 3");
  if (o.fixPrecision && f.precision == Precision::kFp8 && !space.fp8Available)
    return Status(ErrorCode::kInvalidArgument, "--precision fp8: this chip has no fp8 rate",
                  "--precision");

  std::vector<Recompute> recomputes = {Recompute::kNone, Recompute::kSelective, Recompute::kFull};
  if (o.fixRecompute) recomputes = {f.recompute};
  std::vector<Precision> precisions = {Precision::kBf16};
  if (space.fp8Available) precisions.push_back(Precision::kFp8);
  if (o.fixPrecision) precisions = {f.precision};

  std::vector<Parallelism> out;
  for (uint64_t tp : divisorsOf(ranks, m.heads)) {
    if (o.fixTp && tp != f.tp) continue;
    if (m.heads % tp || (kvHeads % tp && tp % kvHeads)) continue;
    for (uint64_t cp : divisorsOf(ranks / tp, o.fixCp ? f.cp : kMaxCp)) {
      if (o.fixCp && cp != f.cp) continue;
      if (cp > 1 && w.seq % (2 * cp)) continue;  // causal load balancing: 2 chunks per rank
      for (uint64_t pp : divisorsOf(ranks / (tp * cp), m.layers)) {
        if (o.fixPp && pp != f.pp) continue;
        if (!detail::checkPipelineStages(m, static_cast<uint32_t>(pp), 1)) continue;
        uint64_t dp = ranks / (tp * cp * pp);
        if (o.fixDp && dp != f.dp) continue;
        if (w.globalBatch % dp) continue;
        uint64_t perReplica = w.globalBatch / dp;
        // Searched chunk counts split the busiest stage (ceil(layers / pp)) evenly; a fixed
        // --vpp is kept as given. Either way the stage rule below decides, as for a plan.
        std::vector<uint64_t> vpps = {1};
        if (o.fixVpp)
          vpps = {f.vpp};
        else if (pp > 1)
          vpps = divisorsOf((m.layers + pp - 1) / pp, kMaxVpp);
        std::vector<uint64_t> eps = {1};
        if (m.experts > 1) eps = divisorsOf(m.experts, m.experts);
        std::vector<uint32_t> zeros = {0, 1, 2, 3};
        if (dp == 1) zeros = {0};  // nothing to shard over
        if (o.fixZero) zeros = {f.zero};
        for (uint64_t mb :
             divisorsOf(perReplica, o.fixMicrobatch ? f.microbatch : kMaxMicrobatch)) {
          if (o.fixMicrobatch && mb != f.microbatch) continue;
          uint64_t micro = perReplica / mb;
          for (uint64_t vpp : vpps) {
            if (!detail::checkPipelineStages(m, static_cast<uint32_t>(pp),
                                             static_cast<uint32_t>(vpp)))
              continue;
            if (vpp > 1 && micro % pp) continue;  // Megatron's rule for interleaving
            for (uint64_t ep : eps) {
              if (o.fixEp && ep != f.ep) continue;
              if ((dp * cp) % ep) continue;
              for (Recompute rc : recomputes)
                for (uint32_t zero : zeros)
                  for (Precision pr : precisions) {
                    Parallelism p = f;
                    p.tp = static_cast<uint32_t>(tp);
                    p.cp = static_cast<uint32_t>(cp);
                    p.pp = static_cast<uint32_t>(pp);
                    p.dp = static_cast<uint32_t>(dp);
                    p.ep = static_cast<uint32_t>(ep);
                    p.vpp = static_cast<uint32_t>(vpp);
                    p.microbatch = static_cast<uint32_t>(mb);
                    p.recompute = rc;
                    p.zero = zero;
                    p.precision = pr;
                    // Sequence parallelism splits each micro-batch's tokens over the tp
                    // ranks: off where there is nothing to split (tp 1) or the tokens do
                    // not divide (e.g. seq 1), rather than refusing the candidate.
                    if (tp == 1 || (w.seq * mb / cp) % tp) p.sequenceParallel = false;
                    out.push_back(p);
                  }
            }
          }
        }
      }
    }
  }
  if (out.empty())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no parallelism divides {} with model '{}' ({} layers, {} heads), a "
                              "global batch of {} and seq {}; change --chips or --global-batch "
                              "or free a fixed degree",
                              rankText, m.name, m.layers, m.heads, w.globalBatch, w.seq),
                  "search");
  return out;
}

Expected<SearchResult> searchWith(const StepFunction& step, const Workload& w,
                                  const SearchSpace& space, const SearchOptions& options) {
  auto started = std::chrono::steady_clock::now();
  TRNSIM_ASSIGN_OR_RETURN(std::vector<Parallelism> candidates, searchCandidates(w, space, options));
  size_t topCount = std::max<size_t>(space.topCount, 1);
  const uint32_t threads = support::workersFor(candidates.size(), options.threads);

  struct WorkerResult {
    std::vector<Scored> top;
    uint64_t fitting = 0;
    uint64_t invalid = 0;
    Status firstError;
    size_t firstErrorIndex = SIZE_MAX;
  };
  std::vector<WorkerResult> results(threads);
  support::parallelFor(candidates.size(), threads, [&](uint32_t worker, size_t i) {
    WorkerResult& r = results[worker];
    Expected<StepEstimate> e = step(w, candidates[i]);
    if (!e) {
      ++r.invalid;
      if (i < r.firstErrorIndex) {
        r.firstError = e.status();
        r.firstErrorIndex = i;
      }
      return;
    }
    if (!e->fits || !(e->stepTimeS > 0)) return;
    ++r.fitting;
    double score = objectiveScore(*e, space, options.objective);
    offer(r.top, topCount, Scored{score, i, std::move(e).value()});
  });

  SearchResult out;
  out.candidates = candidates.size();
  out.evaluated = candidates.size();
  out.threads = threads;
  std::vector<Scored> top;
  const Status* firstError = nullptr;
  size_t firstErrorIndex = SIZE_MAX;
  for (WorkerResult& r : results) {
    out.fitting += r.fitting;
    out.invalid += r.invalid;
    if (r.firstErrorIndex < firstErrorIndex) {
      firstErrorIndex = r.firstErrorIndex;
      firstError = &r.firstError;
    }
    for (Scored& s : r.top) offer(top, topCount, std::move(s));
  }
  if (top.empty()) {
    std::string why = fmt::format(
        "none of the {} parallel configurations fits in memory on {} chips; add chips, lower "
        "--global-batch or --seq, or use a system with more memory per chip",
        out.candidates, space.chips);
    if (firstError && out.invalid == out.candidates)
      why = fmt::format("the step model refused all {} configurations; the first: {}",
                        out.candidates, firstError->toString());
    return Status(ErrorCode::kCapacity, why, "search");
  }
  for (Scored& s : top) out.top.push_back(std::move(s.estimate));
  out.best = out.top.front();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

}  // namespace trnsim::plan
