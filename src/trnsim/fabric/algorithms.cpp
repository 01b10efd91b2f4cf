// The collective algorithms (phases of symmetric steps) and the step timer. See algorithms.h
// for the symmetry argument and docs/fabric.md for the formulas.

#include "trnsim/fabric/algorithms.h"

#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace trnsim::fabric::detail {

namespace {

/// Flows of one step in one domain beyond which the model refuses (the direct algorithm on a
/// very large domain); auto selection skips the algorithm.
constexpr size_t kMaxFlowsPerStep = size_t(1) << 21;

struct Member {
  uint64_t base;  ///< first rank of the member's group
  uint64_t index;
};

Member memberOf(uint64_t rank, const SubGroup& g) {
  uint64_t block = g.size * g.stride;
  uint64_t b = rank / block, o = rank % block;
  return {b * block + o % g.stride, o / g.stride};
}

uint64_t rankOf(const Member& m, uint64_t index, const SubGroup& g) {
  return m.base + index * g.stride;
}

bool isActive(uint64_t rank, const SubGroup& active, bool concurrent) {
  if (concurrent) return true;
  return rank % active.stride == 0 && rank / active.stride < active.size;
}

bool isPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

uint64_t ceilLog2(uint64_t x) {
  uint64_t k = 0;
  while ((uint64_t(1) << k) < x) ++k;
  return k;
}

uint64_t roundBytes(double b) { return b <= 0 ? 0 : static_cast<uint64_t>(std::llround(b)); }

Status notApplicable(Algorithm a, CollectiveOp op, const std::string& why) {
  return Status(
      ErrorCode::kUnsupported,
      fmt::format("algorithm '{}' does not apply to {}: {}", algorithmName(a), opName(op), why),
      "collective");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Step timer

Status Engine::enumerate(StepKind kind, uint64_t param, const SubGroup& sub, const SubGroup& active,
                         bool concurrent, double bytes, std::vector<Flow>& flows,
                         uint64_t& maxOutPerChip) const {
  const uint64_t rpc = topo_.ranksPerChip();
  const uint64_t domainRanks = std::min(topo_.ranks(), topo_.chipsPerDomain() * rpc);
  const uint64_t flowBytes = roundBytes(bytes);
  std::vector<uint64_t> outPerChip(topo_.chipsPerDomain(), 0);
  auto send = [&](uint64_t src, uint64_t dst) {
    uint64_t cs = src / rpc, cd = dst / rpc;
    if (topo_.domainOf(cd) == 0) {
      flows.push_back({cs, cd, flowBytes});
    } else {
      ++outPerChip[cs];
    }
  };
  for (uint64_t r = 0; r < domainRanks; ++r) {
    if (!isActive(r, active, concurrent)) continue;
    Member m = memberOf(r, sub);
    switch (kind) {
      case StepKind::kShift:
        if (param % sub.size != 0) send(r, rankOf(m, (m.index + param) % sub.size, sub));
        break;
      case StepKind::kShiftPair: {
        uint64_t k = param % sub.size;
        if (k == 0) break;
        send(r, rankOf(m, (m.index + k) % sub.size, sub));
        send(r, rankOf(m, (m.index + sub.size - k) % sub.size, sub));
        break;
      }
      case StepKind::kXor: {
        uint64_t j = m.index ^ param;
        if (j < sub.size && j != m.index) send(r, rankOf(m, j, sub));
        break;
      }
      case StepKind::kAll:
      case StepKind::kFromRoot: {
        if (kind == StepKind::kFromRoot && m.index != 0) break;
        // Peers in domain 0 one by one; the rest only counted (they all leave by the NIC).
        uint64_t inDomainPeers = 0;
        for (uint64_t q = 0; q < domainRanks; ++q) {
          if (q == r) continue;
          Member mq = memberOf(q, sub);
          if (mq.base != m.base || !isActive(q, active, concurrent)) continue;
          ++inDomainPeers;
          flows.push_back({r / rpc, q / rpc, flowBytes});
          if (flows.size() > kMaxFlowsPerStep) {
            return Status(ErrorCode::kUnsupported,
                          fmt::format("a step to all {} members has more than {} flows in one "
                                      "domain; the analytical model does not time it",
                                      sub.size, kMaxFlowsPerStep),
                          "collective");
          }
        }
        uint64_t members = concurrent ? sub.size : std::min(sub.size, active.size);
        outPerChip[r / rpc] += members - 1 - inDomainPeers;
        break;
      }
    }
    if (flows.size() > kMaxFlowsPerStep) {
      return Status(ErrorCode::kUnsupported, "a step has too many flows in one domain",
                    "collective");
    }
  }
  maxOutPerChip = 0;
  for (uint64_t n : outPerChip) maxOutPerChip = std::max(maxOutPerChip, n);
  return Status::ok();
}

Expected<double> Engine::stepSeconds(StepKind kind, uint64_t param, const SubGroup& sub,
                                     const SubGroup& active, bool concurrent, double bytes) const {
  if (sub.size <= 1) return 0.0;
  Key key{
      static_cast<uint8_t>(kind),     param,     sub.size, sub.stride, concurrent ? 0 : active.size,
      concurrent ? 0 : active.stride, concurrent};
  auto evaluate = [&](const Envelope& env) {
    double t = 0;
    for (const auto& [lat, rate] : env) t = std::max(t, lat + bytes / rate);
    return t;
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return evaluate(it->second);
  }
  std::vector<Flow> flows;
  uint64_t maxOut = 0;
  TRNSIM_RETURN_IF_ERROR(enumerate(kind, param, sub, active, concurrent, bytes, flows, maxOut));
  const double outLatency = topo_.scaleOutLatencyNs() * 1e-9;
  const double outRate = maxOut ? topo_.scaleOutGbps() * 1e9 / double(maxOut) : 0;

  Expected<std::vector<FlowTiming>> timings = backend_.flowTimings(topo_, flows);
  if (!timings.hasValue()) {
    if (timings.status().code() != ErrorCode::kUnsupported) return timings.status();
    // A back end without per-flow rates: ask it for this size (no memoization).
    TRNSIM_ASSIGN_OR_RETURN(double inside, backend_.phaseSeconds(topo_, flows));
    double outside = maxOut ? outLatency + bytes / outRate : 0;
    return std::max(inside, outside);
  }
  // Keep only the pairs that can be the slowest for some size: by rising rate, a pair matters
  // only if its latency exceeds that of every slower pair.
  std::vector<std::pair<double, double>> pairs;
  pairs.reserve(timings->size() + 1);
  for (const FlowTiming& f : *timings) pairs.emplace_back(f.latencyS, f.bytesPerS);
  if (maxOut) pairs.emplace_back(outLatency, outRate);
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first > b.first;
  });
  Envelope env;
  double maxLat = -1;
  for (const auto& p : pairs) {
    if (p.first > maxLat) {
      env.push_back(p);
      maxLat = p.first;
    }
  }
  double t = evaluate(env);
  std::lock_guard<std::mutex> lock(mutex_);
  cache_.emplace(key, std::move(env));
  return t;
}

