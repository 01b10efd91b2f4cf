#include "trnsim/kernels/attention.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {
namespace {

using isa::AluOp;
using isa::Slice;
using numerics::DType;

constexpr int64_t kTile = 128;          // queries per tile, keys per P^T block
constexpr float kMaskValue = -30000.f;  // added to masked scores (exactly representable in bf16)
constexpr int kStatsRing = 8;
constexpr int kGroupRing = 6;  // P and P^T buffers, in groups (> PV skew - exp skew)
constexpr int kScoreRing = 3;  // S PSUM tiles, in groups
// Stages of a group and the step at which each is emitted after its group's QK^T.
enum Stage { kScores, kRowMax, kExp, kPV, kUpdate, kNumStages };
constexpr std::array<size_t, kNumStages> kSkew = {0, 1, 2, 6, 7};

struct Group {
  int64_t head = 0, kvSeq = 0, qSeq = 0, q0 = 0;  // query head, KV head, query tile, first query
  int64_t k0 = 0;                                 // first key
  int nt = 0;                                     // key tiles in the group
  std::array<int64_t, 4> width{};                 // keys in each tile
  bool diagonal = false;                          // the last tile holds the diagonal
  bool first = false, last = false;               // first / last group of its query tile
};

class AttentionEmitter {
 public:
  AttentionEmitter(isa::KernelBuilder& b, const isa::Tensor& q, const isa::Tensor& k,
                   const isa::Tensor& v, const isa::Tensor& out, const AttentionOptions& o,
                   const isa::Tensor& lse)
      : b_(b), q_(q), k_(k), v_(v), out_(out), lse_(lse), opts_(o) {
    hq_ = q.shape()[0];
    hkv_ = k.shape()[0];
    seq_ = q.shape()[1];
    d_ = q.shape()[2];
    scale_ = opts_.scale != 0 ? opts_.scale : float(1.0 / std::sqrt(double(d_)));
    expScale_ = float(std::exp(double(scale_)));
  }

  Status run() {
    planGroups();
    TRNSIM_RETURN_IF_ERROR(allocate());
    loadKv(0);
    loadQ(0);
    const size_t steps = groups_.size() + kSkew.back();
    for (size_t s = 0; s < steps; ++s)
      for (int st = 0; st < kNumStages; ++st)
        if (s >= kSkew[size_t(st)]) advance(st, s - kSkew[size_t(st)]);
    release();
    return b_.status();
  }

