// The verifier, rule by rule: one instruction that obeys the rule and one that breaks it,
// checking the error code and that the message names the instruction, the operand and the rule.

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "isa_test_util.h"
#include "trnsim/isa/verify.h"

namespace trnsim::isa {
namespace {

using testing::ap;
using testing::inst;
using testing::tile;

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a = testing::addTensor(p, "a", MemSpace::kSbuf, DType::kBF16, {128, 512});
    b = testing::addTensor(p, "b", MemSpace::kSbuf, DType::kBF16, {128, 512}, 0, 1024);
    out = testing::addTensor(p, "out", MemSpace::kSbuf, DType::kFP32, {128, 512}, 0, 2048);
    acc = testing::addTensor(p, "acc", MemSpace::kPsum, DType::kFP32, {128, 512});
    acc2 = testing::addTensor(p, "acc2", MemSpace::kPsum, DType::kFP32, {128, 1024}, 0, 2048);
    h = testing::addTensor(p, "h", MemSpace::kHbm, DType::kFP32, {128, 512}, 0, 0,
                        TensorKind::kInput);
    s = testing::addTensor(p, "s", MemSpace::kSbuf, DType::kFP32, {128, 1}, 0, 4096);
    idx = testing::addTensor(p, "idx", MemSpace::kSbuf, DType::kInt32, {128, 1}, 0, 4100);
    st8 = testing::addTensor(p, "st8", MemSpace::kSbuf, DType::kFP8E4M3, {128, 2, 128}, 0, 8192);
    mv8 = testing::addTensor(p, "mv8", MemSpace::kSbuf, DType::kFP8E4M3, {128, 2, 512}, 0, 8448);
    b8 = testing::addTensor(p, "b8", MemSpace::kSbuf, DType::kUInt8, {128, 64}, 0, 9472);
    p.locations.push_back({"kernel.py", 42});
  }

  /// Verifies `in` as the only instruction of the fixture program.
  Status check(Instruction in, const arch::ChipConfig& chip) {
    p.instructions = {std::move(in)};
    return verifyInstruction(p, 0, chip);
  }
  Status check(Instruction in) { return check(std::move(in), chip2); }

  void expectOk(Instruction in) {
    Status st = check(std::move(in));
    EXPECT_TRUE(st.isOk()) << st.toString();
  }
  void expectError(Instruction in, ErrorCode code, std::initializer_list<std::string> parts,
                   const arch::ChipConfig* chip = nullptr) {
    Status st = check(std::move(in), chip ? *chip : chip2);
    ASSERT_FALSE(st.isOk()) << "expected an error containing " << *parts.begin();
    EXPECT_EQ(st.code(), code) << st.toString();
    std::string text = st.toString();
    EXPECT_NE(text.find("instruction 0 ("), std::string::npos) << text;
    for (const auto& part : parts) EXPECT_NE(text.find(part), std::string::npos) << text;
  }

  Program p;
  arch::ChipConfig chip2 = testing::trn2Chip();
  arch::ChipConfig chip1 = testing::trn1Chip();
  uint32_t a, b, out, acc, acc2, h, s, idx, st8, mv8, b8;
};

Instruction copy(const AccessPattern& dst, const AccessPattern& src) {
  return inst(Opcode::kTensorCopy, {{0, dst}, {1, src}});
}

TEST_F(VerifyTest, ValidCopyPasses) { expectOk(copy(tile(out, 128, 512), tile(a, 128, 512))); }

TEST_F(VerifyTest, MessageNamesKernelLocation) {
  Instruction in = copy(tile(out, 128, 512), tile(a, 128, 256));
  in.loc = 1;
  expectError(in, ErrorCode::kVerify, {"tensor_copy", "kernel.py:42", "src", "free size"});
}

TEST_F(VerifyTest, EngineMustBeAllowed) {
  expectOk(inst(Opcode::kTensorTensor,
                {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {2, tile(b, 128, 512)}},
                Engine::kGpSimd));
  expectError(inst(Opcode::kTensorTensor,
                   {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {2, tile(b, 128, 512)}},
                   Engine::kScalar),
              ErrorCode::kVerify, {"engine scalar cannot run tensor_tensor", "vector, gpsimd"});
}

