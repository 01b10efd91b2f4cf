// The graphs of one transformer layer on one rank, written as compiler IR text in the form
// AOTAutograd captures from a `transformers` model (docs/plan_compute.md, "Compiled layers").

#include "trnsim/plan/layer_graph.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

namespace trnsim::plan {

namespace {

/// "bf16[8, 64]"
std::string ty(std::string_view dtype, std::initializer_list<int64_t> dims) {
  return fmt::format("{}[{}]", dtype, fmt::join(dims, ", "));
}

/// Writes IR text one line at a time; value names are given, so each graph reads like the
/// model's code.
class IrWriter {
 public:
  explicit IrWriter(std::string name) : name_(std::move(name)) {}

  /// A graph input (per call) or param (weights); returns "%name".
  std::string input(const std::string& n, const std::string& type, bool param = false) {
    inputs_.push_back(fmt::format("%{}: {}{}", n, type, param ? " param" : " input"));
    return "%" + n;
  }
  std::string param(const std::string& n, const std::string& type) { return input(n, type, true); }
  /// One node with one result: `%n: type = op(args) {attrs}`.
  std::string node(const std::string& n, const std::string& type, std::string_view op,
                   std::initializer_list<std::string> args, std::string_view attrs = {}) {
    body_ += fmt::format("  %{}: {} = {}({}){}\n", n, type, op, fmt::join(args, ", "),
                         attrs.empty() ? std::string() : fmt::format(" {{{}}}", attrs));
    return "%" + n;
  }
  /// A node with several results, written as given ("%a: t, %b: t").
  void multi(const std::string& results, std::string_view op,
             std::initializer_list<std::string> args, std::string_view attrs) {
    body_ += fmt::format("  {} = {}({}) {{{}}}\n", results, op, fmt::join(args, ", "), attrs);
  }
  void output(const std::string& v) { outputs_.push_back(v); }
  std::string text() const {
    return fmt::format("graph {}({}) {{\n{}  return {}\n}}\n", name_, fmt::join(inputs_, ", "),
                       body_, fmt::join(outputs_, ", "));
  }

