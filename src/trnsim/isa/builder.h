#pragma once
// The kernel-building API: tensors in SBUF/PSUM/HBM, access patterns over them, and one call
// per instruction, mirroring nki.isa. It is the one way instructions are made: the NKI front
// end, the kernel library, the compiler and the planner all build programs through it.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::isa {

class KernelBuilder;

/// Python-style slice of one tensor dimension; `Slice::at(i)` selects one index and drops the
/// dimension from the resulting access pattern.
struct Slice {
  static constexpr int64_t kEnd = INT64_MAX;
  int64_t start = 0;
  int64_t stop = kEnd;
  int64_t step = 1;
  bool drop = false;

  static Slice all() { return {}; }
  static Slice range(int64_t start, int64_t stop, int64_t step = 1) { return {start, stop, step, false}; }
  static Slice at(int64_t i) { return {i, i + 1, 1, true}; }
};

/// A handle on one tensor of the program being built (cheap to copy).
class Tensor {
 public:
  Tensor() = default;
  Tensor(const KernelBuilder* builder, uint32_t id) : builder_(builder), id_(id) {}

  uint32_t id() const { return id_; }
  /// False for the handle a failed declaration returns; its patterns are invalid too.
  bool valid() const { return builder_ != nullptr; }
  /// Only for valid handles.
  const TensorDecl& decl() const;
  const std::vector<int64_t>& shape() const { return decl().shape; }
  DType dtype() const { return decl().dtype; }

  /// The whole tensor as an access pattern.
  AccessPattern ap() const;
  /// A slice per dimension (missing trailing dimensions are taken whole), like t[0:128, 512:1024].
  /// Invalid slices give an invalid pattern and record an error in the builder.
  AccessPattern operator()(std::initializer_list<Slice> slices) const;
  AccessPattern slice(const std::vector<Slice>& slices) const;
  /// A raw pattern, like NKI's tensor.ap(pattern=[[pstride, pcount], [stride, count]...], offset=).
  /// On-chip: the first pair's stride must be 1 partition and `offset` is split into the
  /// partition (offset / freeElements) and the free offset.
  AccessPattern pattern(const std::vector<Dim>& dims, int64_t offset = 0) const;

 private:
  const KernelBuilder* builder_ = nullptr;
  uint32_t id_ = kNoTensor;
};

/// A scalar operand given either as an immediate or as a per-partition [P, 1] tile.
struct ScalarOperand {
  float value = 0;
  AccessPattern tile;
  ScalarOperand(float v) : value(v) {}  // NOLINT(google-explicit-constructor)
  ScalarOperand(const AccessPattern& t) : tile(t) {}  // NOLINT(google-explicit-constructor)
};

struct MatmulOptions {
  bool accumulate = false;  ///< add into the PSUM tile instead of overwriting it
  bool doubleRow = false;   ///< fp8 double_row perf mode (trn2+): K = 2 x rows
  bool isTranspose = false;
};

struct DmaOptions {
  int queue = -1;             ///< DMA queue of the core; -1 = round-robin
  AccessPattern index;        ///< indirect gather/scatter row indices ([rows, 1] int32/uint32)
  bool indirectSrc = false;   ///< dst row r = src row index[r]
  bool indirectDst = false;   ///< dst row index[r] = src row r
  bool oobSkip = false;       ///< skip out-of-range indices instead of failing
};

/// Builds one Program for one NeuronCore. Every call verifies its instruction at once against
/// the chip's rules; the first error is kept (status()) and later calls are ignored, so kernel
/// code may check once at finish().
class KernelBuilder {
 public:
  KernelBuilder(const arch::ChipConfig& chip, std::string programName);

  const arch::ChipConfig& chip() const { return chip_; }
  const Program& program() const { return program_; }
  /// The first error so far, or ok.
  const Status& status() const { return status_; }

  // ---- tensors ----
  /// An HBM tensor; inputs and outputs are bound to host data by name.
  Tensor hbm(std::string name, DType dtype, std::vector<int64_t> shape,
             TensorKind kind = TensorKind::kInternal);
  /// An SBUF tensor [partitions, free...], placed by a first-fit allocator over all partitions.
  Tensor sbuf(std::string name, DType dtype, std::vector<int64_t> shape);
  /// A PSUM tensor; one that fits in a bank never straddles two.
  Tensor psum(std::string name, DType dtype, std::vector<int64_t> shape);
  /// On-chip tensors at an explicit place (NKI direct allocation); overlaps with live
  /// tensors are reported as kCapacity errors.
  Tensor sbufAt(std::string name, DType dtype, std::vector<int64_t> shape, uint32_t partitionStart,
                uint64_t byteOffset);
  Tensor psumAt(std::string name, DType dtype, std::vector<int64_t> shape, uint32_t partitionStart,
                uint64_t byteOffset);
  /// The same memory under another shape and/or dtype (same bytes per partition or fewer).
  Tensor view(const Tensor& base, std::string name, DType dtype, std::vector<int64_t> shape);
  /// An HBM tensor `shape` of `dtype` aliasing the HBM tensor `base`'s memory from
  /// `elementOffset` elements (of base's dtype) in: a reshape, bitcast or sub-range (one batch
  /// of a [B, M, K] tensor, a weight inside a packed buffer). It must lie inside base and start
  /// on a multiple of its own element size; otherwise kInvalidArgument naming both tensors.
  /// The view is kInternal: host data is bound through the base. Views of views alias the
  /// root tensor (offsets add up).
  Tensor hbmView(const Tensor& base, std::string name, DType dtype, std::vector<int64_t> shape,
                 int64_t elementOffset = 0);
  /// Returns an automatically placed on-chip tensor's space to the allocator.
  void release(const Tensor& t);
  /// Bytes per partition still free in SBUF / PSUM (largest free block).
  uint64_t sbufFreeBytes() const;
  uint64_t psumFreeBytes() const;