std::vector<GroupLevel> Engine::levels(const SubGroup& sub) const {
  struct Radix {
    uint64_t size;
    std::string name;
    bool top;
    bool switchInNetwork;
  };
  std::vector<Radix> radices;
  radices.push_back({topo_.ranksPerChip(), "chip", false, false});
  for (const arch::FabricDim& d : topo_.dims()) {
    radices.push_back(
        {d.size, d.name, false, d.kind == arch::LinkKind::kSwitch && d.inNetworkReduction});
  }
  radices.push_back({topo_.domains(), "scale-out", true, false});
  const uint64_t domainRanks = topo_.chipsPerDomain() * topo_.ranksPerChip();

  std::vector<GroupLevel> out;
  uint64_t s = sub.stride, g = sub.size, prod = 1;
  auto push = [&](uint64_t count, std::string name, bool switchInNetwork) {
    SubGroup level{count, sub.stride * prod};
    bool inDomain =
        (count - 1) * level.stride < domainRanks && domainRanks % (count * level.stride) == 0;
    if (name == "scale-out") inDomain = false;
    out.push_back({level, std::move(name), inDomain, switchInNetwork && inDomain});
    prod *= count;
    g /= count;
  };
  for (const Radix& r : radices) {
    if (g == 1) break;
    if (r.top) {
      push(g, r.name, false);
      break;
    }
    if (r.size == 1) continue;
    if (s % r.size == 0) {
      s /= r.size;
      continue;
    }
    if (r.size % s != 0) {
      push(g, "mixed", false);
      break;
    }
    uint64_t span = r.size / s;
    if (g <= span) {
      push(g, r.name, r.switchInNetwork);
      break;
    }
    if (g % span != 0) {
      push(g, "mixed", false);
      break;
    }
    push(span, r.name, r.switchInNetwork);
    s = 1;
  }
  if (g > 1) push(g, "mixed", false);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Algorithms

namespace {

struct Ctx {
  const Engine& e;
  CollectiveOp op;
  SubGroup active;
  bool concurrent;

  Expected<double> step(StepKind k, uint64_t param, const SubGroup& g, double bytes) const {
    return e.stepSeconds(k, param, g, active, concurrent, bytes);
  }
};

void addPhase(Plan& plan, std::string name, double timeS, uint64_t steps, double bytesPerRank) {
  plan.timeS += timeS;
  plan.phases.push_back({std::move(name), timeS, steps, roundBytes(bytesPerRank)});
}

void append(Plan& plan, const Plan& more) {
  plan.timeS += more.timeS;
  plan.phases.insert(plan.phases.end(), more.phases.begin(), more.phases.end());
}

std::string where(const SubGroup& g) {
  return fmt::format("{} ranks, stride {}", g.size, g.stride);
}

// The sub-groups a torus (every level of the group) or hierarchical (inside the scale-up
// domains, then across them) algorithm walks, innermost first.
Expected<std::vector<SubGroup>> levelParts(const Ctx& c, Algorithm a, const SubGroup& g) {
  std::vector<GroupLevel> levels = c.e.levels(g);
  std::vector<SubGroup> parts;
  if (a == Algorithm::kTorus) {
    for (const GroupLevel& l : levels) parts.push_back(l.sub);
  } else {
    uint64_t inner = 1;
    size_t k = 0;
    while (k < levels.size() && levels[k].inDomain) inner *= levels[k++].sub.size;
    if (inner < 2 || k == levels.size()) {
      return notApplicable(a, c.op, "the group needs several ranks in each of several domains");
    }
    parts = {SubGroup{inner, g.stride}, SubGroup{g.size / inner, g.stride * inner}};
  }
  if (parts.size() < 2) return notApplicable(a, c.op, "the group spans one level");
  return parts;
}

// Reduce-scatter (input n) or all-gather (output n): the same traffic, in opposite order.
enum class Half : uint8_t { kReduceScatter, kAllGather };
std::string_view halfName(Half h) {
  return h == Half::kReduceScatter ? "reduce-scatter" : "all-gather";
}

Expected<Plan> half(const Ctx& c, Half h, Algorithm a, const SubGroup& g, double n);

Expected<Plan> bestHalf(const Ctx& c, Half h, const SubGroup& g, double n, bool allowTorus) {
  Plan best;
  bool found = false;
  for (Algorithm a : {Algorithm::kRing, Algorithm::kBidirectionalRing, Algorithm::kTorus,
                      Algorithm::kHalvingDoubling, Algorithm::kDirect}) {
    if (a == Algorithm::kTorus && !allowTorus) continue;
    Expected<Plan> p = half(c, h, a, g, n);
    if (!p.hasValue()) {
      if (p.status().code() == ErrorCode::kUnsupported) continue;
      return p.status();
    }
    if (!found || p->timeS < best.timeS) {
      best = std::move(p.value());
      found = true;
    }
  }
  if (!found) return Status(ErrorCode::kInternal, "no algorithm for " + where(g), "collective");
  return best;
}

Expected<Plan> half(const Ctx& c, Half h, Algorithm a, const SubGroup& g, double n) {
  Plan plan;
  const uint64_t p = g.size;
  if (p <= 1) return plan;
  const double pd = double(p);
  const std::string hn(halfName(h));
  switch (a) {
    case Algorithm::kRing: {
      TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShift, 1, g, n / pd));
      addPhase(plan, fmt::format("{} (ring, {} steps, {})", hn, p - 1, where(g)), t * (p - 1),
               p - 1, n * (pd - 1) / pd);
      return plan;
    }
    case Algorithm::kBidirectionalRing: {
      if (p < 3) return notApplicable(a, c.op, "a group of 2 has one neighbour");
      TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShiftPair, 1, g, n / (2 * pd)));
      addPhase(plan, fmt::format("{} (bidirectional ring, {} steps, {})", hn, p - 1, where(g)),
               t * (p - 1), p - 1, n * (pd - 1) / pd);
      return plan;
    }
    case Algorithm::kHalvingDoubling: {
      if (!isPowerOfTwo(p)) {
        return notApplicable(a, c.op, fmt::format("the group has {} ranks, not a power of 2", p));
      }
      // Reduce-scatter: partner at distance 1, 2, 4, ... with n/2, n/4, ... (the largest pieces
      // travel between the nearest ranks); all-gather: the same steps reversed.
      double total = 0;
      uint64_t steps = 0;
      for (uint64_t d = 1; d < p; d <<= 1) {
        double bytes = n / double(2 * d);  // n / 2^(k+1) at distance d = 2^k
        TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kXor, d, g, bytes));
        total += t;
        ++steps;
      }
      addPhase(plan, fmt::format("{} (halving-doubling, {} steps, {})", hn, steps, where(g)), total,
               steps, n * (pd - 1) / pd);
      return plan;
    }
    case Algorithm::kDirect: {
      TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kAll, 0, g, n / pd));
      addPhase(plan, fmt::format("{} (direct, 1 step, {})", hn, where(g)), t, 1, n * (pd - 1) / pd);
      return plan;
    }
    case Algorithm::kTorus: {
      std::vector<GroupLevel> levels = c.e.levels(g);
      if (levels.size() < 2) {
        return notApplicable(a, c.op, "the group spans only one dimension of the fabric");
      }
      // Plain torus: level by level from the innermost, each a bidirectional ring (a plain
      // ring for 2), the data shrinking by each level's size (reduce-scatter; all-gather: the
      // reverse). Rotated: the levels use disjoint links (each torus dimension its own, the
      // chip its HBM, the scale-out its NICs) unless one is "mixed", so after a plain prefix of
      // `k` levels the data left is cut into R = L - k parts and part i visits the remaining
      // levels in the rotated order i, i+1, ...: every stage keeps all R levels' links busy and
      // lasts as long as its slowest part. Every prefix k is tried and the fastest kept (a slow
      // level such as a thin z ring is best left to the end; equal levels gain from rotation).
      bool disjoint = true;
      for (const GroupLevel& l : levels) disjoint = disjoint && l.name != "mixed";
      const size_t L = levels.size();
      auto build = [&](size_t k) -> Expected<Plan> {
        std::vector<Plan> stages;
        double bytes = n;
        for (size_t v = 0; v < k; ++v) {
          const GroupLevel& l = levels[v];
          Algorithm la = l.sub.size >= 3 ? Algorithm::kBidirectionalRing : Algorithm::kRing;
          TRNSIM_ASSIGN_OR_RETURN(Plan part, half(c, h, la, l.sub, bytes));
          for (PhaseCost& ph : part.phases) ph.name += " over " + l.name;
          stages.push_back(std::move(part));
          bytes /= double(l.sub.size);
        }
        const size_t R = L - k;
        for (size_t j = 0; j < R; ++j) {
          Plan stage;
          double slowest = 0, sent = 0;
          uint64_t steps = 0;
          std::string dims;
          for (size_t i = 0; i < R; ++i) {
            double b = bytes / double(R);
            for (size_t v = 0; v < j; ++v) b /= double(levels[k + (i + v) % R].sub.size);
            const GroupLevel& l = levels[k + (i + j) % R];
            Algorithm la = l.sub.size >= 3 ? Algorithm::kBidirectionalRing : Algorithm::kRing;
            TRNSIM_ASSIGN_OR_RETURN(Plan part, half(c, h, la, l.sub, b));
            if (part.timeS >= slowest) {
              slowest = part.timeS;
              steps = l.sub.size - 1;
            }
            sent += b * double(l.sub.size - 1) / double(l.sub.size);
            dims += (dims.empty() ? "" : "+") + l.name;
          }
          addPhase(stage,
                   fmt::format("{} stage {}/{} ({} at once, {})", hn, j + 1, R, dims, where(g)),
                   slowest, steps, sent);
          stages.push_back(std::move(stage));
        }
        if (h == Half::kAllGather) std::reverse(stages.begin(), stages.end());
        Plan out;
        for (const Plan& st : stages) append(out, st);
        return out;
      };
      TRNSIM_ASSIGN_OR_RETURN(plan, build(L));  // k = L: the plain torus
      for (size_t k = 0; disjoint && k + 2 <= L; ++k) {
        TRNSIM_ASSIGN_OR_RETURN(Plan r, build(k));
        if (r.timeS < plan.timeS) plan = std::move(r);
      }
      return plan;
    }
    case Algorithm::kHierarchical: {
      std::vector<GroupLevel> levels = c.e.levels(g);
      uint64_t inner = 1;
      size_t k = 0;
      while (k < levels.size() && levels[k].inDomain) inner *= levels[k++].sub.size;
      if (inner < 2 || k == levels.size()) {
        return notApplicable(a, c.op,
                             "the group needs several ranks in each scale-up domain and more "
                             "than one domain");
      }
      SubGroup in{inner, g.stride}, out{p / inner, g.stride * inner};
      TRNSIM_ASSIGN_OR_RETURN(Plan pin, bestHalf(c, h, in, n, true));
      TRNSIM_ASSIGN_OR_RETURN(Plan pout, bestHalf(c, h, out, n / double(inner), true));
      if (h == Half::kReduceScatter) {
        append(plan, pin);
        append(plan, pout);
      } else {
        append(plan, pout);
        append(plan, pin);
      }
      return plan;
    }
    case Algorithm::kInNetwork: {
      std::vector<GroupLevel> levels = c.e.levels(g);
      if (levels.size() != 1 || !levels[0].switchInNetwork) {
        return notApplicable(a, c.op,
                             "the group must lie on one switch dimension with "
                             "in_network_reduction");
      }
      // Reduce-scatter: each rank pushes its n bytes into the switch, which reduces; all-gather:
      // each pushes n/p, the switch multicasts n. Either way n per port at the port's rate,
      // shared by the ranks of one chip when the other groups run too.
      const arch::FabricDim* dim = nullptr;
      for (const arch::FabricDim& d : c.e.topology().dims()) {
        if (d.name == levels[0].name) dim = &d;
      }
      double k = c.concurrent ? double(c.e.topology().ranksPerChip()) : 1.0;
      double t = dim->hopLatencyNs * 1e-9 + n * k / (dim->linkGbps * 1e9);
      addPhase(plan, fmt::format("{} (in-network, {})", hn, where(g)), t, 1,
               h == Half::kReduceScatter ? n : n / pd);
      return plan;
    }
    case Algorithm::kAuto:
      break;
  }
  return Status(ErrorCode::kInternal, "half: unexpected algorithm", "collective");
}