 private:
  void planGroups() {
    const int64_t group = hq_ / hkv_, kt = opts_.keyTile, qTiles = seq_ / kTile;
    int64_t qSeq = 0;
    for (int64_t kvh = 0; kvh < hkv_; ++kvh) {
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t qi = 0; qi < qTiles; ++qi, ++qSeq) {
          const int64_t q0 = qi * kTile, keyEnd = opts_.causal ? q0 + kTile : seq_;
          qTiles_.push_back({h, q0});
          for (int64_t k0 = 0; k0 < keyEnd;) {
            Group g;
            g.head = h;
            g.kvSeq = kvh;
            g.qSeq = qSeq;
            g.q0 = q0;
            g.k0 = k0;
            while (g.nt < opts_.tilesPerGroup && k0 < keyEnd) {
              g.width[size_t(g.nt++)] = std::min(kt, keyEnd - k0);
              k0 += kt;
            }
            g.diagonal = opts_.causal && k0 >= keyEnd;
            g.first = g.k0 == 0;
            g.last = k0 >= keyEnd;
            groups_.push_back(g);
          }
          lastGroupOfKv_.resize(size_t(kvh + 1));
          lastGroupOfKv_[size_t(kvh)] = groups_.size() - 1;
        }
      }
    }
  }

  Status allocate() {
    const int64_t P = kTile, kt = opts_.keyTile, tpg = opts_.tilesPerGroup;
    for (int i = 0; i < 2; ++i) {
      kT_[i] = detail::sbufTile(b_, fmt::format("att_kT_{}", i), q_.dtype(), {d_, seq_});
      vP_[i] = detail::sbufTile(b_, fmt::format("att_v_{}", i), q_.dtype(), {P, seq_ / P, d_ + 1});
      oSb_[i] = detail::sbufTile(b_, fmt::format("att_o_{}", i), DType::kFP32, {P, d_ + 1});
      og_[i] = detail::psumTile(b_, fmt::format("att_pv_{}", i), DType::kFP32, {P, d_ + 1});
    }
    for (int i = 0; i < 3; ++i) {
      qT_[i] = detail::sbufTile(b_, fmt::format("att_qT_{}", i), q_.dtype(), {d_, P});
      oOut_[size_t(i)] = detail::sbufTile(b_, fmt::format("att_out_{}", i), out_.dtype(), {P, d_});
    }
    for (int i = 0; i < kStatsRing; ++i)
      stats_.push_back(detail::sbufTile(b_, fmt::format("att_stats_{}", i), DType::kFP32, {P, 8}));
    for (int i = 0; i < kGroupRing * tpg; ++i) {
      pTile_.push_back(detail::sbufTile(b_, fmt::format("att_p_{}", i), DType::kBF16, {P, kt}));
      pT_.push_back(
          detail::sbufTile(b_, fmt::format("att_pT_{}", i), DType::kBF16, {P, kt / P, P}));
    }
    for (int i = 0; i < kScoreRing * tpg; ++i)
      sPs_.push_back(detail::psumTile(b_, fmt::format("att_s_{}", i), DType::kFP32, {P, kt}));
    if (opts_.causal) {
      ident_ = detail::sbufTile(b_, "att_identity", DType::kBF16, {P, P});
      tri_ = detail::sbufTile(b_, "att_causal_mask", DType::kBF16, {P, P});
      isa::Tensor fill = detail::sbufTile(b_, "att_fill", DType::kBF16, {P, P});
      // ident[p, c] = (p - c == 0) ? 1 : 0; tri[p, c] = (p - c >= 0) ? 0 : mask.
      (void)b_.memset(fill.ap(), 1.0f, arch::Engine::kGpSimd);
      (void)b_.affineSelect(ident_.ap(), {-1}, 1.0f, 0.0f, AluOp::kIsEqual, fill.ap(), 0.0f);
      (void)b_.memset(fill.ap(), 0.0f, arch::Engine::kGpSimd);
      (void)b_.affineSelect(tri_.ap(), {-1}, 1.0f, 0.0f, AluOp::kIsGe, fill.ap(), kMaskValue);
      b_.release(fill);
    }
    if (!b_.status().isOk()) {
      const Status& s = b_.status();
      return Status(s.code(), fmt::format("attention (seq {}, head dim {}, key tile {}): {}", seq_,
                                          d_, kt, s.message()));
    }
    // The ones column of V' accumulates the softmax row sums in the P V matmul.
    for (int i = 0; i < 2; ++i)
      (void)b_.memset(vP_[i]({Slice::all(), Slice::all(), Slice::range(d_, d_ + 1)}), 1.0f,
                      arch::Engine::kGpSimd);
    return b_.status();
  }

  void release() {
    for (auto* list : {&stats_, &pTile_, &pT_, &sPs_})
      for (auto& t : *list) b_.release(t);
    for (int i = 0; i < 2; ++i)
      for (auto* t : {&kT_[i], &vP_[i], &oSb_[i], &og_[i]}) b_.release(*t);
    for (int i = 0; i < 3; ++i) {
      b_.release(qT_[i]);
      b_.release(oOut_[size_t(i)]);
    }
    if (opts_.causal) {
      b_.release(ident_);
      b_.release(tri_);
    }
  }

  /// Row block [rows, D] of a [H, S, D] HBM tensor starting at (head, row).
  isa::AccessPattern rowsOf(const isa::Tensor& t, int64_t head, int64_t row, int64_t rows) const {
    return t.pattern({{d_, rows}, {1, d_}}, (head * seq_ + row) * d_);
  }

  void loadKv(int64_t kvSeq) {
    if (kvSeq >= hkv_) return;
    const size_t i = size_t(kvSeq % 2);
    for (int64_t c = 0; c < seq_ / kTile; ++c)
      (void)b_.dmaTranspose(kT_[i]({Slice::all(), Slice::range(c * kTile, (c + 1) * kTile)}),
                            rowsOf(k_, kvSeq, c * kTile, kTile));
    // V'[p, c, 0:D] = v[kvSeq, c * 128 + p, :], in four DMAs to spread over queues.
    const int64_t chunks = seq_ / kTile, per = std::max<int64_t>(1, (chunks + 3) / 4);
    for (int64_t c0 = 0; c0 < chunks; c0 += per) {
      const int64_t n = std::min(per, chunks - c0);
      (void)b_.dmaCopy(
          vP_[i]({Slice::all(), Slice::range(c0, c0 + n), Slice::range(0, d_)}),
          v_.pattern({{d_, kTile}, {kTile * d_, n}, {1, d_}}, (kvSeq * seq_ + c0 * kTile) * d_));
    }
  }

  void loadQ(int64_t qSeq) {
    if (qSeq >= int64_t(qTiles_.size())) return;
    const auto [h, q0] = qTiles_[size_t(qSeq)];
    (void)b_.dmaTranspose(qT_[size_t(qSeq % 3)].ap(), rowsOf(q_, h, q0, kTile));
  }

  void advance(int stage, size_t upTo) {
    while (next_[size_t(stage)] <= upTo && next_[size_t(stage)] < groups_.size()) {
      const size_t g = next_[size_t(stage)]++;
      emit(stage, g);
    }
  }

  /// Emits every stage of every group up to `upTo`, group by group (keeps the ring buffers'
  /// reuse order).
  void drain(size_t upTo) {
    for (size_t g = 0; g <= upTo; ++g)
      for (int st = 0; st < kNumStages; ++st) advance(st, g);
  }

  isa::Tensor& stats(size_t g) { return stats_[g % kStatsRing]; }
  size_t tileSlot(size_t g, int t, int ring) const {
    return (g % size_t(ring)) * size_t(opts_.tilesPerGroup) + size_t(t);
  }
  isa::AccessPattern col(isa::Tensor& t, int64_t c) {
    return t({Slice::all(), Slice::range(c, c + 1)});
  }

  void emit(int stage, size_t gi) {
    const Group& g = groups_[gi];
    const int64_t tpg = opts_.tilesPerGroup;
    switch (stage) {
      case kScores: {
        if (g.first) {
          // Prefetch: the next query tile's Q^T, and at a new KV head the next head's K^T/V
          // (its buffer was last used by the head before this one, so finish that one first).
          loadQ(g.qSeq + 1);
          const bool newKv = gi == 0 || groups_[gi - 1].kvSeq != g.kvSeq;
          if (newKv && g.kvSeq + 1 < hkv_) {
            if (g.kvSeq >= 1) drain(lastGroupOfKv_[size_t(g.kvSeq - 1)]);
            loadKv(g.kvSeq + 1);
          }
        }
        const isa::Tensor& kT = kT_[size_t(g.kvSeq % 2)];
        const isa::Tensor& qT = qT_[size_t(g.qSeq % 3)];
        for (int t = 0; t < g.nt; ++t) {
          const int64_t k0 = g.k0 + t * opts_.keyTile, w = g.width[size_t(t)];
          const isa::Tensor& s = sPs_[tileSlot(gi, t, kScoreRing)];
          (void)b_.ncMatmul(s({Slice::all(), Slice::range(0, w)}), qT.ap(),
                            kT({Slice::all(), Slice::range(k0, k0 + w)}));
          if (g.diagonal && t == g.nt - 1)
            (void)b_.ncMatmul(s({Slice::all(), Slice::range(w - kTile, w)}), ident_.ap(), tri_.ap(),
                              {.accumulate = true});
        }
        break;
      }
      case kRowMax: {
        // Kept negated (nm = -m) so that the bias and alpha take one GpSimd op each:
        // bias = scale * nm, alpha = exp(scale (m_old - m_new)) = (e^scale) ^ (nm_new - nm_old).
        isa::Tensor& cur = stats(gi);
        for (int t = 0; t < g.nt; ++t) {
          const isa::Tensor& s = sPs_[tileSlot(gi, t, kScoreRing)];
          (void)b_.tensorReduce(col(cur, t), AluOp::kMax,
                                s({Slice::all(), Slice::range(0, g.width[size_t(t)])}), 1u,
                                /*negate=*/true);
        }
        const auto nm = col(cur, 4), nb = col(cur, 5), alpha = col(cur, 6);
        (void)b_.tensorReduce(nm, AluOp::kMin, cur({Slice::all(), Slice::range(0, g.nt)}), 1u,
                              false, arch::Engine::kGpSimd);
        if (!g.first) {
          const auto nmOld = col(stats(gi - 1), 4);
          (void)b_.tensorTensor(nm, nm, nmOld, AluOp::kMin, arch::Engine::kGpSimd);
          (void)b_.tensorScalar(alpha, nm, AluOp::kSubtract, nmOld, AluOp::kPow, expScale_, false,
                                /*reverse1=*/true, arch::Engine::kGpSimd);
        }
        (void)b_.tensorScalar(nb, nm, AluOp::kMultiply, scale_, AluOp::kBypass, 0.0f, false, false,
                              arch::Engine::kGpSimd);
        break;
      }
      case kExp: {
        isa::Tensor& cur = stats(gi);
        for (int t = 0; t < g.nt; ++t) {
          const int64_t w = g.width[size_t(t)];
          const isa::Tensor& s = sPs_[tileSlot(gi, t, kScoreRing)];
          const isa::Tensor& p = pTile_[tileSlot(gi, t, kGroupRing)];
          const auto pw = p({Slice::all(), Slice::range(0, w)});
          const auto sw = s({Slice::all(), Slice::range(0, w)});
          const int every = opts_.vectorExpInterval;
          if (every > 0 && tileCount_++ % every == every - 1) {
            // exp(scale (S - m)) = (e^scale) ^ (S + nm): one VectorE tensor_scalar.
            (void)b_.tensorScalar(pw, sw, AluOp::kAdd, col(cur, 4), AluOp::kPow, expScale_, false,
                                  /*reverse1=*/true);
          } else {
            (void)b_.activation(pw, isa::ActFunc::kExp, sw, col(cur, 5), scale_);
          }
        }
        for (int t = 0; t < g.nt; ++t) {
          const isa::Tensor& p = pTile_[tileSlot(gi, t, kGroupRing)];
          const isa::Tensor& pT = pT_[tileSlot(gi, t, kGroupRing)];
          for (int64_t c = 0; c < g.width[size_t(t)] / kTile; ++c)
            (void)b_.dmaTranspose(pT({Slice::all(), Slice::at(c), Slice::all()}),
                                  p({Slice::all(), Slice::range(c * kTile, (c + 1) * kTile)}));
        }
        break;
      }
      case kPV: {
        const isa::Tensor& og = og_[gi % 2];
        const isa::Tensor& vP = vP_[size_t(g.kvSeq % 2)];
        bool firstMm = true;
        for (int t = 0; t < g.nt; ++t) {
          const isa::Tensor& pT = pT_[tileSlot(gi, t, kGroupRing)];
          const int64_t k0 = g.k0 + t * opts_.keyTile;
          for (int64_t c = 0; c < g.width[size_t(t)] / kTile; ++c) {
            (void)b_.ncMatmul(og.ap(), pT({Slice::all(), Slice::at(c), Slice::all()}),
                              vP({Slice::all(), Slice::at(k0 / kTile + c), Slice::all()}),
                              {.accumulate = !firstMm});
            firstMm = false;
          }
        }
        break;
      }
      case kUpdate: {
        isa::Tensor& cur = stats(gi);
        isa::Tensor& o = oSb_[size_t(g.qSeq % 2)];
        const isa::Tensor& og = og_[gi % 2];
        if (g.first)
          (void)b_.tensorCopy(o.ap(), og.ap());
        else
          (void)b_.scalarTensorTensor(o.ap(), o.ap(), AluOp::kMultiply, col(cur, 6), AluOp::kAdd,
                                      og.ap());
        if (g.last) {
          const isa::Tensor& ot = oOut_[size_t(g.qSeq % 3)];
          (void)b_.tensorScalar(ot.ap(), o({Slice::all(), Slice::range(0, d_)}), AluOp::kDivide,
                                col(o, d_), AluOp::kBypass, 0.0f, false, false,
                                arch::Engine::kGpSimd);
          (void)b_.dmaCopy(rowsOf(out_, g.head, g.q0, kTile), ot.ap());
          if (lse_.valid()) {
            // lse = log(sum) + scale * max = log(sum) - bias
            (void)b_.activation(col(cur, 7), isa::ActFunc::kLog, col(o, d_));
            (void)b_.tensorTensor(col(cur, 7), col(cur, 7), col(cur, 5), AluOp::kSubtract,
                                  arch::Engine::kGpSimd);
            (void)b_.dmaCopy(lse_.pattern({{1, kTile}, {1, 1}}, g.head * seq_ + g.q0), col(cur, 7));
          }
        }
        break;
      }
      default:
        break;
    }
    (void)tpg;
  }

  isa::KernelBuilder& b_;
  const isa::Tensor &q_, &k_, &v_, &out_, &lse_;
  AttentionOptions opts_;
  int64_t hq_ = 0, hkv_ = 0, seq_ = 0, d_ = 0;
  float scale_ = 1, expScale_ = 1;
  std::vector<Group> groups_;
  std::vector<std::pair<int64_t, int64_t>> qTiles_;  // (head, first query) per query tile
  std::vector<size_t> lastGroupOfKv_;
  std::array<size_t, kNumStages> next_{};
  int64_t tileCount_ = 0;
  std::array<isa::Tensor, 2> kT_, vP_, oSb_, og_;
  std::array<isa::Tensor, 3> qT_, oOut_;
  std::vector<isa::Tensor> stats_, pTile_, pT_, sPs_;
  isa::Tensor ident_, tri_;
};

}  // namespace

