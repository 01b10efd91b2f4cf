// KernelBuilder's emitters, one per instruction kind: each fills an Instruction's operands,
// immediates and attributes and hands it to emit() (builder.cpp), which verifies it.

#include <fmt/format.h>

#include <algorithm>

#include "trnsim/isa/builder.h"

namespace trnsim::isa {
namespace {

void addOperand(Instruction& inst, uint8_t slot, const AccessPattern& ap) {
  if (ap.valid()) inst.operands.push_back({slot, ap});
}

void addScalar(Instruction& inst, uint8_t slot, int immIndex, const ScalarOperand& s) {
  if (s.tile.valid()) {
    inst.operands.push_back({slot, s.tile});
  } else {
    inst.imm[immIndex] = s.value;
  }
}

Instruction make(Opcode op, Engine engine) {
  Instruction inst;
  inst.opcode = op;
  inst.engine = engine;
  return inst;
}

void setSteps(Instruction& inst, const std::vector<int64_t>& steps) {
  for (size_t i = 0; i < steps.size() && i < inst.iarg.size(); ++i) inst.iarg[i] = steps[i];
}

}  // namespace

Status KernelBuilder::ncMatmul(const AccessPattern& dst, const AccessPattern& stationary,
                               const AccessPattern& moving, MatmulOptions opts) {
  Instruction inst = make(Opcode::kNcMatmul, Engine::kTensor);
  addOperand(inst, 0, dst);
  addOperand(inst, 1, stationary);
  addOperand(inst, 2, moving);
  if (opts.accumulate) inst.flags |= kFlagAccumulate;
  if (opts.doubleRow) inst.flags |= kFlagDoubleRow;
  if (opts.isTranspose) inst.flags |= kFlagIsTranspose;
  return emit(std::move(inst));
}

Status KernelBuilder::ncTranspose(const AccessPattern& dst, const AccessPattern& data,
                                  Engine engine) {
  Instruction inst = make(Opcode::kNcTranspose, engine);
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  return emit(std::move(inst));
}

Status KernelBuilder::activation(const AccessPattern& dst, ActFunc op, const AccessPattern& data,
                                 const AccessPattern& bias, ScalarOperand scale, AluOp reduceOp,
                                 const AccessPattern& reduceRes) {
  Instruction inst = make(Opcode::kActivation, Engine::kScalar);
  inst.act = op;
  inst.reduceOp = reduceOp;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  addOperand(inst, 2, bias);
  addScalar(inst, 3, 0, scale);
  addOperand(inst, 4, reduceRes);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorTensor(const AccessPattern& dst, const AccessPattern& data1,
                                   const AccessPattern& data2, AluOp op, Engine engine) {
  Instruction inst = make(Opcode::kTensorTensor, engine);
  inst.alu0 = op;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data1);
  addOperand(inst, 2, data2);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorScalar(const AccessPattern& dst, const AccessPattern& data, AluOp op0,
                                   ScalarOperand operand0, AluOp op1, ScalarOperand operand1,
                                   bool reverse0, bool reverse1, Engine engine) {
  Instruction inst = make(Opcode::kTensorScalar, engine);
  inst.alu0 = op0;
  inst.alu1 = op1;
  if (reverse0) inst.flags |= kFlagReverse0;
  if (reverse1) inst.flags |= kFlagReverse1;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  addScalar(inst, 2, 0, operand0);
  if (op1 != AluOp::kBypass) addScalar(inst, 3, 1, operand1);
  return emit(std::move(inst));
}

Status KernelBuilder::scalarTensorTensor(const AccessPattern& dst, const AccessPattern& data,
                                         AluOp op0, ScalarOperand operand0, AluOp op1,
                                         const AccessPattern& data1, Engine engine) {
  Instruction inst = make(Opcode::kScalarTensorTensor, engine);
  inst.alu0 = op0;
  inst.alu1 = op1;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  addScalar(inst, 2, 0, operand0);
  addOperand(inst, 3, data1);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorReduce(const AccessPattern& dst, AluOp op, const AccessPattern& data,
                                   uint32_t axisMask, bool negate, Engine engine) {
  Instruction inst = make(Opcode::kTensorReduce, engine);
  inst.alu0 = op;
  inst.iarg[0] = axisMask;
  if (negate) inst.flags |= kFlagNegate;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorPartitionReduce(const AccessPattern& dst, AluOp op,
                                            const AccessPattern& data) {
  Instruction inst = make(Opcode::kTensorPartitionReduce, Engine::kGpSimd);
  inst.alu0 = op;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorCopy(const AccessPattern& dst, const AccessPattern& src,
                                 Engine engine) {
  Instruction inst = make(Opcode::kTensorCopy, engine);
  addOperand(inst, 0, dst);
  addOperand(inst, 1, src);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorCopyPredicated(const AccessPattern& dst, const AccessPattern& src,
                                           const AccessPattern& predicate, bool reversePred,
                                           Engine engine) {
  Instruction inst = make(Opcode::kTensorCopyPredicated, engine);
  if (reversePred) inst.flags |= kFlagReversePred;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, src);
  addOperand(inst, 2, predicate);
  return emit(std::move(inst));
}

Status KernelBuilder::tensorTensorScan(const AccessPattern& dst, const AccessPattern& data0,
                                       const AccessPattern& data1, ScalarOperand initial,
                                       AluOp op0, AluOp op1) {
  Instruction inst = make(Opcode::kTensorTensorScan, Engine::kVector);
  inst.alu0 = op0;
  inst.alu1 = op1;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data0);
  addOperand(inst, 2, data1);
  addScalar(inst, 3, 0, initial);
  return emit(std::move(inst));
}

Status KernelBuilder::memset(const AccessPattern& dst, float value, Engine engine) {
  Instruction inst = make(Opcode::kMemset, engine);
  inst.imm[0] = value;
  addOperand(inst, 0, dst);
  return emit(std::move(inst));
}

Status KernelBuilder::iota(const AccessPattern& dst, const std::vector<int64_t>& steps,
                           float offset, float channelMultiplier) {
  if (steps.size() > 4) {
    fail(Status(ErrorCode::kInvalidArgument, "iota: at most 4 steps (one per free dimension)"));
    return status_;
  }
  Instruction inst = make(Opcode::kIota, Engine::kGpSimd);
  inst.imm[0] = offset;
  inst.imm[1] = channelMultiplier;
  setSteps(inst, steps);
  addOperand(inst, 0, dst);
  return emit(std::move(inst));
}

Status KernelBuilder::affineSelect(const AccessPattern& dst, const std::vector<int64_t>& steps,
                                   float channelMultiplier, float offset, AluOp cmp,
                                   const AccessPattern& onTrue, float onFalseValue) {
  if (steps.size() > 4) {
    fail(Status(ErrorCode::kInvalidArgument, "affine_select: at most 4 steps (one per free dimension)"));
    return status_;
  }
  Instruction inst = make(Opcode::kAffineSelect, Engine::kGpSimd);
  inst.imm[0] = offset;
  inst.imm[1] = channelMultiplier;
  inst.imm[2] = onFalseValue;
  inst.alu0 = cmp;
  setSteps(inst, steps);
  addOperand(inst, 0, dst);
  addOperand(inst, 1, onTrue);
  return emit(std::move(inst));
}

Status KernelBuilder::rangeSelect(const AccessPattern& dst, const AccessPattern& onTrue,
                                  AluOp cmp0, AluOp cmp1, const AccessPattern& bound0,
                                  const AccessPattern& bound1, float rangeStart,
                                  float onFalseValue, AluOp reduceOp,
                                  const AccessPattern& reduceRes) {
  Instruction inst = make(Opcode::kRangeSelect, Engine::kVector);
  inst.alu0 = cmp0;
  inst.alu1 = cmp1;
  inst.reduceOp = reduceOp;
  inst.imm[0] = rangeStart;
  inst.imm[1] = onFalseValue;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, onTrue);
  addOperand(inst, 2, bound0);
  addOperand(inst, 3, bound1);
  addOperand(inst, 4, reduceRes);
  return emit(std::move(inst));
}

Status KernelBuilder::selectReduce(const AccessPattern& dst, const AccessPattern& predicate,
                                   const AccessPattern& onTrue, ScalarOperand onFalse,
                                   AluOp reduceOp, const AccessPattern& reduceRes,
                                   bool reversePred) {
  Instruction inst = make(Opcode::kSelectReduce, Engine::kVector);
  inst.reduceOp = reduceOp;
  if (reversePred) inst.flags |= kFlagReversePred;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, predicate);
  addOperand(inst, 2, onTrue);
  addScalar(inst, 3, 0, onFalse);
  addOperand(inst, 4, reduceRes);
  return emit(std::move(inst));
}

namespace {
Instruction unary(Opcode op, Engine engine, const AccessPattern& dst, const AccessPattern& data) {
  Instruction inst = make(op, engine);
  addOperand(inst, 0, dst);
  addOperand(inst, 1, data);
  return inst;
}
}  // namespace

Status KernelBuilder::bnStats(const AccessPattern& dst, const AccessPattern& data) {
  return emit(unary(Opcode::kBnStats, Engine::kVector, dst, data));
}

Status KernelBuilder::bnAggr(const AccessPattern& dst, const AccessPattern& data) {
  return emit(unary(Opcode::kBnAggr, Engine::kVector, dst, data));
}

Status KernelBuilder::reciprocal(const AccessPattern& dst, const AccessPattern& data,
                                 Engine engine) {
  return emit(unary(Opcode::kReciprocal, engine, dst, data));
}

Status KernelBuilder::max8(const AccessPattern& dst, const AccessPattern& data) {
  return emit(unary(Opcode::kMax8, Engine::kVector, dst, data));
}

Status KernelBuilder::ncFindIndex8(const AccessPattern& dst, const AccessPattern& data,
                                   const AccessPattern& vals) {
  Instruction inst = unary(Opcode::kNcFindIndex8, Engine::kVector, dst, data);
  addOperand(inst, 2, vals);
  return emit(std::move(inst));
}

Status KernelBuilder::ncMatchReplace8(const AccessPattern& dst, const AccessPattern& data,
                                      const AccessPattern& vals, float imm,
                                      const AccessPattern& dstIdx) {
  Instruction inst = unary(Opcode::kNcMatchReplace8, Engine::kVector, dst, data);
  inst.imm[0] = imm;
  addOperand(inst, 2, vals);
  addOperand(inst, 3, dstIdx);
  return emit(std::move(inst));
}

Status KernelBuilder::localGather(const AccessPattern& dst, const AccessPattern& src,
                                  const AccessPattern& index, int64_t numElemPerIdx,
                                  int64_t numValidIndices) {
  Instruction inst = unary(Opcode::kLocalGather, Engine::kGpSimd, dst, src);
  inst.iarg[0] = numElemPerIdx;
  inst.iarg[1] = numValidIndices;
  addOperand(inst, 2, index);
  return emit(std::move(inst));
}

Status KernelBuilder::dropout(const AccessPattern& dst, const AccessPattern& data,
                              ScalarOperand prob, Engine engine) {
  Instruction inst = unary(Opcode::kDropout, engine, dst, data);
  addScalar(inst, 2, 0, prob);
  return emit(std::move(inst));
}

Status KernelBuilder::rng(const AccessPattern& dst, Engine engine) {
  Instruction inst = make(Opcode::kRng, engine);
  addOperand(inst, 0, dst);
  return emit(std::move(inst));
}

Status KernelBuilder::rand2(const AccessPattern& dst, ScalarOperand min, ScalarOperand max,
                            Engine engine) {
  Instruction inst = make(Opcode::kRand2, engine);
  addOperand(inst, 0, dst);
  addScalar(inst, 1, 0, min);
  addScalar(inst, 2, 1, max);
  return emit(std::move(inst));
}

Status KernelBuilder::setRngSeed(const AccessPattern& seeds, Engine engine) {
  Instruction inst = make(Opcode::kSetRngSeed, engine);
  addOperand(inst, 0, seeds);
  return emit(std::move(inst));
}

Status KernelBuilder::randSetState(const AccessPattern& srcSeeds, Engine engine) {
  Instruction inst = make(Opcode::kRandSetState, engine);
  addOperand(inst, 0, srcSeeds);
  return emit(std::move(inst));
}

Status KernelBuilder::randGetState(const AccessPattern& dst, Engine engine) {
  Instruction inst = make(Opcode::kRandGetState, engine);
  addOperand(inst, 0, dst);
  return emit(std::move(inst));
}

Status KernelBuilder::dmaCopy(const AccessPattern& dst, const AccessPattern& src,
                              const DmaOptions& opts) {
  Instruction inst = make(Opcode::kDmaCopy, Engine::kDma);
  inst.queue = nextQueue(opts.queue);
  if (opts.indirectSrc) inst.flags |= kFlagIndirectSrc;
  if (opts.indirectDst) inst.flags |= kFlagIndirectDst;
  if (opts.oobSkip) inst.flags |= kFlagOobSkip;
  addOperand(inst, 0, dst);
  addOperand(inst, 1, src);
  addOperand(inst, 2, opts.index);
  return emit(std::move(inst));
}

Status KernelBuilder::dmaTranspose(const AccessPattern& dst, const AccessPattern& src,
                                   int queue) {
  Instruction inst = unary(Opcode::kDmaTranspose, Engine::kDma, dst, src);
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

uint32_t KernelBuilder::replicaGroup(std::vector<std::vector<uint32_t>> lists) {
  ReplicaGroup g{std::move(lists)};
  for (size_t i = 0; i < program_.replicaGroups.size(); ++i)
    if (program_.replicaGroups[i] == g) return uint32_t(i);
  program_.replicaGroups.push_back(std::move(g));
  return uint32_t(program_.replicaGroups.size() - 1);
}

uint32_t KernelBuilder::permutePairs(const std::vector<std::pair<uint32_t, uint32_t>>& pairs) {
  std::vector<std::vector<uint32_t>> lists;
  lists.reserve(pairs.size());
  for (const auto& [source, target] : pairs) lists.push_back({source, target});
  return replicaGroup(std::move(lists));
}

namespace {

Instruction collective(Opcode op, const AccessPattern& dst, const AccessPattern& src,
                       int64_t group) {
  Instruction inst = make(op, Engine::kDma);
  addOperand(inst, 0, dst);
  addOperand(inst, 1, src);
  inst.iarg[0] = group;
  return inst;
}

}  // namespace

Status KernelBuilder::allReduce(const AccessPattern& dst, const AccessPattern& src, AluOp op,
                                uint32_t group, int queue) {
  Instruction inst = collective(Opcode::kAllReduce, dst, src, group);
  inst.reduceOp = op;
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

Status KernelBuilder::allGather(const AccessPattern& dst, const AccessPattern& src,
                                uint32_t group, int queue) {
  Instruction inst = collective(Opcode::kAllGather, dst, src, group);
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

Status KernelBuilder::reduceScatter(const AccessPattern& dst, const AccessPattern& src, AluOp op,
                                    uint32_t group, int queue) {
  Instruction inst = collective(Opcode::kReduceScatter, dst, src, group);
  inst.reduceOp = op;
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

Status KernelBuilder::allToAll(const AccessPattern& dst, const AccessPattern& src,
                               uint32_t group, int queue) {
  Instruction inst = collective(Opcode::kAllToAll, dst, src, group);
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

Status KernelBuilder::collectivePermute(const AccessPattern& dst, const AccessPattern& src,
                                        uint32_t pairs, int queue) {
  Instruction inst = collective(Opcode::kCollectivePermute, dst, src, pairs);
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

Status KernelBuilder::sendRecv(const AccessPattern& dst, const AccessPattern& src,
                               uint32_t sendToRank, uint32_t recvFromRank, uint32_t pipeId,
                               int queue) {
  Instruction inst = collective(Opcode::kSendRecv, dst, src, sendToRank);
  inst.iarg[1] = recvFromRank;
  inst.iarg[2] = pipeId;
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}

Status KernelBuilder::coreBarrier(uint32_t group, const AccessPattern& data, int queue) {
  Instruction inst = make(Opcode::kCoreBarrier, Engine::kDma);
  addOperand(inst, 0, data);
  inst.iarg[0] = group;
  inst.queue = nextQueue(queue);
  return emit(std::move(inst));
}


}  // namespace trnsim::isa