Expected<Plan> allReduce(const Ctx& c, Algorithm a, const SubGroup& g, double n) {
  const uint64_t p = g.size;
  Plan plan;
  if (p <= 1) return plan;
  if (a == Algorithm::kInNetwork) {
    std::vector<GroupLevel> levels = c.e.levels(g);
    if (levels.size() != 1 || !levels[0].switchInNetwork) {
      return notApplicable(a, c.op,
                           "the group must lie on one switch dimension with in_network_reduction");
    }
    // NVLS-style: each rank reads the switch-reduced 1/p of the vector and multicasts it back,
    // so a port carries n (1 + 1/p) each way: t = 2 hops + n (p + 1) / (p B).
    const arch::FabricDim* dim = nullptr;
    for (const arch::FabricDim& d : c.e.topology().dims()) {
      if (d.name == levels[0].name) dim = &d;
    }
    double k = c.concurrent ? double(c.e.topology().ranksPerChip()) : 1.0;
    double pd = double(p);
    double t = 2 * dim->hopLatencyNs * 1e-9 + n * (pd + 1) / pd * k / (dim->linkGbps * 1e9);
    addPhase(plan, fmt::format("all-reduce (in-network, {})", where(g)), t, 2, n * (pd + 1) / pd);
    return plan;
  }
  if (a == Algorithm::kHierarchical) {
    std::vector<GroupLevel> levels = c.e.levels(g);
    uint64_t inner = 1;
    size_t k = 0;
    while (k < levels.size() && levels[k].inDomain) inner *= levels[k++].sub.size;
    if (inner < 2 || k == levels.size()) {
      return notApplicable(a, c.op,
                           "the group needs several ranks in each scale-up domain and more than "
                           "one domain");
    }
    SubGroup in{inner, g.stride}, out{p / inner, g.stride * inner};
    TRNSIM_ASSIGN_OR_RETURN(Plan rs, bestHalf(c, Half::kReduceScatter, in, n, true));
    Plan mid;
    bool found = false;
    for (Algorithm oa : {Algorithm::kRing, Algorithm::kBidirectionalRing, Algorithm::kTorus,
                         Algorithm::kHalvingDoubling, Algorithm::kDirect}) {
      Expected<Plan> m = allReduce(c, oa, out, n / double(inner));
      if (!m.hasValue()) {
        if (m.status().code() == ErrorCode::kUnsupported) continue;
        return m.status();
      }
      if (!found || m->timeS < mid.timeS) {
        mid = std::move(m.value());
        found = true;
      }
    }
    TRNSIM_ASSIGN_OR_RETURN(Plan ag, bestHalf(c, Half::kAllGather, in, n, true));
    append(plan, rs);
    append(plan, mid);
    append(plan, ag);
    return plan;
  }
  TRNSIM_ASSIGN_OR_RETURN(Plan rs, half(c, Half::kReduceScatter, a, g, n));
  TRNSIM_ASSIGN_OR_RETURN(Plan ag, half(c, Half::kAllGather, a, g, n));
  append(plan, rs);
  append(plan, ag);
  return plan;
}

