// The kernel-building API: access patterns from slices, allocation, sticky errors.
#include <gtest/gtest.h>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/binary.h"
#include "trnsim/isa/builder.h"
#include "trnsim/isa/text.h"

namespace trnsim::isa {
namespace {

arch::ChipConfig trn2() {
  auto c = arch::loadChip("trn2");
  EXPECT_TRUE(c.hasValue());
  return *c;
}

TEST(KernelBuilder, SliceOfSbufTensorGivesPartitionRangeAndStridedFreeDims) {
  KernelBuilder b(trn2(), "t");
  auto t = b.sbuf("t", DType::kBF16, {128, 4, 512});
  // t[32:64, 2, 100:300:2]: partitions 32..63; free offset 2*512 + 100; 100 elements, stride 2.
  AccessPattern ap = t({Slice::range(32, 64), Slice::at(2), Slice::range(100, 300, 2)});
  EXPECT_EQ(ap.partitionOffset, 32u);
  EXPECT_EQ(ap.partitions, 32u);
  EXPECT_EQ(ap.offset, 2 * 512 + 100);
  ASSERT_EQ(ap.numFree, 1);
  EXPECT_EQ(ap.free[0], (Dim{2, 100}));
  EXPECT_TRUE(b.status().isOk());
}

TEST(KernelBuilder, SliceOfHbmTensorUsesRowStrideForThePartitionDim) {
  KernelBuilder b(trn2(), "t");
  auto t = b.hbm("x", DType::kFP32, {1000, 64, 3});
  AccessPattern ap = t({Slice::range(10, 138), Slice::range(-4, Slice::kEnd)});
  EXPECT_EQ(ap.partitions, 128u);
  EXPECT_EQ(ap.partitionStride, 64 * 3);
  EXPECT_EQ(ap.offset, 10 * 64 * 3 + 60 * 3);
  ASSERT_EQ(ap.numFree, 2);
  EXPECT_EQ(ap.free[0], (Dim{3, 4}));
  EXPECT_EQ(ap.free[1], (Dim{1, 3}));
}

TEST(KernelBuilder, BadSliceIsAnErrorNotACrash) {
  KernelBuilder b(trn2(), "t");
  auto t = b.sbuf("t", DType::kBF16, {128, 512});
  AccessPattern ap = t({Slice::range(0, 129)});
  EXPECT_FALSE(ap.valid());
  EXPECT_EQ(b.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("'t'"), std::string::npos);
}

TEST(KernelBuilder, SbufCapacityExceededNamesTheTensorAndLaterCallsStaySafe) {
  const auto chip = trn2();
  KernelBuilder b(chip, "t");
  const int64_t half = int64_t(chip.mem.sbufBytesPerPartition / 2 / 4);
  auto a = b.sbuf("a", DType::kFP32, {128, half});
  auto c = b.sbuf("c", DType::kFP32, {128, half});
  EXPECT_TRUE(b.status().isOk());
  auto d = b.sbuf("d", DType::kFP32, {128, 16});  // SBUF is full
  EXPECT_FALSE(d.valid());
  EXPECT_EQ(b.status().code(), ErrorCode::kCapacity);
  EXPECT_NE(b.status().message().find("'d'"), std::string::npos);
  EXPECT_FALSE(d.ap().valid());  // no crash on the failed handle
  EXPECT_FALSE(b.tensorCopy(d.ap(), a.ap()).isOk());
  EXPECT_FALSE(b.finish().hasValue());
  (void)c;
}

TEST(KernelBuilder, ReleasedSpaceIsReused) {
  const auto chip = trn2();
  KernelBuilder b(chip, "t");
  const int64_t all = int64_t(chip.mem.sbufBytesPerPartition / 4);
  auto a = b.sbuf("a", DType::kFP32, {128, all});
  b.release(a);
  auto c = b.sbuf("c", DType::kFP32, {128, all});
  ASSERT_TRUE(c.valid());
  EXPECT_EQ(c.decl().byteOffset, 0u);
}

TEST(KernelBuilder, PsumTilesDoNotStraddleBanks) {
  const auto chip = trn2();
  KernelBuilder b(chip, "t");
  auto small = b.psum("small", DType::kFP32, {128, 100});  // 400 bytes at offset 0
  auto tile = b.psum("tile", DType::kFP32, {128, 512});    // 2 KiB: must start at a bank
  ASSERT_TRUE(small.valid() && tile.valid());
  EXPECT_EQ(tile.decl().byteOffset % chip.mem.psumBankBytesPerPartition, 0u);
  EXPECT_GE(tile.decl().byteOffset, 400u);
}

TEST(KernelBuilder, DuplicateNamesAreRejected) {
  KernelBuilder b(trn2(), "t");
  b.sbuf("x", DType::kFP32, {128, 4});
  auto y = b.sbuf("x", DType::kFP32, {128, 4});
  EXPECT_FALSE(y.valid());
  EXPECT_NE(b.status().message().find("unique"), std::string::npos);
}

TEST(KernelBuilder, InstructionsCarryTheSourceLocation) {
  KernelBuilder b(trn2(), "t");
  auto x = b.sbuf("x", DType::kFP32, {128, 64});
  b.setLocation("kernel.py", 42);
  ASSERT_TRUE(b.memset(x.ap(), 1.0f).isOk());
  auto p = b.finish();
  ASSERT_TRUE(p.hasValue()) << p.status().toString();
  EXPECT_EQ(p->instructionContext(0), "instruction 0 (memset) at kernel.py:42");
}

TEST(KernelBuilder, VerifierRejectionLeavesProgramUnchanged) {
  KernelBuilder b(trn2(), "t");
  auto x = b.sbuf("x", DType::kFP32, {128, 64});
  auto y = b.sbuf("y", DType::kFP32, {64, 64});
  Status s = b.tensorCopy(x.ap(), y.ap());  // 128 vs 64 partitions
  EXPECT_EQ(s.code(), ErrorCode::kVerify);
  EXPECT_TRUE(b.program().instructions.empty());
}

TEST(KernelBuilder, HbmViewAliasesARangeOfItsBase) {
  KernelBuilder b(trn2(), "t");
  auto x = b.hbm("x", DType::kBF16, {3, 64, 32}, TensorKind::kInput);
  auto batch1 = b.hbmView(x, "x1", DType::kBF16, {64, 32}, 64 * 32);
  ASSERT_TRUE(batch1.valid()) << b.status().toString();
  EXPECT_EQ(batch1.decl().aliasOf, x.id());
  EXPECT_EQ(batch1.decl().byteOffset, x.decl().byteOffset + 64 * 32 * 2);
  EXPECT_EQ(batch1.decl().kind, TensorKind::kInternal);  // host data goes through the base
  // A view of a view aliases the root and the offsets add up; two bf16 make one fp32.
  auto rows = b.hbmView(batch1, "x1_rows", DType::kFP32, {32, 16}, 32 * 32);
  ASSERT_TRUE(rows.valid()) << b.status().toString();
  EXPECT_EQ(rows.decl().aliasOf, x.id());
  EXPECT_EQ(rows.decl().byteOffset, x.decl().byteOffset + (64 * 32 + 32 * 32) * 2);
  // The last element of the base is still inside.
  EXPECT_TRUE(b.hbmView(x, "last", DType::kBF16, {1}, 3 * 64 * 32 - 1).valid());
  // DMAs through the views pass the verifier, and so does the whole program.
  auto s = b.sbuf("s", DType::kBF16, {64, 32});
  auto s32 = b.sbuf("s32", DType::kFP32, {32, 16});
  ASSERT_TRUE(b.dmaCopy(s.ap(), batch1({Slice::all(), Slice::range(0, 32)})).isOk());
  ASSERT_TRUE(b.dmaCopy(s32.ap(), rows.ap()).isOk());
  const uint64_t rowsOffset = rows.decl().byteOffset;
  auto p = b.finish();
  ASSERT_TRUE(p.hasValue()) << p.status().toString();
  // Views keep their place through the text and binary forms.
  auto text = parseProgram(printProgram(*p), "views.tsim");
  ASSERT_TRUE(text.hasValue()) << text.status().toString();
  auto bin = decodeProgram(encodeProgram(*p), "views.bin");
  ASSERT_TRUE(bin.hasValue()) << bin.status().toString();
  for (const Program* q : {&*text, &*bin}) {
    const uint32_t id = q->findTensor("x1_rows");
    ASSERT_NE(id, kNoTensor);
    EXPECT_EQ(q->tensors[id].aliasOf, x.id());
    EXPECT_EQ(q->tensors[id].byteOffset, rowsOffset);
  }
}

TEST(KernelBuilder, HbmViewOutsideItsBaseNamesBothTensors) {
  KernelBuilder b(trn2(), "t");
  auto x = b.hbm("x", DType::kFP32, {4, 8});
  auto v = b.hbmView(x, "tail", DType::kFP32, {2, 8}, 17);  // elements 17..32 of 0..31
  EXPECT_FALSE(v.valid());
  EXPECT_EQ(b.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("'tail'"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("'x'"), std::string::npos) << b.status().message();
}

TEST(KernelBuilder, HbmViewRejectsOnChipBasesAndBadOffsets) {
  auto expectRejected = [](auto makeView, const char* what) {
    KernelBuilder b(trn2(), "t");
    EXPECT_FALSE(makeView(b).valid()) << what;
    EXPECT_EQ(b.status().code(), ErrorCode::kInvalidArgument) << what;
    EXPECT_NE(b.status().message().find("'v'"), std::string::npos) << b.status().message();
  };
  expectRejected(
      [](KernelBuilder& b) {
        return b.hbmView(b.sbuf("x", DType::kFP32, {128, 8}), "v", DType::kFP32, {8});
      },
      "SBUF base");
  expectRejected(
      [](KernelBuilder& b) {
        return b.hbmView(b.hbm("x", DType::kFP32, {64}), "v", DType::kFP32, {8}, -1);
      },
      "negative offset");
  expectRejected(
      [](KernelBuilder& b) {
        return b.hbmView(b.hbm("x", DType::kBF16, {64}), "v", DType::kFP32, {8}, 1);
      },
      "fp32 view at byte 2");
  expectRejected(
      [](KernelBuilder& b) {
        return b.hbmView(b.hbm("x", DType::kFP32, {64}), "v", DType::kFP32, {0, 8});
      },
      "empty dimension");
}

}  // namespace
}  // namespace trnsim::isa
