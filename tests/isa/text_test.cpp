// The text form: exact round trips (random programs with every opcode), a hand-written
// program read field by field, and parse errors with their line and column.

#include <gtest/gtest.h>

#include <bit>
#include <random>
#include <string>

#include "isa_test_util.h"
#include "random_program.h"
#include "trnsim/isa/text.h"

namespace trnsim::isa {
namespace {

void expectSamePrograms(const Program& want, const Program& got) {
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.locations, want.locations);
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (size_t i = 0; i < want.tensors.size(); ++i) {
    const TensorDecl& a = want.tensors[i];
    const TensorDecl& b = got.tensors[i];
    EXPECT_TRUE(a.name == b.name && a.space == b.space && a.dtype == b.dtype &&
                a.shape == b.shape && a.kind == b.kind && a.partitionStart == b.partitionStart &&
                a.byteOffset == b.byteOffset && a.aliasOf == b.aliasOf)
        << "tensor " << i;
  }
  ASSERT_EQ(got.instructions.size(), want.instructions.size());
  for (size_t i = 0; i < want.instructions.size(); ++i) {
    const Instruction& a = want.instructions[i];
    const Instruction& b = got.instructions[i];
    // Compare float immediates by bits (NaN != NaN otherwise).
    for (size_t k = 0; k < 4; ++k)
      EXPECT_EQ(std::bit_cast<uint32_t>(a.imm[k]), std::bit_cast<uint32_t>(b.imm[k]))
          << "instruction " << i << " imm " << k;
    Instruction a2 = a, b2 = b;
    a2.imm = b2.imm = {};
    EXPECT_TRUE(a2 == b2) << "instruction " << i << ":\n  " << printInstruction(want, a) << "\n  "
                          << printInstruction(got, b);
  }
}

TEST(TextForm, RandomProgramsRoundTripExactly) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    Program p = testing::randomProgram(seed);
    std::string text = printProgram(p);
    auto back = parseProgram(text, "rand.tsim");
    ASSERT_TRUE(back.hasValue()) << back.status().toString() << "\n" << text;
    expectSamePrograms(p, *back);
    EXPECT_EQ(printProgram(*back), text);
  }
}