Expected<Plan> allToAll(const Ctx& c, Algorithm a, const SubGroup& g, double n) {
  const uint64_t p = g.size;
  Plan plan;
  if (p <= 1) return plan;
  const double pd = double(p);
  switch (a) {
    case Algorithm::kDirect: {
      TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kAll, 0, g, n / pd));
      addPhase(plan, fmt::format("all-to-all (direct, 1 step, {})", where(g)), t, 1,
               n * (pd - 1) / pd);
      return plan;
    }
    case Algorithm::kRing: {
      // Pairwise exchange: in step k every rank sends its piece for rank i + k.
      if (p > 256) return notApplicable(a, c.op, "pairwise exchange is timed up to 256 ranks");
      double total = 0;
      for (uint64_t k = 1; k < p; ++k) {
        TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShift, k, g, n / pd));
        total += t;
      }
      addPhase(plan, fmt::format("all-to-all (pairwise ring, {} steps, {})", p - 1, where(g)),
               total, p - 1, n * (pd - 1) / pd);
      return plan;
    }
    case Algorithm::kTorus:
    case Algorithm::kHierarchical: {
      // Dimension by dimension: along each level every rank sends n / size to each peer of the
      // level (the whole buffer moves once per level).
      TRNSIM_ASSIGN_OR_RETURN(std::vector<SubGroup> parts, levelParts(c, a, g));
      for (const SubGroup& s : parts) {
        double sd = double(s.size);
        TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kAll, 0, s, n / sd));
        addPhase(plan, fmt::format("all-to-all ({}, {})", algorithmName(a), where(s)), t, 1,
                 n * (sd - 1) / sd);
      }
      return plan;
    }
    default:
      return notApplicable(a, c.op,
                           "all_to_all uses direct, ring (pairwise), torus or hierarchical");
  }
}