TEST_F(VerifyTest, RequiredOperandsAndKnownSlots) {
  expectError(inst(Opcode::kTensorTensor, {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}}),
              ErrorCode::kVerify, {"data2", "required operand is missing"});
  expectError(inst(Opcode::kTensorCopy, {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)},
                                         {4, tile(a, 128, 512)}}),
              ErrorCode::kVerify, {"operand slot 4 does not exist"});
  expectError(inst(Opcode::kTensorCopy, {{1, tile(a, 128, 512)}, {0, tile(out, 128, 512)}}),
              ErrorCode::kVerify, {"slot order"});
}

TEST_F(VerifyTest, TensorIndexMustExist) {
  expectError(copy(tile(out, 128, 512), tile(99, 128, 512)), ErrorCode::kVerify,
              {"src", "tensor index 99 does not exist"});
}

TEST_F(VerifyTest, AtMostFourFreeDims) {
  expectOk(copy(ap(out, 0, 128, 0, {{256, 2}, {128, 2}, {64, 2}, {1, 64}}), tile(a, 128, 512)));
  AccessPattern five = tile(out, 128, 512);
  five.numFree = 5;
  expectError(copy(five, tile(a, 128, 512)), ErrorCode::kVerify, {"dst", "5 free dims", "at most 4"});
}

TEST_F(VerifyTest, CountsAtLeastOne) {
  expectError(copy(ap(out, 0, 128, 0, {{1, 0}}), tile(a, 128, 512)), ErrorCode::kVerify,
              {"dst", "count 0"});
  expectError(copy(ap(out, 0, 0, 0, {{1, 512}}), tile(a, 128, 512)), ErrorCode::kVerify,
              {"dst", "partition count 0"});
}

TEST_F(VerifyTest, ElementsInsideTensorWithNegativeStrides) {
  // Reversed free dim: offset 511, stride -1 touches 511..0.
  expectOk(copy(ap(out, 0, 128, 511, {{-1, 512}}), tile(a, 128, 512)));
  expectError(copy(ap(out, 0, 128, 510, {{-1, 512}}), tile(a, 128, 512)), ErrorCode::kOutOfBounds,
              {"dst", "free index -1", "'out'"});
  expectError(copy(tile(out, 128, 512, 0, 1), tile(a, 128, 512)), ErrorCode::kOutOfBounds,
              {"dst", "free index 512"});
  expectError(copy(ap(out, 0, 128, 0, {{INT64_MAX, 3}}), tile(a, 128, 512)),
              ErrorCode::kOutOfBounds, {"dst", "overflows"});
}

TEST_F(VerifyTest, PartitionsInsideTensor) {
  uint32_t half = testing::addTensor(p, "half", MemSpace::kSbuf, DType::kFP32, {64, 512}, 64, 0);
  expectOk(copy(tile(half, 64, 512), tile(a, 64, 512)));
  expectError(copy(tile(half, 64, 512, 32), tile(a, 64, 512)), ErrorCode::kOutOfBounds,
              {"dst", "partitions 32..95", "'half'"});
}

TEST_F(VerifyTest, OnChipPartitionStrideIsOne) {
  expectError(copy(ap(out, 0, 64, 0, {{1, 512}}, 2), tile(a, 64, 512)), ErrorCode::kVerify,
              {"dst", "partition stride 2", "contiguous"});
}