Status emitAttention(isa::KernelBuilder& b, const isa::Tensor& q, const isa::Tensor& k,
                     const isa::Tensor& v, const isa::Tensor& out, AttentionOptions opts,
                     const isa::Tensor& lse) {
  if (!q.valid() || !k.valid() || !v.valid() || !out.valid()) return b.status();
  if (q.shape().size() != 3 || k.shape().size() != 3 || k.shape() != v.shape() ||
      out.shape() != q.shape() || k.shape()[1] != q.shape()[1] || k.shape()[2] != q.shape()[2])
    return Status(ErrorCode::kInvalidArgument,
                  "attention: expected q, out [Hq, S, D] and k, v [Hkv, S, D]");
  const int64_t hq = q.shape()[0], hkv = k.shape()[0], seq = q.shape()[1], d = q.shape()[2];
  if (hkv < 1 || hq % hkv != 0)
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("attention: {} query heads cannot share {} KV heads evenly", hq, hkv));
  if (d > kTile || seq % kTile != 0)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("attention: head dim {} (at most 128) and sequence {} (a multiple "
                              "of 128) are not supported by this kernel",
                              d, seq));
  if (opts.keyTile != 128 && opts.keyTile != 256 && opts.keyTile != 512)
    return Status(ErrorCode::kInvalidArgument, "attention: key tile must be 128, 256 or 512");
  if (opts.tilesPerGroup < 1 || opts.tilesPerGroup > 2)
    return Status(ErrorCode::kInvalidArgument, "attention: tilesPerGroup must be 1 or 2");
  if (q.dtype() != DType::kBF16 || k.dtype() != DType::kBF16 || v.dtype() != DType::kBF16)
    return Status(ErrorCode::kUnsupported, "attention: q, k and v must be bfloat16");
  if (b.chip().dma.transposeEfficiency <= 0 || b.chip().dma.sbufTransposeEfficiency <= 0)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("attention: {} has no DMA transpose; this kernel needs trn2 or "
                              "later",
                              b.chip().name));
  if (lse.valid() && lse.shape() != std::vector<int64_t>{hq, seq})
    return Status(ErrorCode::kInvalidArgument, "attention: lse must be [Hq, S]");
  AttentionEmitter e(b, q, k, v, out, opts, lse);
  return e.run();
}