TEST(TextForm, ReadsAHandWrittenProgram) {
  const char* text = R"(# a matmul with a bias
program "mm" target="trn2"
loc 1 "kernel.py":42
tensor %w sbuf bfloat16 [128, 128] at p0+0x0
tensor %x sbuf bf16 [128, 512] at p0+0x100   # alias spelling of the dtype
tensor %acc psum float32 [128, 512] at p0+0x0
tensor %out hbm float32 [128, 512] at 0x1000 kind=output
tensor %"acc view" psum float32 [128, 512] at p0+0 alias=%acc

nc_matmul dst=%acc[p0:128, +0, 512@1] stationary=%w[p0:128, +0, 128@1] moving=%x[p0:128, +0, 512@1] flags=accumulate loc=1
activation.scalar dst=%acc[p0:128, +0, 512@1] data=%acc[p0:128, +0, 4@128, 128@1] func=gelu scale=0.5 reduce_op=bypass
dma_copy.dma dst=%out[p0:128@512, -0, 512@1] src=%"acc view"[p64:128, +0, 512@1] queue=3
tensor_scalar dst=%x[p0:128, +0, 512@1] data=%x[p0:128, +0, 512@1] op0=multiply operand0=f32:0x3f800000 op1=add operand1=-inf flags=reverse0|0x8000
)";
  auto parsed = parseProgram(text, "mm.tsim");
  ASSERT_TRUE(parsed.hasValue()) << parsed.status().toString();
  const Program& p = *parsed;
  EXPECT_EQ(p.name, "mm");
  EXPECT_EQ(p.target, "trn2");
  ASSERT_EQ(p.locations.size(), 2u);
  EXPECT_EQ(p.locations[1], (SourceLocation{"kernel.py", 42}));
  ASSERT_EQ(p.tensors.size(), 5u);
  EXPECT_EQ(p.tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(p.tensors[1].byteOffset, 0x100u);
  EXPECT_EQ(p.tensors[3].space, MemSpace::kHbm);
  EXPECT_EQ(p.tensors[3].kind, TensorKind::kOutput);
  EXPECT_EQ(p.tensors[3].byteOffset, 0x1000u);
  EXPECT_EQ(p.tensors[4].name, "acc view");
  EXPECT_EQ(p.tensors[4].aliasOf, 2u);
  ASSERT_EQ(p.instructions.size(), 4u);
  const Instruction& mm = p.instructions[0];
  EXPECT_EQ(mm.opcode, Opcode::kNcMatmul);
  EXPECT_EQ(mm.engine, Engine::kTensor);  // the opcode's default engine
  EXPECT_EQ(mm.flags, kFlagAccumulate);
  EXPECT_EQ(mm.loc, 1u);
  ASSERT_EQ(mm.operands.size(), 3u);
  EXPECT_EQ(mm.operands[1].ap, testing::tile(0, 128, 128));
  const Instruction& act = p.instructions[1];
  EXPECT_EQ(act.act, ActFunc::kGelu);
  EXPECT_EQ(act.imm[0], 0.5f);
  EXPECT_EQ(act.operands[1].ap, testing::ap(2, 0, 128, 0, {{128, 4}, {1, 128}}));
  const Instruction& dma = p.instructions[2];
  EXPECT_EQ(dma.queue, 3);
  EXPECT_EQ(dma.operands[0].ap, testing::ap(3, 0, 128, 0, {{1, 512}}, 512));
  EXPECT_EQ(dma.operands[1].ap, testing::tile(4, 64, 512, 64));
  const Instruction& ts = p.instructions[3];
  EXPECT_EQ(ts.alu0, AluOp::kMultiply);
  EXPECT_EQ(ts.alu1, AluOp::kAdd);
  EXPECT_EQ(ts.imm[0], 1.0f);
  EXPECT_EQ(ts.imm[1], -INFINITY);
  EXPECT_EQ(ts.flags, kFlagReverse0 | 0x8000);
}

TEST(TextForm, PrintsReadableInstructions) {
  Program p;
  uint32_t acc = testing::addTensor(p, "acc", MemSpace::kPsum, DType::kFP32, {128, 512});
  uint32_t w = testing::addTensor(p, "w", MemSpace::kSbuf, DType::kBF16, {128, 128});
  Instruction in = testing::inst(Opcode::kNcMatmul, {{0, testing::tile(acc, 128, 512)},
                                                  {1, testing::tile(w, 128, 128)},
                                                  {2, testing::ap(w, 0, 128, 0, {{-1, 2}, {1, 64}})}});
  in.flags = kFlagAccumulate | kFlagDoubleRow;
  EXPECT_EQ(printInstruction(p, in),
            "nc_matmul.tensor dst=%acc[p0:128, +0, 512@1] stationary=%w[p0:128, +0, 128@1] "
            "moving=%w[p0:128, +0, 2@-1, 64@1] flags=accumulate|double_row");
  EXPECT_EQ(printAccessPattern(p, testing::ap(acc, 32, 32, -5, {})), "%acc[p32:64, -5]");
}

struct BadText {
  const char* text;
  const char* where;    ///< "origin:line:column"
  const char* message;  ///< part of the message
};