TEST_F(VerifyTest, PartitionStartRule) {
  expectOk(copy(tile(out, 64, 512, 64), tile(a, 64, 512)));
  expectOk(copy(tile(out, 32, 512, 96), tile(a, 32, 512, 32)));
  expectOk(copy(tile(out, 40, 512, 64), tile(a, 40, 512)));
  expectError(copy(tile(out, 64, 512, 16), tile(a, 64, 512)), ErrorCode::kVerify,
              {"dst: partition start 16 is not allowed for 64 partitions: a 33-64 partition "
               "access must start at partition 0 or 64"});
  expectError(copy(tile(out, 16, 512), tile(a, 16, 512, 8)), ErrorCode::kVerify,
              {"src", "partition start 8", "0, 32, 64 or 96"});
  expectError(copy(tile(out, 100, 512, 28), tile(a, 100, 512)), ErrorCode::kVerify,
              {"dst", "more than 64 partitions must start at partition 0"});
  // The tensor's own placement counts: a tensor at partition 16 accessed from its start.
  uint32_t t16 = testing::addTensor(p, "t16", MemSpace::kSbuf, DType::kFP32, {16, 8}, 16, 0);
  expectError(copy(tile(t16, 16, 8), tile(a, 16, 8)), ErrorCode::kVerify,
              {"dst", "partition start 16"});
  // DMA addresses any partition.
  expectOk(inst(Opcode::kDmaCopy, {{0, tile(t16, 16, 8)}, {1, ap(h, 0, 16, 0, {{1, 8}}, 512)}}));
}

TEST_F(VerifyTest, EnginesStayOnChip) {
  expectError(copy(tile(out, 128, 512), ap(h, 0, 128, 0, {{1, 512}}, 512)), ErrorCode::kVerify,
              {"src", "HBM", "dma_copy"});
  expectOk(inst(Opcode::kDmaCopy, {{0, tile(out, 128, 512)}, {1, ap(h, 0, 128, 0, {{1, 512}}, 512)}}));
  expectError(inst(Opcode::kDmaCopy, {{0, tile(out, 128, 512)}, {1, ap(h, 0, 128, 0, {{1, 256}}, 512)}}),
              ErrorCode::kVerify, {"dst", "65536 elements but src has 32768"});
  expectError(inst(Opcode::kDmaCopy, {{0, tile(out, 128, 512)}, {1, ap(h, 0, 128, 1, {{1, 512}}, 512)}}),
              ErrorCode::kOutOfBounds, {"src", "element index 65536"});
}

TEST_F(VerifyTest, HbmPatternHasNoPartitionOffset) {
  expectError(inst(Opcode::kDmaCopy, {{0, tile(out, 1, 512)}, {1, ap(h, 3, 1, 0, {{1, 512}}, 512)}}),
              ErrorCode::kVerify, {"src", "partition offset 3 on an HBM tensor"});
}

Instruction matmul(const AccessPattern& dst, const AccessPattern& st, const AccessPattern& mv,
                   uint16_t flags = 0) {
  Instruction in = inst(Opcode::kNcMatmul, {{0, dst}, {1, st}, {2, mv}});
  in.flags = flags;
  return in;
}

TEST_F(VerifyTest, MatmulSpacesAndLimits) {
  expectOk(matmul(tile(acc, 128, 512), tile(a, 128, 128), tile(b, 128, 512), kFlagAccumulate));
  expectError(matmul(tile(out, 128, 512), tile(a, 128, 128), tile(b, 128, 512)), ErrorCode::kVerify,
              {"dst", "PSUM", "sbuf"});
  expectError(matmul(tile(acc, 128, 128), tile(acc2, 128, 128), tile(b, 128, 128)),
              ErrorCode::kVerify, {"stationary", "SBUF", "psum"});
  expectError(matmul(tile(acc, 128, 512), tile(a, 128, 256), tile(b, 128, 512)), ErrorCode::kVerify,
              {"stationary", "M = 256", "128 PE columns"});
  expectError(matmul(tile(acc, 128, 512), tile(a, 128, 128), ap(b, 0, 128, 0, {{1, 512}, {0, 2}})),
              ErrorCode::kVerify, {"moving", "N = 1024", "512"});
  expectError(matmul(tile(acc, 128, 256), tile(a, 128, 128), tile(b, 128, 512)), ErrorCode::kVerify,
              {"dst", "expected [M=128, N=512]"});
  expectError(matmul(tile(acc, 128, 512), tile(a, 128, 128), tile(b, 64, 512)), ErrorCode::kVerify,
              {"moving", "64 partitions", "stationary has 128"});
  arch::ChipConfig small = testing::trn2Chip();
  small.pe.rows = 64;
  expectError(matmul(tile(acc, 128, 512), tile(a, 128, 128), tile(b, 128, 512)), ErrorCode::kVerify,
              {"stationary", "K = 128", "64 PE rows"}, &small);
}