  /// Source position attached to the following instructions (kernel file:line).
  void setLocation(const std::string& file, uint32_t line);

  // ---- instructions (nki.isa) ----
  Status ncMatmul(const AccessPattern& dst, const AccessPattern& stationary,
                  const AccessPattern& moving, MatmulOptions opts = {});
  Status ncTranspose(const AccessPattern& dst, const AccessPattern& data,
                     Engine engine = Engine::kTensor);
  Status activation(const AccessPattern& dst, ActFunc op, const AccessPattern& data,
                    const AccessPattern& bias = {}, ScalarOperand scale = 1.0f,
                    AluOp reduceOp = AluOp::kBypass, const AccessPattern& reduceRes = {});
  Status tensorTensor(const AccessPattern& dst, const AccessPattern& data1,
                      const AccessPattern& data2, AluOp op, Engine engine = Engine::kVector);
  Status tensorScalar(const AccessPattern& dst, const AccessPattern& data, AluOp op0,
                      ScalarOperand operand0, AluOp op1 = AluOp::kBypass,
                      ScalarOperand operand1 = 0.0f, bool reverse0 = false, bool reverse1 = false,
                      Engine engine = Engine::kVector);
  Status scalarTensorTensor(const AccessPattern& dst, const AccessPattern& data, AluOp op0,
                            ScalarOperand operand0, AluOp op1, const AccessPattern& data1,
                            Engine engine = Engine::kVector);
  /// Reduces the free dimensions whose bit is set in axisMask (bit 0 = first free dim).
  Status tensorReduce(const AccessPattern& dst, AluOp op, const AccessPattern& data,
                      uint32_t axisMask, bool negate = false, Engine engine = Engine::kVector);
  Status tensorPartitionReduce(const AccessPattern& dst, AluOp op, const AccessPattern& data);
  Status tensorCopy(const AccessPattern& dst, const AccessPattern& src,
                    Engine engine = Engine::kVector);
  Status tensorCopyPredicated(const AccessPattern& dst, const AccessPattern& src,
                              const AccessPattern& predicate, bool reversePred = false,
                              Engine engine = Engine::kVector);
  Status tensorTensorScan(const AccessPattern& dst, const AccessPattern& data0,
                          const AccessPattern& data1, ScalarOperand initial, AluOp op0, AluOp op1);
  Status memset(const AccessPattern& dst, float value, Engine engine = Engine::kVector);
  /// dst[p, i...] = offset + channelMultiplier * p + sum(steps[k] * i_k).
  Status iota(const AccessPattern& dst, const std::vector<int64_t>& steps, float offset,
              float channelMultiplier);
  /// dst = cmp(offset + channelMultiplier * p + sum(steps[k] * i_k), 0) ? onTrue : onFalseValue.
  Status affineSelect(const AccessPattern& dst, const std::vector<int64_t>& steps,
                      float channelMultiplier, float offset, AluOp cmp,
                      const AccessPattern& onTrue, float onFalseValue);
  Status rangeSelect(const AccessPattern& dst, const AccessPattern& onTrue, AluOp cmp0,
                     AluOp cmp1, const AccessPattern& bound0, const AccessPattern& bound1,
                     float rangeStart, float onFalseValue, AluOp reduceOp = AluOp::kBypass,
                     const AccessPattern& reduceRes = {});
  Status selectReduce(const AccessPattern& dst, const AccessPattern& predicate,
                      const AccessPattern& onTrue, ScalarOperand onFalse,
                      AluOp reduceOp = AluOp::kBypass, const AccessPattern& reduceRes = {},
                      bool reversePred = false);
  Status bnStats(const AccessPattern& dst, const AccessPattern& data);
  Status bnAggr(const AccessPattern& dst, const AccessPattern& data);
  Status reciprocal(const AccessPattern& dst, const AccessPattern& data,
                    Engine engine = Engine::kVector);
  Status max8(const AccessPattern& dst, const AccessPattern& data);
  Status ncFindIndex8(const AccessPattern& dst, const AccessPattern& data,
                      const AccessPattern& vals);
  Status ncMatchReplace8(const AccessPattern& dst, const AccessPattern& data,
                         const AccessPattern& vals, float imm, const AccessPattern& dstIdx = {});
  Status localGather(const AccessPattern& dst, const AccessPattern& src,
                     const AccessPattern& index, int64_t numElemPerIdx, int64_t numValidIndices);
  Status dropout(const AccessPattern& dst, const AccessPattern& data, ScalarOperand prob,
                 Engine engine = Engine::kVector);
  Status rng(const AccessPattern& dst, Engine engine = Engine::kVector);
  Status rand2(const AccessPattern& dst, ScalarOperand min, ScalarOperand max,
               Engine engine = Engine::kVector);
  Status setRngSeed(const AccessPattern& seeds, Engine engine = Engine::kVector);
  Status randSetState(const AccessPattern& srcSeeds, Engine engine = Engine::kVector);
  Status randGetState(const AccessPattern& dst, Engine engine = Engine::kVector);
  Status dmaCopy(const AccessPattern& dst, const AccessPattern& src, const DmaOptions& opts = {});
  Status dmaTranspose(const AccessPattern& dst, const AccessPattern& src, int queue = -1);

