#pragma once
// The NeuronCore instruction set as data: tensors, access patterns, instructions, programs.
// Semantics follow the public nki.isa reference; docs/isa.md describes each opcode.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/numerics/dtype.h"

namespace trnsim::isa {

using arch::Engine;
using numerics::DType;

enum class MemSpace : uint8_t { kSbuf = 0, kPsum, kHbm };
std::string_view memSpaceName(MemSpace s);  ///< "sbuf", "psum", "hbm"

/// How an HBM tensor meets the host: inputs are written before a run, outputs read after.
enum class TensorKind : uint8_t { kInternal = 0, kInput, kOutput, kInOut };
std::string_view tensorKindName(TensorKind k);

/// A named block of memory. On-chip tensors (SBUF, PSUM) have shape[0] = partitions and a
/// row-major free part; HBM tensors are flat row-major arrays.
struct TensorDecl {
  std::string name;
  MemSpace space = MemSpace::kSbuf;
  DType dtype = DType::kFP32;
  std::vector<int64_t> shape;
  TensorKind kind = TensorKind::kInternal;
  uint32_t partitionStart = 0;  ///< on-chip: first partition
  uint64_t byteOffset = 0;      ///< on-chip: offset inside each partition; HBM: chip address
  uint32_t aliasOf = 0xffffffffu;  ///< a view (reshape/bitcast) of this tensor's memory, or none

  bool onChip() const { return space != MemSpace::kHbm; }
  int64_t numElements() const;
  /// On-chip: elements in one partition (product of shape[1:]); HBM: numElements().
  int64_t freeElements() const;
  /// On-chip: bytes the tensor occupies in each of its partitions; HBM: total bytes.
  uint64_t bytesPerPartition() const;
  uint32_t partitions() const;  ///< on-chip: shape[0]; HBM: 1
};

/// One dimension of an access pattern, in elements.
struct Dim {
  int64_t stride = 0;
  int64_t count = 0;
  bool operator==(const Dim&) const = default;
};
inline constexpr int kMaxFreeDims = 4;
inline constexpr uint32_t kNoTensor = 0xffffffffu;

/// Which elements of a tensor an operand touches: a partition dimension and up to four free
/// dimensions (hardware limit), iterated row-major (partition outermost).
/// On-chip: element (p, f) lives in partition tensor.partitionStart + partitionOffset + p at
/// free index offset + sum(i_k * free[k].stride); partitionStride must be 1.
/// HBM: the flat element index is offset + p * partitionStride + sum(i_k * free[k].stride).
struct AccessPattern {
  uint32_t tensor = kNoTensor;
  uint32_t partitionOffset = 0;
  int64_t partitionStride = 1;
  uint32_t partitions = 0;
  int64_t offset = 0;
  std::array<Dim, kMaxFreeDims> free{};
  uint8_t numFree = 0;

