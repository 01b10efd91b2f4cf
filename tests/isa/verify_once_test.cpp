// Verification once: the builder stamps what it verified, a stamped program is not verified
// again, and any change to it (or another chip) sends it through the verifier once more.
// The operand-overlap rule, which lives in the verifier, is checked here too.

#include <gtest/gtest.h>

#include <string>

#include "isa_test_util.h"
#include "trnsim/isa/builder.h"
#include "trnsim/isa/text.h"
#include "trnsim/isa/verify.h"

namespace trnsim::isa {
namespace {

/// in -> t, t = t * 2 (in place), t -> out: three instructions the verifier accepts.
Program builtProgram(const arch::ChipConfig& chip) {
  KernelBuilder kb(chip, "once");
  Tensor in = kb.hbm("in", DType::kFP32, {4, 8}, TensorKind::kInput);
  Tensor out = kb.hbm("out", DType::kFP32, {4, 8}, TensorKind::kOutput);
  Tensor t = kb.sbuf("t", DType::kFP32, {4, 8});
  EXPECT_TRUE(kb.dmaCopy(t.ap(), in.ap()).isOk());
  EXPECT_TRUE(kb.tensorScalar(t.ap(), t.ap(), AluOp::kMultiply, 2.0f).isOk());
  EXPECT_TRUE(kb.dmaCopy(out.ap(), t.ap()).isOk());
  auto p = kb.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? std::move(*p) : Program{};
}

TEST(VerifyOnce, BuilderProgramsAreStampedAndNotVerifiedAgain) {
  const arch::ChipConfig chip = testing::trn2Chip();
  const uint64_t before = programVerificationCount();
  Program p = builtProgram(chip);
  // The builder checked each tensor and instruction as it was added; finish ran only the
  // whole-program rules, not verifyProgram.
  EXPECT_EQ(programVerificationCount(), before);
  EXPECT_TRUE(isVerifiedFor(p, chip));
  EXPECT_TRUE(ensureVerified(p, chip).isOk());
  Program copy = p;  // the stamp travels with copies
  EXPECT_TRUE(ensureVerified(copy, chip).isOk());
  EXPECT_EQ(programVerificationCount(), before);
  // verifyProgram itself always checks.
  EXPECT_TRUE(verifyProgram(p, chip).empty());
  EXPECT_EQ(programVerificationCount(), before + 1);
}

TEST(VerifyOnce, AChangedProgramOrAnotherChipIsVerifiedAgain) {
  const arch::ChipConfig chip = testing::trn2Chip();
  const Program p = builtProgram(chip);

  // Another chip config: verified again (and stamped for that chip).
  Program other = p;
  EXPECT_FALSE(isVerifiedFor(other, testing::trn1Chip()));
  uint64_t n = programVerificationCount();
  EXPECT_TRUE(ensureVerified(other, testing::trn1Chip()).isOk());
  EXPECT_EQ(programVerificationCount(), n + 1);
  EXPECT_TRUE(isVerifiedFor(other, testing::trn1Chip()));
  EXPECT_FALSE(isVerifiedFor(other, chip));

  // A change that keeps the program valid: verified again, accepted, stamped anew.
  Program changed = p;
  changed.instructions[1].imm[0] = 3.0f;
  EXPECT_FALSE(isVerifiedFor(changed, chip));
  n = programVerificationCount();
  EXPECT_TRUE(ensureVerified(changed, chip).isOk());
  EXPECT_EQ(programVerificationCount(), n + 1);
  EXPECT_TRUE(isVerifiedFor(changed, chip));

  // A change that breaks it, behind a stamp that still names the chip: refused.
  Program broken = p;
  broken.instructions[1].operands[0].ap.offset = 5;  // t[0, 5 + 7] is outside t's 8 columns
  EXPECT_EQ(broken.verified.chip, p.verified.chip);
  Status s = ensureVerified(broken, chip);
  EXPECT_EQ(s.code(), ErrorCode::kOutOfBounds) << s.toString();
  EXPECT_EQ(s.where(), "instruction 1 (tensor_scalar)");
  EXPECT_FALSE(isVerifiedFor(broken, chip));
}

TEST(VerifyOnce, EveryFieldCountsInTheFingerprint) {
  const arch::ChipConfig chip = testing::trn2Chip();
  const Program p = builtProgram(chip);
  const uint64_t fp = programFingerprint(p);
  auto differs = [&](auto&& change) {
    Program q = p;
    change(q);
    return programFingerprint(q) != fp;
  };
  EXPECT_TRUE(differs([](Program& q) { q.name += "x"; }));
  EXPECT_TRUE(differs([](Program& q) { q.tensors[2].byteOffset += 4; }));
  EXPECT_TRUE(differs([](Program& q) { q.tensors[2].shape[1] = 4; }));
  EXPECT_TRUE(differs([](Program& q) { q.tensors[0].kind = TensorKind::kInOut; }));
  EXPECT_TRUE(differs([](Program& q) { q.instructions[1].alu0 = AluOp::kAdd; }));
  EXPECT_TRUE(differs([](Program& q) { q.instructions[1].engine = Engine::kGpSimd; }));
  EXPECT_TRUE(differs([](Program& q) { q.instructions[0].queue = 1; }));
  EXPECT_TRUE(differs([](Program& q) { q.instructions[1].operands[1].ap.free[0].stride = 2; }));
  EXPECT_TRUE(differs([](Program& q) { q.instructions[1].operands.pop_back(); }));
  EXPECT_TRUE(differs([](Program& q) { q.instructions.pop_back(); }));
  EXPECT_TRUE(differs([](Program& q) { q.locations.push_back({"k.py", 1}); }));
  EXPECT_TRUE(differs([](Program& q) { q.replicaGroups.push_back({}); }));
  EXPECT_FALSE(differs([](Program& q) { q.verified = {}; }));  // the stamp is not contents

  // A program read back from its text form has the same contents but no stamp: it is
  // verified where it is loaded.
  auto parsed = parseProgram(printProgram(p), "once.tsim");
  ASSERT_TRUE(parsed.hasValue()) << parsed.status().toString();
  EXPECT_EQ(programFingerprint(*parsed), fp);
  EXPECT_FALSE(isVerifiedFor(*parsed, chip));
}

/// x[p0:1, 5 columns]; instruction 0 writes it all, instruction 1 is `body`'s.
Program overlapProgram(const std::string& body) {
  auto p = parseProgram(
      "program \"overlap\" target=\"trn2\"\n"
      "tensor %x sbuf float32 [2, 8] at p0+0x0\n"
      "memset.vector dst=%x[p0:2, +0, 8@1] value=1\n" +
          body + "\n",
      "overlap.tsim");
  EXPECT_TRUE(p.hasValue()) << p.status().toString();
  return p.hasValue() ? std::move(*p) : Program{};
}

TEST(VerifyOnce, OverlappingOperandsAreAVerifierError) {
  const arch::ChipConfig chip = testing::trn2Chip();
  // Shifted by one element: dst and src share bytes.
  Status s = checkProgram(
      overlapProgram("tensor_copy.vector dst=%x[p0:2, +1, 4@1] src=%x[p0:2, +0, 4@1]"), chip);
  EXPECT_EQ(s.code(), ErrorCode::kVerify) << s.toString();
  EXPECT_EQ(s.where(), "instruction 1 (tensor_copy)");
  EXPECT_NE(s.message().find("operand 'dst' (tensor 'x') overlaps operand 'src' (tensor 'x')"),
            std::string::npos)
      << s.toString();
  EXPECT_NE(s.message().find("write it to memory the instruction does not read"), std::string::npos)
      << s.toString();
  // Accepted: in place element for element; interleaved halves; one partition's columns
  // written from another partition's (rows are apart, so the bytes are).
  for (const char* ok : {"tensor_copy.vector dst=%x[p0:2, +0, 8@1] src=%x[p0:2, +0, 8@1]",
                         "tensor_copy.vector dst=%x[p0:2, +1, 4@2] src=%x[p0:2, +0, 4@2]",
                         "dma_copy.dma dst=%x[p1:2, +0, 8@1] src=%x[p0:1, +0, 8@1]"}) {
    Status okStatus = checkProgram(overlapProgram(ok), chip);
    EXPECT_TRUE(okStatus.isOk()) << ok << ": " << okStatus.toString();
  }
  // In place is only for elementwise instructions: a transpose into its own input is not.
  s = checkProgram(
      overlapProgram("nc_transpose.vector dst=%x[p0:2, +0, 2@1] data=%x[p0:2, +0, 2@1]"), chip);
  EXPECT_EQ(s.code(), ErrorCode::kVerify) << s.toString();
  EXPECT_NE(s.message().find("overlaps"), std::string::npos) << s.toString();
}

}  // namespace
}  // namespace trnsim::isa
