// Matching (fabric::Cluster, cluster_internal.h): which collectives can run now. Every process
// decides the same from the same rank states.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>
#include <optional>

#include "trnsim/fabric/cluster_internal.h"

namespace trnsim::fabric {

using detail::operandBytes;
using detail::operandDType;
using detail::operandElements;
using detail::RankInfo;
using detail::RankState;
using isa::Opcode;
using isa::Program;

namespace detail {

std::string rankListString(const std::vector<uint32_t>& l) {
  return fmt::format("[{}]", fmt::join(l, ", "));
}

std::string groupString(const isa::ReplicaGroup& g) {
  if (g.allRanks()) return "all ranks";
  std::string s = "[";
  for (size_t i = 0; i < g.lists.size(); ++i) s += (i ? ", " : "") + rankListString(g.lists[i]);
  return s + "]";
}

}  // namespace detail

namespace {

using detail::groupString;
using detail::rankListString;

/// The rank-list of `rank` in replica group `g` (every rank when it has no lists).
std::optional<std::vector<uint32_t>> listOf(const isa::ReplicaGroup& g, uint32_t rank,
                                            uint32_t size) {
  if (g.allRanks()) {
    std::vector<uint32_t> all(size);
    std::iota(all.begin(), all.end(), 0u);
    return all;
  }
  for (const auto& l : g.lists)
    if (std::find(l.begin(), l.end(), rank) != l.end()) return l;
  return std::nullopt;
}

std::string waitDescription(const Program& p, const RankInfo& r, uint32_t rank) {
  if (r.state == RankState::kDone) return fmt::format("rank {} has finished its program", rank);
  const isa::Instruction& in = p.instructions[r.pc];
  std::string what = p.instructionContext(r.pc);
  if (in.opcode == Opcode::kSendRecv)
    return fmt::format("rank {} waits at {} (send to {}, receive from {})", rank, what, in.iarg[0],
                       in.iarg[1]);
  const int64_t g = in.iarg[0];
  std::string group = g >= 0 && uint64_t(g) < p.replicaGroups.size()
                          ? groupString(p.replicaGroups[size_t(g)])
                          : fmt::format("replica group {}", g);
  return fmt::format("rank {} waits at {} on {}", rank, what, group);
}

}  // namespace

Expected<std::vector<Cluster::Impl::Firing>> Cluster::Impl::findFirings(
    const std::vector<RankInfo>& ranks) const {
  std::vector<Firing> firings;
  std::vector<uint8_t> taken(size, 0);
  for (uint32_t r = 0; r < size; ++r) {
    const RankInfo& ri = ranks[r];
    if (ri.state != RankState::kWaiting || taken[r]) continue;
    const Program& p = *programs[r];
    const isa::Instruction& in = p.instructions[ri.pc];
    const std::string where = fmt::format("rank {} {}", r, p.instructionContext(ri.pc));
    if (in.opcode == Opcode::kSendRecv) continue;  // below
    const int64_t g = in.iarg[0];
    const isa::ReplicaGroup& rg = p.replicaGroups[size_t(g)];
    for (const auto& l : rg.lists)
      for (uint32_t m : l)
        if (m >= size)
          return Status(ErrorCode::kInvalidArgument,
                        fmt::format("replica group {} names rank {}, but the cluster has {} "
                                    "ranks (0-{})",
                                    g, m, size, size - 1),
                        where);
    Firing f;
    f.op = in.opcode;
    if (in.opcode == Opcode::kCollectivePermute) {
      f.members.resize(size);
      std::iota(f.members.begin(), f.members.end(), 0u);
      for (const auto& pr : rg.lists) f.pairs.emplace_back(pr[0], pr[1]);
    } else {
      auto l = listOf(rg, r, size);
      if (!l)
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("rank {} is not in replica group {} ({}): every rank that "
                                  "calls {} must be in one of its rank-lists",
                                  r, g, groupString(rg), opcodeName(in.opcode)),
                      where);
      f.members = std::move(*l);
      f.listsInGroup = std::max<size_t>(rg.lists.size(), 1);
    }
    bool complete = true;
    for (uint32_t m : f.members) {
      const RankInfo& mi = ranks[m];
      if (mi.state != RankState::kWaiting || taken[m]) {
        complete = false;
        break;
      }
      const Program& pm = *programs[m];
      const isa::Instruction& im2 = pm.instructions[mi.pc];
      if (im2.opcode != in.opcode || im2.iarg[0] < 0 ||
          uint64_t(im2.iarg[0]) >= pm.replicaGroups.size() ||
          pm.replicaGroups[size_t(im2.iarg[0])] != rg) {
        complete = false;
        break;
      }
    }
    if (!complete) continue;
    TRNSIM_RETURN_IF_ERROR(checkFiring(f, ranks));
    for (uint32_t m : f.members) taken[m] = 1;
    firings.push_back(std::move(f));
  }
  // sendrecv: the largest set of waiting ranks whose peers wait for them, pairwise.
  {
    std::vector<uint8_t> cand(size, 0);
    for (uint32_t r = 0; r < size; ++r) {
      const RankInfo& ri = ranks[r];
      if (ri.state != RankState::kWaiting || taken[r]) continue;
      const isa::Instruction& in = programs[r]->instructions[ri.pc];
      if (in.opcode != Opcode::kSendRecv) continue;
      if (in.iarg[0] >= int64_t(size) || in.iarg[1] >= int64_t(size))
        return Status(ErrorCode::kInvalidArgument,
                      fmt::format("sendrecv names rank {}, but the cluster has {} ranks (0-{})",
                                  std::max(in.iarg[0], in.iarg[1]), size, size - 1),
                      fmt::format("rank {} {}", r, programs[r]->instructionContext(ri.pc)));
      cand[r] = 1;
    }
    auto peers = [&](uint32_t r) {
      const isa::Instruction& in = programs[r]->instructions[ranks[r].pc];
      return std::make_pair(uint32_t(in.iarg[0]), uint32_t(in.iarg[1]));
    };
    for (bool changed = true; changed;) {
      changed = false;
      for (uint32_t r = 0; r < size; ++r) {
        if (!cand[r]) continue;
        auto [to, from] = peers(r);
        bool ok = cand[to] && peers(to).second == r && cand[from] && peers(from).first == r;
        if (!ok) {
          cand[r] = 0;
          changed = true;
        }
      }
    }
    // Components (joined by send edges), each one collective.
    std::vector<uint8_t> seen(size, 0);
    for (uint32_t r = 0; r < size; ++r) {
      if (!cand[r] || seen[r]) continue;
      Firing f;
      f.op = Opcode::kSendRecv;
      for (uint32_t cur = r; !seen[cur]; cur = peers(cur).first) {
        seen[cur] = 1;
        f.members.push_back(cur);
      }
      std::sort(f.members.begin(), f.members.end());
      for (uint32_t m : f.members) {
        const uint32_t from = peers(m).second;
        const Program& pm = *programs[m];
        const Program& pf = *programs[from];
        if (operandBytes(pm, ranks[m].pc, 0) != operandBytes(pf, ranks[from].pc, 1) ||
            operandDType(pm, ranks[m].pc, 0) != operandDType(pf, ranks[from].pc, 1))
          return Status(
              ErrorCode::kInvalidArgument,
              fmt::format("rank {} receives {} bytes of {} from rank {}, which sends "
                          "{} bytes of {}: sendrecv peers move equal tensors",
                          m, operandBytes(pm, ranks[m].pc, 0),
                          numerics::dtypeName(operandDType(pm, ranks[m].pc, 0)), from,
                          operandBytes(pf, ranks[from].pc, 1),
                          numerics::dtypeName(operandDType(pf, ranks[from].pc, 1))),
              fmt::format("rank {} {} / rank {} {}", m, pm.instructionContext(ranks[m].pc), from,
                          pf.instructionContext(ranks[from].pc)));
        taken[m] = 1;
      }
      firings.push_back(std::move(f));
    }
  }
  if (firings.empty()) {
    std::string lines;
    int shown = 0;
    for (uint32_t r = 0; r < size && shown < 16; ++r, ++shown)
      lines += "\n  " + waitDescription(*programs[r], ranks[r], r);
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("deadlock: no collective can complete (ranks call different "
                              "collectives, or a rank-list member never arrives):{}",
                              lines));
  }

  return firings;
}

