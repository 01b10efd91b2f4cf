// InstructionChecker, part 2: the rules of each opcode family: matmul, transpose, DMA, the
// shape rules of the compute opcodes (checkShapes) and the collectives.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "trnsim/isa/names.h"
#include "trnsim/isa/operand_layout.h"
#include "trnsim/isa/verify_checker.h"

namespace trnsim::isa::detail {

void InstructionChecker::checkMatmul() {
  const ApFacts* dst = facts(0);
  const ApFacts* st = facts(1);
  const ApFacts* mv = facts(2);
  bool doubleRow = inst_.has(kFlagDoubleRow);
  samePartitions(2, 1);
  if (st == nullptr || mv == nullptr) return;
  const AccessPattern& stAp = *inst_.operand(1);
  const AccessPattern& mvAp = *inst_.operand(2);
  int64_t m = st->freeSize;
  int64_t n = mv->freeSize;
  if (doubleRow) {
    if (chip_.pe.fp8Speedup <= 1) {
      fail(ErrorCode::kVerify,
           fmt::format("flag double_row needs a Tensor Engine with an fp8 speed-up (trn2 and "
                       "later); {} has none: split K into two matmuls",
                       chip_.name.empty() ? "this chip" : chip_.name));
    }
    for (int s : {1, 2}) {
      const ApFacts* f = facts(s);
      if (!isFp8(f->dtype)) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: dtype {} with double_row: double_row needs fp8 (float8_e4m3 or "
                         "float8_e5m2) operands",
                         slotName(s), numerics::dtypeName(f->dtype)));
      }
      const AccessPattern& ap = s == 1 ? stAp : mvAp;
      if (ap.numFree < 2 || ap.free[0].count != 2) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: double_row needs a free pattern [2, ...] (the two row groups "
                         "first); got {} free dims with first count {}",
                         slotName(s), ap.numFree, ap.numFree > 0 ? ap.free[0].count : 0));
        return;
      }
    }
    if (inst_.has(kFlagIsTranspose)) {
      fail(ErrorCode::kVerify, "flags double_row and is_transpose cannot be combined");
    }
    m /= 2;
    n /= 2;
  }
  if (st->partitions > chip_.pe.rows) {
    fail(ErrorCode::kVerify,
         fmt::format("stationary: contraction K = {} partitions exceeds the {} PE rows: split K "
                     "and accumulate",
                     st->partitions, chip_.pe.rows));
  }
  if (m > chip_.pe.cols) {
    fail(ErrorCode::kVerify,
         fmt::format("stationary: M = {} exceeds the {} PE columns: split M into tiles of at most "
                     "{}",
                     m, chip_.pe.cols, chip_.pe.cols));
  }
  if (n > chip_.pe.maxMovingFree) {
    fail(ErrorCode::kVerify,
         fmt::format("moving: N = {} exceeds the {}-element moving limit: split N into tiles of "
                     "at most {}",
                     n, chip_.pe.maxMovingFree, chip_.pe.maxMovingFree));
  }
  if (dst == nullptr) return;
  if (dst->partitions != m || dst->freeSize != n) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: shape [P={}, F={}], expected [M={}, N={}]: the result has one "
                     "partition per stationary column and the moving free size",
                     dst->partitions, dst->freeSize, m, n));
  }
  bool dtypeOk = dst->dtype == DType::kFP32 || dst->dtype == DType::kBF16 ||
                 (inst_.has(kFlagIsTranspose) && dst->dtype == mv->dtype);
  if (!dtypeOk) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: dtype {}: matmul results are float32 or bfloat16 in PSUM{}",
                     numerics::dtypeName(dst->dtype),
                     inst_.has(kFlagIsTranspose) ? " (or the moving dtype with is_transpose)" : ""));
  }
}

