// Flash-attention backward (see attention.h).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "trnsim/kernels/attention.h"
#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {

using isa::AluOp;
using isa::Slice;
using numerics::DType;

namespace {
constexpr int64_t kBlock = 128;
constexpr float kMaskValue = -30000.f;
}  // namespace

Status emitAttentionBackward(isa::KernelBuilder& b, const isa::Tensor& q, const isa::Tensor& k,
                             const isa::Tensor& v, const isa::Tensor& out, const isa::Tensor& dout,
                             const isa::Tensor& lse, const isa::Tensor& dq, const isa::Tensor& dk,
                             const isa::Tensor& dv, AttentionOptions opts) {
  for (const isa::Tensor* t : {&q, &k, &v, &out, &dout, &lse, &dq, &dk, &dv})
    if (!t->valid()) return b.status();
  if (q.shape().size() != 3 || k.shape() != v.shape() || out.shape() != q.shape() ||
      dout.shape() != q.shape() || dq.shape() != q.shape() || dk.shape() != k.shape() ||
      dv.shape() != k.shape() || k.shape().size() != 3 || k.shape()[1] != q.shape()[1] ||
      k.shape()[2] != q.shape()[2])
    return Status(ErrorCode::kInvalidArgument,
                  "attention backward: expected q, out, dout, dq [Hq, S, D] and k, v, dk, dv "
                  "[Hkv, S, D]");
  const int64_t hq = q.shape()[0], hkv = k.shape()[0], S = q.shape()[1], D = q.shape()[2];
  if (hq % hkv != 0 || lse.shape() != std::vector<int64_t>{hq, S})
    return Status(ErrorCode::kInvalidArgument,
                  "attention backward: Hq must be a multiple of Hkv and lse [Hq, S]");
  if (D > kBlock || S % kBlock != 0)
    return Status(ErrorCode::kUnsupported,
                  "attention backward: head dim <= 128 and a sequence multiple of 128 only");
  if (b.chip().dma.transposeEfficiency <= 0 || b.chip().dma.sbufTransposeEfficiency <= 0)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("attention backward: {} has no DMA transpose", b.chip().name));
  const float scale = opts.scale != 0 ? opts.scale : float(1.0 / std::sqrt(double(D)));
  const int64_t P = kBlock, nb = S / kBlock, group = hq / hkv;
  const DType in = q.dtype();
  using detail::psumTile;
  using detail::sbufTile;

  // Per KV head (kept for all its query heads).
  auto kT = sbufTile(b, "bwd_kT", in, {D, S});
  auto kN = sbufTile(b, "bwd_k", in, {P, nb, D});
  auto vT = sbufTile(b, "bwd_vT", in, {D, S});
  auto dkAcc = sbufTile(b, "bwd_dk_acc", DType::kFP32, {P, nb, D});
  auto dvAcc = sbufTile(b, "bwd_dv_acc", DType::kFP32, {P, nb, D});
  auto gradK = sbufTile(b, "bwd_dk_out", dk.dtype(), {P, nb, D});
  auto gradV = sbufTile(b, "bwd_dv_out", dv.dtype(), {P, nb, D});
  // Per query tile, double-buffered.
  std::array<isa::Tensor, 2> qT, qN, doT, doN, oN, prod, stat, dqOut;
  for (int i = 0; i < 2; ++i) {
    qT[size_t(i)] = sbufTile(b, fmt::format("bwd_qT_{}", i), in, {D, P});
    qN[size_t(i)] = sbufTile(b, fmt::format("bwd_q_{}", i), in, {P, D});
    doT[size_t(i)] = sbufTile(b, fmt::format("bwd_doT_{}", i), in, {D, P});
    doN[size_t(i)] = sbufTile(b, fmt::format("bwd_do_{}", i), in, {P, D});
    oN[size_t(i)] = sbufTile(b, fmt::format("bwd_o_{}", i), in, {P, D});
    prod[size_t(i)] = sbufTile(b, fmt::format("bwd_do_o_{}", i), DType::kFP32, {P, D});
    stat[size_t(i)] = sbufTile(b, fmt::format("bwd_stat_{}", i), DType::kFP32, {P, 4});
    dqOut[size_t(i)] = sbufTile(b, fmt::format("bwd_dq_out_{}", i), dq.dtype(), {P, D});
  }
  // Per (query tile, key block): rings of kRing so that kSkew blocks are in flight.
  constexpr int64_t kRing = 6;
  std::array<isa::Tensor, kRing> pB, dsB, dsT, sPs, dpPs, dvPs, dkPs;
  for (int i = 0; i < kRing; ++i) {
    pB[size_t(i)] = sbufTile(b, fmt::format("bwd_p_{}", i), DType::kBF16, {P, P});
    dsB[size_t(i)] = sbufTile(b, fmt::format("bwd_ds_{}", i), DType::kBF16, {P, P});
    dsT[size_t(i)] = sbufTile(b, fmt::format("bwd_dsT_{}", i), DType::kBF16, {P, P});
    sPs[size_t(i)] = psumTile(b, fmt::format("bwd_s_{}", i), DType::kFP32, {P, P});
    dpPs[size_t(i)] = psumTile(b, fmt::format("bwd_dp_{}", i), DType::kFP32, {P, P});
    dvPs[size_t(i)] = psumTile(b, fmt::format("bwd_dvp_{}", i), DType::kFP32, {P, D});
    dkPs[size_t(i)] = psumTile(b, fmt::format("bwd_dkp_{}", i), DType::kFP32, {P, D});
  }
  std::array<isa::Tensor, 2> dqPs;
  for (int i = 0; i < 2; ++i)
    dqPs[size_t(i)] = psumTile(b, fmt::format("bwd_dq_{}", i), DType::kFP32, {P, D});
  isa::Tensor ident, tri;
  if (opts.causal) {
    ident = sbufTile(b, "bwd_identity", DType::kBF16, {P, P});
    tri = sbufTile(b, "bwd_causal_mask", DType::kBF16, {P, P});
    auto fill = sbufTile(b, "bwd_fill", DType::kBF16, {P, P});
    (void)b.memset(fill.ap(), 1.0f, arch::Engine::kGpSimd);
    (void)b.affineSelect(ident.ap(), {-1}, 1.0f, 0.0f, AluOp::kIsEqual, fill.ap(), 0.0f);
    (void)b.memset(fill.ap(), 0.0f, arch::Engine::kGpSimd);
    (void)b.affineSelect(tri.ap(), {-1}, 1.0f, 0.0f, AluOp::kIsGe, fill.ap(), kMaskValue);
    b.release(fill);
  }
  TRNSIM_RETURN_IF_ERROR(b.status());

  auto rows = [&](const isa::Tensor& t, int64_t head, int64_t row) {
    return t.pattern({{D, P}, {1, D}}, (head * S + row) * D);
  };
  auto blockCols = [&](const isa::Tensor& t, int64_t j) {
    return t({Slice::all(), Slice::range(j * P, (j + 1) * P)});
  };
  auto blockOf = [&](const isa::Tensor& t, int64_t j) {
    return t({Slice::all(), Slice::at(j), Slice::all()});
  };
  auto col = [&](const isa::Tensor& t, int64_t c) {
    return t({Slice::all(), Slice::range(c, c + 1)});
  };

  // The work list: one entry per (query tile, key block), KV heads outermost.
  struct Block {
    int64_t g, h, i, j, tile;  // KV head, query head, query tile, key block, query-tile count
    bool firstOfTile, lastOfTile, firstOfKv;
  };
  std::vector<Block> blocks;
  for (int64_t g = 0, tile = 0; g < hkv; ++g)
    for (int64_t h = g * group; h < (g + 1) * group; ++h)
      for (int64_t i = 0; i < nb; ++i, ++tile) {
        const int64_t last = opts.causal ? i : nb - 1;
        for (int64_t j = 0; j <= last; ++j)
          blocks.push_back(
              {g, h, i, j, tile, j == 0, j == last, h == g * group && i == 0 && j == 0});
      }

  auto setupKv = [&](int64_t g) {
    for (int64_t j = 0; j < nb; ++j) {
      (void)b.dmaTranspose(blockCols(kT, j), rows(k, g, j * P));
      (void)b.dmaTranspose(blockCols(vT, j), rows(v, g, j * P));
    }
    (void)b.dmaCopy(kN.ap(), k.pattern({{D, P}, {P * D, nb}, {1, D}}, g * S * D));
    (void)b.memset(dkAcc.ap(), 0.0f, arch::Engine::kGpSimd);
    (void)b.memset(dvAcc.ap(), 0.0f, arch::Engine::kGpSimd);
  };
  auto finishKv = [&](int64_t g) {
    (void)b.tensorScalar(gradK.ap(), dkAcc.ap(), AluOp::kMultiply, scale, AluOp::kBypass, 0.0f,
                         false, false, arch::Engine::kGpSimd);
    (void)b.tensorCopy(gradV.ap(), dvAcc.ap(), arch::Engine::kGpSimd);
    (void)b.dmaCopy(dk.pattern({{D, P}, {P * D, nb}, {1, D}}, g * S * D), gradK.ap());
    (void)b.dmaCopy(dv.pattern({{D, P}, {P * D, nb}, {1, D}}, g * S * D), gradV.ap());
  };
  auto setupTile = [&](const Block& bl) {
    const size_t t = size_t(bl.tile % 2);
    const int64_t h = bl.h, q0 = bl.i * P;
    (void)b.dmaTranspose(qT[t].ap(), rows(q, h, q0));
    (void)b.dmaTranspose(doT[t].ap(), rows(dout, h, q0));
    (void)b.dmaCopy(qN[t].ap(), rows(q, h, q0));
    (void)b.dmaCopy(doN[t].ap(), rows(dout, h, q0));
    (void)b.dmaCopy(oN[t].ap(), rows(out, h, q0));
    (void)b.dmaCopy(col(stat[t], 0), lse.pattern({{1, P}, {1, 1}}, h * S + q0));
    // stat: 0 = lse, 1 = -lse, 2 = D_i = rowsum(dO o O)
    (void)b.tensorScalar(col(stat[t], 1), col(stat[t], 0), AluOp::kMultiply, -1.0f, AluOp::kBypass,
                         0.0f, false, false, arch::Engine::kGpSimd);
    (void)b.tensorTensor(prod[t].ap(), doN[t].ap(), oN[t].ap(), AluOp::kMultiply,
                         arch::Engine::kGpSimd);
    (void)b.tensorReduce(col(stat[t], 2), AluOp::kAdd, prod[t].ap(), 1u);
  };
  // Four stages per block, emitted software-pipelined (block n's stage k at step n + skew[k])
  // so that each in-order engine has the next block's independent work queued:
  // 0: S, dP matmuls; 1: exp, dS; 2: dV, dK matmuls, dS^T; 3: dQ matmul, dK/dV folds.
  constexpr std::array<size_t, 4> kSkews = {0, 1, 2, 4};
  auto emitStage = [&](int stage, size_t n) {
    const Block& bl = blocks[n];
    const size_t t = size_t(bl.tile % 2), u = n % kRing;
    switch (stage) {
      case 0:
        (void)b.ncMatmul(sPs[u].ap(), qT[t].ap(), blockCols(kT, bl.j));
        if (opts.causal && bl.j == bl.i)
          (void)b.ncMatmul(sPs[u].ap(), ident.ap(), tri.ap(), {.accumulate = true});
        (void)b.ncMatmul(dpPs[u].ap(), doT[t].ap(), blockCols(vT, bl.j));
        break;
      case 1:
        (void)b.activation(pB[u].ap(), isa::ActFunc::kExp, sPs[u].ap(), col(stat[t], 1), scale);
        // dS = (dP - D_i) * P
        (void)b.scalarTensorTensor(dsB[u].ap(), dpPs[u].ap(), AluOp::kSubtract, col(stat[t], 2),
                                   AluOp::kMultiply, pB[u].ap());
        break;
      case 2:
        (void)b.ncMatmul(dvPs[u].ap(), pB[u].ap(), doN[t].ap());
        (void)b.ncMatmul(dkPs[u].ap(), dsB[u].ap(), qN[t].ap());
        (void)b.dmaTranspose(dsT[u].ap(), dsB[u].ap());
        break;
      default: {
        const isa::Tensor& dqp = dqPs[t];
        (void)b.ncMatmul(dqp.ap(), dsT[u].ap(), blockOf(kN, bl.j), {.accumulate = !bl.firstOfTile});
        (void)b.tensorTensor(blockOf(dvAcc, bl.j), blockOf(dvAcc, bl.j), dvPs[u].ap(), AluOp::kAdd);
        (void)b.tensorTensor(blockOf(dkAcc, bl.j), blockOf(dkAcc, bl.j), dkPs[u].ap(), AluOp::kAdd);
        if (bl.lastOfTile) {
          (void)b.activation(dqOut[t].ap(), isa::ActFunc::kCopy, dqp.ap(), {}, scale);
          (void)b.dmaCopy(rows(dq, bl.h, bl.i * P), dqOut[t].ap());
        }
        break;
      }
    }
  };
  std::array<size_t, 4> next{};
  auto advance = [&](int stage, size_t upTo) {
    while (next[size_t(stage)] <= upTo && next[size_t(stage)] < blocks.size())
      emitStage(stage, next[size_t(stage)]++);
  };
  // Every stage of blocks [.., upTo], block by block (keeps the rings' reuse order).
  auto drain = [&](size_t upTo) {
    for (size_t m = 0; m <= upTo && m < blocks.size(); ++m)
      for (int st = 0; st < 4; ++st) advance(st, m);
  };
  for (size_t s = 0; s < blocks.size() + kSkews.back(); ++s) {
    if (s < blocks.size()) {
      const Block& bl = blocks[s];
      if (bl.firstOfKv) {
        // K^T, K, V^T and the accumulators are single-buffered: finish the previous head first.
        if (s > 0) {
          drain(s - 1);
          finishKv(bl.g - 1);
        }
        setupKv(bl.g);
      }
      if (bl.firstOfTile) {
        // The tile's buffers (ring of 2) were last used by the tile before the previous one.
        size_t last = s;
        while (last > 0 && blocks[last - 1].tile + 2 > bl.tile) --last;
        if (last > 0) drain(last - 1);
        setupTile(bl);
      }
    }
    for (int st = 0; st < 4; ++st)
      if (s >= kSkews[size_t(st)]) advance(st, s - kSkews[size_t(st)]);
  }
  if (!blocks.empty()) finishKv(blocks.back().g);

  for (auto* t : {&kT, &kN, &vT, &dkAcc, &dvAcc, &gradK, &gradV}) b.release(*t);
  for (int i = 0; i < 2; ++i)
    for (auto* arr : {&qT, &qN, &doT, &doN, &oN, &prod, &stat, &dqOut, &dqPs})
      b.release((*arr)[size_t(i)]);
  for (int i = 0; i < kRing; ++i)
    for (auto* arr : {&pB, &dsB, &dsT, &sPs, &dpPs, &dvPs, &dkPs}) b.release((*arr)[size_t(i)]);
  if (opts.causal) {
    b.release(ident);
    b.release(tri);
  }
  return b.status();
}

