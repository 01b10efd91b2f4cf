// Host access: tensors written and read by the host (sim::Chip's write / read), and single
// operands of one instruction read and written by a fabric::Cluster for its collectives.

#include <algorithm>
#include <utility>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim {

namespace detail {

Status Exec::readOperandBytes(uint8_t slot, std::vector<std::byte>& out) {
  TRNSIM_ASSIGN_OR_RETURN(View v, makeView(slot));
  return readRaw(v, out);
}

Status Exec::operandSpan(uint8_t slot, std::span<const std::byte>& out) {
  TRNSIM_ASSIGN_OR_RETURN(View v, makeView(slot));
  out = {};
  bool contiguous = v.count[0] == 1 && v.count[1] == 1 && v.count[2] == 1 &&
                    v.stride[3] == v.esize && (v.P <= 1 || v.rowStride == v.F * v.esize);
  if (!contiguous || v.numElements() == 0) return {};
  TRNSIM_RETURN_IF_ERROR(checkInit(v));
  out = std::span<const std::byte>(v.mem->data() + v.base, size_t(v.numElements() * v.esize));
  return {};
}

Status Exec::writeOperandBytes(uint8_t slot, std::span<const std::byte> data) {
  TRNSIM_ASSIGN_OR_RETURN(View v, makeView(slot));
  if (int64_t(data.size()) != v.numElements() * v.esize)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("{} takes {} bytes; the collective delivers {}", describe(v),
                             v.numElements() * v.esize, data.size()));
  scatterRaw(v, data.data());
  return {};
}

}  // namespace detail

using detail::View;
using isa::Program;
using isa::TensorDecl;

namespace {

Expected<std::pair<Memory*, View>> hostView(FunctionalChip::Impl& impl, const Program& program,
                                            uint32_t core, uint32_t tensor) {
  if (tensor >= program.tensors.size())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no tensor {} in program '{}'", tensor, program.name));
  const TensorDecl& d = program.tensors[tensor];
  if (core >= impl.cores.size())
    return Status(ErrorCode::kInvalidArgument, fmt::format("core {} does not exist", core));
  View v;
  v.decl = &d;
  v.slot = "host";
  v.dtype = d.dtype;
  v.esize = int64_t(numerics::dtypeSize(d.dtype));
  v.mem = &impl.memoryFor(core, d.space);
  v.P = d.partitions();
  v.F = d.freeElements();
  v.count = {1, 1, 1, std::max<int64_t>(v.F, 0)};
  v.stride = {0, 0, 0, v.esize};
  if (d.onChip()) {
    const int64_t rowBytes = int64_t(impl.rowBytes(d.space));
    if (d.partitionStart + v.P > impl.config.mem.sbufPartitions ||
        int64_t(d.byteOffset) + v.F * v.esize > rowBytes)
      return Status(ErrorCode::kOutOfBounds,
                    fmt::format("tensor '{}' lies outside its memory", d.name));
    v.base = int64_t(d.partitionStart) * rowBytes + int64_t(d.byteOffset);
    v.rowStride = rowBytes;
    v.onChip = true;
    v.row0 = d.partitionStart;
    v.lo = int64_t(d.byteOffset);
    v.hi = v.lo + v.F * v.esize;
  } else {
    v.P = 1;
    v.F = d.numElements();
    v.count[3] = std::max<int64_t>(v.F, 0);
    v.base = int64_t(d.byteOffset);
    v.rowStride = 0;
    if (uint64_t(v.base) + uint64_t(v.F * v.esize) > v.mem->size())
      return Status(ErrorCode::kOutOfBounds,
                    fmt::format("tensor '{}' lies outside the HBM the programs declare", d.name));
    v.lo = v.base;
    v.hi = v.base + v.F * v.esize;
  }
  detail::touch(v);
  return std::make_pair(v.mem, v);
}

/// Ok when `program` has instruction `index` and the chip has core `core`.
Status checkOperandAccess(const FunctionalChip::Impl& impl, const Program& program, uint32_t core,
                          size_t index) {
  if (index >= program.instructions.size() || core >= impl.cores.size())
    return {ErrorCode::kInvalidArgument, fmt::format("no instruction {} on core {}", index, core)};
  return {};
}

}  // namespace

Status FunctionalChip::writeTensor(const Program& program, uint32_t core, uint32_t tensor,
                                   std::span<const std::byte> data) {
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  TRNSIM_ASSIGN_OR_RETURN(auto mv, hostView(*impl_, program, core, tensor));
  const View& v = mv.second;
  if (int64_t(data.size()) != v.numElements() * v.esize)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("tensor '{}' takes {} bytes; got {}", v.decl->name,
                              v.numElements() * v.esize, data.size()));
  scatterRaw(v, data.data());
  return {};
}

Expected<std::vector<std::byte>> FunctionalChip::readTensor(const Program& program, uint32_t core,
                                                            uint32_t tensor) const {
  TRNSIM_RETURN_IF_ERROR(impl_->reserveHbm({&program, 1}));
  TRNSIM_ASSIGN_OR_RETURN(auto mv, hostView(*impl_, program, core, tensor));
  const View& v = mv.second;
  std::vector<std::byte> out(size_t(v.numElements() * v.esize));
  gatherRaw(v, out.data());
  return out;
}

Expected<std::vector<std::byte>> FunctionalChip::readOperand(const Program& program, uint32_t core,
                                                             size_t index, uint8_t slot,
                                                             const RunOptions& opts) {
  TRNSIM_RETURN_IF_ERROR(checkOperandAccess(*impl_, program, core, index));
  detail::Exec ex(*impl_, program, core, index, opts, false);
  std::vector<std::byte> out;
  TRNSIM_RETURN_IF_ERROR(ex.readOperandBytes(slot, out));
  return out;
}

Expected<std::span<const std::byte>> FunctionalChip::operandBytesInPlace(const Program& program,
                                                                         uint32_t core,
                                                                         size_t index, uint8_t slot,
                                                                         const RunOptions& opts) {
  TRNSIM_RETURN_IF_ERROR(checkOperandAccess(*impl_, program, core, index));
  detail::Exec ex(*impl_, program, core, index, opts, false);
  std::span<const std::byte> out;
  TRNSIM_RETURN_IF_ERROR(ex.operandSpan(slot, out));
  return out;
}

Status FunctionalChip::writeOperand(const Program& program, uint32_t core, size_t index,
                                    uint8_t slot, std::span<const std::byte> data,
                                    const RunOptions& opts) {
  TRNSIM_RETURN_IF_ERROR(checkOperandAccess(*impl_, program, core, index));
  detail::Exec ex(*impl_, program, core, index, opts, false);
  return ex.writeOperandBytes(slot, data);
}

}  // namespace trnsim::sim