TEST_F(VerifyTest, MatmulDoubleRow) {
  Instruction dr = matmul(tile(acc, 128, 512), ap(st8, 0, 128, 0, {{128, 2}, {1, 128}}),
                          ap(mv8, 0, 128, 0, {{512, 2}, {1, 512}}), kFlagDoubleRow);
  expectOk(dr);
  expectError(dr, ErrorCode::kVerify, {"double_row", "fp8 speed-up", "trn1-test"}, &chip1);
  expectError(matmul(tile(acc, 128, 512), ap(a, 0, 128, 0, {{128, 2}, {1, 128}}),
                     ap(mv8, 0, 128, 0, {{512, 2}, {1, 512}}), kFlagDoubleRow),
              ErrorCode::kVerify, {"stationary", "bfloat16", "needs fp8"});
  expectError(matmul(tile(acc, 128, 512), tile(st8, 128, 256), ap(mv8, 0, 128, 0, {{512, 2}, {1, 512}}),
                     kFlagDoubleRow),
              ErrorCode::kVerify, {"stationary", "[2, ...]"});
}

TEST_F(VerifyTest, Transpose) {
  expectOk(inst(Opcode::kNcTranspose, {{0, tile(acc, 128, 128)}, {1, tile(a, 128, 128)}}));
  expectOk(inst(Opcode::kNcTranspose, {{0, tile(out, 32, 32)}, {1, tile(a, 32, 32)}}, Engine::kVector));
  expectError(inst(Opcode::kNcTranspose, {{0, tile(out, 64, 64)}, {1, tile(a, 64, 64)}},
                   Engine::kVector),
              ErrorCode::kVerify, {"data", "too large for a vector engine transpose", "[32, 32]"});
  expectError(inst(Opcode::kNcTranspose, {{0, tile(acc, 128, 64)}, {1, tile(a, 128, 128)}}),
              ErrorCode::kVerify, {"dst", "swaps"});
  expectError(inst(Opcode::kNcTranspose, {{0, tile(out, 128, 128)}, {1, tile(a, 128, 128)}}),
              ErrorCode::kVerify, {"dst", "PSUM"});
}

TEST_F(VerifyTest, ElementwiseAgreement) {
  expectOk(inst(Opcode::kTensorTensor,
                {{0, tile(out, 128, 512)}, {1, ap(a, 0, 128, 0, {{32, 16}, {1, 32}})}, {2, tile(b, 128, 512)}}));
  expectError(inst(Opcode::kTensorTensor,
                   {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {2, tile(b, 128, 256)}}),
              ErrorCode::kVerify, {"data2", "[P=128, F=256]", "free size"});
}

TEST_F(VerifyTest, ScalarTiles) {
  Instruction ok = inst(Opcode::kTensorScalar,
                        {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {2, tile(s, 128, 1)}});
  ok.alu0 = AluOp::kMultiply;
  expectOk(ok);
  Instruction bad = inst(Opcode::kTensorScalar,
                         {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {2, tile(a, 128, 2)}});
  bad.alu0 = AluOp::kMultiply;
  expectError(bad, ErrorCode::kVerify, {"operand0", "[P, 1]"});
  Instruction bias = inst(Opcode::kActivation,
                          {{0, tile(out, 64, 512)}, {1, tile(a, 64, 512)}, {2, tile(s, 128, 1)}});
  expectError(bias, ErrorCode::kVerify, {"bias", "128 partitions", "data has 64"});
}

