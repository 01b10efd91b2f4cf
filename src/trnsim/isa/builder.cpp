// KernelBuilder: tensors (declaration, placement, views, slicing), the instruction stream
// (emit, queues) and finish; the per-opcode emitters are builder_ops.cpp.

#include "trnsim/isa/builder.h"

#include <algorithm>
#include <fmt/format.h>

#include "trnsim/isa/verify.h"

namespace trnsim::isa {
namespace {

constexpr uint64_t kSbufAlignBytes = 64;
constexpr uint64_t kHbmAlignBytes = 64;

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string shapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

/// Row-major element strides of `shape` starting at dimension `first`.
std::vector<int64_t> rowMajorStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

/// Merges adjacent free dims that are contiguous in memory until at most kMaxFreeDims remain.
bool compactFreeDims(std::vector<Dim>& dims) {
  for (size_t i = dims.size(); dims.size() > kMaxFreeDims && i-- > 1;) {
    if (dims[i - 1].stride == dims[i].stride * dims[i].count) {
      dims[i - 1] = {dims[i].stride, dims[i - 1].count * dims[i].count};
      dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  return dims.size() <= kMaxFreeDims;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Tensor views

const TensorDecl& Tensor::decl() const { return builder_->program().tensors[id_]; }

AccessPattern Tensor::ap() const { return slice({}); }

AccessPattern Tensor::operator()(std::initializer_list<Slice> slices) const {
  return slice(std::vector<Slice>(slices));
}

AccessPattern Tensor::slice(const std::vector<Slice>& slices) const {
  if (!valid()) return {};  // the failed declaration already recorded its error
  const TensorDecl& d = decl();
  auto bad = [&](const std::string& why) {
    builder_->fail(Status(ErrorCode::kInvalidArgument,
                          fmt::format("bad slice of tensor '{}' {}: {}", d.name,
                                      shapeString(d.shape), why)));
    return AccessPattern{};
  };
  if (slices.size() > d.shape.size())
    return bad(fmt::format("{} indices for {} dimensions", slices.size(), d.shape.size()));
  const std::vector<int64_t> strides = rowMajorStrides(d.shape);
  AccessPattern ap;
  ap.tensor = id_;
  std::vector<Dim> freeDims;
  for (size_t i = 0; i < d.shape.size(); ++i) {
    Slice s = i < slices.size() ? slices[i] : Slice::all();
    const int64_t n = d.shape[i];
    int64_t start = s.start < 0 ? s.start + n : s.start;
    int64_t stop = s.stop == Slice::kEnd ? n : (s.stop < 0 ? s.stop + n : s.stop);
    if (s.step < 1) return bad(fmt::format("dimension {}: step {} must be >= 1", i, s.step));
    if (start < 0 || start >= n || stop > n || stop <= start)
      return bad(fmt::format("dimension {}: range {}:{} is outside 0:{} or empty", i, s.start,
                             s.stop == Slice::kEnd ? std::string() : std::to_string(s.stop), n));
    const int64_t count = (stop - start + s.step - 1) / s.step;
    if (i == 0) {
      if (d.onChip()) {
        if (s.step != 1 && count > 1)
          return bad("the partition dimension of an on-chip tensor must have step 1");
        ap.partitionOffset = uint32_t(start);
        ap.partitionStride = 1;
      } else {
        ap.offset += start * strides[0];
        ap.partitionStride = strides[0] * s.step;
      }
      ap.partitions = uint32_t(s.drop ? 1 : count);
      if (s.drop && !d.onChip()) ap.partitionStride = strides[0];
      continue;
    }
    // On-chip free offsets count within the partition row: strides of dims >= 1 are the same.
    ap.offset += start * strides[i];
    if (!s.drop) freeDims.push_back({strides[i] * s.step, count});
  }
  if (!compactFreeDims(freeDims))
    return bad(fmt::format("{} free dimensions remain; the hardware allows {}", freeDims.size(),
                           kMaxFreeDims));
  ap.numFree = uint8_t(freeDims.size());
  std::copy(freeDims.begin(), freeDims.end(), ap.free.begin());
  return ap;
}

AccessPattern Tensor::pattern(const std::vector<Dim>& dims, int64_t offset) const {
  if (!valid()) return {};  // the failed declaration already recorded its error
  const TensorDecl& d = decl();
  auto bad = [&](const std::string& why) {
    builder_->fail(Status(ErrorCode::kInvalidArgument,
                          fmt::format("bad access pattern on tensor '{}': {}", d.name, why)));
    return AccessPattern{};
  };
  if (dims.empty() || dims.size() > size_t(kMaxFreeDims) + 1)
    return bad(fmt::format("{} dimensions given; expected 1 partition dimension and up to {} free",
                           dims.size(), kMaxFreeDims));
  if (offset < 0) return bad("negative offset");
  AccessPattern ap;
  ap.tensor = id_;
  ap.partitions = uint32_t(std::max<int64_t>(dims[0].count, 0));
  if (d.onChip()) {
    if (dims[0].stride != 1 && dims[0].count > 1)
      return bad(fmt::format("partition stride {} on an on-chip tensor; partitions must be "
                             "contiguous (stride 1)", dims[0].stride));
    const int64_t rowElems = std::max<int64_t>(d.freeElements(), 1);
    ap.partitionOffset = uint32_t(offset / rowElems);
    ap.offset = offset % rowElems;
  } else {
    ap.partitionStride = dims[0].stride;
    ap.offset = offset;
  }
  ap.numFree = uint8_t(dims.size() - 1);
  for (size_t i = 1; i < dims.size(); ++i) ap.free[i - 1] = dims[i];
  return ap;
}

// ---------------------------------------------------------------------------------------------
// Builder: tensors

KernelBuilder::KernelBuilder(const arch::ChipConfig& chip, std::string programName) : chip_(chip) {
  program_.name = std::move(programName);
  program_.target = chip.name;
}

void KernelBuilder::fail(Status s) const {
  if (status_.isOk() && !s.isOk()) status_ = std::move(s);
}

void KernelBuilder::setLocation(const std::string& file, uint32_t line) {
  SourceLocation loc{file, line};
  if (program_.locations.back() == loc) {
    currentLoc_ = uint32_t(program_.locations.size() - 1);
    return;
  }
  program_.locations.push_back(std::move(loc));
  currentLoc_ = uint32_t(program_.locations.size() - 1);
}

Tensor KernelBuilder::declare(TensorDecl decl) {
  if (!status_.isOk()) return {};
  if (program_.findTensor(decl.name) != kNoTensor) {
    fail(Status(ErrorCode::kInvalidArgument,
                fmt::format("a tensor named '{}' already exists; give each tensor a unique name",
                            decl.name)));
    return {};
  }
  for (auto dim : decl.shape) {
    if (dim <= 0) {
      fail(Status(ErrorCode::kInvalidArgument,
                  fmt::format("tensor '{}' has shape {}; every dimension must be positive",
                              decl.name, shapeString(decl.shape))));
      return {};
    }
  }
  if (decl.shape.empty()) {
    fail(Status(ErrorCode::kInvalidArgument,
                fmt::format("tensor '{}' has an empty shape", decl.name)));
    return {};
  }
  program_.tensors.push_back(std::move(decl));
  const auto id = uint32_t(program_.tensors.size() - 1);
  Status s = verifyTensor(program_, id, chip_);
  if (!s.isOk()) {
    program_.tensors.pop_back();
    fail(std::move(s));
    return {};
  }
  return {this, id};
}

Tensor KernelBuilder::hbm(std::string name, DType dtype, std::vector<int64_t> shape,
                          TensorKind kind) {
  TensorDecl d;
  d.name = std::move(name);
  d.space = MemSpace::kHbm;
  d.dtype = dtype;
  d.shape = std::move(shape);
  d.kind = kind;
  d.byteOffset = hbmNext_;
  const uint64_t bytes = d.bytesPerPartition();
  if (chip_.mem.hbmBytes != 0 && hbmNext_ + bytes > chip_.mem.hbmBytes) {
    fail(Status(ErrorCode::kCapacity,
                fmt::format("HBM tensor '{}' ({} bytes) does not fit: {} of {} bytes in use",
                            d.name, bytes, hbmNext_, chip_.mem.hbmBytes)));
    return {};
  }
  Tensor t = declare(std::move(d));
  if (t.valid()) hbmNext_ = alignUp(hbmNext_ + bytes, kHbmAlignBytes);
  return t;
}

Tensor KernelBuilder::allocate(std::string name, MemSpace space, DType dtype,
                               std::vector<int64_t> shape) {
  if (!status_.isOk()) return {};
  TensorDecl d;
  d.name = std::move(name);
  d.space = space;
  d.dtype = dtype;
  d.shape = std::move(shape);
  const bool isPsum = space == MemSpace::kPsum;
  const uint64_t capacity = isPsum ? chip_.psumBytesPerPartition() : chip_.mem.sbufBytesPerPartition;
  const uint64_t bank = chip_.mem.psumBankBytesPerPartition;
  uint64_t size = 0;
  for (auto dim : d.shape) {
    if (dim <= 0) return declare(std::move(d));  // reports the bad shape
  }
  size = alignUp(std::max<uint64_t>(d.bytesPerPartition(), 1), isPsum ? 4 : kSbufAlignBytes);
  auto& blocks = isPsum ? psumBlocks_ : sbufBlocks_;
  // First fit over the gaps between live blocks (kept sorted by begin).
  uint64_t candidate = 0;
  auto fits = [&](uint64_t start) {
    if (isPsum && size <= bank && start / bank != (start + size - 1) / bank) return false;
    return start + size <= capacity;
  };
  auto nextCandidate = [&](uint64_t start) {
    if (isPsum && (size > bank || start / bank != (start + size - 1) / bank))
      return alignUp(start, bank);
    return start;
  };
  candidate = nextCandidate(0);
  bool found = false;
  for (size_t i = 0; i <= blocks.size(); ++i) {
    const uint64_t gapEnd = i < blocks.size() ? blocks[i].begin : capacity;
    if (candidate + size <= gapEnd && fits(candidate)) {
      found = true;
      break;
    }
    if (i < blocks.size()) candidate = nextCandidate(std::max(candidate, blocks[i].end));
  }
  if (!found) {
    uint64_t used = 0;
    for (const auto& b : blocks) used += b.end - b.begin;
    fail(Status(ErrorCode::kCapacity,
                fmt::format("{} tensor '{}' {} {} needs {} bytes per partition but {} has no free "
                            "block that large ({} of {} bytes per partition in use by {} tensors); "
                            "release tensors that are no longer needed or use smaller tiles",
                            memSpaceName(space), d.name, numerics::dtypeName(dtype),
                            shapeString(d.shape), size, isPsum ? "PSUM" : "SBUF", used, capacity,
                            blocks.size())));
    return {};
  }
  d.partitionStart = 0;
  d.byteOffset = candidate;
  Tensor t = declare(std::move(d));
  if (t.valid()) {
    Block b{candidate, candidate + size, t.id()};
    blocks.insert(std::upper_bound(blocks.begin(), blocks.end(), b,
                                   [](const Block& x, const Block& y) { return x.begin < y.begin; }),
                  b);
  }
  return t;
}

Tensor KernelBuilder::sbuf(std::string name, DType dtype, std::vector<int64_t> shape) {
  return allocate(std::move(name), MemSpace::kSbuf, dtype, std::move(shape));
}

Tensor KernelBuilder::psum(std::string name, DType dtype, std::vector<int64_t> shape) {
  return allocate(std::move(name), MemSpace::kPsum, dtype, std::move(shape));
}

Tensor KernelBuilder::sbufAt(std::string name, DType dtype, std::vector<int64_t> shape,
                             uint32_t partitionStart, uint64_t byteOffset) {
  TensorDecl d{std::move(name), MemSpace::kSbuf, dtype, std::move(shape)};
  d.partitionStart = partitionStart;
  d.byteOffset = byteOffset;
  return declare(std::move(d));
}

Tensor KernelBuilder::psumAt(std::string name, DType dtype, std::vector<int64_t> shape,
                             uint32_t partitionStart, uint64_t byteOffset) {
  TensorDecl d{std::move(name), MemSpace::kPsum, dtype, std::move(shape)};
  d.partitionStart = partitionStart;
  d.byteOffset = byteOffset;
  return declare(std::move(d));
}

Tensor KernelBuilder::view(const Tensor& base, std::string name, DType dtype,
                           std::vector<int64_t> shape) {
  if (!status_.isOk() || !base.valid()) return {};
  const TensorDecl& b = base.decl();
  TensorDecl d{std::move(name), b.space, dtype, std::move(shape)};
  d.kind = b.kind;
  d.partitionStart = b.partitionStart;
  d.byteOffset = b.byteOffset;
  d.aliasOf = b.aliasOf != kNoTensor ? b.aliasOf : base.id();
  const bool fitsInBase = d.onChip() ? d.partitions() <= b.partitions() &&
                                           d.bytesPerPartition() <= b.bytesPerPartition()
                                     : d.bytesPerPartition() <= b.bytesPerPartition();
  if (!fitsInBase) {
    fail(Status(ErrorCode::kInvalidArgument,
                fmt::format("view '{}' {} {} is larger than tensor '{}' {} {}", d.name,
                            numerics::dtypeName(dtype), shapeString(d.shape), b.name,
                            numerics::dtypeName(b.dtype), shapeString(b.shape))));
    return {};
  }
  return declare(std::move(d));
}

Tensor KernelBuilder::hbmView(const Tensor& base, std::string name, DType dtype,
                              std::vector<int64_t> shape, int64_t elementOffset) {
  if (!status_.isOk() || !base.valid()) return {};
  const TensorDecl& b = base.decl();
  auto bad = [&](const std::string& why) {
    fail(Status(ErrorCode::kInvalidArgument,
                fmt::format("HBM view '{}' {} {} of tensor '{}' {} {}: {}", name,
                            numerics::dtypeName(dtype), shapeString(shape), b.name,
                            numerics::dtypeName(b.dtype), shapeString(b.shape), why)));
    return Tensor{};
  };
  if (b.space != MemSpace::kHbm)
    return bad(
        fmt::format("the base is in {}; hbmView aliases HBM tensors (view() reshapes "
                    "on-chip ones)",
                    memSpaceName(b.space)));
  if (shape.empty()) return bad("the shape is empty");
  uint64_t elements = 1;
  for (auto dim : shape) {
    if (dim <= 0) return bad("every dimension must be positive");
    if (__builtin_mul_overflow(elements, uint64_t(dim), &elements))
      return bad("the shape has too many elements");
  }
  if (elementOffset < 0) return bad(fmt::format("element offset {} is negative", elementOffset));
  const uint64_t elemBytes = numerics::dtypeSize(dtype);
  const uint64_t baseBytes =
      uint64_t(std::max<int64_t>(b.numElements(), 0)) * numerics::dtypeSize(b.dtype);
  uint64_t offsetBytes = 0, bytes = 0, end = 0;
  if (__builtin_mul_overflow(uint64_t(elementOffset), numerics::dtypeSize(b.dtype), &offsetBytes) ||
      __builtin_mul_overflow(elements, elemBytes, &bytes) ||
      __builtin_add_overflow(offsetBytes, bytes, &end) || end > baseBytes)
    return bad(
        fmt::format("it covers bytes {}..{} of the base, which has {} bytes: keep "
                    "offset + size inside the base",
                    offsetBytes, offsetBytes + bytes, baseBytes));
  if (offsetBytes % elemBytes != 0)
    return bad(
        fmt::format("it starts at byte {} of the base, not a multiple of its {}-byte "
                    "element",
                    offsetBytes, elemBytes));
  TensorDecl d{std::move(name), MemSpace::kHbm, dtype, std::move(shape)};
  d.kind = TensorKind::kInternal;
  d.byteOffset = b.byteOffset + offsetBytes;
  d.aliasOf = b.aliasOf != kNoTensor ? b.aliasOf : base.id();
  return declare(std::move(d));
}

void KernelBuilder::release(const Tensor& t) {
  if (!t.valid()) return;
  for (auto* blocks : {&sbufBlocks_, &psumBlocks_}) {
    std::erase_if(*blocks, [&](const Block& b) { return b.tensor == t.id(); });
  }
}

uint64_t KernelBuilder::sbufFreeBytes() const {
  uint64_t best = 0, pos = 0;
  for (const auto& b : sbufBlocks_) {
    best = std::max(best, b.begin - std::min(b.begin, pos));
    pos = std::max(pos, b.end);
  }
  return std::max(best, chip_.mem.sbufBytesPerPartition - std::min(chip_.mem.sbufBytesPerPartition, pos));
}

uint64_t KernelBuilder::psumFreeBytes() const {
  uint64_t best = 0, pos = 0;
  const uint64_t cap = chip_.psumBytesPerPartition();
  for (const auto& b : psumBlocks_) {
    best = std::max(best, b.begin - std::min(b.begin, pos));
    pos = std::max(pos, b.end);
  }
  return std::max(best, cap - std::min(cap, pos));
}

// ---------------------------------------------------------------------------------------------
// Builder: instructions

Status KernelBuilder::emit(Instruction inst) {
  if (!status_.isOk()) return status_;
  inst.loc = currentLoc_;
  program_.instructions.push_back(std::move(inst));
  Status s = verifyInstruction(program_, program_.instructions.size() - 1, chip_);
  if (!s.isOk()) {
    program_.instructions.pop_back();
    fail(s);
  }
  return s;
}

Status KernelBuilder::append(Instruction inst) {
  const uint32_t saved = currentLoc_;
  currentLoc_ = inst.loc;
  Status s = emit(std::move(inst));
  currentLoc_ = saved;
  return s;
}

uint16_t KernelBuilder::nextQueue(int requested) {
  if (requested >= 0) return uint16_t(requested);
  const uint32_t queues = std::max<uint32_t>(chip_.dma.queuesPerEngine, 1);
  const uint16_t q = roundRobinQueue_;
  roundRobinQueue_ = uint16_t((roundRobinQueue_ + 1) % queues);
  return q;
}

Expected<Program> KernelBuilder::finish() {
  if (!status_.isOk()) return status_;
  // Each tensor and instruction was verified as it was added: only the whole-program rules
  // are left. The program leaves stamped, so sim::Chip::load does not verify it again.
  Status s = detail::finishVerification(program_, chip_);
  if (!s.isOk()) return s;
  Program out = std::move(program_);
  program_ = Program{};
  program_.name = out.name;
  program_.target = out.target;
  sbufBlocks_.clear();
  psumBlocks_.clear();
  hbmNext_ = 0;
  currentLoc_ = 0;
  return out;
}

}  // namespace trnsim::isa
