#pragma once
// A small hand-made chip, program and timeline whose numbers the profile tests derive by hand.

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/sim/timeline.h"

namespace trnsim::profile::testing {

/// 1 GHz PE clock, 128x128 array: bf16 peak 2*128*128*1e9 = 32768e9 FLOP/s per core.
/// 400 GB/s HBM, 16 queues per DMA engine.
inline arch::ChipConfig testChip() {
  arch::ChipConfig chip;
  chip.name = "testchip";
  chip.coresPerChip = 2;
  chip.pe.clockGhz = 1.0;
  chip.pe.rows = 128;
  chip.pe.cols = 128;
  chip.mem.hbmGbps = 400;
  chip.dma.queuesPerEngine = 16;
  return chip;
}

/// Slot of operand `name` of `op` (the test fails loudly on a typo through an out-of-range slot).
inline uint8_t slotOf(isa::Opcode op, std::string_view name) {
  const isa::OpInfo& info = isa::opInfo(op);
  for (uint8_t s = 0; s < info.numOperands; ++s) {
    if (info.operands[s].name == name) return s;
  }
  return 0xff;
}

inline isa::AccessPattern whole(uint32_t tensor, uint32_t partitions, int64_t freeCount) {
  isa::AccessPattern ap;
  ap.tensor = tensor;
  ap.partitions = partitions;
  ap.numFree = 1;
  ap.free[0] = {1, freeCount};
  return ap;
}

/// Odd source file name: quote, backslash, newline, tab, a control byte and non-ASCII text.
inline constexpr std::string_view kOddFile = "dir/k\"er\\nel\n\t\x01\xc3\xa9.py";

/// Core 0's program: 0 nc_matmul, 1 activation, 2 dma_copy (q3), 3 dma_copy (q17),
/// 4 tensor_tensor.
inline isa::Program testProgram() {
  using isa::Opcode;
  isa::Program p;
  p.name = "profile_test";
  p.target = "testchip";
  auto tensor = [&](std::string name, isa::MemSpace space, numerics::DType dt,
                    std::vector<int64_t> shape) {
    isa::TensorDecl t;
    t.name = std::move(name);
    t.space = space;
    t.dtype = dt;
    t.shape = std::move(shape);
    p.tensors.push_back(t);
    return uint32_t(p.tensors.size() - 1);
  };
  const uint32_t a = tensor("a", isa::MemSpace::kSbuf, numerics::DType::kBF16, {128, 128});
  const uint32_t b = tensor("b", isa::MemSpace::kSbuf, numerics::DType::kBF16, {128, 512});
  const uint32_t acc = tensor("acc", isa::MemSpace::kPsum, numerics::DType::kFP32, {128, 512});
  const uint32_t x = tensor("x", isa::MemSpace::kHbm, numerics::DType::kBF16, {65536});
  p.locations.push_back({std::string(kOddFile), 40});

  auto inst = [&](Opcode op, arch::Engine engine,
                  std::vector<std::pair<std::string_view, isa::AccessPattern>> operands) {
    isa::Instruction i;
    i.opcode = op;
    i.engine = engine;
    i.loc = 1;
    for (auto& [name, ap] : operands) i.operands.push_back({slotOf(op, name), ap});
    std::sort(i.operands.begin(), i.operands.end(),
              [](const isa::Operand& l, const isa::Operand& r) { return l.slot < r.slot; });
    p.instructions.push_back(i);
    return &p.instructions.back();
  };
  inst(Opcode::kNcMatmul, arch::Engine::kTensor,
       {{"dst", whole(acc, 128, 512)},
        {"stationary", whole(a, 128, 128)},
        {"moving", whole(b, 128, 512)}});
  inst(Opcode::kActivation, arch::Engine::kScalar,
       {{"dst", whole(b, 128, 512)}, {"data", whole(acc, 128, 512)}});
  isa::AccessPattern hbm = whole(x, 128, 512);
  hbm.partitionStride = 512;
  inst(Opcode::kDmaCopy, arch::Engine::kDma, {{"dst", whole(b, 128, 512)}, {"src", hbm}})->queue =
      3;
  inst(Opcode::kDmaCopy, arch::Engine::kDma, {{"dst", hbm}, {"src", whole(b, 128, 512)}})->queue =
      17;
  inst(Opcode::kTensorTensor, arch::Engine::kVector,
       {{"dst", whole(b, 128, 512)}, {"data1", whole(b, 128, 512)}, {"data2", whole(b, 128, 512)}});
  p.instructions.back().alu0 = isa::AluOp::kAdd;
  return p;
}

inline sim::TimelineEvent event(uint32_t core, arch::Engine engine, uint16_t queue,
                                uint32_t instruction, double start, double end, double ready,
                                uint64_t bytes, double flops) {
  sim::TimelineEvent e;
  e.core = core;
  e.engine = engine;
  e.queue = queue;
  e.instruction = instruction;
  e.startNs = start;
  e.endNs = end;
  e.readyNs = ready;
  e.hbmBytes = bytes;
  e.flops = flops;
  return e;
}

inline constexpr double kMatmulFlops = 2.0 * 128 * 128 * 512;  // 16777216
inline constexpr double kCore1Flops = 2.0 * 128 * 128 * 256;   // 8388608

/// Core 0 runs testProgram(); core 1 one matmul with no program to name it.
///   tensor  [0, 1000)     scalar [1000, 1500)   vector [1500, 2000) ready 1250
///   dma q3  [0, 800)  131072 B      dma q17 [400, 1200) 65536 B, ready 100
///   core 1 tensor [0, 500)
inline sim::Timeline testTimeline(bool withStats = true) {
  using arch::Engine;
  sim::Timeline t;
  t.events = {
      event(0, Engine::kTensor, 0, 0, 0, 1000, 0, 0, kMatmulFlops),
      event(0, Engine::kScalar, 0, 1, 1000, 1500, 1000, 0, 0),
      event(0, Engine::kDma, 3, 2, 0, 800, 0, 131072, 0),
      event(0, Engine::kDma, 17, 3, 400, 1200, 100, 65536, 0),
      event(0, Engine::kVector, 0, 4, 1500, 2000, 1250, 0, 0),
      event(1, Engine::kTensor, 0, 99, 0, 500, 0, 0, kCore1Flops),
  };
  t.endNs = 2000;
  if (withStats) {
    t.cores.resize(2);
    auto& c0 = t.cores[0];
    c0.busyNs[size_t(Engine::kTensor)] = 1000;
    c0.busyNs[size_t(Engine::kScalar)] = 500;
    c0.busyNs[size_t(Engine::kVector)] = 500;
    c0.busyNs[size_t(Engine::kDma)] = 1200;
    c0.endNs = 2000;
    c0.tensorFlops = kMatmulFlops;
    c0.tensorFlopsAtPeakNs = kMatmulFlops / 32768.0;  // 512 ns
    c0.hbmReadBytes = 131072;
    c0.hbmWriteBytes = 65536;
    c0.instructions = 5;
    auto& c1 = t.cores[1];
    c1.busyNs[size_t(Engine::kTensor)] = 500;
    c1.endNs = 500;
    c1.tensorFlops = kCore1Flops;
    c1.tensorFlopsAtPeakNs = kCore1Flops / 32768.0;  // 256 ns
    c1.instructions = 1;
  }
  return t;
}

}  // namespace trnsim::profile::testing
