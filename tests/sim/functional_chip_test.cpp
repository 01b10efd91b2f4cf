// The Chip facade and the memory model: host I/O, uninitialized reads, capacity, several
// cores sharing HBM, timing-only runs, and matmul against an independent fp64 reference.

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "functional_test_util.h"
#include "trnsim/sim/functional.h"

namespace trnsim::sim {
namespace {

using isa::KernelBuilder;
using isa::MemSpace;
using isa::TensorKind;
using numerics::DType;
using testing::loadProgram;
using testing::valuesOnly;

TEST(FunctionalChip, HostWriteReadRoundTripAndErrors) {
  Chip chip = loadProgram([](KernelBuilder& kb) {
    auto in = kb.hbm("in", DType::kBF16, {2, 3}, TensorKind::kInput);
    auto out = kb.hbm("out", DType::kFP32, {2, 3}, TensorKind::kOutput);
    auto t = kb.sbuf("t", DType::kBF16, {2, 3});
    ASSERT_TRUE(kb.dmaCopy(t.ap(), in.ap()).isOk());
    ASSERT_TRUE(kb.dmaCopy(out.ap(), t.ap()).isOk());
  });
  testing::writeF(chip, "in", {1, 2, 3, 4, 5, 6.015625f});
  testing::runOk(chip);
  EXPECT_EQ(testing::readF(chip, "out"), (std::vector<float>{1, 2, 3, 4, 5, 6.0f}));
  // Into a caller's buffer: the same values; a buffer of another size is refused.
  std::vector<float> buf(6, -1.0f);
  ASSERT_TRUE(chip.readFloats("out", std::span<float>(buf)).isOk());
  EXPECT_EQ(buf, (std::vector<float>{1, 2, 3, 4, 5, 6.0f}));
  buf.resize(5);
  Status wrongSize = chip.readFloats("out", std::span<float>(buf));
  EXPECT_EQ(wrongSize.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(wrongSize.message().find("6 values"), std::string::npos) << wrongSize.toString();
  // Wrong sizes and names are errors that name the tensor and what was expected.
  std::vector<std::byte> small(10);
  Status s = chip.write("in", small);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'in'"), std::string::npos) << s.toString();
  EXPECT_NE(s.message().find("12 bytes"), std::string::npos) << s.toString();
  EXPECT_EQ(chip.writeFloats("nope", std::vector<float>{1}).code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(chip.readFloats("in", /*core=*/3).hasValue());
}

TEST(FunctionalChip, UninitializedReadNamesInstructionOperandTensorAndElement) {
  Chip chip = loadProgram([](KernelBuilder& kb) {
    auto in = kb.hbm("in", DType::kFP32, {2, 4}, TensorKind::kInput);
    auto out = kb.hbm("out", DType::kFP32, {2, 4}, TensorKind::kOutput);
    auto t = kb.sbuf("t", DType::kFP32, {2, 4});
    auto u = kb.sbuf("u", DType::kFP32, {2, 4});
    ASSERT_TRUE(kb.dmaCopy(t({isa::Slice::all(), isa::Slice::range(0, 3)}),
                           in({isa::Slice::all(), isa::Slice::range(0, 3)}))
                    .isOk());
    kb.setLocation("kernel.py", 42);
    ASSERT_TRUE(kb.tensorScalar(u.ap(), t.ap(), isa::AluOp::kAdd, 1.0f).isOk());
    ASSERT_TRUE(kb.dmaCopy(out.ap(), u.ap()).isOk());
  });
  testing::writeF(chip, "in", std::vector<float>(8, 1.0f));
  auto r = chip.run(valuesOnly());
  ASSERT_FALSE(r.hasValue());
  const Status& s = r.status();
  EXPECT_EQ(s.code(), ErrorCode::kUninitializedRead);
  EXPECT_EQ(s.where(), "instruction 1 (tensor_scalar) at kernel.py:42");
  EXPECT_NE(s.message().find("operand 'data'"), std::string::npos) << s.toString();
  EXPECT_NE(s.message().find("tensor 't'"), std::string::npos) << s.toString();
  EXPECT_NE(s.message().find("[0, 3]"), std::string::npos) << s.toString();

  // Without detection the sentinel (NaN) flows through, as on the vendor's simulator.
  RunOptions o = valuesOnly();
  o.detectUninitialized = false;
  testing::runOk(chip, o);
  auto out = testing::readF(chip, "out");
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_TRUE(std::isnan(out[3]));
}

TEST(FunctionalChip, NeverWrittenBytesReadAsTheSentinelWhereverTheyLie) {
  // Memories get their 0xFF sentinel lazily, one 4 KiB chunk at a time, when something first
  // touches the chunk. Rows of `t` are 12000 bytes: the DMA in writes bytes [0, 6000) of each
  // (chunk 1 half written), the DMA out reads all of them (chunk 2 first touched by a read).
  Chip chip = loadProgram([](KernelBuilder& kb) {
    auto in = kb.hbm("in", DType::kFP32, {128, 1500}, TensorKind::kInput);
    auto out = kb.hbm("out", DType::kFP32, {128, 3000}, TensorKind::kOutput);
    auto t = kb.sbuf("t", DType::kFP32, {128, 3000});
    (void)kb.sbuf("never", DType::kBF16, {128, 5000});
    ASSERT_TRUE(kb.dmaCopy(t({isa::Slice::all(), isa::Slice::range(0, 1500)}), in.ap()).isOk());
    ASSERT_TRUE(kb.dmaCopy(out.ap(), t.ap()).isOk());
  });
  auto allSentinel = [](const std::vector<std::byte>& bytes) {
    for (std::byte b : bytes)
      if (b != std::byte{0xFF}) return false;
    return !bytes.empty();
  };
  auto before = chip.read("out");
  ASSERT_TRUE(before.hasValue()) << before.status().toString();
  EXPECT_TRUE(allSentinel(*before));
  std::vector<float> in(128 * 1500);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 977) - 300.0f;
  testing::writeF(chip, "in", in);
  RunOptions o = valuesOnly();
  o.detectUninitialized = false;
  testing::runOk(chip, o);
  auto out = chip.read("out");
  ASSERT_TRUE(out.hasValue()) << out.status().toString();
  ASSERT_EQ(out->size(), size_t(128 * 3000 * 4));
  for (size_t p = 0; p < 128; ++p) {
    std::vector<float> written(1500);
    std::memcpy(written.data(), out->data() + p * 12000, 6000);
    EXPECT_EQ(written, std::vector<float>(in.begin() + long(p * 1500),
                                          in.begin() + long(p * 1500 + 1500)))
        << "partition " << p;
    EXPECT_TRUE(allSentinel(std::vector<std::byte>(out->begin() + long(p * 12000 + 6000),
                                                   out->begin() + long(p * 12000 + 12000))))
        << "partition " << p;
  }
  auto never = chip.read("never");
  ASSERT_TRUE(never.hasValue()) << never.status().toString();
  EXPECT_EQ(never->size(), size_t(128 * 5000 * 2));
  EXPECT_TRUE(allSentinel(*never));
}

TEST(FunctionalChip, UnwrittenHbmInputIsAnError) {
  Chip chip = loadProgram([](KernelBuilder& kb) {
    auto in = kb.hbm("in", DType::kFP32, {1, 4}, TensorKind::kInput);
    auto t = kb.sbuf("t", DType::kFP32, {1, 4});
    ASSERT_TRUE(kb.dmaCopy(t.ap(), in.ap()).isOk());
  });
  auto r = chip.run(valuesOnly());
  ASSERT_FALSE(r.hasValue());
  EXPECT_EQ(r.status().code(), ErrorCode::kUninitializedRead);
  EXPECT_NE(r.status().message().find("tensor 'in'"), std::string::npos);
  EXPECT_NE(r.status().message().find("operand 'src'"), std::string::npos);
}

TEST(FunctionalChip, TooManyProgramsIsACapacityError) {
  arch::ChipConfig cfg = testing::trn2();
  Chip chip(cfg);
  std::vector<isa::Program> progs(cfg.coresPerChip + 1);
  Status s = chip.load(std::move(progs));
  EXPECT_EQ(s.code(), ErrorCode::kCapacity) << s.toString();
}

TEST(FunctionalChip, CoresShareHbmAndRunInOrder) {
  arch::ChipConfig cfg = testing::trn2();
  // Both programs declare "a" then "s" at the same HBM addresses: they alias.
  auto make = [&](bool producer) {
    KernelBuilder kb(cfg, producer ? "producer" : "consumer");
    auto a = kb.hbm("a", DType::kFP32, {2, 2}, TensorKind::kInput);
    auto s = kb.hbm("s", DType::kFP32, {2, 2}, TensorKind::kInternal);
    auto o = kb.hbm("o", DType::kFP32, {2, 2}, TensorKind::kOutput);
    auto t = kb.sbuf("t", DType::kFP32, {2, 2});
    if (producer) {
      EXPECT_TRUE(kb.dmaCopy(t.ap(), a.ap()).isOk());
      EXPECT_TRUE(kb.tensorScalar(t.ap(), t.ap(), isa::AluOp::kMultiply, 10.0f).isOk());
      EXPECT_TRUE(kb.dmaCopy(s.ap(), t.ap()).isOk());
    } else {
      EXPECT_TRUE(kb.dmaCopy(t.ap(), s.ap()).isOk());
      EXPECT_TRUE(kb.dmaCopy(o.ap(), t.ap()).isOk());
    }
    auto p = kb.finish();
    EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
    return std::move(*p);
  };
  std::vector<isa::Program> progs;
  progs.push_back(make(true));
  progs.push_back(make(false));
  Chip chip(cfg);
  ASSERT_TRUE(chip.load(std::move(progs)).isOk());
  testing::writeF(chip, "a", {1, 2, 3, 4});
  testing::runOk(chip);
  EXPECT_EQ(*chip.readFloats("o", 1), (std::vector<float>{10, 20, 30, 40}));
  // The consumer's own name for the producer's input sees the same bytes.
  EXPECT_EQ(*chip.readFloats("a", 1), (std::vector<float>{1, 2, 3, 4}));
}

TEST(FunctionalChip, TimingOnlyRunTouchesNoMemory) {
  Chip chip = loadProgram([](KernelBuilder& kb) {
    auto in = kb.hbm("in", DType::kFP32, {128, 512}, TensorKind::kInput);
    auto t = kb.sbuf("t", DType::kFP32, {128, 512});
    ASSERT_TRUE(kb.dmaCopy(t.ap(), in.ap()).isOk());
  });
  RunOptions o;
  o.computeValues = false;
  auto r = chip.run(o);  // the input was never written: fine, nothing is read
  ASSERT_TRUE(r.hasValue()) << r.status().toString();
  EXPECT_EQ(r->instructions, 1u);
  EXPECT_GT(r->simulatedNs, 0.0);

  // The functional half allocates lazily: nothing before first use, and only what is used.
  arch::ChipConfig cfg = testing::trn2();
  FunctionalChip fc(cfg, 4096);
  EXPECT_EQ(fc.allocatedBytes(), 0u);
}

TEST(FunctionalChip, HbmTheHostCannotHoldIsRefusedBeforeTheRunStarts) {
  // 80 GiB of HBM tensors (trn2 has 96 GB) need 90 GiB of host memory for their values and
  // written bits: a capacity error naming the tensors, not std::bad_alloc or the OOM killer. A
  // timing-only run touches no memory and still times it.
  const uint64_t need = uint64_t{90} << 30;
  {
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);)
      if (line.rfind("MemAvailable:", 0) == 0 &&
          std::strtoull(line.c_str() + 13, nullptr, 10) * 1024 >= need)
        GTEST_SKIP() << "this machine could hold 90 GiB";
  }
  const int64_t cols = int64_t{40} << 30 >> 7 >> 2;  // 40 GiB of fp32 over 128 rows
  Chip chip = loadProgram([&](KernelBuilder& kb) {
    auto a = kb.hbm("weights_a", DType::kFP32, {128, cols}, TensorKind::kInput);
    auto b = kb.hbm("weights_b", DType::kFP32, {128, cols}, TensorKind::kOutput);
    auto t = kb.sbuf("t", DType::kFP32, {128, 512});
    ASSERT_TRUE(kb.dmaCopy(t.ap(), a({isa::Slice::all(), isa::Slice::range(0, 512)})).isOk());
    ASSERT_TRUE(kb.dmaCopy(b({isa::Slice::all(), isa::Slice::range(0, 512)}), t.ap()).isOk());
  });
  RunOptions timingOnly;
  timingOnly.computeValues = false;
  EXPECT_TRUE(chip.run(timingOnly).hasValue());
  for (Status s : {chip.run().status(), chip.readFloats("weights_b").status()}) {
    EXPECT_EQ(s.code(), ErrorCode::kCapacity) << s.toString();
    EXPECT_NE(s.message().find("'weights_a' 42.95 GB"), std::string::npos) << s.toString();
    EXPECT_NE(s.message().find("run timing-only"), std::string::npos) << s.toString();
  }
}

TEST(FunctionalChip, StochasticRoundingIsSeededAndDeterministic) {
  Chip chip = loadProgram([](KernelBuilder& kb) {
    auto in = kb.hbm("in", DType::kFP32, {1, 256}, TensorKind::kInput);
    auto out = kb.hbm("out", DType::kFP32, {1, 256}, TensorKind::kOutput);
    auto t = kb.sbuf("t", DType::kFP32, {1, 256});
    auto b = kb.sbuf("b", DType::kBF16, {1, 256});
    ASSERT_TRUE(kb.dmaCopy(t.ap(), in.ap()).isOk());
    ASSERT_TRUE(kb.tensorCopy(b.ap(), t.ap()).isOk());
    ASSERT_TRUE(kb.dmaCopy(out.ap(), b.ap()).isOk());
  });
  // 1 + 2^-9 lies a quarter of the way from 1 to the next bf16 (1 + 2^-7).
  testing::writeF(chip, "in", std::vector<float>(256, 1.001953125f));
  RunOptions o = valuesOnly();
  o.rounding = numerics::Rounding::kStochastic;
  o.seed = 11;
  testing::runOk(chip, o);
  auto a = testing::readF(chip, "out");
  int up = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 1.0f || v == 1.0078125f) << v;
    up += v != 1.0f;
  }
  EXPECT_GT(up, 30);
  EXPECT_LT(up, 100);
  testing::runOk(chip, o);
  EXPECT_EQ(testing::readF(chip, "out"), a);
}

