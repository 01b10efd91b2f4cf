#pragma once
// Helpers for the isa tests: a hand-built chip (so the tests do not depend on the config
// loader), and short ways to write tensors, access patterns and instructions.

#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"

namespace trnsim::isa::testing {

/// trn2-like numbers (NeuronCore-v3: 128 partitions x 192 KiB SBUF, 8 x 2 KiB PSUM banks,
/// 128x128 PE with an fp8 double_row mode, DMA transpose).
inline arch::ChipConfig trn2Chip() {
  arch::ChipConfig c;
  c.name = "trn2-test";
  c.coresPerChip = 8;
  c.pe.rows = 128;
  c.pe.cols = 128;
  c.pe.maxMovingFree = 512;
  c.pe.fp8Speedup = 2;
  c.mem.sbufPartitions = 128;
  c.mem.sbufBytesPerPartition = 192 * 1024;
  c.mem.psumBanks = 8;
  c.mem.psumBankBytesPerPartition = 2048;
  c.mem.hbmBytes = uint64_t(96) << 30;
  c.dma.enginesPerCore = 16;
  c.dma.queuesPerEngine = 16;
  c.dma.transposeEfficiency = 0.9;
  return c;
}

/// trn1-like: no fp8 speed-up, no DMA transpose.
inline arch::ChipConfig trn1Chip() {
  arch::ChipConfig c = trn2Chip();
  c.name = "trn1-test";
  c.pe.fp8Speedup = 1;
  c.dma.transposeEfficiency = 0;
  c.dma.sbufTransposeEfficiency = 0;
  return c;
}

inline uint32_t addTensor(Program& p, std::string name, MemSpace space, DType dtype,
                          std::vector<int64_t> shape, uint32_t partitionStart = 0,
                          uint64_t byteOffset = 0, TensorKind kind = TensorKind::kInternal) {
  TensorDecl t;
  t.name = std::move(name);
  t.space = space;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.partitionStart = partitionStart;
  t.byteOffset = byteOffset;
  t.kind = kind;
  p.tensors.push_back(std::move(t));
  return uint32_t(p.tensors.size() - 1);
}

/// An access pattern: partitions [pOff, pOff + parts) and free dims {stride, count}.
inline AccessPattern ap(uint32_t tensor, uint32_t pOff, uint32_t parts, int64_t offset,
                        std::initializer_list<Dim> dims, int64_t partitionStride = 1) {
  AccessPattern a;
  a.tensor = tensor;
  a.partitionOffset = pOff;
  a.partitions = parts;
  a.partitionStride = partitionStride;
  a.offset = offset;
  for (const Dim& d : dims) a.free[a.numFree++] = d;
  return a;
}

/// A contiguous [parts, f] tile at free offset 0.
inline AccessPattern tile(uint32_t tensor, uint32_t parts, int64_t f, uint32_t pOff = 0,
                          int64_t offset = 0) {
  return ap(tensor, pOff, parts, offset, {Dim{1, f}});
}

inline Instruction inst(Opcode op, std::initializer_list<std::pair<int, AccessPattern>> operands,
                        Engine engine) {
  Instruction in;
  in.opcode = op;
  in.engine = engine;
  for (const auto& [slot, a] : operands) in.operands.push_back(Operand{uint8_t(slot), a});
  return in;
}

inline Instruction inst(Opcode op, std::initializer_list<std::pair<int, AccessPattern>> operands) {
  return inst(op, operands, opInfo(op).defaultEngine);
}

}  // namespace trnsim::isa::testing