Expected<isa::Program> attentionBackwardProgram(const arch::ChipConfig& chip, int64_t qHeads,
                                                int64_t kvHeads, int64_t seq, int64_t headDim,
                                                AttentionOptions opts, DType gradDtype) {
  isa::KernelBuilder b(chip, fmt::format("attention_bwd_{}q{}kv_{}x{}{}", qHeads, kvHeads, seq,
                                         headDim, opts.causal ? "_causal" : ""));
  const std::vector<int64_t> qs{qHeads, seq, headDim}, ks{kvHeads, seq, headDim};
  auto q = b.hbm("q", DType::kBF16, qs, isa::TensorKind::kInput);
  auto k = b.hbm("k", DType::kBF16, ks, isa::TensorKind::kInput);
  auto v = b.hbm("v", DType::kBF16, ks, isa::TensorKind::kInput);
  auto out = b.hbm("out", DType::kBF16, qs, isa::TensorKind::kInput);
  auto dout = b.hbm("dout", DType::kBF16, qs, isa::TensorKind::kInput);
  auto lse = b.hbm("lse", DType::kFP32, {qHeads, seq}, isa::TensorKind::kInput);
  auto dq = b.hbm("dq", gradDtype, qs, isa::TensorKind::kOutput);
  auto dk = b.hbm("dk", gradDtype, ks, isa::TensorKind::kOutput);
  auto dv = b.hbm("dv", gradDtype, ks, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitAttentionBackward(b, q, k, v, out, dout, lse, dq, dk, dv, opts));
  return b.finish();
}

}  // namespace trnsim::kernels
