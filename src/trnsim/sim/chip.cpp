// The Chip facade: loads and checks programs, moves tensors between the host and the
// simulated memories, and runs the functional interpreter and/or the timing model.

#include "trnsim/sim/chip.h"

#include <fmt/format.h>

#include <chrono>

#include "trnsim/isa/verify.h"
#include "trnsim/sim/functional.h"
#include "trnsim/sim/timing.h"

namespace trnsim::sim {

Chip::Chip(arch::ChipConfig config) : config_(std::move(config)) {}
Chip::~Chip() = default;
Chip::Chip(Chip&&) noexcept = default;
Chip& Chip::operator=(Chip&&) noexcept = default;

Status Chip::load(std::vector<isa::Program> programs) {
  if (programs.size() > config_.coresPerChip)
    return Status(ErrorCode::kCapacity,
                  fmt::format("{} programs for chip '{}' with {} NeuronCores", programs.size(),
                              config_.name, config_.coresPerChip));
  // Programs the builder verified for this chip carry its stamp and are not checked again;
  // the others (parsed from text or binary, built by hand, changed since) are verified here.
  for (size_t i = 0; i < programs.size(); ++i) {
    Status s = isa::ensureVerified(programs[i], config_);
    if (!s.isOk())
      return s.withContext(fmt::format("program {} '{}' (core {})", i, programs[i].name, i));
  }
  const uint64_t extent = hbmExtentBytes(programs);
  if (config_.mem.hbmBytes != 0 && extent > config_.mem.hbmBytes)
    return Status(ErrorCode::kCapacity,
                  fmt::format("the programs' HBM tensors extend to byte {}; chip '{}' has {} "
                              "bytes of HBM",
                              extent, config_.name, config_.mem.hbmBytes));
  programs_ = std::move(programs);
  functional_ = std::make_unique<FunctionalChip>(config_, extent);
  return {};
}

namespace {

Expected<uint32_t> findTensor(const std::vector<isa::Program>& programs, const std::string& name,
                              uint32_t core) {
  if (core >= programs.size())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("no program is loaded on core {} ({} loaded)", core,
                              programs.size()));
  const uint32_t t = programs[core].findTensor(name);
  if (t == isa::kNoTensor)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("program '{}' on core {} has no tensor '{}'", programs[core].name,
                              core, name));
  return t;
}

std::string tensorDescription(const isa::TensorDecl& d) {
  return fmt::format("tensor '{}' ({} {} [{}], {} elements)", d.name, isa::memSpaceName(d.space),
                     numerics::dtypeName(d.dtype), fmt::join(d.shape, ", "), d.numElements());
}

}  // namespace

Status Chip::write(const std::string& name, std::span<const std::byte> data, uint32_t core) {
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, findTensor(programs_, name, core));
  const isa::TensorDecl& d = programs_[core].tensors[t];
  const uint64_t expected = uint64_t(d.numElements()) * numerics::dtypeSize(d.dtype);
  if (data.size() != expected)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} takes {} bytes; got {}", tensorDescription(d), expected,
                              data.size()));
  return functional_->writeTensor(programs_[core], core, t, data);
}

Expected<std::vector<std::byte>> Chip::read(const std::string& name, uint32_t core) const {
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, findTensor(programs_, name, core));
  return functional_->readTensor(programs_[core], core, t);
}

Status Chip::writeFloats(const std::string& name, std::span<const float> data, uint32_t core) {
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, findTensor(programs_, name, core));
  const isa::TensorDecl& d = programs_[core].tensors[t];
  if (int64_t(data.size()) != d.numElements())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} takes {} values; got {}", tensorDescription(d), d.numElements(),
                              data.size()));
  std::vector<std::byte> bytes(data.size() * numerics::dtypeSize(d.dtype));
  numerics::convertFromFloat(d.dtype, data.data(), bytes.data(), data.size());
  return functional_->writeTensor(programs_[core], core, t, bytes);
}

Expected<std::vector<float>> Chip::readFloats(const std::string& name, uint32_t core) const {
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, findTensor(programs_, name, core));
  const isa::TensorDecl& d = programs_[core].tensors[t];
  TRNSIM_ASSIGN_OR_RETURN(std::vector<std::byte> bytes,
                          functional_->readTensor(programs_[core], core, t));
  std::vector<float> out(size_t(d.numElements()));
  numerics::convertToFloat(d.dtype, bytes.data(), out.data(), out.size());
  return out;
}

Status Chip::readFloats(const std::string& name, std::span<float> out, uint32_t core) const {
  TRNSIM_ASSIGN_OR_RETURN(uint32_t t, findTensor(programs_, name, core));
  const isa::TensorDecl& d = programs_[core].tensors[t];
  if (int64_t(out.size()) != d.numElements())
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("{} has {} values; the buffer holds {}", tensorDescription(d),
                              d.numElements(), out.size()));
  TRNSIM_ASSIGN_OR_RETURN(std::vector<std::byte> bytes,
                          functional_->readTensor(programs_[core], core, t));
  numerics::convertToFloat(d.dtype, bytes.data(), out.data(), out.size());
  return {};
}

Expected<RunResult> Chip::run(const RunOptions& opts) {
  const auto start = std::chrono::steady_clock::now();
  if (programs_.empty())
    return Status(ErrorCode::kInvalidArgument, "no programs are loaded; call Chip::load first");
  RunResult result;
  for (const isa::Program& p : programs_) result.instructions += p.instructions.size();
  if (opts.computeValues) {
    TRNSIM_ASSIGN_OR_RETURN(uint64_t executed, functional_->run(programs_, opts));
    (void)executed;
  }
  if (opts.computeTiming) {
    std::vector<const isa::Program*> perCore;
    perCore.reserve(programs_.size());
    for (const isa::Program& p : programs_) perCore.push_back(&p);
    TimingOptions topts;
    topts.recordEvents = opts.recordEvents;
    TRNSIM_ASSIGN_OR_RETURN(result.timeline, simulateTiming(config_, perCore, topts));
    result.simulatedNs = result.timeline.endNs;
  }
  result.hostSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace trnsim::sim