TEST_F(VerifyTest, ReduceRules) {
  Instruction act = inst(Opcode::kActivation,
                         {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {4, tile(s, 128, 1)}});
  act.reduceOp = AluOp::kAdd;
  expectOk(act);
  act.operands.pop_back();
  expectError(act, ErrorCode::kVerify, {"reduce_res", "no reduce_res operand"});
  act.reduceOp = AluOp::kDivide;
  act.operands.push_back(Operand{4, tile(s, 128, 1)});
  expectError(act, ErrorCode::kVerify, {"reduce_op divide cannot reduce"});

  Instruction red = inst(Opcode::kTensorReduce,
                         {{0, tile(s, 128, 1)}, {1, ap(a, 0, 128, 0, {{64, 8}, {1, 64}})}});
  red.alu0 = AluOp::kMax;
  red.iarg[0] = 0b11;
  expectOk(red);
  red.iarg[0] = 0b10;  // keeps the first dim (8 values), but dst holds 1
  expectError(red, ErrorCode::kVerify, {"dst", "free size 1, expected 8"});
  red.iarg[0] = 0b100;
  expectError(red, ErrorCode::kVerify, {"axis_mask 0x4"});
}

TEST_F(VerifyTest, Max8AndFindIndex) {
  uint32_t top = testing::addTensor(p, "top", MemSpace::kSbuf, DType::kFP32, {128, 8}, 0, 12000);
  uint32_t topIdx = testing::addTensor(p, "topi", MemSpace::kSbuf, DType::kUInt32, {128, 8}, 0, 12032);
  expectOk(inst(Opcode::kMax8, {{0, tile(top, 128, 8)}, {1, tile(a, 128, 512)}}));
  expectError(inst(Opcode::kMax8, {{0, tile(top, 128, 4)}, {1, tile(a, 128, 512)}}),
              ErrorCode::kVerify, {"dst", "free size 4, expected 8"});
  expectOk(inst(Opcode::kNcFindIndex8,
                {{0, tile(topIdx, 128, 8)}, {1, tile(a, 128, 512)}, {2, tile(top, 128, 8)}}));
  expectError(inst(Opcode::kNcFindIndex8,
                   {{0, tile(top, 128, 8)}, {1, tile(a, 128, 512)}, {2, tile(top, 128, 8)}}),
              ErrorCode::kVerify, {"dst", "float32 cannot hold indices"});
}

TEST_F(VerifyTest, BnStatsShapes) {
  // 1024 values (the row read twice through a zero stride) make two 512-element chunks.
  AccessPattern twice = ap(a, 0, 128, 0, {{0, 2}, {1, 512}});
  expectOk(inst(Opcode::kBnStats, {{0, tile(out, 128, 12)}, {1, twice}}));
  expectError(inst(Opcode::kBnStats, {{0, tile(out, 128, 6)}, {1, twice}}),
              ErrorCode::kVerify, {"dst", "expected 12"});
  expectError(inst(Opcode::kBnAggr, {{0, tile(out, 128, 2)}, {1, tile(out, 128, 7)}}),
              ErrorCode::kVerify, {"data", "multiple of 6"});
}

TEST_F(VerifyTest, FlagsFromMaskOnly) {
  expectOk(matmul(tile(acc, 128, 512), tile(a, 128, 128), tile(b, 128, 512), kFlagAccumulate));
  Instruction in = copy(tile(out, 128, 512), tile(a, 128, 512));
  in.flags = kFlagAccumulate;
  expectError(in, ErrorCode::kVerify, {"flags accumulate are not accepted by tensor_copy"});
}

TEST_F(VerifyTest, EnumValuesInRange) {
  Instruction in = inst(Opcode::kTensorTensor,
                        {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}, {2, tile(b, 128, 512)}});
  in.alu0 = static_cast<AluOp>(200);
  expectError(in, ErrorCode::kVerify, {"op0 value 200"});
  Instruction act = inst(Opcode::kActivation, {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}});
  act.act = static_cast<ActFunc>(99);
  expectError(act, ErrorCode::kVerify, {"func value 99"});
  Instruction cp = copy(tile(out, 128, 512), tile(a, 128, 512));
  cp.alu0 = AluOp::kAdd;
  expectError(cp, ErrorCode::kVerify, {"op0 = add is set but tensor_copy has no op0"});
  Instruction bad;
  bad.opcode = static_cast<Opcode>(77);
  p.instructions = {bad};
  Status st = verifyInstruction(p, 0, chip2);
  EXPECT_EQ(st.code(), ErrorCode::kVerify);
  EXPECT_NE(st.toString().find("opcode value 77"), std::string::npos) << st.toString();
}