  bool valid() const { return tensor != kNoTensor; }
  int64_t freeSize() const;                    ///< product of the free counts (1 if none)
  int64_t numElements() const { return int64_t(partitions) * freeSize(); }
  bool operator==(const AccessPattern&) const = default;
};

enum class Opcode : uint8_t {
  kNcMatmul = 0,
  kNcTranspose,
  kActivation,
  kTensorTensor,
  kTensorScalar,
  kScalarTensorTensor,
  kTensorReduce,
  kTensorPartitionReduce,
  kTensorCopy,
  kTensorCopyPredicated,
  kTensorTensorScan,
  kMemset,
  kIota,
  kAffineSelect,
  kRangeSelect,
  kSelectReduce,
  kBnStats,
  kBnAggr,
  kReciprocal,
  kMax8,
  kNcFindIndex8,
  kNcMatchReplace8,
  kLocalGather,
  kDropout,
  kRng,
  kRand2,
  kSetRngSeed,
  kRandSetState,
  kRandGetState,
  kDmaCopy,
  kDmaTranspose,
  // Collectives between ranks (one rank = one chip running one program, rank ids 0..N-1;
  // docs/isa.md "Collectives", docs/fabric.md "Functional runs"). Operands are dst and src
  // access patterns (HBM or SBUF); their elements are taken row-major. On a lone Chip (no
  // fabric::Cluster) the world is one rank: rank 0.
  kAllReduce,          ///< nki.collectives.all_reduce: dst = reduce_op over the rank-list of src
  kAllGather,          ///< dst = concat of src over the rank-list, in list order
  kReduceScatter,      ///< dst = chunk (my list position) of reduce_op over the list of src
  kAllToAll,           ///< chunk j of src goes to list member j, into chunk (my position) of dst
  kCollectivePermute,  ///< nki.collectives.collective_permute: src goes to the pair's target
  kSendRecv,           ///< nki.isa.sendrecv: src to send_to_rank, dst from recv_from_rank
  kCoreBarrier,        ///< nki.isa.core_barrier: every member of the rank-list waits for all
  kCount,
};
inline constexpr int kNumOpcodes = static_cast<int>(Opcode::kCount);

/// Binary/comparison/bitwise ALU operations (nki.language operator names in comments).
enum class AluOp : uint8_t {
  kBypass = 0,  ///< no operation: pass the first operand through
  kAdd, kSubtract, kMultiply, kDivide, kMax, kMin, kPow, kMod, kAbsMax, kAbsMin,
  kIsEqual, kNotEqual, kIsGt, kIsGe, kIsLt, kIsLe,  ///< produce 1.0 or 0.0
  kBitwiseAnd, kBitwiseOr, kBitwiseXor,             ///< on the integer value
  kLogicalAnd, kLogicalOr, kLogicalXor,             ///< nonzero = true, produce 1.0/0.0
  kShiftLeft, kShiftRight, kLogicalShiftRight,
  kCount,
};
std::string_view aluOpName(AluOp op);  ///< "add", "subtract", ..., "is_ge"

/// ScalarE activation functions.
enum class ActFunc : uint8_t {
  kIdentity = 0, kCopy, kExp, kLog, kTanh, kSigmoid, kRelu, kGelu, kGeluApproxTanh, kSilu,
  kSqrt, kRsqrt, kReciprocal, kSquare, kSin, kCos, kArctan, kAbs, kSign, kSoftplus, kErf,
  kMish, kGeluDx, kSiluDx,
  kCount,
};
std::string_view actFuncName(ActFunc f);  ///< "identity", "exp", "gelu_apprx_tanh", ...

/// Instruction flags; which ones an opcode accepts is in its OpInfo.
enum InstrFlag : uint16_t {
  kFlagAccumulate = 1u << 0,    ///< nc_matmul: add into PSUM instead of overwriting
  kFlagDoubleRow = 1u << 1,     ///< nc_matmul: fp8 double_row perf mode (K = 2 x rows)
  kFlagIsTranspose = 1u << 2,   ///< nc_matmul: is_transpose (moving passes through)
  kFlagNegate = 1u << 3,        ///< tensor_reduce: negate the result
  kFlagReverse0 = 1u << 4,      ///< tensor_scalar: operand0 op0 data instead of data op0 operand0
  kFlagReverse1 = 1u << 5,      ///< tensor_scalar: operand1 op1 x instead of x op1 operand1
  kFlagReversePred = 1u << 6,   ///< tensor_copy_predicated: copy where predicate is zero
  kFlagIndirectSrc = 1u << 7,   ///< dma_copy: gather rows of src by the index operand
  kFlagIndirectDst = 1u << 8,   ///< dma_copy: scatter rows to dst by the index operand
  kFlagOobSkip = 1u << 9,       ///< dma_copy: skip out-of-bounds indices instead of failing
};

/// Operand access: read, written, or both.
enum class Access : uint8_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

inline constexpr int kMaxOperands = 5;

struct OperandInfo {
  std::string_view name;  ///< "dst", "stationary", ...
  Access access = Access::kRead;
  bool optional = false;
};

/// Static description of an opcode: name, operand slots, engines, which attributes it uses.
struct OpInfo {
  std::string_view name;  ///< nki.isa name: "nc_matmul"
  std::array<OperandInfo, kMaxOperands> operands{};
  uint8_t numOperands = 0;
  uint8_t engineMask = 0;  ///< bit (1 << Engine) per allowed engine
  Engine defaultEngine = Engine::kVector;
  std::array<std::string_view, 4> immNames{};  ///< names of used imm[] slots ("" = unused)
  std::array<std::string_view, 4> intNames{};  ///< names of used iarg[] slots
  bool usesAlu0 = false, usesAlu1 = false, usesReduce = false, usesAct = false;
  uint16_t flagMask = 0;  ///< flags this opcode accepts
};
const OpInfo& opInfo(Opcode op);
std::string_view opcodeName(Opcode op);

struct Operand {
  uint8_t slot = 0;  ///< index into OpInfo::operands
  AccessPattern ap;
  bool operator==(const Operand&) const = default;
};

/// One instruction. Which operands, imm/iarg slots and ALU fields mean what is given by
/// opInfo(opcode); unused fields stay at their defaults.
struct Instruction {
  Opcode opcode = Opcode::kTensorCopy;
  Engine engine = Engine::kVector;
  AluOp alu0 = AluOp::kBypass;
  AluOp alu1 = AluOp::kBypass;
  AluOp reduceOp = AluOp::kBypass;  ///< kBypass = no reduction
  ActFunc act = ActFunc::kIdentity;
  uint16_t flags = 0;
  uint16_t queue = 0;  ///< DMA queue index within the core (engine * queuesPerEngine + queue)
  uint32_t loc = 0;    ///< index into Program::locations (0 = unknown)
  std::array<float, 4> imm{};
  std::array<int64_t, 4> iarg{};
  std::vector<Operand> operands;  ///< present operands, in slot order