TEST(TextForm, ParseErrorsNameLineColumnAndExpectation) {
  const std::string header = "program \"p\"\ntensor %t sbuf float32 [128, 64] at p0+0x0\n";
  const BadText cases[] = {
      {"bogus x=1", "t.tsim:3:1", "unknown opcode \"bogus\""},
      {"tensor_copy.warp dst=%t[p0:1, +0]", "t.tsim:3:13", "unknown engine \"warp\""},
      {"tensor_copy dst=%u[p0:1, +0]", "t.tsim:3:17", "tensor \"u\" is not declared"},
      {"tensor_copy dst=%t[p0:1, +0, 4@1 src=%t[p0:1, +0]", "t.tsim:3:34",
       "expected ',' or ']' in the access pattern"},
      {"tensor_copy dst=%t[p0:1 +0]", "t.tsim:3:25", "expected ',' after the partition range"},
      {"tensor_copy dst=%t[p4:2, +0]", "t.tsim:3:23", "partition stop 2 must be at least the start 4"},
      {"tensor_copy dst=%t[p0:1, +0, 1@1, 1@1, 1@1, 1@1, 1@1]", "t.tsim:3:50", "at most 4"},
      {"tensor_copy dsx=%t[p0:1, +0]", "t.tsim:3:13", "tensor_copy has no operand \"dsx\""},
      {"tensor_copy dst=%t[p0:1, +0] dst=%t[p0:1, +0]", "t.tsim:3:30", "\"dst\" given twice"},
      {"memset dst=%t[p0:1, +0] value=abc", "t.tsim:3:31", "expected a value for value"},
      {"memset dst=%t[p0:1, +0] colour=1", "t.tsim:3:25", "memset has no attribute \"colour\""},
      {"tensor_tensor dst=%t[p0:1, +0] op0=plus", "t.tsim:3:36", "unknown ALU operation \"plus\""},
      {"tensor_copy dst=%t[p0:1, +0] flags=accumulate|shiny", "t.tsim:3:47", "unknown flag \"shiny\""},
      {"tensor_copy dst=%t[p0:1, +0] loc=5", "t.tsim:3:34", "location 5 is not declared"},
      {"tensor %u sbuf float33 [1] at p0+0", "t.tsim:3:16", "expected a dtype"},
      {"tensor %u sbuf float32 [1, x] at p0+0", "t.tsim:3:28", "expected a shape dimension"},
      {"tensor %u sbuf float32 [1] at p0+0 alias=%nope", "t.tsim:3:42", "alias names tensor \"nope\""},
      {"loc 3 \"k.py\":1", "t.tsim:3:5", "location index 3 out of sequence: expected 1"},
      {"loc 1 \"k.py", "t.tsim:3:7", "unterminated string"},
      {"program \"again\"", "t.tsim:3:8", "a second 'program' line"},
      {"tensor_copy dst=%t[p0:99999999999, +0]", "t.tsim:3:23", "partition stop"},
      {"tensor_copy dst=%t[p0:1, +99999999999999999999]", "t.tsim:3:26", "element offset"},
  };
  for (const BadText& c : cases) {
    auto r = parseProgram(header + c.text + "\n", "t.tsim");
    ASSERT_FALSE(r.hasValue()) << c.text;
    EXPECT_EQ(r.status().code(), ErrorCode::kParse);
    EXPECT_EQ(r.status().where(), c.where) << c.text << "\n" << r.status().toString();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.text << "\n" << r.status().toString();
  }
}

TEST(TextForm, CommentsBlankLinesAndCrLf) {
  auto r = parseProgram("# only a comment\r\n\r\n   \nprogram \"x\" # trailing\r\n", "c.tsim");
  ASSERT_TRUE(r.hasValue()) << r.status().toString();
  EXPECT_EQ(r->name, "x");
  EXPECT_TRUE(r->instructions.empty());
}

TEST(TextForm, MutatedTextNeverCrashes) {
  // Random edits of valid text must give a program or a kParse error, nothing else.
  std::mt19937_64 rng(7);
  const std::string alphabet = "%[]:@,+-#\"\\=.|0123456789abpxz \n\t";
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::string text = printProgram(testing::randomProgram(seed, 12));
    for (int trial = 0; trial < 200; ++trial) {
      std::string t = text;
      int edits = 1 + int(rng() % 4);
      for (int e = 0; e < edits && !t.empty(); ++e) {
        size_t at = rng() % t.size();
        switch (rng() % 3) {
          case 0: t[at] = alphabet[rng() % alphabet.size()]; break;
          case 1: t.erase(at, 1 + rng() % 8); break;
          default: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        }
      }
      auto r = parseProgram(t, "m.tsim");
      if (!r.hasValue()) {
        EXPECT_EQ(r.status().code(), ErrorCode::kParse);
      }
    }
  }
}

}  // namespace
}  // namespace trnsim::isa
