#pragma once
// Private to the functional interpreter (src/trnsim/sim/functional*.cpp): the chip's state,
// operand views and their gathers and scatters, and Exec, the execution of one instruction,
// whose opcode handlers live in one file per engine. docs/sim.md, "Functional execution".

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/isa/operand_layout.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional.h"
#include "trnsim/sim/functional_math.h"
#include "trnsim/support/random.h"

namespace trnsim::sim {

namespace detail {

using isa::AccessPattern;
using isa::AluOp;
using isa::Instruction;
using isa::MemSpace;
using isa::Opcode;
using isa::Program;
using isa::TensorDecl;
using numerics::DType;

inline uint64_t mixSeed(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b * 0xD6E8FEB86659FD93ull);
  return support::splitmix64(x);
}

struct CoreState {
  Memory sbuf, psum;
  /// RNG lanes per engine, created from the run's seed on first use.
  std::array<std::vector<RngState>, arch::kNumEngines> rng;
};

// ---------------------------------------------------------------------------------------------
// Operand views (functional_views.cpp): an access pattern resolved to byte offsets in one
// memory.

struct View : isa::OperandLayout {
  Memory* mem = nullptr;
  const TensorDecl* decl = nullptr;
  std::string_view slot;
  DType dtype = DType::kFP32;

  /// "[p, i0, i1]" for element `idx` (row-major over the access pattern).
  std::string elementString(int64_t idx) const;
};

/// Gives the sentinel to the chunks of its memory that `v`'s bounding box covers and nothing
/// touched before (Memory::touch). Every view is touched once, when made, before any gather
/// or scatter through it (or a view of part of it) runs.
void touch(const View& v);
/// Raw element bytes of `v` in row-major order.
void gatherRaw(const View& v, std::byte* out);
/// Writes raw element bytes (row-major); elements whose mask byte is 0 are left alone.
void scatterRaw(const View& v, const std::byte* in, const uint8_t* mask = nullptr);
/// Marks every element of `v` written (for a handler that stored them through data()).
void markWritten(const View& v);
/// True when `v` is P rows of F contiguous elements, row p at byte base + p * rowStride.
inline bool contiguousRows(const View& v) {
  return v.count[0] == 1 && v.count[1] == 1 && v.count[2] == 1 &&
         (v.stride[3] == v.esize || v.F <= 1);
}
/// Index of the first element of `v` with a byte nothing wrote, or nullopt.
std::optional<int64_t> firstUninitialized(const View& v);
/// Per element: 1 when every byte of it was written.
std::vector<uint8_t> initializedFlags(const View& v);
void gatherFloats(const View& v, float* out);
void scatterFloats(const View& v, const float* in, numerics::Rounding r,
                   numerics::StochasticState* st);

inline bool isIntType(DType t) { return !numerics::isFloat(t); }
inline int typeBits(DType t) { return int(numerics::dtypeSize(t) * 8); }
/// Integer of element bytes: signed types sign-extended, others zero-extended (float types
/// give their bit pattern).
int64_t decodeBits(DType t, const std::byte* p);
void encodeBits(DType t, int64_t v, std::byte* p);

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The chip's state (functional.cpp; the RNG lanes in functional_random.cpp)

struct FunctionalChip::Impl {
  arch::ChipConfig config;
  uint64_t hbmBytes = 0;
  Memory hbm;
  std::vector<detail::CoreState> cores;
  uint64_t runSeed = 0;

  /// Allocates the HBM image before anything touches it, refusing with a clear error (naming
  /// the largest HBM tensors of `programs`) when the host cannot hold it: a byte of simulated
  /// HBM costs 1.125 bytes of host memory (the value and its written bit).
  Status reserveHbm(std::span<const isa::Program> programs);