  /// The operand in `slot`, or nullptr when absent.
  const AccessPattern* operand(uint8_t slot) const {
    for (const Operand& o : operands) {
      if (o.slot == slot) return &o.ap;
    }
    return nullptr;
  }
  bool has(InstrFlag f) const { return (flags & f) != 0; }
  bool operator==(const Instruction&) const = default;
};

/// A kernel's source position, so errors and traces can name the user's own code.
struct SourceLocation {
  std::string file;
  uint32_t line = 0;
  bool operator==(const SourceLocation&) const = default;
};

/// True for the collective opcodes (all_reduce ... core_barrier): they exchange data or
/// synchronize with other ranks, and a fabric::Cluster runs them.
inline bool isCollective(Opcode op) {
  return op >= Opcode::kAllReduce && op <= Opcode::kCoreBarrier;
}

/// nki.collectives.ReplicaGroup: the ranks a collective runs on, as a list of disjoint
/// rank-lists; the collective runs independently inside each list, all lists at once
/// ([[0, 1, 2, 3], [4, 5, 6, 7]]). No lists means one list of every rank, in rank order.
/// collective_permute uses the same table for its source-target pairs: every list is one
/// [source, target] pair.
struct ReplicaGroup {
  std::vector<std::vector<uint32_t>> lists;
  bool allRanks() const { return lists.empty(); }
  bool operator==(const ReplicaGroup&) const = default;
};

/// What the verifier accepted: fingerprints of a program's contents and of the chip config it
/// was checked against (0: never verified). Set by KernelBuilder::finish and
/// isa::ensureVerified (verify.h); copies carry it, and any later change to the program
/// changes its fingerprint, so a changed program is verified again.
struct VerifiedStamp {
  uint64_t chip = 0;
  uint64_t program = 0;
};

/// A straight-line program for one NeuronCore.
struct Program {
  std::string name;
  std::string target;  ///< chip it was built for ("trn2"); informational
  std::vector<TensorDecl> tensors;
  std::vector<Instruction> instructions;
  std::vector<SourceLocation> locations{SourceLocation{}};  ///< [0] = unknown
  /// Rank groups of the collective instructions (their iarg "replica_group" / "pairs" index
  /// this table).
  std::vector<ReplicaGroup> replicaGroups;
  /// Set by the verifier only (see VerifiedStamp); not part of the program's contents.
  VerifiedStamp verified;

  /// "instruction 12 (nc_matmul) at kernel.py:40" for error messages.
  std::string instructionContext(size_t index) const;
  /// Index of the tensor called `name`, or kNoTensor.
  uint32_t findTensor(std::string_view name) const;
};

}  // namespace trnsim::isa