/// C = A^T B over K tiles of 128, with bf16 inputs accumulated in PSUM, against fp64.
TEST(FunctionalChip, TiledBf16MatmulMatchesFp64Reference) {
  constexpr int K = 384, M = 128, N = 256;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(size_t(K) * M), b(size_t(K) * N);
  for (float& v : a) v = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(dist(rng)));
  for (float& v : b) v = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(dist(rng)));
  Chip chip = loadProgram([&](KernelBuilder& kb) {
    auto ha = kb.hbm("a", DType::kBF16, {K, M}, TensorKind::kInput);
    auto hb = kb.hbm("b", DType::kBF16, {K, N}, TensorKind::kInput);
    auto hc = kb.hbm("c", DType::kFP32, {M, N}, TensorKind::kOutput);
    auto ps = kb.psum("ps", DType::kFP32, {M, N});
    auto sc = kb.sbuf("sc", DType::kFP32, {M, N});
    for (int k = 0; k < K / 128; ++k) {
      auto ta = kb.sbuf("ta" + std::to_string(k), DType::kBF16, {128, M});
      auto tb = kb.sbuf("tb" + std::to_string(k), DType::kBF16, {128, N});
      ASSERT_TRUE(kb.dmaCopy(ta.ap(), ha({isa::Slice::range(k * 128, k * 128 + 128)})).isOk());
      ASSERT_TRUE(kb.dmaCopy(tb.ap(), hb({isa::Slice::range(k * 128, k * 128 + 128)})).isOk());
      isa::MatmulOptions mo;
      mo.accumulate = k > 0;
      ASSERT_TRUE(kb.ncMatmul(ps.ap(), ta.ap(), tb.ap(), mo).isOk());
    }
    ASSERT_TRUE(kb.tensorCopy(sc.ap(), ps.ap()).isOk());
    ASSERT_TRUE(kb.dmaCopy(hc.ap(), sc.ap()).isOk());
  });
  testing::writeF(chip, "a", a);
  testing::writeF(chip, "b", b);
  testing::runOk(chip);
  auto c = testing::readF(chip, "c");
  ASSERT_EQ(c.size(), size_t(M) * N);
  double worst = 0;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double ref = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        ref += double(a[size_t(k) * M + m]) * double(b[size_t(k) * N + n]);
        mag += std::fabs(double(a[size_t(k) * M + m]) * double(b[size_t(k) * N + n]));
      }
      // fp32 accumulation of K terms: error below K * eps32 * sum |terms|.
      const double err = std::fabs(double(c[size_t(m) * N + n]) - ref) / (mag * K * 0x1p-24);
      worst = std::max(worst, err);
    }
  EXPECT_LE(worst, 1.0);
}

}  // namespace
}  // namespace trnsim::sim