Status Cluster::Impl::checkFiring(const Firing& f, const std::vector<RankInfo>& ranks) const {
  // Every member runs the same kind of collective on the same sizes and dtypes.
  const uint32_t r0 = f.members[0];
  const Program& p0 = *programs[r0];
  const size_t i0 = ranks[r0].pc;
  const isa::Instruction& in0 = p0.instructions[i0];
  for (uint32_t r : f.members) {
    const Program& p = *programs[r];
    const size_t i = ranks[r].pc;
    const isa::Instruction& in = p.instructions[i];
    auto mismatch = [&](const std::string& what) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("ranks {} and {} disagree on {} {}: {}; every member of a "
                                "rank-list must make the same call",
                                r0, r, opcodeName(in.opcode), rankListString(f.members), what),
                    fmt::format("rank {} {} / rank {} {}", r0, p0.instructionContext(i0), r,
                                p.instructionContext(i)));
    };
    if (f.op == Opcode::kSendRecv) continue;  // checked pairwise by the caller
    if (in.reduceOp != in0.reduceOp)
      return mismatch(fmt::format("reduce_op {} vs {}", isa::aluOpName(in0.reduceOp),
                                  isa::aluOpName(in.reduceOp)));
    if (f.op == Opcode::kCoreBarrier) continue;
    for (uint8_t slot = 0; slot < 2; ++slot) {
      if (operandDType(p, i, slot) != operandDType(p0, i0, slot) ||
          operandElements(p, i, slot) != operandElements(p0, i0, slot))
        return mismatch(fmt::format(
            "{} is {} x {} vs {} x {}", slot == 0 ? "dst" : "src", operandElements(p0, i0, slot),
            numerics::dtypeName(operandDType(p0, i0, slot)), operandElements(p, i, slot),
            numerics::dtypeName(operandDType(p, i, slot))));
    }
  }
  if (f.op == Opcode::kSendRecv || f.op == Opcode::kCoreBarrier ||
      f.op == Opcode::kCollectivePermute)
    return {};
  const int64_t n = int64_t(f.members.size());
  const int64_t nd = operandElements(p0, i0, 0), ns = operandElements(p0, i0, 1);
  bool ok = true;
  std::string need;
  switch (f.op) {
    case Opcode::kAllGather:
      ok = nd == n * ns;
      need = fmt::format("dst of {} x src ({}) elements", n, n * ns);
      break;
    case Opcode::kReduceScatter:
      ok = ns == n * nd;
      need = fmt::format("src of {} x dst ({}) elements", n, n * nd);
      break;
    case Opcode::kAllToAll:
      ok = ns % n == 0;
      need = fmt::format("a multiple of {} elements", n);
      break;
    default:
      break;
  }
  if (!ok)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} on the {} ranks {} needs {}; dst has {}, src {}",
                              opcodeName(f.op), n, rankListString(f.members), need, nd, ns),
                  fmt::format("rank {} {}", r0, p0.instructionContext(i0)));
  return {};
}

}  // namespace trnsim::fabric