  Memory& memoryFor(uint32_t core, isa::MemSpace space) {
    detail::CoreState& c = cores[core];
    switch (space) {
      case isa::MemSpace::kSbuf:
        if (!c.sbuf.allocated()) c.sbuf.allocate(config.mem.sbufBytesPerCore());
        return c.sbuf;
      case isa::MemSpace::kPsum:
        if (!c.psum.allocated()) c.psum.allocate(config.mem.psumBytesPerCore());
        return c.psum;
      case isa::MemSpace::kHbm:
        break;
    }
    if (!hbm.allocated() && hbmBytes > 0) hbm.allocate(hbmBytes);
    return hbm;
  }
  uint64_t rowBytes(isa::MemSpace space) const { return isa::partitionRowBytes(config, space); }
  RngState& rngLane(uint32_t core, arch::Engine engine, uint32_t lane);
  /// Starts a run: the random state from `seed` again.
  void resetRandom(uint64_t seed) {
    runSeed = seed;
    for (detail::CoreState& c : cores)
      for (auto& lanes : c.rng) lanes.clear();
  }
};

namespace detail {

// ---------------------------------------------------------------------------------------------
// Execution of one instruction. run() (functional.cpp) does the preamble every opcode shares,
// once: a view of every operand, bounds-checked against its memory; every required operand
// present; the elementwise operands shaped like dst. Then it dispatches to the opcode's
// handler: TensorE in functional_tensor.cpp, ScalarE functional_scalar.cpp, VectorE
// functional_vector.cpp, GpSimd functional_gpsimd.cpp, the RNG instructions
// functional_random.cpp, DMA and collectives functional_dma.cpp. The operand access a
// fabric::Cluster uses for collectives is in functional_io.cpp.

class Exec {
 public:
  Exec(FunctionalChip::Impl& impl, const Program& program, uint32_t core, size_t index,
       const RunOptions& opts, bool multiCore)
      : impl_(impl),
        prog_(program),
        in_(program.instructions[index]),
        info_(isa::opInfo(in_.opcode)),
        core_(core),
        index_(index),
        opts_(opts),
        multiCore_(multiCore) {}

  Status run();
  /// Operand `slot` as raw bytes (row-major over the pattern); checks initialization.
  Status readOperandBytes(uint8_t slot, std::vector<std::byte>& out);
  /// Operand `slot` as a span of its memory when it is one contiguous run (else empty).
  Status operandSpan(uint8_t slot, std::span<const std::byte>& out);
  /// Raw bytes (row-major over the pattern) into operand `slot`.
  Status writeOperandBytes(uint8_t slot, std::span<const std::byte> data);

 private:
  // ---- errors ----
  std::string where() const {
    std::string ctx = prog_.instructionContext(index_);
    return multiCore_ ? fmt::format("core {} {}", core_, ctx) : ctx;
  }
  Status error(ErrorCode code, std::string message) const {
    return {code, std::move(message), where()};
  }
  std::string describe(const View& v) const {
    return fmt::format("operand '{}' (tensor '{}')", v.slot,
                       v.decl != nullptr ? v.decl->name : "?");
  }

  // ---- the preamble (functional.cpp) ----
  Status prepareOperands();
  /// Runs the opcode's handler on the prepared operands.
  Status dispatch();
  /// Whether the instruction runs as slices of its partitions on opts_.threads threads: a
  /// partition-local opcode (elementwise, or a DMA into SBUF/PSUM), operands with equal
  /// partition counts, big enough, rounding to nearest even (stochastic rounding draws its
  /// bits in element order), inputs all initialized.
  bool splitsByPartition() const;
  Status runByPartition();
  /// The view of operand `slot`, made by prepareOperands (only for present slots).
  const View& operand(uint8_t slot) const { return views_[slot]; }
  bool has(uint8_t slot) const { return slot < views_.size() && ((present_ >> slot) & 1u) != 0; }
  /// Ok when operand `slot` is present, else the error naming it.
  Status require(uint8_t slot) const;