void InstructionChecker::checkTranspose() {
  const ApFacts* dst = facts(0);
  const ApFacts* data = facts(1);
  if (data != nullptr) {
    int64_t limitP = inst_.engine == Engine::kTensor ? chip_.pe.rows : kQuadrant;
    int64_t limitF = inst_.engine == Engine::kTensor ? chip_.pe.cols : kQuadrant;
    if (data->partitions > limitP || data->freeSize > limitF) {
      fail(ErrorCode::kVerify,
           fmt::format("data: [P={}, F={}] is too large for a {} engine transpose: at most "
                       "[{}, {}]",
                       data->partitions, data->freeSize, arch::engineName(inst_.engine), limitP,
                       limitF));
    }
  }
  if (dst != nullptr && data != nullptr &&
      (dst->partitions != data->freeSize || dst->freeSize != data->partitions)) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: shape [P={}, F={}], expected [P={}, F={}]: a transpose swaps data's "
                     "partitions and free size",
                     dst->partitions, dst->freeSize, data->freeSize, data->partitions));
  }
}

void InstructionChecker::checkDma() {
  const ApFacts* dst = facts(0);
  const ApFacts* src = facts(1);
  if (inst_.opcode == Opcode::kDmaTranspose) {
    if (!chip_.dma.supportsTranspose()) {
      fail(ErrorCode::kVerify,
           fmt::format("{} has no DMA transpose: transpose on the Tensor Engine (nc_transpose)",
                       chip_.name.empty() ? "this chip" : chip_.name));
    }
    for (int s : {0, 1}) {
      const ApFacts* f = facts(s);
      if (f == nullptr) continue;
      size_t bytes = numerics::dtypeSize(f->dtype);
      if (bytes != 2 && bytes != 4) {
        fail(ErrorCode::kVerify,
             fmt::format("{}: dtype {} ({} byte): dma_transpose moves 2- or 4-byte elements",
                         slotName(s), numerics::dtypeName(f->dtype), bytes));
      }
    }
    if (dst != nullptr && src != nullptr) {
      if (dst->dtype != src->dtype) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: dtype {} differs from src dtype {}: dma_transpose does not cast",
                         numerics::dtypeName(dst->dtype), numerics::dtypeName(src->dtype)));
      }
      if (dst->partitions != src->freeSize || dst->freeSize != src->partitions) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: shape [P={}, F={}], expected [P={}, F={}]: a transpose swaps "
                         "src's partitions and free size",
                         dst->partitions, dst->freeSize, src->freeSize, src->partitions));
      }
    }
    return;
  }
  bool indirectSrc = inst_.has(kFlagIndirectSrc);
  bool indirectDst = inst_.has(kFlagIndirectDst);
  bool hasIndex = present_[2];
  if (indirectSrc && indirectDst) {
    fail(ErrorCode::kVerify, "flags indirect_src and indirect_dst cannot be combined: a dma_copy "
                             "gathers or scatters, not both");
    return;
  }
  if (!indirectSrc && !indirectDst) {
    if (hasIndex) {
      fail(ErrorCode::kVerify, "index: given without indirect_src or indirect_dst: set one of "
                               "them or drop the index");
    }
    if (inst_.has(kFlagOobSkip)) {
      fail(ErrorCode::kVerify, "flag oob_skip applies only to indirect copies (indirect_src or "
                               "indirect_dst)");
    }
    if (dst != nullptr && src != nullptr) {
      int64_t nd = dst->partitions * dst->freeSize;
      int64_t ns = src->partitions * src->freeSize;
      if (nd != ns) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: {} elements but src has {}: a dma_copy moves equal element counts",
                         nd, ns));
      }
    }
    return;
  }
  if (!hasIndex) {
    fail(ErrorCode::kVerify,
         fmt::format("index: required with {}: give a [rows, 1] int32/uint32 index tile",
                     indirectSrc ? "indirect_src" : "indirect_dst"));
    return;
  }
  indexDType(2);
  freeEquals(2, 1, "an index operand holds one row index per partition ([rows, 1])");
  if (dst != nullptr && src != nullptr && dst->freeSize != src->freeSize) {
    fail(ErrorCode::kVerify,
         fmt::format("dst: row length {} differs from src row length {}: indirect copies move "
                     "whole rows",
                     dst->freeSize, src->freeSize));
  }
  samePartitions(2, indirectSrc ? 0 : 1);
}