TEST_F(VerifyTest, PsumOperandWithinOneBank) {
  // acc2 starts at byte 2048 (bank 1): 512 fp32 fill bank 1 exactly.
  expectOk(copy(tile(out, 128, 512), tile(acc2, 128, 512)));
  expectError(copy(ap(out, 0, 128, 0, {{1, 512}}), tile(acc2, 128, 512, 0, 256)), ErrorCode::kVerify,
              {"src", "straddle banks 1 and 2", "2048-byte PSUM bank"});
}

TEST_F(VerifyTest, DtypeRules) {
  uint32_t rows = testing::addTensor(p, "rows", MemSpace::kHbm, DType::kFP32, {1000, 512}, 0, 1 << 20);
  Instruction gather = inst(Opcode::kDmaCopy, {{0, tile(out, 128, 512)},
                                               {1, ap(rows, 0, 1000, 0, {{1, 512}}, 512)},
                                               {2, tile(idx, 128, 1)}});
  gather.flags = kFlagIndirectSrc;
  expectOk(gather);
  gather.operands[2].ap = tile(s, 128, 1);
  expectError(gather, ErrorCode::kVerify, {"index", "float32 cannot hold indices", "int32"});
  gather.flags = 0;
  gather.operands[2].ap = tile(idx, 128, 1);
  expectError(gather, ErrorCode::kVerify, {"index", "without indirect_src"});

  expectOk(inst(Opcode::kDmaTranspose, {{0, tile(out, 128, 128)}, {1, tile(out, 128, 128, 0, 256)}}));
  expectError(inst(Opcode::kDmaTranspose, {{0, tile(b8, 64, 32)}, {1, tile(b8, 32, 64, 64)}}),
              ErrorCode::kVerify, {"dst", "uint8", "2- or 4-byte"});
  expectError(inst(Opcode::kDmaTranspose, {{0, tile(out, 128, 128)}, {1, tile(out, 128, 128, 0, 256)}}),
              ErrorCode::kVerify, {"no DMA transpose"}, &chip1);
}

TEST_F(VerifyTest, DmaQueueExists) {
  Instruction in = inst(Opcode::kDmaCopy, {{0, tile(out, 128, 512)}, {1, ap(h, 0, 128, 0, {{1, 512}}, 512)}});
  in.queue = 255;
  expectOk(in);
  in.queue = 256;
  expectError(in, ErrorCode::kVerify, {"DMA queue 256", "256 DMA queues"});
}

TEST_F(VerifyTest, TensorDeclarations) {
  for (uint32_t t = 0; t < p.tensors.size(); ++t) {
    Status st = verifyTensor(p, t, chip2);
    EXPECT_TRUE(st.isOk()) << st.toString();
  }
  auto expectTensorError = [&](TensorDecl t, ErrorCode code, std::string part) {
    Program q = p;
    q.tensors.push_back(std::move(t));
    Status st = verifyTensor(q, uint32_t(q.tensors.size() - 1), chip2);
    ASSERT_FALSE(st.isOk()) << part;
    EXPECT_EQ(st.code(), code) << st.toString();
    EXPECT_NE(st.toString().find(part), std::string::npos) << st.toString();
    EXPECT_NE(st.toString().find("tensor 'bad'"), std::string::npos) << st.toString();
  };
  TensorDecl t{"bad", MemSpace::kSbuf, DType::kFP32, {129, 4}};
  expectTensorError(t, ErrorCode::kVerify, "129 partitions");
  t.shape = {};
  expectTensorError(t, ErrorCode::kVerify, "empty shape");
  t.shape = {128, -4};
  expectTensorError(t, ErrorCode::kVerify, "shape dim 1 is -4");
  t.shape = {64, 16};
  t.partitionStart = 96;
  expectTensorError(t, ErrorCode::kCapacity, "partitions 96..159");
  t.partitionStart = 0;
  t.byteOffset = 192 * 1024 - 32;
  expectTensorError(t, ErrorCode::kCapacity, "outside sbuf");
  t.space = MemSpace::kPsum;
  t.byteOffset = 16 * 1024 - 32;
  expectTensorError(t, ErrorCode::kCapacity, "outside psum (16384 bytes");
  t.space = MemSpace::kHbm;
  t.byteOffset = uint64_t(96) << 30;
  expectTensorError(t, ErrorCode::kCapacity, "outside HBM");
  t.byteOffset = 0;
  t.shape = {1 << 30, 1 << 30};
  expectTensorError(t, ErrorCode::kCapacity, "2^48");
}

