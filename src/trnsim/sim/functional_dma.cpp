// The DMA queues: dma_copy (casting with round-to-nearest-even, and indirect row gathers and
// scatters), and the collectives a lone chip runs as a world of one rank.

#include <string>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim::detail {

Status Exec::dmaCopy() {
  if (in_.has(isa::kFlagIndirectSrc) || in_.has(isa::kFlagIndirectDst)) return dmaIndirect();
  const View& dst = operand(0);
  const View& src = operand(1);
  if (dst.numElements() != src.numElements())
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("dma_copy moves {} elements of {} into {} elements of {}",
                             src.numElements(), describe(src), dst.numElements(), describe(dst)));
  return copyElements(dst, src, dst.dtype == src.dtype, /*forceRne=*/true);
}

namespace {

/// The single row `row` of `v` as a view of its own.
View rowOf(const View& v, int64_t row) {
  View r = v;
  r.base = v.base + row * v.rowStride;
  r.P = 1;
  r.row0 = v.row0 + (v.onChip ? row : 0);
  return r;
}

}  // namespace

Status Exec::dmaIndirect() {
  TRNSIM_RETURN_IF_ERROR(require(2));
  const View& dst = operand(0);
  const View& src = operand(1);
  const View& index = operand(2);
  const bool gather = in_.has(isa::kFlagIndirectSrc);
  if (gather && in_.has(isa::kFlagIndirectDst))
    return error(ErrorCode::kInvalidArgument, "dma_copy cannot be indirect on both src and dst");
  if (dst.F != src.F)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("indirect dma_copy needs rows of equal size: {} has {}, {} has {}",
                             describe(src), src.F, describe(dst), dst.F));
  const uint32_t rows = gather ? dst.P : src.P;
  const uint32_t bound = gather ? src.P : dst.P;
  if (int64_t(index.P) * index.F < rows || index.P < rows)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} has {} rows; the copy needs one index per row ({})",
                             describe(index), index.P, rows));
  std::vector<int64_t> idx;
  TRNSIM_RETURN_IF_ERROR(readInts(index, idx, false));
  for (uint32_t r = 0; r < rows; ++r) {
    const int64_t i = idx[size_t(int64_t(r) * index.F)];
    if (i < 0 || i >= int64_t(bound)) {
      if (in_.has(isa::kFlagOobSkip)) continue;
      return error(ErrorCode::kOutOfBounds,
                   fmt::format("index {} (row {} of {}) is outside the {} rows of {}", i, r,
                               describe(index), bound, describe(gather ? src : dst)));
    }
    const View s = rowOf(src, gather ? i : r);
    const View d = rowOf(dst, gather ? r : i);
    TRNSIM_RETURN_IF_ERROR(copyElements(d, s, d.dtype == s.dtype, /*forceRne=*/true));
  }
  return {};
}

// A chip run alone (sim::Chip, no fabric::Cluster) is a world of one rank, rank 0: every
// collective whose rank-list is {0} copies src to dst; anything naming another rank needs
// a cluster.
Status Exec::collectiveAlone() {
  const Opcode op = in_.opcode;
  auto needsCluster = [&](const std::string& why) {
    return error(ErrorCode::kUnsupported,
                 fmt::format("{}: a lone chip is a world of one rank (rank 0); run the program on "
                             "a fabric::Cluster (trnsim cluster run --chips N)",
                             why));
  };
  bool copy = true;
  if (op == Opcode::kSendRecv) {
    if (in_.iarg[0] != 0 || in_.iarg[1] != 0)
      return needsCluster(
          fmt::format("sendrecv to rank {} from rank {}", in_.iarg[0], in_.iarg[1]));
  } else {
    const int64_t g = in_.iarg[0];
    if (g < 0 || uint64_t(g) >= prog_.replicaGroups.size())
      return error(ErrorCode::kInvalidArgument,
                   fmt::format("replica group {} is not in the program's table", g));
    const isa::ReplicaGroup& rg = prog_.replicaGroups[size_t(g)];
    if (op == Opcode::kCollectivePermute) {
      copy = false;
      for (const auto& pair : rg.lists) {
        if (pair.size() != 2 || pair[0] != 0 || pair[1] != 0)
          return needsCluster(fmt::format("collective_permute pair {} -> {}",
                                          pair.empty() ? 0u : pair[0],
                                          pair.size() < 2 ? 0u : pair[1]));
        copy = true;
      }
    } else if (!rg.allRanks()) {
      bool alone = false;
      for (const auto& list : rg.lists) {
        if (list.size() == 1 && list[0] == 0)
          alone = true;
        else if (list.size() != 1 || list[0] != 0)
          return needsCluster(
              fmt::format("replica group {} has rank-list [{}]", g, fmt::join(list, ", ")));
      }
      if (!alone) return needsCluster(fmt::format("rank 0 is not in replica group {}", g));
    }
  }
  if (op == Opcode::kCoreBarrier || !copy) return {};
  std::vector<std::byte> data;
  TRNSIM_RETURN_IF_ERROR(readOperandBytes(1, data));
  return writeOperandBytes(0, data);
}

}  // namespace trnsim::sim::detail