 private:
  std::string name_;
  std::vector<std::string> inputs_;
  std::string body_;
  std::vector<std::string> outputs_;
};

constexpr double kNormEps = 1e-5;

std::string floatAttr(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

/// RMSNorm as `transformers` writes it (LlamaRMSNorm): fp32 variance, rsqrt, bf16 scale.
/// Returns the normed value; `rstd` gets the saved 1/rms.
std::string rmsNorm(IrWriter& w, const std::string& p, const std::string& x,
                    const std::string& weight, int64_t rows, int64_t h, std::string& rstd) {
  const std::string f = ty("f32", {rows, h}), col = ty("f32", {rows, 1});
  std::string x32 = w.node(p + "x32", f, "_to_copy", {x}, "dtype=\"f32\"");
  std::string sq = w.node(p + "sq", f, "pow", {x32}, "exponent=2.0");
  std::string var = w.node(p + "var", col, "mean", {sq}, "dim=[-1], keepdim=1");
  std::string ve = w.node(p + "ve", col, "add", {var}, "other=" + floatAttr(kNormEps));
  rstd = w.node(p + "rstd", col, "rsqrt", {ve});
  std::string xn = w.node(p + "xn", f, "mul", {x32, rstd});
  std::string xb = w.node(p + "xnb", ty("bf16", {rows, h}), "_to_copy", {xn}, "dtype=\"bf16\"");
  return w.node(p + "out", ty("bf16", {rows, h}), "mul", {weight, xb});
}

/// Its backward: dx = rstd (g - xhat mean(g xhat)) with g = dy w; dw = sum(dy xhat) over rows.
std::string rmsNormBackward(IrWriter& w, const std::string& p, const std::string& dy,
                            const std::string& x, const std::string& rstd,
                            const std::string& weight, int64_t rows, int64_t h,
                            std::string& dweight) {
  const std::string f = ty("f32", {rows, h}), col = ty("f32", {rows, 1});
  std::string gw = w.node(p + "gw", ty("bf16", {rows, h}), "mul", {dy, weight});
  std::string g32 = w.node(p + "g32", f, "_to_copy", {gw}, "dtype=\"f32\"");
  std::string x32 = w.node(p + "x32", f, "_to_copy", {x}, "dtype=\"f32\"");
  std::string xhat = w.node(p + "xhat", f, "mul", {x32, rstd});
  std::string dy32 = w.node(p + "dy32", f, "_to_copy", {dy}, "dtype=\"f32\"");
  std::string dwx = w.node(p + "dwx", f, "mul", {dy32, xhat});
  dweight = w.node(p + "dw", ty("f32", {h}), "sum", {dwx}, "dim=[0], keepdim=0");
  std::string gx = w.node(p + "gx", f, "mul", {g32, xhat});
  std::string mg = w.node(p + "mg", col, "mean", {gx}, "dim=[-1], keepdim=1");
  std::string c = w.node(p + "c", f, "mul", {xhat, mg});
  std::string d = w.node(p + "d", f, "sub", {g32, c});
  std::string dx = w.node(p + "dx", f, "mul", {d, rstd});
  return w.node(p + "dxb", ty("bf16", {rows, h}), "_to_copy", {dx}, "dtype=\"bf16\"");
}

/// LayerNorm (GPT family) through native_layer_norm, keeping mean and rstd for backward.
std::string layerNorm(IrWriter& w, const std::string& p, const std::string& x,
                      const std::string& weight, const std::string& bias, int64_t rows,
                      int64_t h, std::string& mean, std::string& rstd) {
  const std::string b = ty("bf16", {rows, h}), col = ty("bf16", {rows, 1});
  w.multi(fmt::format("%{0}out: {1}, %{0}mean: {2}, %{0}rstd: {2}", p, b, col),
          "native_layer_norm", {x, weight, bias},
          fmt::format("normalized_shape=[{}], eps={}", h, floatAttr(kNormEps)));
  mean = "%" + p + "mean";
  rstd = "%" + p + "rstd";
  return "%" + p + "out";
}

/// LayerNorm backward: dx = rstd (g - mean(g) - xhat mean(g xhat)), dw = sum(dy xhat),
/// db = sum(dy).
std::string layerNormBackward(IrWriter& w, const std::string& p, const std::string& dy,
                              const std::string& x, const std::string& mean,
                              const std::string& rstd, const std::string& weight, int64_t rows,
                              int64_t h, std::string& dweight, std::string& dbias) {
  const std::string f = ty("f32", {rows, h}), col = ty("f32", {rows, 1});
  std::string x32 = w.node(p + "x32", f, "_to_copy", {x}, "dtype=\"f32\"");
  std::string m32 = w.node(p + "m32", col, "_to_copy", {mean}, "dtype=\"f32\"");
  std::string r32 = w.node(p + "r32", col, "_to_copy", {rstd}, "dtype=\"f32\"");
  std::string xc = w.node(p + "xc", f, "sub", {x32, m32});
  std::string xhat = w.node(p + "xhat", f, "mul", {xc, r32});
  std::string dy32 = w.node(p + "dy32", f, "_to_copy", {dy}, "dtype=\"f32\"");
  std::string dwx = w.node(p + "dwx", f, "mul", {dy32, xhat});
  dweight = w.node(p + "dw", ty("f32", {h}), "sum", {dwx}, "dim=[0], keepdim=0");
  dbias = w.node(p + "db", ty("f32", {h}), "sum", {dy32}, "dim=[0], keepdim=0");
  std::string gw = w.node(p + "gw", ty("bf16", {rows, h}), "mul", {dy, weight});
  std::string g32 = w.node(p + "g32", f, "_to_copy", {gw}, "dtype=\"f32\"");
  std::string mg = w.node(p + "mg", col, "mean", {g32}, "dim=[-1], keepdim=1");
  std::string gx = w.node(p + "gx", f, "mul", {g32, xhat});
  std::string mgx = w.node(p + "mgx", col, "mean", {gx}, "dim=[-1], keepdim=1");
  std::string c = w.node(p + "c", f, "mul", {xhat, mgx});
  std::string d1 = w.node(p + "d1", f, "sub", {g32, mg});
  std::string d2 = w.node(p + "d2", f, "sub", {d1, c});
  std::string dx = w.node(p + "dx", f, "mul", {d2, r32});
  return w.node(p + "dxb", ty("bf16", {rows, h}), "_to_copy", {dx}, "dtype=\"bf16\"");
}

/// y[rows, out] = x[rows, in] @ W^T for a linear layer's weight W[out, in].
std::string linear(IrWriter& w, const std::string& n, const std::string& x,
                   const std::string& weight, int64_t rows, int64_t out) {
  return w.node(n, ty("bf16", {rows, out}), "mm", {x, weight}, "transpose_b=1");
}

/// The gradients of y = x W^T: dx = dy W, dW = dy^T x (dy transposed by a permute, as
/// AOTAutograd writes it), accumulated into an fp32 main_grad when asked. Returns dx.
std::string linearBackward(IrWriter& w, const std::string& n, const std::string& dy,
                           const std::string& x, const std::string& weight, int64_t rows,
                           int64_t in, int64_t out, bool wantDx, bool fp32Acc) {
  std::string dx;
  if (wantDx) dx = w.node("d" + n + "_x", ty("bf16", {rows, in}), "mm", {dy, weight});
  std::string dyT =
      w.node("d" + n + "_t", ty("bf16", {out, rows}), "permute", {dy}, "dims=[1, 0]");
  std::string dW = w.node("d" + n + "_w", ty("bf16", {out, in}), "mm", {dyT, x});
  if (fp32Acc) {
    std::string acc = w.input("main_grad_" + n, ty("f32", {out, in}));
    w.output(w.node("grad_" + n, ty("f32", {out, in}), "add", {acc, dW}));
  } else {
    w.output(dW);
  }
  return dx;
}

/// RoPE as `transformers` applies it: x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1].
std::string rope(IrWriter& w, const std::string& p, const std::string& x, const std::string& cos,
                 const std::string& sin, int64_t b, int64_t heads, int64_t s, int64_t d) {
  const std::string full = ty("bf16", {b, heads, s, d}), half = ty("bf16", {b, heads, s, d / 2});
  std::string x1 = w.node(p + "x1", half, "slice", {x}, fmt::format("dim=3, start=0, end={}", d / 2));
  std::string x2 =
      w.node(p + "x2", half, "slice", {x}, fmt::format("dim=3, start={}, end={}", d / 2, d));
  std::string nx2 = w.node(p + "nx2", half, "neg", {x2});
  std::string rot = w.node(p + "rot", full, "cat", {nx2, x1}, "dim=-1");
  std::string xc = w.node(p + "xc", full, "mul", {x, cos});
  std::string rs = w.node(p + "rs", full, "mul", {rot, sin});
  return w.node(p + "out", full, "add", {xc, rs});
}

/// RoPE backward: dx = dy cos + rotate_half^T(dy sin), rotate_half^T(z) = [z2, -z1].
std::string ropeBackward(IrWriter& w, const std::string& p, const std::string& dy,
                         const std::string& cos, const std::string& sin, int64_t b, int64_t heads,
                         int64_t s, int64_t d) {
  const std::string full = ty("bf16", {b, heads, s, d}), half = ty("bf16", {b, heads, s, d / 2});
  std::string zs = w.node(p + "zs", full, "mul", {dy, sin});
  std::string z1 = w.node(p + "z1", half, "slice", {zs}, fmt::format("dim=3, start=0, end={}", d / 2));
  std::string z2 =
      w.node(p + "z2", half, "slice", {zs}, fmt::format("dim=3, start={}, end={}", d / 2, d));
  std::string nz1 = w.node(p + "nz1", half, "neg", {z1});
  std::string rt = w.node(p + "rt", full, "cat", {z2, nz1}, "dim=-1");
  std::string dc = w.node(p + "dc", full, "mul", {dy, cos});
  return w.node(p + "out", full, "add", {dc, rt});
}

std::string sdpaAttrs(int64_t headDim, bool causal) {
  return fmt::format("dropout_p=0.0, is_causal={}, scale={}", causal ? 1 : 0,
                     floatAttr(1.0 / std::sqrt(double(headDim))));
}

/// The attention core's saved values: what its backward reads besides the incoming gradient.
struct AttentionSaved {
  std::string q, k, v;       ///< flash: [B, H(k), S, D]; materialized: [B Hk, g S, D] / [B Hk, S, D]
  std::string out, lse;      ///< flash only: the output and its logsumexp
  std::string probs, mask;   ///< materialized only: softmax output, dropout mask ("" if none)
};

/// The attention core forward on q [B, H, S, D], k and v [B, Hk, S, D]; returns the output
/// [B, H, S, D] and fills `saved`. Flash: the fused op. Materialized, as eager PyTorch writes
/// it: the g = H / Hk query heads sharing a KV head are stacked into one bmm of [g S, D] queries
/// against [S, D] keys (contiguous, since query heads are grouped by KV head), so the scores are
/// [B Hk, g S, S]; the causal mask (a [g S, S] u8 input) is applied by masked_fill.
std::string attentionForwardCore(IrWriter& w, const LayerDims& d, int64_t B, bool causal,
                                 bool materialized, double dropout, const std::string& q,
                                 const std::string& k, const std::string& v, AttentionSaved& saved) {
  const int64_t H = d.heads, Hk = d.kvHeads, S = d.seqRank, D = d.headDim, g = H / Hk;
  const std::string qt = ty("bf16", {B, H, S, D});
  if (!materialized) {
    w.multi(fmt::format("%attn: {}, %lse: {}", qt, ty("f32", {B, H, S})),
            "_scaled_dot_product_flash_attention_for_cpu", {q, k, v}, sdpaAttrs(D, causal));
    saved = AttentionSaved{q, k, v, "%attn", "%lse", "", ""};
    return "%attn";
  }
  const std::string q3t = ty("bf16", {B * Hk, g * S, D}), k3t = ty("bf16", {B * Hk, S, D});
  const std::string st = ty("bf16", {B * Hk, g * S, S});
  saved.q = w.node("q3", q3t, "view", {q}, fmt::format("size=[{}, {}, {}]", B * Hk, g * S, D));
  saved.k = w.node("k3", k3t, "view", {k}, fmt::format("size=[{}, {}, {}]", B * Hk, S, D));
  saved.v = w.node("v3", k3t, "view", {v}, fmt::format("size=[{}, {}, {}]", B * Hk, S, D));
  std::string kT = w.node("k3_t", ty("bf16", {B * Hk, D, S}), "permute", {saved.k}, "dims=[0, 2, 1]");
  std::string sc = w.node("scores", st, "bmm", {saved.q, kT});
  std::string scaled = w.node("scores_scaled", st, "mul", {sc},
                              "other=" + floatAttr(1.0 / std::sqrt(double(D))));
  std::string logits = scaled;
  if (causal) {
    std::string mask = w.input("causal_mask", ty("u8", {g * S, S}));
    logits = w.node("scores_masked", st, "masked_fill", {scaled, mask}, "value=-10000.0");
  }
  saved.probs = w.node("probs", st, "_softmax", {logits}, "dim=-1, half_to_float=0");
  std::string p = saved.probs;
  if (dropout > 0) {
    w.multi(fmt::format("%probs_dropped: {}, %probs_mask: {}", st, ty("u8", {B * Hk, g * S, S})),
            "native_dropout", {saved.probs}, fmt::format("p={}, train=1", floatAttr(dropout)));
    p = "%probs_dropped";
    saved.mask = "%probs_mask";
  }
  std::string ctx = w.node("context", q3t, "bmm", {p, saved.v});
  return w.node("attn", qt, "view", {ctx}, fmt::format("size=[{}, {}, {}, {}]", B, H, S, D));
}

/// Its backward from dout [B, H, S, D]: dq [B, H, S, D], dk and dv [B, Hk, S, D]. Materialized:
/// dropout's backward (mask x 1/(1-p)) and softmax's (P (dP - rowsum(dP P))) as pointwise ops,
/// as AOTAutograd decomposes them, and four bmms.
void attentionBackwardCore(IrWriter& w, const LayerDims& d, int64_t B, bool causal,
                           bool materialized, double dropout, const std::string& dout,
                           const AttentionSaved& sv, std::string& dq, std::string& dk,
                           std::string& dv) {
  const int64_t H = d.heads, Hk = d.kvHeads, S = d.seqRank, D = d.headDim, g = H / Hk;
  const std::string qt = ty("bf16", {B, H, S, D}), kt = ty("bf16", {B, Hk, S, D});
  if (!materialized) {
    w.multi(fmt::format("%dq: {}, %dk: {}, %dv: {}", qt, kt, kt),
            "_scaled_dot_product_flash_attention_for_cpu_backward",
            {dout, sv.q, sv.k, sv.v, sv.out, sv.lse}, sdpaAttrs(D, causal));
    dq = "%dq", dk = "%dk", dv = "%dv";
    return;
  }
  const std::string q3t = ty("bf16", {B * Hk, g * S, D}), k3t = ty("bf16", {B * Hk, S, D});
  const std::string st = ty("bf16", {B * Hk, g * S, S}), col = ty("bf16", {B * Hk, g * S, 1});
  std::string dctx =
      w.node("d_context", q3t, "view", {dout}, fmt::format("size=[{}, {}, {}]", B * Hk, g * S, D));
  std::string p = sv.probs;
  std::string vT = w.node("v3_t", ty("bf16", {B * Hk, D, S}), "permute", {sv.v}, "dims=[0, 2, 1]");
  std::string dp = w.node("d_probs_dropped", st, "bmm", {dctx, vT});
  if (!sv.mask.empty()) {
    std::string mk = w.node("probs_mask_b", st, "_to_copy", {sv.mask}, "dtype=\"bf16\"");
    std::string dm = w.node("d_probs_masked", st, "mul", {dp, mk});
    dp = w.node("d_probs", st, "mul", {dm}, "other=" + floatAttr(1.0 / (1.0 - dropout)));
    std::string pm = w.node("probs_dropped_b", st, "mul", {sv.probs, mk});
    p = w.node("probs_dropped_r", st, "mul", {pm}, "other=" + floatAttr(1.0 / (1.0 - dropout)));
  }
  std::string pT = w.node("probs_t", ty("bf16", {B * Hk, S, g * S}), "permute", {p}, "dims=[0, 2, 1]");
  std::string dv3 = w.node("dv3", k3t, "bmm", {pT, dctx});
  std::string pdp = w.node("probs_dprobs", st, "mul", {dp, sv.probs});
  std::string rs = w.node("probs_dprobs_sum", col, "sum", {pdp}, "dim=[-1], keepdim=1");
  std::string dd = w.node("d_scores_c", st, "sub", {dp, rs});
  std::string ds = w.node("d_scores", st, "mul", {sv.probs, dd});
  std::string dsc = w.node("d_scores_scaled", st, "mul", {ds},
                           "other=" + floatAttr(1.0 / std::sqrt(double(D))));
  std::string dq3 = w.node("dq3", q3t, "bmm", {dsc, sv.k});
  std::string dsT = w.node("d_scores_t", ty("bf16", {B * Hk, S, g * S}), "permute", {dsc}, "dims=[0, 2, 1]");
  std::string dk3 = w.node("dk3", k3t, "bmm", {dsT, sv.q});
  dq = w.node("dq", qt, "view", {dq3}, fmt::format("size=[{}, {}, {}, {}]", B, H, S, D));
  dk = w.node("dk", kt, "view", {dk3}, fmt::format("size=[{}, {}, {}, {}]", B, Hk, S, D));
  dv = w.node("dv", kt, "view", {dv3}, fmt::format("size=[{}, {}, {}, {}]", B, Hk, S, D));
}

/// The saved values as backward-graph inputs (the forward's outputs of the same names).
AttentionSaved attentionSavedInputs(IrWriter& w, const LayerDims& d, int64_t B, bool materialized,
                                    double dropout) {
  const int64_t H = d.heads, Hk = d.kvHeads, S = d.seqRank, D = d.headDim, g = H / Hk;
  AttentionSaved sv;
  if (!materialized) {
    const std::string qt = ty("bf16", {B, H, S, D}), kt = ty("bf16", {B, Hk, S, D});
    sv.q = w.input("q", qt), sv.k = w.input("k", kt), sv.v = w.input("v", kt);
    sv.out = w.input("attn", qt), sv.lse = w.input("lse", ty("f32", {B, H, S}));
    return sv;
  }
  const std::string k3t = ty("bf16", {B * Hk, S, D});
  sv.q = w.input("q3", ty("bf16", {B * Hk, g * S, D}));
  sv.k = w.input("k3", k3t), sv.v = w.input("v3", k3t);
  sv.probs = w.input("probs", ty("bf16", {B * Hk, g * S, S}));
  if (dropout > 0) sv.mask = w.input("probs_mask", ty("u8", {B * Hk, g * S, S}));
  return sv;
}

void outputSaved(IrWriter& w, const AttentionSaved& sv) {
  for (const std::string* v : {&sv.q, &sv.k, &sv.v, &sv.out, &sv.lse, &sv.probs, &sv.mask})
    if (!v->empty()) w.output(*v);
}

/// The attention core alone: forward (its output and saved values) or backward (grad q, k, v).
std::string attentionGraph(const LayerDims& d, int64_t batch, bool causal, bool materialized,
                           double dropout, bool backward, const std::string& name) {
  IrWriter w(name);
  const std::string qt = ty("bf16", {batch, d.heads, d.seqRank, d.headDim});
  const std::string kt = ty("bf16", {batch, d.kvHeads, d.seqRank, d.headDim});
  if (!backward) {
    std::string q = w.input("q", qt), k = w.input("k", kt), v = w.input("v", kt);
    AttentionSaved sv;
    w.output(attentionForwardCore(w, d, batch, causal, materialized, dropout, q, k, v, sv));
    if (materialized) outputSaved(w, sv);
    else w.output(sv.lse);
    return w.text();
  }
  std::string dout = w.input("grad_out", qt);
  AttentionSaved sv = attentionSavedInputs(w, d, batch, materialized, dropout);
  std::string dq, dk, dv;
  attentionBackwardCore(w, d, batch, causal, materialized, dropout, dout, sv, dq, dk, dv);
  w.output(dq);
  w.output(dk);
  w.output(dv);
  return w.text();
}

/// Hidden dropout (train mode) on [rows, h]; returns x unchanged when p is 0. The mask is an
/// output (saved for the backward).
std::string hiddenDropout(IrWriter& w, const std::string& n, const std::string& x, int64_t rows,
                          int64_t h, double p) {
  if (!(p > 0)) return x;
  w.multi(fmt::format("%{0}: {1}, %{0}_mask: {2}", n, ty("bf16", {rows, h}), ty("u8", {rows, h})),
          "native_dropout", {x}, fmt::format("p={}, train=1", floatAttr(p)));
  w.output("%" + n + "_mask");
  return "%" + n;
}

/// Its backward: dy x mask x 1/(1-p) (dy itself when p is 0), reading the saved mask.
std::string hiddenDropoutBackward(IrWriter& w, const std::string& n, const std::string& dy,
                                  int64_t rows, int64_t h, double p) {
  if (!(p > 0)) return dy;
  const std::string t = ty("bf16", {rows, h});
  std::string mask = w.input(n + "_mask", ty("u8", {rows, h}));
  std::string mk = w.node(n + "_mask_b", t, "_to_copy", {mask}, "dtype=\"bf16\"");
  std::string dm = w.node("d_" + n + "_masked", t, "mul", {dy, mk});
  return w.node("d_" + n, t, "mul", {dm}, "other=" + floatAttr(1.0 / (1.0 - p)));
}

}  // namespace

Expected<LayerDims> layerDims(const ModelConfig& m, const LayerGraphShape& s) {
  auto bad = [](const std::string& msg) {
    return Status(ErrorCode::kInvalidArgument, msg, "layer graph");
  };
  if (m.hidden == 0 || m.heads == 0 || m.hidden % m.heads)
    return bad(fmt::format("model '{}': hidden {} is not a multiple of heads {}", m.name, m.hidden,
                           m.heads));
  if (s.tp == 0 || s.cp == 0 || s.batch == 0 || s.seq == 0)
    return bad("tp, cp, batch and seq must be at least 1");
  if (m.heads % s.tp) return bad(fmt::format("tp {} does not divide {} heads", s.tp, m.heads));
  if (s.seq % s.cp) return bad(fmt::format("cp {} does not divide seq {}", s.cp, s.seq));
  if (s.materializedAttention && s.cp > 1)
    return bad("materialized attention with context parallelism is not modelled: use flash "
               "attention with cp > 1");
  if (!(s.dropout >= 0 && s.dropout < 1))
    return bad(fmt::format("dropout {} must be in [0, 1)", s.dropout));
  LayerDims d;
  d.hidden = m.hidden;
  d.headDim = m.headDim();
  d.heads = int64_t(m.heads / s.tp);
  const uint64_t kv = m.kvHeads ? m.kvHeads : m.heads;
  // Fewer KV heads than ranks: each rank keeps one, replicated (Megatron).
  d.kvHeads = int64_t(std::max<uint64_t>(1, kv / s.tp));
  if (d.heads % d.kvHeads)
    return bad(fmt::format("{} query heads per rank do not group over {} KV heads", d.heads,
                           d.kvHeads));
  const uint64_t ffn = m.experts > 1 && m.denseFfnHidden ? m.denseFfnHidden : m.ffnHidden;
  d.ffn = int64_t((ffn + s.tp - 1) / s.tp);
  d.seqRank = int64_t(s.seq / s.cp);
  d.tokens = int64_t(s.batch) * d.seqRank;
  d.normTokens = s.tp > 1 && s.sequenceParallel ? (d.tokens + int64_t(s.tp) - 1) / int64_t(s.tp)
                                                : d.tokens;
  d.vocab = int64_t((m.vocab + s.tp - 1) / s.tp);
  d.swiglu = m.activation == Activation::kSwiglu;
  if (d.headDim % 2) return bad(fmt::format("head dim {} is odd", d.headDim));
  return d;
}

Expected<LayerGraphs> buildLayerGraphs(const ModelConfig& m, const LayerGraphShape& s) {
  TRNSIM_ASSIGN_OR_RETURN(LayerDims d, layerDims(m, s));
  const int64_t B = int64_t(s.batch), Sr = d.seqRank, T = d.tokens, Tn = d.normTokens;
  const int64_t h = d.hidden, D = d.headDim, H = d.heads, Hk = d.kvHeads, F = d.ffn;
  const bool split = s.tp > 1;  // collectives between the norms and the matmuls
  const bool acc = s.fp32GradAccumulation;
  const std::string act = ty("bf16", {Tn, h}), full = ty("bf16", {T, h});
  const std::string qt = ty("bf16", {B, H, Sr, D}), kt = ty("bf16", {B, Hk, Sr, D});
  const std::string col = ty("f32", {Tn, 1});
  const bool mat = s.materializedAttention;
  const double drop = s.dropout;
  LayerGraphs out;

  // ---- forward ----
  {
    IrWriter w("layer_forward");
    std::string x = w.input("x", act);
    std::string ln1 = w.param("ln1_weight", ty("bf16", {h}));
    std::string ln1b = d.swiglu ? "" : w.param("ln1_bias", ty("bf16", {h}));
    std::string wq = w.param("wq", ty("bf16", {H * D, h}));
    std::string wk = w.param("wk", ty("bf16", {Hk * D, h}));
    std::string wv = w.param("wv", ty("bf16", {Hk * D, h}));
    std::string wo = w.param("wo", ty("bf16", {h, H * D}));
    std::string cos, sin;
    if (d.swiglu) {
      cos = w.input("cos", ty("bf16", {Sr, D}));
      sin = w.input("sin", ty("bf16", {Sr, D}));
    }
    std::string rstd1, mean1;
    std::string n1 = d.swiglu ? rmsNorm(w, "norm1_", x, ln1, Tn, h, rstd1)
                              : layerNorm(w, "norm1_", x, ln1, ln1b, Tn, h, mean1, rstd1);
    w.output(rstd1);
    if (!mean1.empty()) w.output(mean1);
    // Saved for the weight gradients; with tp > 1 also what the all-gather (SP) sends.
    w.output(n1);
    std::string a1 = split ? w.input("norm1_gathered", full) : n1;
    std::string q2 = linear(w, "q_proj", a1, wq, T, H * D);
    std::string k2 = linear(w, "k_proj", a1, wk, T, Hk * D);
    std::string v2 = linear(w, "v_proj", a1, wv, T, Hk * D);
    std::string q4 = w.node("q_view", ty("bf16", {B, Sr, H, D}), "view", {q2},
                            fmt::format("size=[{}, {}, {}, {}]", B, Sr, H, D));
    std::string k4 = w.node("k_view", ty("bf16", {B, Sr, Hk, D}), "view", {k2},
                            fmt::format("size=[{}, {}, {}, {}]", B, Sr, Hk, D));
    std::string v4v = w.node("v_view", ty("bf16", {B, Sr, Hk, D}), "view", {v2},
                             fmt::format("size=[{}, {}, {}, {}]", B, Sr, Hk, D));
    std::string q = w.node("q", qt, "permute", {q4}, "dims=[0, 2, 1, 3]");
    std::string k = w.node("k", kt, "permute", {k4}, "dims=[0, 2, 1, 3]");
    std::string v = w.node("v", kt, "permute", {v4v}, "dims=[0, 2, 1, 3]");
    if (d.swiglu) {
      q = rope(w, "rope_q_", q, cos, sin, B, H, Sr, D);
      k = rope(w, "rope_k_", k, cos, sin, B, Hk, Sr, D);
    }
    AttentionSaved saved;
    std::string attn = attentionForwardCore(w, d, B, true, mat, drop, q, k, v, saved);
    outputSaved(w, saved);
    std::string ot =
        w.node("attn_t", ty("bf16", {B, Sr, H, D}), "permute", {attn}, "dims=[0, 2, 1, 3]");
    std::string o2 =
        w.node("attn_flat", ty("bf16", {T, H * D}), "view", {ot}, fmt::format("size=[{}, {}]", T, H * D));
    w.output(o2);
    std::string proj = linear(w, "o_proj", o2, wo, T, h);
    std::string attnOut = proj;
    if (split) {
      w.output(proj);  // reduce-scattered (SP) or all-reduced
      attnOut = w.input("o_proj_reduced", act);
    }
    attnOut = hiddenDropout(w, "attn_dropout", attnOut, Tn, h, drop);
    std::string h1 = w.node("h1", act, "add", {x, attnOut});
    std::string ln2 = w.param("ln2_weight", ty("bf16", {h}));
    std::string ln2b = d.swiglu ? "" : w.param("ln2_bias", ty("bf16", {h}));
    std::string rstd2, mean2;
    std::string n2 = d.swiglu ? rmsNorm(w, "norm2_", h1, ln2, Tn, h, rstd2)
                              : layerNorm(w, "norm2_", h1, ln2, ln2b, Tn, h, mean2, rstd2);
    w.output(h1);
    w.output(rstd2);
    if (!mean2.empty()) w.output(mean2);
    w.output(n2);
    std::string mlpRed;
    if (!s.mlp) {
      // A MoE layer: the experts (timed apart) read norm2 and give back their combined output.
      mlpRed = w.input("moe_out", act);
    } else {
      std::string a2 = split ? w.input("norm2_gathered", full) : n2;
      std::string mlpOut;
      if (d.swiglu) {
        std::string wg = w.param("w_gate", ty("bf16", {F, h}));
        std::string wu = w.param("w_up", ty("bf16", {F, h}));
        std::string wd = w.param("w_down", ty("bf16", {h, F}));
        std::string g = linear(w, "gate_proj", a2, wg, T, F);
        std::string u = linear(w, "up_proj", a2, wu, T, F);
        w.output(g);
        w.output(u);
        std::string sg = w.node("gate_act", ty("bf16", {T, F}), "silu", {g});
        std::string am = w.node("mlp_act", ty("bf16", {T, F}), "mul", {sg, u});
        mlpOut = linear(w, "down_proj", am, wd, T, h);
      } else {
        std::string w1 = w.param("w_fc1", ty("bf16", {F, h}));
        std::string w2 = w.param("w_fc2", ty("bf16", {h, F}));
        std::string f1 = linear(w, "fc1", a2, w1, T, F);
        w.output(f1);
        std::string ge = w.node("mlp_act", ty("bf16", {T, F}), "gelu", {f1});
        mlpOut = linear(w, "fc2", ge, w2, T, h);
      }
      mlpRed = mlpOut;
      if (split) {
        w.output(mlpOut);
        mlpRed = w.input("mlp_reduced", act);
      }
    }
    mlpRed = hiddenDropout(w, "mlp_dropout", mlpRed, Tn, h, drop);
    w.output(w.node("y", act, "add", {h1, mlpRed}));
    out.forward = w.text();
  }

  // ---- backward ----
  {
    IrWriter w("layer_backward");
    std::string dy = w.input("grad_y", act);
    std::string x = w.input("x", act);
    std::string rstd1 = w.input("norm1_rstd", d.swiglu ? col : ty("bf16", {Tn, 1}));
    std::string mean1 = d.swiglu ? "" : w.input("norm1_mean", ty("bf16", {Tn, 1}));
    std::string a1 = w.input(split ? "norm1_gathered" : "norm1_out", full);
    AttentionSaved saved = attentionSavedInputs(w, d, B, mat, drop);
    std::string o2 = w.input("attn_flat", ty("bf16", {T, H * D}));
    std::string ln1 = w.param("ln1_weight", ty("bf16", {h}));
    std::string wq = w.param("wq", ty("bf16", {H * D, h}));
    std::string wk = w.param("wk", ty("bf16", {Hk * D, h}));
    std::string wv = w.param("wv", ty("bf16", {Hk * D, h}));
    std::string wo = w.param("wo", ty("bf16", {h, H * D}));
    std::string cos, sin;
    if (d.swiglu) {
      cos = w.input("cos", ty("bf16", {Sr, D}));
      sin = w.input("sin", ty("bf16", {Sr, D}));
    }
    std::string h1 = w.input("h1", act);
    std::string rstd2 = w.input("norm2_rstd", d.swiglu ? col : ty("bf16", {Tn, 1}));
    std::string mean2 = d.swiglu ? "" : w.input("norm2_mean", ty("bf16", {Tn, 1}));
    std::string ln2 = w.param("ln2_weight", ty("bf16", {h}));
    std::string dn2;
    if (!s.mlp) {
      dn2 = w.input("d_norm2_moe", act);  // from the experts' backward
    } else {
      std::string a2 = w.input(split ? "norm2_gathered" : "norm2_out", full);
      // With tp > 1 the MLP's input gradient is all-gathered (SP) from what dropout's backward
      // gives on this rank's rows.
      std::string dmlp = hiddenDropoutBackward(w, "mlp_dropout", dy, Tn, h, drop);
      if (split && dmlp != dy) w.output(dmlp);
      std::string dyg = split ? w.input("grad_y_gathered", full) : dmlp;
      std::string da2;
      if (d.swiglu) {
        std::string g = w.input("gate_proj", ty("bf16", {T, F}));
        std::string u = w.input("up_proj", ty("bf16", {T, F}));
        std::string wg = w.param("w_gate", ty("bf16", {F, h}));
        std::string wu = w.param("w_up", ty("bf16", {F, h}));
        std::string wd = w.param("w_down", ty("bf16", {h, F}));
        const std::string tf = ty("bf16", {T, F});
        // The activation is recomputed from the saved gate and up projections (AOTAutograd's
        // partitioner keeps the matmul outputs and recomputes pointwise ops).
        std::string sg = w.node("gate_act", tf, "silu", {g});
        std::string am = w.node("mlp_act", tf, "mul", {sg, u});
        std::string dact = linearBackward(w, "down_proj", dyg, am, wd, T, F, h, true, acc);
        std::string du = w.node("d_up", tf, "mul", {dact, sg});
        std::string sig = w.node("gate_sig", tf, "sigmoid", {g});
        std::string oms = w.node("gate_1ms", tf, "rsub", {sig}, "other=1.0");
        std::string gm = w.node("gate_x1ms", tf, "mul", {g, oms});
        std::string gp = w.node("gate_1p", tf, "add", {gm}, "other=1.0");
        std::string ds = w.node("dsilu", tf, "mul", {sig, gp});
        std::string dau = w.node("d_act_up", tf, "mul", {dact, u});
        std::string dg = w.node("d_gate", tf, "mul", {dau, ds});
        std::string dxg = linearBackward(w, "gate_proj", dg, a2, wg, T, h, F, true, acc);
        std::string dxu = linearBackward(w, "up_proj", du, a2, wu, T, h, F, true, acc);
        da2 = w.node("d_norm2", full, "add", {dxg, dxu});
      } else {
        std::string f1 = w.input("fc1", ty("bf16", {T, F}));
        std::string w1 = w.param("w_fc1", ty("bf16", {F, h}));
        std::string w2 = w.param("w_fc2", ty("bf16", {h, F}));
        const std::string tf = ty("bf16", {T, F}), tf32 = ty("f32", {T, F});
        std::string ge = w.node("mlp_act", tf, "gelu", {f1});
        std::string dact = linearBackward(w, "fc2", dyg, ge, w2, T, F, h, true, acc);
        // gelu'(x) = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2.
        std::string x32 = w.node("fc1_32", tf32, "_to_copy", {f1}, "dtype=\"f32\"");
        std::string xs = w.node("gelu_xs", tf32, "mul", {x32}, "other=0.7071067811865476");
        std::string er = w.node("gelu_erf", tf32, "erf", {xs});
        std::string cdf1 = w.node("gelu_cdf1", tf32, "add", {er}, "other=1.0");
        std::string cdf = w.node("gelu_cdf", tf32, "mul", {cdf1}, "other=0.5");
        std::string x2 = w.node("gelu_x2", tf32, "mul", {x32, x32});
        std::string e1 = w.node("gelu_e1", tf32, "mul", {x2}, "other=-0.5");
        std::string e = w.node("gelu_e", tf32, "exp", {e1});
        std::string pdf = w.node("gelu_pdf", tf32, "mul", {e}, "other=0.3989422804014327");
        std::string xp = w.node("gelu_xpdf", tf32, "mul", {x32, pdf});
        std::string dg = w.node("gelu_grad", tf32, "add", {cdf, xp});
        std::string da32 = w.node("d_fc1_32", tf32, "mul", {dact, dg});
        std::string dfc1 = w.node("d_fc1", tf, "_to_copy", {da32}, "dtype=\"bf16\"");
        da2 = linearBackward(w, "fc1", dfc1, a2, w1, T, h, F, true, acc);
      }
      dn2 = da2;
      if (split) {
        w.output(da2);
        dn2 = w.input("d_norm2_reduced", act);
      }
    }
    std::string dw2, db2;
    std::string dxn2 =
        d.swiglu ? rmsNormBackward(w, "norm2_bwd_", dn2, h1, rstd2, ln2, Tn, h, dw2)
                 : layerNormBackward(w, "norm2_bwd_", dn2, h1, mean2, rstd2, ln2, Tn, h, dw2, db2);
    w.output(dw2);
    if (!db2.empty()) w.output(db2);
    // The gradient reaching h1 (the attention block's output): the residual plus norm2's.
    std::string dh1 = w.node("grad_h1", act, "add", {dy, dxn2});
    std::string dattn = hiddenDropoutBackward(w, "attn_dropout", dh1, Tn, h, drop);
    if (split && dattn != dh1) w.output(dattn);
    std::string dh1g = split ? w.input("grad_h1_gathered", full) : dattn;
    std::string do2 = linearBackward(w, "o_proj", dh1g, o2, wo, T, H * D, h, true, acc);
    std::string dov = w.node("d_attn_view", ty("bf16", {B, Sr, H, D}), "view", {do2},
                             fmt::format("size=[{}, {}, {}, {}]", B, Sr, H, D));
    std::string dout = w.node("d_attn", qt, "permute", {dov}, "dims=[0, 2, 1, 3]");
    std::string dq, dk, dv;
    attentionBackwardCore(w, d, B, true, mat, drop, dout, saved, dq, dk, dv);
    if (d.swiglu) {
      dq = ropeBackward(w, "rope_q_bwd_", dq, cos, sin, B, H, Sr, D);
      dk = ropeBackward(w, "rope_k_bwd_", dk, cos, sin, B, Hk, Sr, D);
    }
    auto flat = [&](const std::string& n, const std::string& v4, int64_t heads) {
      std::string t = w.node(n + "_t", ty("bf16", {B, Sr, heads, D}), "permute", {v4},
                             "dims=[0, 2, 1, 3]");
      return w.node(n + "_flat", ty("bf16", {T, heads * D}), "view", {t},
                    fmt::format("size=[{}, {}]", T, heads * D));
    };
    std::string dq2 = flat("dq", dq, H), dk2 = flat("dk", dk, Hk), dv2 = flat("dv", dv, Hk);
    std::string dxq = linearBackward(w, "q_proj", dq2, a1, wq, T, h, H * D, true, acc);
    std::string dxk = linearBackward(w, "k_proj", dk2, a1, wk, T, h, Hk * D, true, acc);
    std::string dxv = linearBackward(w, "v_proj", dv2, a1, wv, T, h, Hk * D, true, acc);
    std::string s1 = w.node("d_norm1_qk", full, "add", {dxq, dxk});
    std::string da1 = w.node("d_norm1", full, "add", {s1, dxv});
    std::string dn1 = da1;
    if (split) {
      w.output(da1);
      dn1 = w.input("d_norm1_reduced", act);
    }
    std::string dw1, db1;
    std::string dxn1 =
        d.swiglu ? rmsNormBackward(w, "norm1_bwd_", dn1, x, rstd1, ln1, Tn, h, dw1)
                 : layerNormBackward(w, "norm1_bwd_", dn1, x, mean1, rstd1, ln1, Tn, h, dw1, db1);
    w.output(dw1);
    if (!db1.empty()) w.output(db1);
    w.output(w.node("grad_x", act, "add", {dh1, dxn1}));
    out.backward = w.text();
  }

  out.attentionForward = attentionGraph(d, B, true, mat, drop, false, "attention_forward");
  out.attentionBackward = attentionGraph(d, B, true, mat, drop, true, "attention_backward");
  if (s.cp > 1) {
    out.ringForward = attentionGraph(d, B, false, false, 0, false, "ring_attention_forward");
    out.ringBackward = attentionGraph(d, B, false, false, 0, true, "ring_attention_backward");
  }
  return out;
}

Expected<HeadGraphs> buildHeadGraphs(const ModelConfig& m, const LayerGraphShape& s) {
  TRNSIM_ASSIGN_OR_RETURN(LayerDims d, layerDims(m, s));
  const int64_t T = d.tokens, Tn = d.normTokens, h = d.hidden, V = d.vocab;
  const bool split = s.tp > 1;
  const std::string act = ty("bf16", {Tn, h}), full = ty("bf16", {T, h});
  const std::string lf = ty("f32", {T, V}), col = ty("f32", {T, 1});
  HeadGraphs out;
  {
    IrWriter w("head_forward");
    // The first stage's embedding lookup (vocab-parallel: each rank looks up its rows).
    std::string ids = w.input("ids", ty("i32", {Tn}));
    std::string emb = w.param("embedding", ty("bf16", {V, h}));
    w.output(w.node("embedded", act, "embedding", {emb, ids}));
    // The last stage: final norm, LM head, cross-entropy.
    std::string x = w.input("x", act);
    std::string ln = w.param("norm_weight", ty("bf16", {h}));
    std::string rstd, mean;
    std::string n =
        d.swiglu ? rmsNorm(w, "norm_", x, ln, Tn, h, rstd)
                 : layerNorm(w, "norm_", x, ln, w.param("norm_bias", ty("bf16", {h})), Tn, h, mean,
                             rstd);
    w.output(n);
    std::string a = split ? w.input("norm_gathered", full) : n;
    std::string wh = w.param("lm_head", ty("bf16", {V, h}));
    std::string logits = linear(w, "logits", a, wh, T, V);
    w.output(logits);
    std::string l32 = w.node("logits32", lf, "_to_copy", {logits}, "dtype=\"f32\"");
    std::string mx = w.node("logits_max", col, "amax", {l32}, "dim=[-1], keepdim=1");
    std::string sh = w.node("shifted", lf, "sub", {l32, mx});
    std::string ex = w.node("exp", lf, "exp", {sh});
    std::string se = w.node("sumexp", col, "sum", {ex}, "dim=[-1], keepdim=1");
    std::string lse = w.node("logsumexp", col, "log", {se});
    std::string tgt = w.input("target", ty("i32", {T, 1}));
    std::string pick = w.node("target_logit", col, "gather", {sh, tgt}, "dim=1");
    std::string nll = w.node("nll", col, "sub", {lse, pick});
    w.output(w.node("lse_full", col, "add", {lse, mx}));
    w.output(w.node("loss", ty("f32", {1, 1}), "mean", {nll}, "dim=[0, 1], keepdim=1"));
    out.forward = w.text();
  }
  {
    IrWriter w("head_backward");
    std::string logits = w.input("logits", ty("bf16", {T, V}));
    std::string lz = w.input("lse_full", col);
    std::string tgt = w.input("target", ty("i32", {T, 1}));
    std::string a = w.input(split ? "norm_gathered" : "norm_out", full);
    std::string x = w.input("x", act);
    std::string rstd = w.input("norm_rstd", d.swiglu ? ty("f32", {Tn, 1}) : ty("bf16", {Tn, 1}));
    std::string mean = d.swiglu ? "" : w.input("norm_mean", ty("bf16", {Tn, 1}));
    std::string ln = w.param("norm_weight", ty("bf16", {h}));
    std::string wh = w.param("lm_head", ty("bf16", {V, h}));
    std::string l32 = w.node("logits32", lf, "_to_copy", {logits}, "dtype=\"f32\"");
    std::string sh = w.node("shifted", lf, "sub", {l32, lz});
    std::string sm = w.node("softmax", lf, "exp", {sh});
    std::string iota = w.node("vocab_ids", ty("i32", {V}), "arange", {}, fmt::format("end={}", V));
    std::string oh = w.node("onehot", ty("u8", {T, V}), "eq", {iota, tgt});
    std::string oh32 = w.node("onehot32", lf, "_to_copy", {oh}, "dtype=\"f32\"");
    std::string dl = w.node("dlogits32", lf, "sub", {sm, oh32});
    std::string dls =
        w.node("dlogits_scaled", lf, "mul", {dl}, "other=" + floatAttr(1.0 / double(T)));
    std::string dlb = w.node("dlogits", ty("bf16", {T, V}), "_to_copy", {dls}, "dtype=\"bf16\"");
    std::string da =
        linearBackward(w, "lm_head", dlb, a, wh, T, h, V, true, s.fp32GradAccumulation);
    std::string dn = da;
    if (split) {
      w.output(da);
      dn = w.input("d_norm_reduced", act);
    }
    std::string dw, db;
    std::string dx = d.swiglu
                         ? rmsNormBackward(w, "norm_bwd_", dn, x, rstd, ln, Tn, h, dw)
                         : layerNormBackward(w, "norm_bwd_", dn, x, mean, rstd, ln, Tn, h, dw, db);
    w.output(dw);
    if (!db.empty()) w.output(db);
    w.output(dx);
    out.backward = w.text();
  }
  return out;
}

std::string buildAdamwGraph(uint64_t elements) {
  // [rows, 4096]: the rank's shard as the optimizer walks its flat buffer.
  const int64_t cols = 4096;
  const int64_t rows = std::max<int64_t>(1, int64_t((elements + cols - 1) / cols));
  const std::string f = ty("f32", {rows, cols});
  IrWriter w("adamw");
  std::string p = w.input("master", f), g = w.input("main_grad", f);
  std::string mo = w.input("exp_avg", f), v = w.input("exp_avg_sq", f);
  const double b1 = 0.9, b2 = 0.95, lr = 3e-4, wd = 0.1, eps = 1e-8;
  // Written as one chain (each op reads the previous one's result), as a fused AdamW kernel
  // runs it: the compiler fuses it into one pass over the shard. Bias corrections are 1 at any
  // late step and left out.
  std::string mg = w.node("m_grad", f, "mul", {g}, "other=" + floatAttr(1 - b1));
  std::string mn =
      w.node("exp_avg_new", f, "add", {mg, mo}, "alpha=" + floatAttr(b1));  // b1 m + (1-b1) g
  std::string g2 = w.node("grad_sq", f, "mul", {mg, g});                   // (1-b1) g^2
  std::string g2s = w.node("v_grad", f, "mul", {g2}, "other=" + floatAttr((1 - b2) / (1 - b1)));
  std::string vn = w.node("exp_avg_sq_new", f, "add", {g2s, v}, "alpha=" + floatAttr(b2));
  std::string sv = w.node("v_sqrt", f, "sqrt", {vn});
  std::string de = w.node("denom", f, "add", {sv}, "other=" + floatAttr(eps));
  std::string up = w.node("update", f, "div", {mn, de});
  std::string u2 = w.node("update_wd", f, "add", {up, p}, "alpha=" + floatAttr(wd));
  std::string ul = w.node("update_lr", f, "mul", {u2}, "other=" + floatAttr(lr));
  std::string pn = w.node("master_new", f, "sub", {p, ul});
  std::string wb = w.node("weight", ty("bf16", {rows, cols}), "_to_copy", {pn}, "dtype=\"bf16\"");
  w.output(pn);
  w.output(mn);
  w.output(vn);
  w.output(wb);
  return w.text();
}

}  // namespace trnsim::plan
