#pragma once
// Helpers for the functional-execution tests: build a one-core program with the kernel
// builder, load it on a trn2 chip, write inputs, run values only, read outputs.

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/chip.h"

namespace trnsim::sim::testing {

inline arch::ChipConfig trn2() {
  auto c = arch::loadChip("trn2");
  EXPECT_TRUE(c.hasValue()) << (c.hasValue() ? "" : c.status().toString());
  return c.hasValue() ? *c : arch::ChipConfig{};
}

/// Builds a program with `body`, loads it on a fresh trn2 chip and returns the chip.
inline Chip loadProgram(const std::function<void(isa::KernelBuilder&)>& body) {
  arch::ChipConfig cfg = trn2();
  isa::KernelBuilder kb(cfg, "test");
  body(kb);
  auto prog = kb.finish();
  EXPECT_TRUE(prog.hasValue()) << (prog.hasValue() ? "" : prog.status().toString());
  Chip chip(cfg);
  if (prog.hasValue()) {
    std::vector<isa::Program> progs;
    progs.push_back(std::move(*prog));
    Status s = chip.load(std::move(progs));
    EXPECT_TRUE(s.isOk()) << s.toString();
  }
  return chip;
}

inline RunOptions valuesOnly() {
  RunOptions o;
  o.computeTiming = false;
  return o;
}

inline void runOk(Chip& chip, RunOptions opts = valuesOnly()) {
  auto r = chip.run(opts);
  ASSERT_TRUE(r.hasValue()) << r.status().toString();
}

inline std::vector<float> readF(const Chip& chip, const std::string& name) {
  auto r = chip.readFloats(name);
  EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
  return r.hasValue() ? *r : std::vector<float>{};
}

inline void writeF(Chip& chip, const std::string& name, const std::vector<float>& v) {
  Status s = chip.writeFloats(name, v);
  ASSERT_TRUE(s.isOk()) << s.toString();
}

template <class T>
void writeRaw(Chip& chip, const std::string& name, const std::vector<T>& v) {
  Status s = chip.write(name, std::as_bytes(std::span<const T>(v)));
  ASSERT_TRUE(s.isOk()) << s.toString();
}

template <class T>
std::vector<T> readRaw(const Chip& chip, const std::string& name) {
  auto r = chip.read(name);
  EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
  std::vector<T> out;
  if (r.hasValue()) {
    out.resize(r->size() / sizeof(T));
    std::memcpy(out.data(), r->data(), out.size() * sizeof(T));
  }
  return out;
}

/// One small kernel around the instruction under test: each input is an HBM tensor loaded
/// into an SBUF tile of the same name; each output tile is stored to HBM "<name>_out".
class OpTest {
 public:
  OpTest() : cfg_(trn2()), kb_(cfg_, "op") {}

  isa::KernelBuilder& kb() { return kb_; }
  const Chip& chip() const { return chip_; }
  Chip& chip() { return chip_; }

  isa::Tensor in(const std::string& name, numerics::DType dt, std::vector<int64_t> shape,
                 std::vector<float> values) {
    isa::Tensor h = kb_.hbm(name + "_in", dt, shape, isa::TensorKind::kInput);
    isa::Tensor t = kb_.sbuf(name, dt, shape);
    EXPECT_TRUE(kb_.dmaCopy(t.ap(), h.ap()).isOk()) << kb_.status().toString();
    inputs_.emplace_back(name + "_in", std::move(values));
    return t;
  }
  /// An HBM input written with `values` before the run.
  isa::Tensor hbmIn(const std::string& name, numerics::DType dt, std::vector<int64_t> shape,
                    std::vector<float> values) {
    inputs_.emplace_back(name, std::move(values));
    return kb_.hbm(name, dt, std::move(shape), isa::TensorKind::kInput);
  }
  /// Stores an existing tile to HBM "<name>_out" after the kernel.
  void outputsFor(const isa::Tensor& t) { outputs_.push_back(t); }
  isa::Tensor out(const std::string& name, numerics::DType dt, std::vector<int64_t> shape,
                  isa::MemSpace space = isa::MemSpace::kSbuf) {
    isa::Tensor t = space == isa::MemSpace::kPsum ? kb_.psum(name, dt, shape)
                                                  : kb_.sbuf(name, dt, shape);
    outputs_.push_back(t);
    return t;
  }
  /// Finishes the program (storing the outputs), loads it and runs it.
  Status run(RunOptions opts = valuesOnly()) {
    for (const isa::Tensor& t : outputs_) {
      const isa::TensorDecl d = t.decl();
      isa::Tensor src = t;
      if (d.space == isa::MemSpace::kPsum) {
        src = kb_.sbuf(d.name + "_sb", d.dtype, d.shape);
        Status s = kb_.tensorCopy(src.ap(), t.ap());
        if (!s.isOk()) return s;
      }
      isa::Tensor h = kb_.hbm(d.name + "_out", d.dtype, d.shape, isa::TensorKind::kOutput);
      Status s = kb_.dmaCopy(h.ap(), src.ap());
      if (!s.isOk()) return s;
    }
    auto prog = kb_.finish();
    if (!prog.hasValue()) return prog.status();
    chip_ = Chip(cfg_);
    std::vector<isa::Program> progs;
    progs.push_back(std::move(*prog));
    TRNSIM_RETURN_IF_ERROR(chip_.load(std::move(progs)));
    for (const auto& [name, vals] : inputs_) TRNSIM_RETURN_IF_ERROR(chip_.writeFloats(name, vals));
    auto r = chip_.run(opts);
    if (!r.hasValue()) return r.status();
    return {};
  }
  void runOk(RunOptions opts = valuesOnly()) {
    Status s = run(opts);
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  std::vector<float> get(const std::string& name) const { return readF(chip_, name + "_out"); }
  template <class T>
  std::vector<T> getRaw(const std::string& name) const {
    return readRaw<T>(chip_, name + "_out");
  }

 private:
  arch::ChipConfig cfg_;
  isa::KernelBuilder kb_;
  Chip chip_{arch::ChipConfig{}};
  std::vector<std::pair<std::string, std::vector<float>>> inputs_;
  std::vector<isa::Tensor> outputs_;
};

}  // namespace trnsim::sim::testing
