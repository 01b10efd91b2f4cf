// The text form's named immediates: one left out would read as 0 and change the values without a
// word (activation's scale 0 zeroes its input), so the parser asks for it; an operand of the
// same name feeds it instead, and an ALU operand is not read when its ALU is bypass.

#include <gtest/gtest.h>

#include <string>

#include "trnsim/isa/text.h"

namespace trnsim::isa {
namespace {

const std::string kHeader =
    "program \"p\"\ntensor %t sbuf float32 [128, 64] at p0+0x0\n"
    "tensor %s sbuf float32 [128, 1] at p0+0x100\n";

Expected<Program> parseLine(const std::string& line) {
  return parseProgram(kHeader + line + "\n", "t.tsim");
}

TEST(TextImmediates, LeftOutImmediateIsAnErrorNamingIt) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"activation dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] func=exp",
       "activation needs scale=<value> or scale=%tensor"},
      {"memset dst=%t[p0:128, +0, 64@1]", "memset needs value=<value>: a left-out immediate"},
      {"tensor_scalar dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] op0=multiply",
       "tensor_scalar needs operand0=<value> or operand0=%tensor"},
      {"tensor_scalar dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] op0=multiply "
       "operand0=2 op1=add",
       "needs operand1=<value>"},
      {"iota dst=%t[p0:128, +0, 64@1] offset=0 step0=1", "iota needs channel_multiplier=<value>"},
      {"dropout dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1]",
       "dropout needs prob=<value> or prob=%tensor"},
  };
  for (const Case& c : cases) {
    auto r = parseLine(c.text);
    ASSERT_FALSE(r.hasValue()) << c.text;
    EXPECT_EQ(r.status().code(), ErrorCode::kParse);
    EXPECT_EQ(r.status().where(), "t.tsim:4:1") << r.status().toString();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.text << "\n" << r.status().toString();
  }
}

TEST(TextImmediates, GivenFedByAnOperandOrUnreadIsAccepted) {
  struct Case {
    const char* text;
    float imm0, imm1;
  };
  const Case cases[] = {
      {"activation dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] func=exp scale=0.5", 0.5f,
       0},
      {"activation dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] func=exp "
       "scale=%s[p0:128, +0, 1@1]",
       0, 0},
      {"tensor_scalar dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] op0=multiply "
       "operand0=%s[p0:128, +0, 1@1]",
       0, 0},
      {"tensor_scalar dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] op0=add operand0=-3",
       -3, 0},
      {"tensor_scalar dst=%t[p0:128, +0, 64@1] data=%t[p0:128, +0, 64@1] op0=add operand0=1 "
       "op1=multiply operand1=4",
       1, 4},
      {"memset dst=%t[p0:128, +0, 64@1] value=0", 0, 0},
  };
  for (const Case& c : cases) {
    auto r = parseLine(c.text);
    ASSERT_TRUE(r.hasValue()) << c.text << "\n" << r.status().toString();
    ASSERT_EQ(r->instructions.size(), 1u);
    EXPECT_EQ(r->instructions[0].imm[0], c.imm0) << c.text;
    EXPECT_EQ(r->instructions[0].imm[1], c.imm1) << c.text;
  }
}

}  // namespace
}  // namespace trnsim::isa