Expected<Plan> broadcast(const Ctx& c, Algorithm a, const SubGroup& g, double n) {
  const uint64_t p = g.size;
  Plan plan;
  if (p <= 1) return plan;
  auto pipelinedChain = [&](const SubGroup& s, Plan& out) -> Status {
    // A chain from the root cut into m chunks: (p - 2 + m) steps of n / m; m chosen best.
    double best = std::numeric_limits<double>::infinity();
    uint64_t bestM = 1;
    for (uint64_t m = 1; m <= (uint64_t(1) << 20); m <<= 1) {
      if (m > 1 && n / double(m) < 64) break;
      TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShift, 1, s, n / double(m)));
      double total = t * double(s.size - 2 + m);
      if (total < best) {
        best = total;
        bestM = m;
      }
    }
    addPhase(out,
             fmt::format("broadcast (pipelined chain, {} chunks, {} steps, {})", bestM,
                         s.size - 2 + bestM, where(s)),
             best, s.size - 2 + bestM, n);
    return Status::ok();
  };
  switch (a) {
    case Algorithm::kRing:
      TRNSIM_RETURN_IF_ERROR(pipelinedChain(g, plan));
      return plan;
    case Algorithm::kDirect: {
      TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kFromRoot, 0, g, n));
      addPhase(plan, fmt::format("broadcast (direct from the root, {})", where(g)), t, 1, n);
      return plan;
    }
    case Algorithm::kHalvingDoubling: {
      // Binomial tree: ceil(log2 p) rounds, the full buffer each round.
      double total = 0;
      uint64_t steps = ceilLog2(p);
      for (uint64_t k = 0; k < steps; ++k) {
        TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kXor, uint64_t(1) << k, g, n));
        total += t;
      }
      addPhase(plan, fmt::format("broadcast (binomial tree, {} steps, {})", steps, where(g)), total,
               steps, n);
      // Large buffers (p a power of 2): scatter by recursive halving, then all-gather by
      // recursive doubling (van de Geijn): 2 log2 p alpha + 2 (p-1)/p n beta. The scatter is
      // timed as a halving reduce-scatter (every rank sends in every round: an upper bound).
      if (isPowerOfTwo(p)) {
        TRNSIM_ASSIGN_OR_RETURN(Plan sag, allReduce(c, Algorithm::kHalvingDoubling, g, n));
        if (sag.timeS < plan.timeS) {
          sag.phases[0].name = fmt::format("broadcast scatter (recursive halving, {})", where(g));
          sag.phases[1].name =
              fmt::format("broadcast all-gather (recursive doubling, {})", where(g));
          return sag;
        }
      }
      return plan;
    }
    case Algorithm::kTorus:
    case Algorithm::kHierarchical: {
      TRNSIM_ASSIGN_OR_RETURN(std::vector<SubGroup> parts, levelParts(c, a, g));
      // Outermost level first: the root's data reaches every domain, then spreads inside.
      std::reverse(parts.begin(), parts.end());
      for (const SubGroup& s : parts) TRNSIM_RETURN_IF_ERROR(pipelinedChain(s, plan));
      return plan;
    }
    default:
      return notApplicable(a, c.op,
                           "broadcast uses ring (pipelined chain), direct, "
                           "halving_doubling (binomial tree), torus or hierarchical");
  }
}

}  // namespace