void InstructionChecker::checkShapes() {
  switch (inst_.opcode) {
    case Opcode::kNcMatmul: checkMatmul(); break;
    case Opcode::kNcTranspose: checkTranspose(); break;
    case Opcode::kActivation:
      sameShape(1, 0);
      scalarTile(2, 1);
      scalarTile(3, 1);
      reduceResult(4);
      break;
    case Opcode::kTensorTensor:
      sameShape(1, 0);
      sameShape(2, 0);
      break;
    case Opcode::kTensorScalar:
      sameShape(1, 0);
      scalarTile(2, 1);
      scalarTile(3, 1);
      if (present_[3] && inst_.alu1 == AluOp::kBypass) {
        fail(ErrorCode::kVerify, "operand1: given, but op1 is bypass: set op1 or drop operand1");
      }
      break;
    case Opcode::kScalarTensorTensor:
      sameShape(1, 0);
      scalarTile(2, 1);
      sameShape(3, 0);
      break;
    case Opcode::kTensorReduce: {
      samePartitions(0, 1);
      if (validAluOp(inst_.alu0) && !isReduceOp(inst_.alu0)) {
        fail(ErrorCode::kVerify, fmt::format("op0 {} cannot reduce: use add, multiply, max, min, "
                                             "abs_max, abs_min or a bitwise/logical op",
                                             aluOpName(inst_.alu0)));
      }
      const AccessPattern* data = inst_.operand(1);
      if (data == nullptr || facts(1) == nullptr) break;
      int64_t mask = inst_.iarg[0];
      int64_t allDims = (int64_t(1) << data->numFree) - 1;
      if (mask < 1 || (mask & ~allDims) != 0) {
        fail(ErrorCode::kVerify,
             fmt::format("axis_mask {:#x} must select at least one of data's {} free dims (bits "
                         "0-{})",
                         mask, data->numFree, int(data->numFree) - 1));
        break;
      }
      int64_t kept = 1;
      for (int k = 0; k < data->numFree; ++k)
        if ((mask & (int64_t(1) << k)) == 0) kept *= data->free[size_t(k)].count;
      freeEquals(0, kept, "dst holds the product of the dims that are not reduced");
      break;
    }
    case Opcode::kTensorPartitionReduce:
      if (validAluOp(inst_.alu0) && !isReduceOp(inst_.alu0)) {
        fail(ErrorCode::kVerify, fmt::format("op0 {} cannot reduce", aluOpName(inst_.alu0)));
      }
      if (const ApFacts* d = facts(0); d != nullptr && d->partitions != 1) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: {} partitions; a partition reduce writes one partition",
                         d->partitions));
      }
      if (const ApFacts* d = facts(1); d != nullptr) freeEquals(0, d->freeSize, "dst F == data F");
      break;
    case Opcode::kTensorCopy:
    case Opcode::kReciprocal:
      sameShape(1, 0);
      break;
    case Opcode::kTensorCopyPredicated:
      sameShape(1, 0);
      sameShape(2, 0);
      break;
    case Opcode::kTensorTensorScan:
      sameShape(1, 0);
      sameShape(2, 0);
      scalarTile(3, 1);
      break;
    case Opcode::kMemset:
    case Opcode::kIota:
    case Opcode::kRng:
      break;
    case Opcode::kAffineSelect:
      sameShape(1, 0);
      if (validAluOp(inst_.alu0) && !isCompareOp(inst_.alu0)) {
        fail(ErrorCode::kVerify, fmt::format("op0 {} is not a comparison: use is_equal, "
                                             "not_equal, is_gt, is_ge, is_lt or is_le",
                                             aluOpName(inst_.alu0)));
      }
      break;
    case Opcode::kRangeSelect:
      sameShape(1, 0);
      scalarTile(2, 0);
      scalarTile(3, 0);
      for (AluOp op : {inst_.alu0, inst_.alu1}) {
        if (validAluOp(op) && !isCompareOp(op)) {
          fail(ErrorCode::kVerify, fmt::format("op {} is not a comparison: range_select compares "
                                               "indices with is_gt, is_ge, is_lt, is_le, ...",
                                               aluOpName(op)));
        }
      }
      reduceResult(4);
      break;
    case Opcode::kSelectReduce:
      sameShape(1, 0);
      sameShape(2, 0);
      sameShape(3, 0);
      reduceResult(4);
      break;
    case Opcode::kBnStats:
      samePartitions(0, 1);
      if (const ApFacts* d = facts(1); d != nullptr) {
        int64_t chunks = (d->freeSize + kBnStatsFmax - 1) / kBnStatsFmax;
        freeEquals(0, kBnStatsRecord * chunks,
                   fmt::format("6 values per chunk of at most {} data elements", kBnStatsFmax));
      }
      break;
    case Opcode::kBnAggr:
      samePartitions(0, 1);
      if (const ApFacts* d = facts(1); d != nullptr && d->freeSize % kBnStatsRecord != 0) {
        fail(ErrorCode::kVerify, fmt::format("data: free size {} is not a multiple of 6: bn_aggr "
                                             "reads whole bn_stats records",
                                             d->freeSize));
      }
      freeEquals(0, kBnAggrOut, "bn_aggr writes (mean, variance)");
      break;
    case Opcode::kMax8:
      samePartitions(0, 1);
      freeEquals(0, kTop8, "max8 writes the 8 largest values");
      if (const ApFacts* d = facts(1); d != nullptr && d->freeSize < kTop8) {
        fail(ErrorCode::kVerify,
             fmt::format("data: free size {}; max8 needs at least 8 values", d->freeSize));
      }
      break;
    case Opcode::kNcFindIndex8:
      samePartitions(0, 1);
      samePartitions(2, 1);
      freeEquals(2, kTop8, "nc_find_index8 looks up 8 values");
      freeEquals(0, kTop8, "nc_find_index8 writes 8 indices");
      indexDType(0);
      break;
    case Opcode::kNcMatchReplace8:
      sameShape(1, 0);
      samePartitions(2, 1);
      freeEquals(2, kTop8, "nc_match_replace8 replaces 8 values");
      if (present_[3]) {
        samePartitions(3, 1);
        freeEquals(3, kTop8, "dst_idx receives 8 indices");
        indexDType(3);
      }
      break;
    case Opcode::kLocalGather: {
      samePartitions(1, 0);
      samePartitions(2, 0);
      indexDType(2);
      int64_t perIdx = inst_.iarg[0];
      int64_t valid = inst_.iarg[1];
      if (perIdx < 1 || valid < 1) {
        fail(ErrorCode::kVerify,
             fmt::format("num_elem_per_idx = {} and num_valid_indices = {} must both be at least 1",
                         perIdx, valid));
        break;
      }
      if (const ApFacts* ix = facts(2); ix != nullptr && valid > ix->freeSize) {
        fail(ErrorCode::kVerify,
             fmt::format("num_valid_indices = {} exceeds the {} index slots of index", valid,
                         ix->freeSize));
      }
      int64_t need = 0;
      if (const ApFacts* d = facts(0);
          d != nullptr && (!mulChecked(perIdx, valid, need) || need > d->freeSize)) {
        fail(ErrorCode::kVerify,
             fmt::format("dst: free size {} cannot hold num_valid_indices x num_elem_per_idx = "
                         "{} x {} elements",
                         d->freeSize, valid, perIdx));
      }
      break;
    }
    case Opcode::kDropout:
      sameShape(1, 0);
      if (present_[2]) {
        scalarTile(2, 1);
      } else if (!(inst_.imm[0] >= 0.0f && inst_.imm[0] <= 1.0f)) {
        fail(ErrorCode::kVerify,
             fmt::format("prob = {} is not a probability: give a value in [0, 1]", inst_.imm[0]));
      }
      break;
    case Opcode::kRand2:
      scalarTile(1, 0);
      scalarTile(2, 0);
      break;
    case Opcode::kSetRngSeed:
      break;
    case Opcode::kRandSetState:
    case Opcode::kRandGetState:
      freeEquals(0, kRngStateWords, "the RNG state is 6 words per partition");
      if (const ApFacts* d = facts(0);
          d != nullptr && !(isIndexType(d->dtype))) {
        fail(ErrorCode::kVerify, fmt::format("{}: dtype {}: RNG state words are uint32 (or int32)",
                                             slotName(0), numerics::dtypeName(d->dtype)));
      }
      break;
    case Opcode::kDmaCopy:
    case Opcode::kDmaTranspose:
      checkDma();
      break;
    case Opcode::kAllReduce:
    case Opcode::kAllGather:
    case Opcode::kReduceScatter:
    case Opcode::kAllToAll:
    case Opcode::kCollectivePermute:
    case Opcode::kSendRecv:
    case Opcode::kCoreBarrier:
      checkCollective();
      break;
    case Opcode::kCount:
      break;
  }
}

