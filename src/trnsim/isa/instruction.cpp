#include "trnsim/isa/instruction.h"

#include <fmt/format.h>

namespace trnsim::isa {
namespace {

constexpr uint8_t bit(Engine e) { return uint8_t(1u << static_cast<unsigned>(e)); }
constexpr OperandInfo W(std::string_view n) { return {n, Access::kWrite, false}; }
constexpr OperandInfo R(std::string_view n) { return {n, Access::kRead, false}; }
constexpr OperandInfo RW(std::string_view n) { return {n, Access::kReadWrite, false}; }
constexpr OperandInfo optW(std::string_view n) { return {n, Access::kWrite, true}; }
constexpr OperandInfo optR(std::string_view n) { return {n, Access::kRead, true}; }

constexpr uint8_t kVec = bit(Engine::kVector);
constexpr uint8_t kAct = bit(Engine::kScalar);
constexpr uint8_t kPool = bit(Engine::kGpSimd);
constexpr uint8_t kPe = bit(Engine::kTensor);
constexpr uint8_t kDmaE = bit(Engine::kDma);

struct TableBuilder {
  OpInfo info;
  TableBuilder(std::string_view name, uint8_t engines, Engine def) {
    info.name = name;
    info.engineMask = engines;
    info.defaultEngine = def;
  }
  TableBuilder& ops(std::initializer_list<OperandInfo> list) {
    for (const auto& o : list) info.operands[info.numOperands++] = o;
    return *this;
  }
  TableBuilder& imms(std::initializer_list<std::string_view> names) {
    int i = 0;
    for (auto n : names) info.immNames[i++] = n;
    return *this;
  }
  TableBuilder& ints(std::initializer_list<std::string_view> names) {
    int i = 0;
    for (auto n : names) info.intNames[i++] = n;
    return *this;
  }
  TableBuilder& alu0() { info.usesAlu0 = true; return *this; }
  TableBuilder& alu1() { info.usesAlu1 = true; return *this; }
  TableBuilder& reduce() { info.usesReduce = true; return *this; }
  TableBuilder& act() { info.usesAct = true; return *this; }
  TableBuilder& flags(uint16_t f) { info.flagMask = f; return *this; }
};

std::array<OpInfo, kNumOpcodes> makeTable() {
  std::array<OpInfo, kNumOpcodes> t{};
  auto set = [&](Opcode op, const TableBuilder& b) { t[static_cast<int>(op)] = b.info; };
  using E = Engine;
  set(Opcode::kNcMatmul, TableBuilder("nc_matmul", kPe, E::kTensor)
                             .ops({RW("dst"), R("stationary"), R("moving")})
                             .flags(kFlagAccumulate | kFlagDoubleRow | kFlagIsTranspose));
  set(Opcode::kNcTranspose,
      TableBuilder("nc_transpose", kPe | kVec, E::kTensor).ops({W("dst"), R("data")}));
  set(Opcode::kActivation, TableBuilder("activation", kAct, E::kScalar)
                               .ops({W("dst"), R("data"), optR("bias"), optR("scale"),
                                     optW("reduce_res")})
                               .imms({"scale"})
                               .act()
                               .reduce());
  set(Opcode::kTensorTensor, TableBuilder("tensor_tensor", kVec | kPool, E::kVector)
                                 .ops({W("dst"), R("data1"), R("data2")})
                                 .alu0());
  set(Opcode::kTensorScalar,
      TableBuilder("tensor_scalar", kVec | kAct | kPool, E::kVector)
          .ops({W("dst"), R("data"), optR("operand0"), optR("operand1")})
          .imms({"operand0", "operand1"})
          .alu0()
          .alu1()
          .flags(kFlagReverse0 | kFlagReverse1));
  set(Opcode::kScalarTensorTensor,
      TableBuilder("scalar_tensor_tensor", kVec | kPool, E::kVector)
          .ops({W("dst"), R("data"), optR("operand0"), R("data1")})
          .imms({"operand0"})
          .alu0()
          .alu1());
  set(Opcode::kTensorReduce, TableBuilder("tensor_reduce", kVec | kPool, E::kVector)
                                 .ops({W("dst"), R("data")})
                                 .ints({"axis_mask"})
                                 .alu0()
                                 .flags(kFlagNegate));
  set(Opcode::kTensorPartitionReduce,
      TableBuilder("tensor_partition_reduce", kPool, E::kGpSimd).ops({W("dst"), R("data")}).alu0());
  set(Opcode::kTensorCopy,
      TableBuilder("tensor_copy", kVec | kAct | kPool, E::kVector).ops({W("dst"), R("src")}));
  set(Opcode::kTensorCopyPredicated,
      TableBuilder("tensor_copy_predicated", kVec | kPool, E::kVector)
          .ops({RW("dst"), R("src"), R("predicate")})
          .flags(kFlagReversePred));
  set(Opcode::kTensorTensorScan,
      TableBuilder("tensor_tensor_scan", kVec, E::kVector)
          .ops({W("dst"), R("data0"), R("data1"), optR("initial")})
          .imms({"initial"})
          .alu0()
          .alu1());
  set(Opcode::kMemset,
      TableBuilder("memset", kVec | kAct | kPool, E::kVector).ops({W("dst")}).imms({"value"}));
  set(Opcode::kIota, TableBuilder("iota", kPool, E::kGpSimd)
                         .ops({W("dst")})
                         .imms({"offset", "channel_multiplier"})
                         .ints({"step0", "step1", "step2", "step3"}));
  set(Opcode::kAffineSelect, TableBuilder("affine_select", kPool, E::kGpSimd)
                                 .ops({W("dst"), R("on_true")})
                                 .imms({"offset", "channel_multiplier", "on_false_value"})
                                 .ints({"step0", "step1", "step2", "step3"})
                                 .alu0());
  set(Opcode::kRangeSelect,
      TableBuilder("range_select", kVec, E::kVector)
          .ops({W("dst"), R("on_true"), R("bound0"), R("bound1"), optW("reduce_res")})
          .imms({"range_start", "on_false_value"})
          .alu0()
          .alu1()
          .reduce());
  set(Opcode::kSelectReduce,
      TableBuilder("select_reduce", kVec, E::kVector)
          .ops({W("dst"), R("predicate"), R("on_true"), optR("on_false"), optW("reduce_res")})
          .imms({"on_false_value"})
          .reduce()
          .flags(kFlagReversePred));
  set(Opcode::kBnStats, TableBuilder("bn_stats", kVec, E::kVector).ops({W("dst"), R("data")}));
  set(Opcode::kBnAggr, TableBuilder("bn_aggr", kVec, E::kVector).ops({W("dst"), R("data")}));
  set(Opcode::kReciprocal,
      TableBuilder("reciprocal", kVec | kPool, E::kVector).ops({W("dst"), R("data")}));
  set(Opcode::kMax8, TableBuilder("max8", kVec, E::kVector).ops({W("dst"), R("data")}));
  set(Opcode::kNcFindIndex8, TableBuilder("nc_find_index8", kVec, E::kVector)
                                 .ops({W("dst"), R("data"), R("vals")}));
  set(Opcode::kNcMatchReplace8, TableBuilder("nc_match_replace8", kVec, E::kVector)
                                    .ops({W("dst"), R("data"), R("vals"), optW("dst_idx")})
                                    .imms({"imm"}));
  set(Opcode::kLocalGather, TableBuilder("local_gather", kPool, E::kGpSimd)
                                .ops({W("dst"), R("src"), R("index")})
                                .ints({"num_elem_per_idx", "num_valid_indices"}));
  set(Opcode::kDropout, TableBuilder("dropout", kVec | kPool, E::kVector)
                            .ops({W("dst"), R("data"), optR("prob")})
                            .imms({"prob"}));
  set(Opcode::kRng, TableBuilder("rng", kVec | kPool, E::kVector).ops({W("dst")}));
  set(Opcode::kRand2, TableBuilder("rand2", kVec | kPool, E::kVector)
                          .ops({W("dst"), optR("min"), optR("max")})
                          .imms({"min", "max"}));
  set(Opcode::kSetRngSeed, TableBuilder("set_rng_seed", kVec | kPool, E::kVector).ops({R("seeds")}));
  set(Opcode::kRandSetState,
      TableBuilder("rand_set_state", kVec | kPool, E::kVector).ops({R("src_seeds")}));
  set(Opcode::kRandGetState,
      TableBuilder("rand_get_state", kVec | kPool, E::kVector).ops({W("dst")}));
  set(Opcode::kDmaCopy, TableBuilder("dma_copy", kDmaE, E::kDma)
                            .ops({W("dst"), R("src"), optR("index")})
                            .flags(kFlagIndirectSrc | kFlagIndirectDst | kFlagOobSkip));
  set(Opcode::kDmaTranspose,
      TableBuilder("dma_transpose", kDmaE, E::kDma).ops({W("dst"), R("src")}));
  set(Opcode::kAllReduce, TableBuilder("all_reduce", kDmaE, E::kDma)
                              .ops({W("dst"), R("src")})
                              .ints({"replica_group"})
                              .reduce());
  set(Opcode::kAllGather, TableBuilder("all_gather", kDmaE, E::kDma)
                              .ops({W("dst"), R("src")})
                              .ints({"replica_group"}));
  set(Opcode::kReduceScatter, TableBuilder("reduce_scatter", kDmaE, E::kDma)
                                  .ops({W("dst"), R("src")})
                                  .ints({"replica_group"})
                                  .reduce());
  set(Opcode::kAllToAll, TableBuilder("all_to_all", kDmaE, E::kDma)
                             .ops({W("dst"), R("src")})
                             .ints({"replica_group"}));
  set(Opcode::kCollectivePermute, TableBuilder("collective_permute", kDmaE, E::kDma)
                                      .ops({W("dst"), R("src")})
                                      .ints({"pairs"}));
  set(Opcode::kSendRecv, TableBuilder("sendrecv", kDmaE, E::kDma)
                             .ops({W("dst"), R("src")})
                             .ints({"send_to_rank", "recv_from_rank", "pipe_id"}));
  set(Opcode::kCoreBarrier, TableBuilder("core_barrier", kDmaE, E::kDma)
                                .ops({optR("data")})
                                .ints({"replica_group"}));
  return t;
}

const std::array<OpInfo, kNumOpcodes>& table() {
  static const std::array<OpInfo, kNumOpcodes> t = makeTable();
  return t;
}

}  // namespace

std::string_view memSpaceName(MemSpace s) {
  switch (s) {
    case MemSpace::kSbuf: return "sbuf";
    case MemSpace::kPsum: return "psum";
    case MemSpace::kHbm: return "hbm";
  }
  return "?";
}

std::string_view tensorKindName(TensorKind k) {
  switch (k) {
    case TensorKind::kInternal: return "internal";
    case TensorKind::kInput: return "input";
    case TensorKind::kOutput: return "output";
    case TensorKind::kInOut: return "inout";
  }
  return "?";
}

std::string_view aluOpName(AluOp op) {
  static constexpr std::array<std::string_view, static_cast<int>(AluOp::kCount)> names = {
      "bypass",      "add",        "subtract",    "multiply",   "divide",   "max",
      "min",         "pow",        "mod",         "abs_max",    "abs_min",  "is_equal",
      "not_equal",   "is_gt",      "is_ge",       "is_lt",      "is_le",    "bitwise_and",
      "bitwise_or",  "bitwise_xor", "logical_and", "logical_or", "logical_xor", "left_shift",
      "right_shift", "logical_right_shift"};
  auto i = static_cast<size_t>(op);
  return i < names.size() ? names[i] : "?";
}

std::string_view actFuncName(ActFunc f) {
  static constexpr std::array<std::string_view, static_cast<int>(ActFunc::kCount)> names = {
      "identity", "copy",       "exp",    "log",  "tanh",     "sigmoid", "relu",    "gelu",
      "gelu_apprx_tanh", "silu", "sqrt",  "rsqrt", "reciprocal", "square", "sin",   "cos",
      "arctan",   "abs",        "sign",   "softplus", "erf",  "mish",    "gelu_dx", "silu_dx"};
  auto i = static_cast<size_t>(f);
  return i < names.size() ? names[i] : "?";
}

const OpInfo& opInfo(Opcode op) { return table()[static_cast<size_t>(op)]; }
std::string_view opcodeName(Opcode op) {
  return static_cast<int>(op) < kNumOpcodes ? opInfo(op).name : std::string_view("?");
}

int64_t TensorDecl::numElements() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

int64_t TensorDecl::freeElements() const {
  if (!onChip()) return numElements();
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

uint64_t TensorDecl::bytesPerPartition() const {
  return uint64_t(freeElements()) * numerics::dtypeSize(dtype);
}

uint32_t TensorDecl::partitions() const {
  return onChip() && !shape.empty() ? uint32_t(shape[0]) : 1u;
}

int64_t AccessPattern::freeSize() const {
  int64_t n = 1;
  for (int i = 0; i < numFree; ++i) n *= free[i].count;
  return n;
}

std::string Program::instructionContext(size_t index) const {
  std::string s = fmt::format("instruction {}", index);
  if (index < instructions.size()) {
    const auto& in = instructions[index];
    s += fmt::format(" ({})", opcodeName(in.opcode));
    if (in.loc != 0 && in.loc < locations.size() && !locations[in.loc].file.empty())
      s += fmt::format(" at {}:{}", locations[in.loc].file, locations[in.loc].line);
  }
  return s;
}

uint32_t Program::findTensor(std::string_view n) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == n) return uint32_t(i);
  return kNoTensor;
}

}  // namespace trnsim::isa
