// What sim::Chip::load verifies: a program the builder verified is loaded without verifying it
// again; a program from text (or changed since it was verified) is verified there; and the
// operand-overlap rule refuses a program for functional and timing-only runs alike, with one
// error naming the instruction.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "functional_test_util.h"
#include "trnsim/isa/text.h"
#include "trnsim/isa/verify.h"

namespace trnsim::sim {
namespace {

using isa::KernelBuilder;
using isa::TensorKind;
using numerics::DType;

isa::Program scaleProgram(const arch::ChipConfig& cfg) {
  KernelBuilder kb(cfg, "scale");
  auto in = kb.hbm("in", DType::kFP32, {2, 4}, TensorKind::kInput);
  auto out = kb.hbm("out", DType::kFP32, {2, 4}, TensorKind::kOutput);
  auto t = kb.sbuf("t", DType::kFP32, {2, 4});
  EXPECT_TRUE(kb.dmaCopy(t.ap(), in.ap()).isOk());
  EXPECT_TRUE(kb.tensorScalar(t.ap(), t.ap(), isa::AluOp::kMultiply, 3.0f).isOk());
  EXPECT_TRUE(kb.dmaCopy(out.ap(), t.ap()).isOk());
  auto p = kb.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? std::move(*p) : isa::Program{};
}

Status load(Chip& chip, const isa::Program& program) {
  return chip.load(std::vector<isa::Program>{program});
}

TEST(ChipVerification, ABuilderProgramIsVerifiedOnce) {
  const arch::ChipConfig cfg = testing::trn2();
  const uint64_t before = isa::programVerificationCount();
  const isa::Program p = scaleProgram(cfg);
  Chip chip(cfg);
  ASSERT_TRUE(load(chip, p).isOk());
  ASSERT_TRUE(load(chip, p).isOk());  // loading it again costs no verification either
  // Neither finish nor the loads ran the whole-program verifier.
  EXPECT_EQ(isa::programVerificationCount(), before);
  testing::writeF(chip, "in", {1, 2, 3, 4, 5, 6, 7, 8});
  testing::runOk(chip);
  EXPECT_EQ(testing::readF(chip, "out"), (std::vector<float>{3, 6, 9, 12, 15, 18, 21, 24}));
}

TEST(ChipVerification, TextAndChangedProgramsAreVerifiedAtLoad) {
  const arch::ChipConfig cfg = testing::trn2();
  const isa::Program p = scaleProgram(cfg);

  // From its text form: the same program, no stamp, so load verifies it (once: the loaded
  // copy is stamped).
  auto parsed = isa::parseProgram(isa::printProgram(p), "scale.tsim");
  ASSERT_TRUE(parsed.hasValue()) << parsed.status().toString();
  uint64_t n = isa::programVerificationCount();
  Chip chip(cfg);
  ASSERT_TRUE(load(chip, *parsed).isOk());
  EXPECT_EQ(isa::programVerificationCount(), n + 1);
  EXPECT_TRUE(isa::isVerifiedFor(chip.programs()[0], cfg));

  // Changed after the builder stamped it: verified at load, and refused when bad.
  isa::Program bad = p;
  bad.instructions[1].operands[1].ap.free[0].count = 5;  // t has 4 columns
  n = isa::programVerificationCount();
  Status s = load(chip, bad);
  EXPECT_EQ(isa::programVerificationCount(), n + 1);
  EXPECT_EQ(s.code(), ErrorCode::kOutOfBounds) << s.toString();
  EXPECT_NE(s.where().find("instruction 1 (tensor_scalar)"), std::string::npos) << s.toString();

  // The same change in a program built by hand (no stamp at all) is refused the same way.
  isa::Program byHand = *parsed;
  byHand.instructions[1].operands[1].ap.free[0].count = 5;
  EXPECT_EQ(load(chip, byHand).toString(), s.toString());
}

/// Instruction 1 copies x[:, 0:4] onto x[:, 1:5]: its operands overlap.
isa::Program overlappingProgram() {
  auto p = isa::parseProgram(
      "program \"shift\" target=\"trn2\"\n"
      "tensor %x sbuf float32 [2, 5] at p0+0x0\n"
      "memset.vector dst=%x[p0:2, +0, 5@1] value=1\n"
      "tensor_copy.vector dst=%x[p0:2, +1, 4@1] src=%x[p0:2, +0, 4@1]\n",
      "shift.tsim");
  EXPECT_TRUE(p.hasValue()) << p.status().toString();
  return p.hasValue() ? std::move(*p) : isa::Program{};
}

TEST(ChipVerification, OverlappingOperandsAreRefusedForFunctionalAndTimingOnlyRuns) {
  const arch::ChipConfig cfg = testing::trn2();
  const isa::Program p = overlappingProgram();
  // What each kind of run reports: the load's error, or the run's.
  auto attempt = [&](bool computeValues) {
    Chip chip(cfg);
    TRNSIM_RETURN_IF_ERROR(load(chip, p));
    RunOptions opts;
    opts.computeValues = computeValues;
    opts.computeTiming = !computeValues;
    auto r = chip.run(opts);
    return r.hasValue() ? Status::ok() : r.status();
  };
  const Status functional = attempt(true);
  const Status timingOnly = attempt(false);
  EXPECT_EQ(functional.code(), ErrorCode::kVerify) << functional.toString();
  EXPECT_EQ(timingOnly.toString(), functional.toString());
  EXPECT_NE(functional.where().find("instruction 1 (tensor_copy)"), std::string::npos)
      << functional.toString();
  EXPECT_NE(functional.message().find("operand 'dst' (tensor 'x') overlaps operand 'src'"),
            std::string::npos)
      << functional.toString();
  // The verifier's own word, for any other caller (fabric::Cluster verifies with it).
  EXPECT_EQ(isa::checkProgram(p, cfg).message(), functional.message());

  // The builder refuses the same instruction when it finishes the program.
  KernelBuilder kb(cfg, "shift");
  auto x = kb.sbuf("x", DType::kFP32, {2, 5});
  ASSERT_TRUE(kb.memset(x.ap(), 1.0f).isOk());
  ASSERT_TRUE(kb.tensorCopy(x({isa::Slice::all(), isa::Slice::range(1, 5)}),
                            x({isa::Slice::all(), isa::Slice::range(0, 4)}))
                  .isOk());
  auto built = kb.finish();
  ASSERT_FALSE(built.hasValue());
  EXPECT_EQ(built.status().message(), functional.message());
}

}  // namespace
}  // namespace trnsim::sim