void InstructionChecker::checkCollective() {
  const Opcode op = inst_.opcode;
  const uint64_t queues = uint64_t(chip_.dma.enginesPerCore) * chip_.dma.queuesPerEngine;
  if (queues > 0 && inst_.queue >= queues) {
    fail(ErrorCode::kVerify,
         fmt::format("DMA queue {} does not exist: {} has {} DMA queues per core (0-{})",
                     inst_.queue, chip_.name, queues, queues - 1));
  }
  if ((op == Opcode::kAllReduce || op == Opcode::kReduceScatter) &&
      !(inst_.reduceOp == AluOp::kAdd || inst_.reduceOp == AluOp::kMax ||
        inst_.reduceOp == AluOp::kMin)) {
    fail(ErrorCode::kVerify,
         fmt::format("reduce_op {}: {} reduces with add, max or min (nl.add, nl.maximum, "
                     "nl.minimum)",
                     validAluOp(inst_.reduceOp) ? aluOpName(inst_.reduceOp) : "?", info_->name));
  }
  // The rank group: an index into the program's replica-group table.
  size_t listSize = 0;  // members per rank-list; 0 = every rank (known only when run)
  if (op == Opcode::kSendRecv) {
    for (int k = 0; k < 3; ++k) {
      if (inst_.iarg[size_t(k)] < 0 || inst_.iarg[size_t(k)] > INT32_MAX) {
        fail(ErrorCode::kVerify, fmt::format("{} = {}: must be a rank (0 to 2^31-1)",
                                             info_->intNames[size_t(k)], inst_.iarg[size_t(k)]));
      }
    }
  } else {
    const int64_t g = inst_.iarg[0];
    const std::string_view field = info_->intNames[0];
    if (g < 0 || uint64_t(g) >= program_.replicaGroups.size()) {
      fail(ErrorCode::kVerify,
           fmt::format("{} = {} is not in the program's replica-group table ({} entries): add "
                       "the group with KernelBuilder::replicaGroup() and use its index",
                       field, g, program_.replicaGroups.size()));
    } else {
      const ReplicaGroup& rg = program_.replicaGroups[size_t(g)];
      std::vector<uint32_t> seen, targets;
      for (size_t l = 0; l < rg.lists.size(); ++l) {
        const auto& list = rg.lists[l];
        if (op == Opcode::kCollectivePermute) {
          if (list.size() != 2) {
            fail(ErrorCode::kVerify,
                 fmt::format("{} {}: entry {} has {} ranks; each is one (source, target) pair",
                             field, g, l, list.size()));
            return;
          }
          if (std::find(seen.begin(), seen.end(), list[0]) != seen.end() ||
              std::find(targets.begin(), targets.end(), list[1]) != targets.end()) {
            fail(ErrorCode::kVerify,
                 fmt::format("{} {}: pair {} ({} -> {}) repeats a source or a target: each rank "
                             "sends at most once and receives at most once",
                             field, g, l, list[0], list[1]));
            return;
          }
          seen.push_back(list[0]);
          targets.push_back(list[1]);
          continue;
        }
        if (list.empty()) {
          fail(ErrorCode::kVerify, fmt::format("replica group {}: rank-list {} is empty", g, l));
          return;
        }
        if (l > 0 && list.size() != rg.lists[0].size()) {
          fail(ErrorCode::kVerify,
               fmt::format("replica group {}: rank-list {} has {} ranks but list 0 has {}: all "
                           "lists of a group have the same size",
                           g, l, list.size(), rg.lists[0].size()));
          return;
        }
        for (uint32_t r : list) {
          if (std::find(seen.begin(), seen.end(), r) != seen.end()) {
            fail(ErrorCode::kVerify,
                 fmt::format("replica group {}: rank {} appears twice: the rank-lists must be "
                             "disjoint",
                             g, r));
            return;
          }
          seen.push_back(r);
        }
      }
      if (op != Opcode::kCollectivePermute && !rg.lists.empty()) listSize = rg.lists[0].size();
    }
  }
  if (op == Opcode::kCoreBarrier) return;
  const ApFacts* dst = facts(0);
  const ApFacts* src = facts(1);
  if (dst == nullptr || src == nullptr) return;
  if (dst->dtype != src->dtype) {
    fail(ErrorCode::kVerify,
         fmt::format("dst is {} but src is {}: a collective moves one dtype (convert first with "
                     "tensor_copy)",
                     numerics::dtypeName(dst->dtype), numerics::dtypeName(src->dtype)));
  }
  if ((op == Opcode::kAllReduce || op == Opcode::kReduceScatter) && !numerics::isFloat(src->dtype)) {
    fail(ErrorCode::kVerify,
         fmt::format("src is {}: {} reduces floating-point data (in fp32); convert integers first",
                     numerics::dtypeName(src->dtype), info_->name));
  }
  const int64_t nd = dst->partitions * dst->freeSize;
  const int64_t ns = src->partitions * src->freeSize;
  const bool gather = op == Opcode::kAllGather;
  const bool scatter = op == Opcode::kReduceScatter;
  if (!gather && !scatter) {
    if (nd != ns) {
      fail(ErrorCode::kVerify, fmt::format("dst has {} elements but src has {}: {} needs equal "
                                           "counts",
                                           nd, ns, info_->name));
    } else if (op == Opcode::kAllToAll && listSize > 0 && ns % int64_t(listSize) != 0) {
      fail(ErrorCode::kVerify,
           fmt::format("src has {} elements, not a multiple of the {} ranks of each rank-list: "
                       "all_to_all sends one equal chunk to each member",
                       ns, listSize));
    }
    return;
  }
  const int64_t big = gather ? nd : ns;
  const int64_t small = gather ? ns : nd;
  if (listSize > 0 && big != small * int64_t(listSize)) {
    fail(ErrorCode::kVerify,
         fmt::format("{} has {} elements but {} has {}: with {} ranks per rank-list it needs {} x "
                     "{} = {}",
                     gather ? "dst" : "src", big, gather ? "src" : "dst", small, listSize,
                     listSize, small, small * int64_t(listSize)));
  } else if (listSize == 0 && (small == 0 || big % small != 0)) {
    fail(ErrorCode::kVerify,
         fmt::format("{} has {} elements, not a multiple of the {} elements of {}",
                     gather ? "dst" : "src", big, small, gather ? "src" : "dst"));
  }
}

}  // namespace trnsim::isa::detail