  // ---- collectives (nki.collectives; nki.isa.sendrecv, core_barrier) ----
  // One rank = one chip running one program (core 0); ranks are numbered 0..N-1 by the
  // fabric::Cluster that runs the program. dst and src are HBM or SBUF access patterns of the
  // same dtype; elements are taken row-major over the pattern. `queue` is the DMA queue
  // (-1 = round-robin), as for dmaCopy.

  /// The index of a replica group in the program's table (added, or found when an equal one
  /// exists) for the collective calls: lists of ranks, each list one independent collective
  /// ({{0, 1, 2, 3}, {4, 5, 6, 7}}); {} = one list of every rank. Checked when used.
  uint32_t replicaGroup(std::vector<std::vector<uint32_t>> lists);
  /// The source-target pairs of collectivePermute, stored in the same table (one list per pair).
  uint32_t permutePairs(const std::vector<std::pair<uint32_t, uint32_t>>& pairs);

  /// dst = op(src of every member of my rank-list), op add, max or min, reduced in fp32 in
  /// list order and rounded once to dst's dtype. dst and src have equal element counts.
  Status allReduce(const AccessPattern& dst, const AccessPattern& src, AluOp op,
                   uint32_t replicaGroup, int queue = -1);
  /// dst (n x src elements for a list of n) = the members' src, concatenated in list order.
  Status allGather(const AccessPattern& dst, const AccessPattern& src, uint32_t replicaGroup,
                   int queue = -1);
  /// src (n x dst elements) is reduced across the list as in allReduce; the member at list
  /// position i keeps chunk i.
  Status reduceScatter(const AccessPattern& dst, const AccessPattern& src, AluOp op,
                       uint32_t replicaGroup, int queue = -1);
  /// src and dst hold n chunks: chunk j of src goes to list member j, into its dst chunk at my
  /// list position.
  Status allToAll(const AccessPattern& dst, const AccessPattern& src, uint32_t replicaGroup,
                  int queue = -1);
  /// For each (source, target) pair of `pairs` (permutePairs()), the target's dst = the
  /// source's src. A rank that is no pair's target keeps its dst unchanged.
  Status collectivePermute(const AccessPattern& dst, const AccessPattern& src, uint32_t pairs,
                           int queue = -1);
  /// Sends src to rank sendToRank and receives recvFromRank's src into dst, at once
  /// (nki.isa.sendrecv). Peers must call sendrecv naming this rank back.
  Status sendRecv(const AccessPattern& dst, const AccessPattern& src, uint32_t sendToRank,
                  uint32_t recvFromRank, uint32_t pipeId = 0, int queue = -1);
  /// Every member of my rank-list waits until all have arrived (nki.isa.core_barrier);
  /// `data` (optional) names the tensor the barrier protects.
  Status coreBarrier(uint32_t replicaGroup, const AccessPattern& data = {}, int queue = -1);

  /// Appends an already-formed instruction (used by the text/binary loaders and tests).
  Status append(Instruction inst);

  /// Checks the rules of the whole program (the location table, operands of one instruction
  /// overlapping, live tensors overlapping; each tensor and instruction was checked as it was
  /// added) and hands the program over, stamped as verified for chip() (isa::ensureVerified);
  /// the builder is then empty.
  Expected<Program> finish();

  /// Records an error found outside an instruction call (e.g. a bad slice); keeps the first.
  void fail(Status s) const;

 private:
  struct Block {
    uint64_t begin, end;
    uint32_t tensor;
  };
  Tensor declare(TensorDecl decl);
  Tensor allocate(std::string name, MemSpace space, DType dtype, std::vector<int64_t> shape);
  Status emit(Instruction inst);
  uint16_t nextQueue(int requested);

  arch::ChipConfig chip_;
  Program program_;
  mutable Status status_;
  std::vector<Block> sbufBlocks_, psumBlocks_;  ///< live automatically placed tensors
  uint64_t hbmNext_ = 0;
  uint32_t currentLoc_ = 0;
  uint16_t roundRobinQueue_ = 0;
};

}  // namespace trnsim::isa
