// Names, nccl-tests bus bandwidth factors, and CollectiveModel: validation of a request and
// auto selection over the algorithms of algorithms.cpp.

#include "trnsim/fabric/collective.h"

#include <fmt/core.h>

#include <array>
#include <cmath>

#include "trnsim/fabric/algorithms.h"
#include "trnsim/fabric/topology.h"

namespace trnsim::fabric {

namespace {

constexpr std::array<std::pair<CollectiveOp, std::string_view>, 8> kOps{{
    {CollectiveOp::kAllReduce, "all_reduce"},
    {CollectiveOp::kReduceScatter, "reduce_scatter"},
    {CollectiveOp::kAllGather, "all_gather"},
    {CollectiveOp::kAllToAll, "all_to_all"},
    {CollectiveOp::kBroadcast, "broadcast"},
    {CollectiveOp::kSendRecv, "send_recv"},
    {CollectiveOp::kPermute, "permute"},
    {CollectiveOp::kBarrier, "barrier"},
}};

constexpr std::array<std::pair<Algorithm, std::string_view>, 8> kAlgorithms{{
    {Algorithm::kAuto, "auto"},
    {Algorithm::kRing, "ring"},
    {Algorithm::kBidirectionalRing, "bidirectional_ring"},
    {Algorithm::kTorus, "torus"},
    {Algorithm::kHalvingDoubling, "halving_doubling"},
    {Algorithm::kDirect, "direct"},
    {Algorithm::kHierarchical, "hierarchical"},
    {Algorithm::kInNetwork, "in_network"},
}};

template <typename Table>
std::string allNames(const Table& table) {
  std::string s;
  for (const auto& [value, name] : table) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

}  // namespace

std::string_view opName(CollectiveOp op) {
  for (const auto& [value, name] : kOps) {
    if (value == op) return name;
  }
  return "?";
}

Expected<CollectiveOp> parseOp(std::string_view name) {
  for (const auto& [value, n] : kOps) {
    if (n == name) return value;
  }
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("unknown collective '{}'; expected one of {}", name, allNames(kOps)),
                "op");
}

std::string_view algorithmName(Algorithm a) {
  for (const auto& [value, name] : kAlgorithms) {
    if (value == a) return name;
  }
  return "?";
}

Expected<Algorithm> parseAlgorithm(std::string_view name) {
  for (const auto& [value, n] : kAlgorithms) {
    if (n == name) return value;
  }
  return Status(
      ErrorCode::kInvalidArgument,
      fmt::format("unknown algorithm '{}'; expected one of {}", name, allNames(kAlgorithms)),
      "algorithm");
}

double busBandwidthFactor(CollectiveOp op, uint64_t n) {
  if (n == 0) return 0;
  double nd = double(n);
  switch (op) {
    case CollectiveOp::kAllReduce:
      return 2 * (nd - 1) / nd;
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllGather:
    case CollectiveOp::kAllToAll:
      return (nd - 1) / nd;
    case CollectiveOp::kBroadcast:
    case CollectiveOp::kSendRecv:
    case CollectiveOp::kPermute:
      return 1;
    case CollectiveOp::kBarrier:
      return 0;
  }
  return 0;
}

struct CollectiveModel::Impl {
  arch::SystemConfig system;
  Topology topology;
  std::unique_ptr<NetworkBackend> backend;
  std::unique_ptr<detail::Engine> engine;
};

CollectiveModel::CollectiveModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CollectiveModel::~CollectiveModel() = default;
CollectiveModel::CollectiveModel(CollectiveModel&&) noexcept = default;
CollectiveModel& CollectiveModel::operator=(CollectiveModel&&) noexcept = default;

Expected<CollectiveModel> CollectiveModel::create(const arch::SystemConfig& system, uint64_t chips,
                                                  std::unique_ptr<NetworkBackend> backend) {
  TRNSIM_ASSIGN_OR_RETURN(Topology topo, Topology::create(system, chips));
  auto impl = std::unique_ptr<Impl>(new Impl{
      system, std::move(topo), backend ? std::move(backend) : makeAnalyticalBackend(), nullptr});
  impl->engine = std::make_unique<detail::Engine>(impl->topology, *impl->backend);
  return CollectiveModel(std::move(impl));
}

const arch::SystemConfig& CollectiveModel::system() const { return impl_->system; }
uint64_t CollectiveModel::chips() const { return impl_->topology.chips(); }
uint64_t CollectiveModel::ranks() const { return impl_->topology.ranks(); }
const Topology& CollectiveModel::topology() const { return impl_->topology; }

Expected<CollectiveCost> CollectiveModel::estimate(const CollectiveRequest& request) const {
  const uint64_t ranks = impl_->topology.ranks();
  const GroupSpec& gs = request.group;
  const std::string where = "collective group";
  uint64_t size = gs.size == 0 ? ranks : gs.size;
  if (gs.stride == 0) {
    return Status(ErrorCode::kInvalidArgument, "group stride must be at least 1", where);
  }
  if (size > ranks || (size - 1) * gs.stride >= ranks) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("a group of {} ranks with stride {} does not fit in the {} ranks "
                              "of {} chips x {} ranks per chip",
                              size, gs.stride, ranks, impl_->topology.chips(),
                              impl_->topology.ranksPerChip()),
                  where);
  }
  if (gs.concurrentGroups && ranks % (size * gs.stride) != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("groups of {} ranks with stride {} span {} ranks, which does not "
                              "divide the {} ranks of the system; choose a size and stride whose "
                              "product divides {}",
                              size, gs.stride, size * gs.stride, ranks, ranks),
                  where);
  }
  if (!(request.skew >= 1.0) || !std::isfinite(request.skew)) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("skew must be a finite number >= 1 (busiest rank / mean), got {}",
                              request.skew),
                  "collective skew");
  }
  if (request.skew != 1.0 && request.op != CollectiveOp::kAllToAll) {
    return Status(ErrorCode::kInvalidArgument, "skew applies only to all_to_all",
                  "collective skew");
  }

  CollectiveCost cost;
  cost.ranks = size;
  detail::SubGroup group{size, gs.stride};
  // The group that runs alone when groups are not concurrent: group 0 (the first rank's).
  detail::SubGroup active{size, gs.stride};
  double bytes = double(request.bytes) * request.skew;

  std::vector<Algorithm> candidates = detail::candidateAlgorithms(request.op);
  if (request.algorithm != Algorithm::kAuto) {
    bool known = false;
    for (Algorithm a : candidates) known |= a == request.algorithm;
    if (!known) {
      std::string names;
      for (Algorithm a : candidates)
        names += (names.empty() ? "" : ", ") + std::string(algorithmName(a));
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("{} has no algorithm '{}'; use auto or one of {}",
                                opName(request.op), algorithmName(request.algorithm), names),
                    "collective algorithm");
    }
    candidates = {request.algorithm};
  }

  // Nothing to move: a defined result of zero time (as nccl returns at once), except a barrier,
  // which synchronizes whatever its size.
  const bool empty = size <= 1 || (request.bytes == 0 && request.op != CollectiveOp::kBarrier);
  bool found = false;
  detail::Plan best;
  Status firstError;
  for (Algorithm a : candidates) {
    if (empty) {
      best = {};
      cost.algorithm = a;
      found = true;
      break;
    }
    Expected<detail::Plan> plan = detail::planCollective(*impl_->engine, request.op, a, group,
                                                         active, gs.concurrentGroups, bytes);
    if (!plan.hasValue()) {
      if (request.algorithm != Algorithm::kAuto ||
          plan.status().code() != ErrorCode::kUnsupported) {
        return plan.status();
      }
      if (firstError.isOk()) firstError = plan.status();
      continue;
    }
    if (request.algorithm == Algorithm::kAuto) cost.candidates.emplace_back(a, plan->timeS);
    if (!found || plan->timeS < best.timeS) {
      best = std::move(plan.value());
      cost.algorithm = a;
      found = true;
    }
  }
  if (!found) return firstError;
  cost.timeS = best.timeS;
  cost.phases = std::move(best.phases);
  if (cost.timeS > 0 && request.bytes > 0) {
    cost.algbwGbps = double(request.bytes) / cost.timeS / 1e9;
    cost.busbwGbps = cost.algbwGbps * busBandwidthFactor(request.op, size);
  }
  return cost;
}

}  // namespace trnsim::fabric