Expected<isa::Program> attentionProgram(const arch::ChipConfig& chip, int64_t qHeads,
                                        int64_t kvHeads, int64_t seq, int64_t headDim,
                                        AttentionOptions opts, DType dtype) {
  isa::KernelBuilder b(chip, fmt::format("attention_{}q{}kv_{}x{}{}", qHeads, kvHeads, seq, headDim,
                                         opts.causal ? "_causal" : ""));
  auto q = b.hbm("q", dtype, {qHeads, seq, headDim}, isa::TensorKind::kInput);
  auto k = b.hbm("k", dtype, {kvHeads, seq, headDim}, isa::TensorKind::kInput);
  auto v = b.hbm("v", dtype, {kvHeads, seq, headDim}, isa::TensorKind::kInput);
  auto out = b.hbm("out", dtype, {qHeads, seq, headDim}, isa::TensorKind::kOutput);
  isa::Tensor lse;
  if (opts.writeLse) lse = b.hbm("lse", DType::kFP32, {qHeads, seq}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitAttention(b, q, k, v, out, opts, lse));
  return b.finish();
}

double attentionUsefulFlops(int64_t qHeads, int64_t seq, int64_t headDim, bool causal) {
  const double pairs = causal ? double(seq) * double(seq + 1) / 2 : double(seq) * double(seq);
  return 4.0 * double(headDim) * pairs * double(qHeads);
}

}  // namespace trnsim::kernels