std::vector<Algorithm> candidateAlgorithms(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduce:
      return {Algorithm::kRing,     Algorithm::kBidirectionalRing,
              Algorithm::kTorus,    Algorithm::kHalvingDoubling,
              Algorithm::kDirect,   Algorithm::kHierarchical,
              Algorithm::kInNetwork};
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllGather:
      return {Algorithm::kRing,     Algorithm::kBidirectionalRing,
              Algorithm::kTorus,    Algorithm::kHalvingDoubling,
              Algorithm::kDirect,   Algorithm::kHierarchical,
              Algorithm::kInNetwork};
    case CollectiveOp::kAllToAll:
      return {Algorithm::kDirect, Algorithm::kRing, Algorithm::kTorus, Algorithm::kHierarchical};
    case CollectiveOp::kBroadcast:
      return {Algorithm::kRing, Algorithm::kDirect, Algorithm::kHalvingDoubling, Algorithm::kTorus,
              Algorithm::kHierarchical};
    case CollectiveOp::kSendRecv:
    case CollectiveOp::kPermute:
    case CollectiveOp::kBarrier:
      return {Algorithm::kDirect};
  }
  return {};
}

Expected<Plan> planCollective(const Engine& engine, CollectiveOp op, Algorithm algorithm,
                              const SubGroup& group, const SubGroup& active, bool concurrent,
                              double bytes) {
  Ctx c{engine, op, active, concurrent};
  const uint64_t p = group.size;
  const double pd = double(p);
  switch (op) {
    case CollectiveOp::kAllReduce:
      return allReduce(c, algorithm, group, bytes);
    case CollectiveOp::kReduceScatter:
      return half(c, Half::kReduceScatter, algorithm, group, bytes);
    case CollectiveOp::kAllGather:
      return half(c, Half::kAllGather, algorithm, group, bytes);
    case CollectiveOp::kAllToAll:
      return allToAll(c, algorithm, group, bytes);
    case CollectiveOp::kBroadcast:
      return broadcast(c, algorithm, group, bytes);
    case CollectiveOp::kSendRecv:
    case CollectiveOp::kPermute:
    case CollectiveOp::kBarrier: {
      if (algorithm != Algorithm::kDirect) {
        return notApplicable(algorithm, op, "it has one algorithm, 'direct'");
      }
      Plan plan;
      if (p <= 1) return plan;
      if (op == CollectiveOp::kSendRecv) {
        TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShift, 1, group, bytes));
        addPhase(plan, fmt::format("send/recv to the next rank ({})", where(group)), t, 1, bytes);
      } else if (op == CollectiveOp::kPermute) {
        TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShift, p / 2, group, bytes));
        addPhase(plan, fmt::format("permute to the rank {} places on ({})", p / 2, where(group)), t,
                 1, bytes);
      } else {
        // Dissemination barrier: ceil(log2 p) rounds of empty messages to rank i + 2^k.
        double total = 0;
        uint64_t steps = ceilLog2(p);
        for (uint64_t k = 0; k < steps; ++k) {
          TRNSIM_ASSIGN_OR_RETURN(double t, c.step(StepKind::kShift, uint64_t(1) << k, group, 0));
          total += t;
        }
        addPhase(plan, fmt::format("barrier (dissemination, {} rounds, {})", steps, where(group)),
                 total, steps, 0);
      }
      (void)pd;
      return plan;
    }
  }
  return Status(ErrorCode::kInternal, "planCollective: unexpected op", "collective");
}

}  // namespace trnsim::fabric::detail