TEST_F(VerifyTest, ProgramReportsEveryViolationAndOverlaps) {
  p.instructions = {copy(tile(out, 128, 512), tile(a, 128, 512)),
                    copy(tile(out, 64, 512, 16), tile(a, 64, 512)),
                    copy(tile(out, 128, 512), tile(a, 128, 256))};
  p.tensors.push_back(TensorDecl{"huge", MemSpace::kSbuf, DType::kFP32, {300, 1}});
  std::vector<Status> all = verifyProgram(p, chip2);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_NE(all[0].toString().find("'huge'"), std::string::npos);
  EXPECT_NE(all[1].toString().find("instruction 1"), std::string::npos);
  EXPECT_NE(all[2].toString().find("instruction 2"), std::string::npos);
  Status first = checkProgram(p, chip2);
  EXPECT_NE(first.toString().find("(and 2 more violations)"), std::string::npos) << first.toString();

  // Overlap: a second tensor on top of 'a', live at the same time, is a capacity error...
  Program q = p;
  q.tensors.pop_back();
  uint32_t over = testing::addTensor(q, "over", MemSpace::kSbuf, DType::kBF16, {128, 64}, 0, 512);
  q.instructions = {copy(tile(out, 128, 512), tile(a, 128, 512)),
                    copy(tile(over, 128, 64), tile(b, 128, 64)),
                    copy(tile(out, 128, 512), tile(a, 128, 512))};
  std::vector<Status> errs = verifyProgram(q, chip2);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].code(), ErrorCode::kCapacity);
  EXPECT_NE(errs[0].toString().find("'a' and 'over' overlap in sbuf"), std::string::npos)
      << errs[0].toString();
  // ... but not once 'a' is dead, nor for a view of 'a'.
  q.instructions.pop_back();
  q.instructions.erase(q.instructions.begin());
  EXPECT_TRUE(checkProgram(q, chip2).isOk()) << checkProgram(q, chip2).toString();
  q.tensors[over].aliasOf = a;
  q.instructions = {copy(tile(out, 128, 512), tile(a, 128, 512)),
                    copy(tile(over, 128, 64), tile(b, 128, 64))};
  EXPECT_TRUE(checkProgram(q, chip2).isOk()) << checkProgram(q, chip2).toString();
}

TEST_F(VerifyTest, LocalGatherAndDropout) {
  uint32_t src = testing::addTensor(p, "gsrc", MemSpace::kSbuf, DType::kFP32, {128, 64}, 0, 20000);
  uint32_t gi = testing::addTensor(p, "gidx", MemSpace::kSbuf, DType::kUInt32, {128, 4}, 0, 20256);
  Instruction g = inst(Opcode::kLocalGather,
                       {{0, tile(out, 128, 8)}, {1, tile(src, 128, 64)}, {2, tile(gi, 128, 4)}});
  g.iarg = {2, 4, 0, 0};
  expectOk(g);
  g.iarg = {4, 4, 0, 0};
  expectError(g, ErrorCode::kVerify, {"dst", "4 x 4"});
  Instruction d = inst(Opcode::kDropout, {{0, tile(out, 128, 512)}, {1, tile(a, 128, 512)}});
  d.imm[0] = 0.25f;
  expectOk(d);
  d.imm[0] = 1.5f;
  expectError(d, ErrorCode::kVerify, {"prob = 1.5"});
}

}  // namespace
}  // namespace trnsim::isa
