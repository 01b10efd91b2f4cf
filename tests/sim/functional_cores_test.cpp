// The cores of one chip on separate host threads (FunctionalChip::run): programs that share no
// written HBM give, core by core, the bytes each gives alone, with any thread count; programs
// where one core reads what another writes still run in core order.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "functional_test_util.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/sim/functional.h"

namespace trnsim::sim {
namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;

/// A bf16 m x k x n matmul program whose HBM tensors start `base` bytes up.
isa::Program matmulAt(int64_t m, int64_t k, int64_t n, uint64_t base) {
  auto p = kernels::matmulProgram(testing::trn2(), m, k, n);
  EXPECT_TRUE(p.hasValue()) << p.status().toString();
  isa::Program prog = p.hasValue() ? *p : isa::Program{};
  for (isa::TensorDecl& t : prog.tensors) {
    if (t.space == isa::MemSpace::kHbm) t.byteOffset += base;
  }
  return prog;
}

/// Seeded normals for every element of `name` on `core`.
void fill(Chip& chip, const std::string& name, uint32_t core, uint32_t seed) {
  auto cur = chip.readFloats(name, core);
  ASSERT_TRUE(cur.hasValue()) << cur.status().toString();
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(cur->size());
  for (float& x : v) x = normal(gen);
  ASSERT_TRUE(chip.writeFloats(name, v, core).isOk());
}

/// `program` alone on a fresh chip, one thread, values only: its lhsT seeded by `lhsSeed` (or
/// the bytes `lhsT`), its rhs by `rhsSeed`. Returns its "out" (empty on failure).
std::vector<std::byte> runAlone(const isa::Program& program, uint32_t lhsSeed, uint32_t rhsSeed,
                                const std::vector<std::byte>* lhsT = nullptr) {
  Chip chip(testing::trn2());
  Status s = chip.load({program});
  EXPECT_TRUE(s.isOk()) << s.toString();
  if (lhsT != nullptr) {
    EXPECT_TRUE(chip.write("lhsT", *lhsT).isOk());
  } else {
    fill(chip, "lhsT", 0, lhsSeed);
  }
  fill(chip, "rhs", 0, rhsSeed);
  RunOptions o;
  o.threads = 1;
  o.computeTiming = false;
  auto r = chip.run(o);
  EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
  auto out = chip.read("out");
  return r.hasValue() && out.hasValue() ? *out : std::vector<std::byte>{};
}

/// Runs `programs` (one per core) with `threads` host threads, inputs seeded by core, and
/// returns every core's "out".
std::vector<std::vector<std::byte>> runCores(const std::vector<isa::Program>& programs,
                                             uint32_t threads) {
  Chip chip(testing::trn2());
  Status s = chip.load(programs);
  EXPECT_TRUE(s.isOk()) << s.toString();
  for (uint32_t core = 0; core < programs.size(); ++core) {
    fill(chip, "lhsT", core, 10 + core);
    fill(chip, "rhs", core, 20 + core);
  }
  RunOptions o;
  o.threads = threads;
  o.computeTiming = false;
  auto r = chip.run(o);
  EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
  std::vector<std::vector<std::byte>> outs;
  for (uint32_t core = 0; core < programs.size(); ++core) {
    auto out = chip.read("out", core);
    EXPECT_TRUE(out.hasValue());
    outs.push_back(out.hasValue() ? *out : std::vector<std::byte>{});
  }
  return outs;
}

TEST(FunctionalCores, IndependentCoresGiveWhatEachGivesAlone) {
  // Four cores, four shapes, each program's HBM 16 MiB apart.
  const std::vector<isa::Program> programs{
      matmulAt(256, 384, 512, 0), matmulAt(128, 512, 1024, 16 * kMiB),
      matmulAt(384, 256, 512, 32 * kMiB), matmulAt(128, 128, 1536, 48 * kMiB)};
  EXPECT_TRUE(FunctionalChip::coresIndependent(programs));
  // The reference: each program alone on a chip, with the inputs it gets as core k.
  std::vector<std::vector<std::byte>> alone;
  for (uint32_t core = 0; core < programs.size(); ++core) {
    alone.push_back(runAlone(programs[core], 10 + core, 20 + core));
    ASSERT_FALSE(alone.back().empty());
  }
  for (uint32_t threads : {1u, 2u, 4u, 0u}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const auto outs = runCores(programs, threads);
    ASSERT_EQ(outs.size(), alone.size());
    for (size_t core = 0; core < outs.size(); ++core) {
      EXPECT_TRUE(outs[core] == alone[core]) << "core " << core << " output bytes differ";
    }
  }
}

TEST(FunctionalCores, ACoreReadingAnotherCoresOutputRunsAfterIt) {
  // Core 0: out0 [128, 512] = lhsT0^T rhs0. Core 1 takes out0 as its lhsT [128, 512] (K = 128,
  // M = 512) and multiplies by its rhs [128, 512].
  isa::Program p0 = matmulAt(128, 128, 512, 0);
  isa::Program p1 = matmulAt(512, 128, 512, 16 * kMiB);
  const uint32_t out0 = p0.findTensor("out"), lhsT1 = p1.findTensor("lhsT");
  ASSERT_NE(out0, isa::kNoTensor);
  ASSERT_NE(lhsT1, isa::kNoTensor);
  ASSERT_EQ(p0.tensors[out0].shape, p1.tensors[lhsT1].shape);
  p1.tensors[lhsT1].byteOffset = p0.tensors[out0].byteOffset;
  const std::vector<isa::Program> programs{p0, p1};
  EXPECT_FALSE(FunctionalChip::coresIndependent(programs));

  // The reference, one step after the other: core 0 alone, then its output into core 1 alone.
  const std::vector<std::byte> mid = runAlone(p0, 10, 20);
  ASSERT_FALSE(mid.empty());
  const std::vector<std::byte> want = runAlone(p1, 0, 21, &mid);
  ASSERT_FALSE(want.empty());
  RunOptions o;
  o.computeTiming = false;

  for (uint32_t threads : {1u, 2u, 0u}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    Chip chip(testing::trn2());
    ASSERT_TRUE(chip.load(programs).isOk());
    fill(chip, "lhsT", 0, 10);
    fill(chip, "rhs", 0, 20);
    fill(chip, "rhs", 1, 21);
    o.threads = threads;
    auto r = chip.run(o);
    ASSERT_TRUE(r.hasValue()) << r.status().toString();
    auto got = chip.read("out", 1);
    ASSERT_TRUE(got.hasValue());
    EXPECT_TRUE(*got == want) << "core 1 did not see core 0's output";
  }
}

TEST(FunctionalCores, SharedReadOnlyInputsStillRunTogether) {
  // Two cores read the same lhsT (one HBM tensor at one address) and write their own outputs.
  isa::Program p0 = matmulAt(128, 256, 512, 0);
  isa::Program p1 = matmulAt(128, 256, 512, 16 * kMiB);
  p1.tensors[p1.findTensor("lhsT")].byteOffset = p0.tensors[p0.findTensor("lhsT")].byteOffset;
  EXPECT_TRUE(FunctionalChip::coresIndependent(std::vector<isa::Program>{p0, p1}));
  // Core 0 writing the shared input makes them dependent.
  isa::Program p2 = p1;
  p2.tensors[p2.findTensor("out")].byteOffset = p0.tensors[p0.findTensor("lhsT")].byteOffset;
  EXPECT_FALSE(FunctionalChip::coresIndependent(std::vector<isa::Program>{p0, p2}));
}

}  // namespace
}  // namespace trnsim::sim