  // ---- operands (functional_views.cpp) ----
  /// A view of operand `slot`, checked against its memory.
  Expected<View> makeView(uint8_t slot);
  Status checkInit(const View& v) const;
  Status readFloats(const View& v, std::vector<float>& out) const;
  Status readInts(const View& v, std::vector<int64_t>& out, bool bits) const;
  Status readRaw(const View& v, std::vector<std::byte>& out) const;
  Status readNonzero(const View& v, std::vector<uint8_t>& out) const;
  /// Per-partition scalar: the [P,1] tile in `slot` if present, else imm[immIndex].
  Status scalarPerPartition(uint8_t slot, int immIndex, uint32_t P, std::vector<float>& out);
  numerics::StochasticState stochastic(uint8_t slot) const {
    return {mixSeed(opts_.seed, 0x5EEDull + core_), (uint64_t(index_) * 16 + slot) << 32};
  }
  void writeFloats(const View& v, const std::vector<float>& vals, uint8_t slot,
                   bool forceRne = false) const {
    auto st = stochastic(slot);
    scatterFloats(v, vals.data(), forceRne ? numerics::Rounding::kNearestEven : opts_.rounding,
                  &st);
  }
  void writeInts(const View& v, const std::vector<int64_t>& vals, uint8_t slot) const;
  /// dst = src element by element (row-major): the raw bits when `bitCopy` (equal dtypes),
  /// else through fp32, rounded as RunOptions::rounding says or to nearest even (`forceRne`).
  Status copyElements(const View& dst, const View& src, bool bitCopy, bool forceRne);
  Status expectShape(const View& a, const View& b) const {
    if (a.P != b.P || a.F != b.F)
      return error(ErrorCode::kInvalidArgument,
                   fmt::format("{} is [{} partitions x {}] but {} is [{} x {}]", describe(a), a.P,
                               a.F, describe(b), b.P, b.F));
    return {};
  }
  Status writeReduce(uint8_t slot, AluOp op, const std::vector<float>& vals, uint32_t P, int64_t F);
  RngState& lane(const View& v, uint32_t p) {
    return impl_.rngLane(core_, in_.engine, uint32_t(v.row0) + p);
  }

  // ---- opcodes ----
  // TensorE (functional_tensor.cpp)
  Status matmul();
  Status transpose();  ///< nc_transpose, and dma_transpose
  // ScalarE (functional_scalar.cpp)
  Status activation();
  // VectorE (functional_vector.cpp; most also run on ScalarE or GpSimd)
  Status tensorTensor();
  Status tensorScalar();
  Status scalarTensorTensor();
  Status tensorReduce();
  Status tensorCopy();
  Status copyPredicated();
  Status scan();
  Status memset();
  Status rangeSelect();
  Status selectReduce();
  Status bnStats();
  Status bnAggr();
  Status reciprocal();
  Status max8();
  Status findIndex8();
  Status matchReplace8();
  // GpSimd (functional_gpsimd.cpp)
  Status partitionReduce();
  Status iota(bool select);
  Status localGather();
  // RNG instructions (functional_random.cpp)
  Status dropout();
  Status rng();
  Status rand2();
  Status setSeed();
  Status setState();
  Status getState();
  // DMA queues (functional_dma.cpp)
  Status dmaCopy();
  Status dmaIndirect();
  Status collectiveAlone();

  FunctionalChip::Impl& impl_;
  const Program& prog_;
  const Instruction& in_;
  const isa::OpInfo& info_;
  uint32_t core_;
  size_t index_;
  const RunOptions& opts_;
  bool multiCore_;
  std::array<View, isa::kMaxOperands> views_{};
  uint32_t present_ = 0;  ///< bit i: operand slot i is present (its view made)
  /// A slice of runByPartition: splitsByPartition already checked every input whole.
  bool inputsChecked_ = false;
};

}  // namespace detail
}  // namespace trnsim::sim
