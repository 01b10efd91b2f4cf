// The plan as a terminal table and as one self-contained HTML page with inline SVG plots
// (no scripts, no fonts, no URLs: the page opens offline and renders the same everywhere).

#include "trnsim/plan/report.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "trnsim/plan/plan_json.h"

namespace trnsim::plan {

namespace {

constexpr double kGib = 1024.0 * 1024.0 * 1024.0;

uint64_t unitOf(const arch::SystemConfig& s) {
  uint64_t node = std::max<uint32_t>(s.chipsPerNode, 1);
  uint64_t domain = s.chipsPerDomain();
  return domain >= node && domain % node == 0 ? domain : node;
}

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string parallelismText(const Parallelism& p) {
  std::string s = fmt::format("tp{} pp{} dp{}", p.tp, p.pp, p.dp);
  if (p.cp > 1) s += fmt::format(" cp{}", p.cp);
  if (p.ep > 1) s += fmt::format(" ep{}", p.ep);
  if (p.vpp > 1) s += fmt::format(" vpp{}", p.vpp);
  s += fmt::format(" mb{} zero{} {} {}", p.microbatch, p.zero, recomputeName(p.recompute),
                   precisionName(p.precision));
  if (p.sequenceParallel && p.tp > 1) s += " sp";
  if (p.attention == AttentionImpl::kMaterialized) s += " materialized-attention";
  if (p.dropout > 0) s += fmt::format(" dropout{:g}", p.dropout);
  return s;
}

/// 1234567 -> "1.23M"; for dollars and counts.
std::string si(double v) {
  double a = std::fabs(v);
  if (a >= 1e12) return fmt::format("{:.3g}T", v / 1e12);
  if (a >= 1e9) return fmt::format("{:.3g}B", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e3) return fmt::format("{:.3g}k", v / 1e3);
  return fmt::format("{:.3g}", v);
}

struct Part {
  const char* name;
  const char* color;
  double StepBreakdown::*field;
};
constexpr Part kParts[] = {
    {"compute", "#4C78A8", &StepBreakdown::compute},
    {"recompute", "#9ECAE9", &StepBreakdown::recompute},
    {"TP comm", "#F58518", &StepBreakdown::tpExposed},
    {"CP comm", "#E45756", &StepBreakdown::cpExposed},
    {"EP comm", "#B279A2", &StepBreakdown::epExposed},
    {"DP comm", "#54A24B", &StepBreakdown::dpExposed},
    {"PP comm", "#EECA3B", &StepBreakdown::ppExposed},
    {"bubble", "#9D755D", &StepBreakdown::bubble},
    {"optimizer", "#72B7B2", &StepBreakdown::optimizer},
};
constexpr const char* kOtherColor = "#BAB0AC";
constexpr const char* kSystemColors[] = {"#4C78A8", "#F58518", "#54A24B", "#E45756",
                                         "#B279A2", "#72B7B2", "#EECA3B", "#9D755D"};

std::vector<const SystemPlan*> plannedSystems(const PlanReport& r) {
  std::vector<const SystemPlan*> out = {&r.primary};
  for (const SystemPlan& p : r.compare)
    if (p.error.empty()) out.push_back(&p);
  return out;
}

std::string label(const SystemPlan& p) { return fmt::format("{} x{}", p.system, p.chips); }

/// One colour per planned system across every plot: its place among the planned systems (the
/// primary first). `chips` 0 matches any plan of the system (a goodput curve is per system).
const char* systemColor(const PlanReport& r, std::string_view system, uint64_t chips = 0) {
  const std::vector<const SystemPlan*> planned = plannedSystems(r);
  size_t i = 0;
  while (i < planned.size() &&
         (planned[i]->system != system || (chips && planned[i]->chips != chips)))
    ++i;
  return kSystemColors[i % std::size(kSystemColors)];
}

/// Horizontal stacked bars: one per system, seconds per part of the step.
std::string breakdownSvg(const PlanReport& r) {
  auto systems = plannedSystems(r);
  const int left = 230, width = 1000, barH = 34, gap = 16, top = 20;
  double maxS = 0;
  for (const SystemPlan* p : systems) maxS = std::max(maxS, p->step.stepTimeS);
  if (!(maxS > 0)) maxS = 1;
  int height = top + static_cast<int>(systems.size()) * (barH + gap) + 70;
  std::string svg = fmt::format(
      "<svg width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"step time breakdown\">\n",
      left + width + 120, height, left + width + 120, height);
  double scale = width / maxS;
  int y = top;
  for (const SystemPlan* p : systems) {
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"{}\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"lbl\">{}</text>\n",
        left - 14, y, barH, systemColor(r, p->system, p->chips), left - 20, y + barH / 2 + 5,
        esc(label(*p)));
    double x = left, sum = 0;
    for (const Part& part : kParts) {
      double v = p->step.breakdown.*part.field;
      if (!(v > 0)) continue;
      sum += v;
      svg += fmt::format(
          "<rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\"><title>{}: "
          "{:.4g} s</title></rect>\n",
          x, y, v * scale, barH, part.color, part.name, v);
      x += v * scale;
    }
    double other = p->step.stepTimeS - sum;
    if (other > 1e-9 * p->step.stepTimeS) {
      svg += fmt::format(
          "<rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\"><title>other: "
          "{:.4g} s</title></rect>\n",
          x, y, other * scale, barH, kOtherColor, other);
      x += other * scale;
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"val\">{:.3g} s</text>\n", x + 8,
                       y + barH / 2 + 5, p->step.stepTimeS);
    y += barH + gap;
  }
  // Legend.
  int lx = left, ly = y + 10;
  for (const Part& part : kParts) {
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" "
        "class=\"leg\">{}</text>\n",
        lx, ly, part.color, lx + 19, ly + 12, part.name);
    lx += 105;
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" "
      "class=\"leg\">other</text>\n",
      lx, ly, kOtherColor, lx + 19, ly + 12);
  svg += "</svg>\n";
  return svg;
}

/// One small vertical bar chart: a value per system.
std::string barsSvg(const std::string& title, const std::vector<std::string>& labels,
                    const std::vector<double>& values, const std::vector<const char*>& colors,
                    const std::string& unit) {
  const int w = 420, h = 300, left = 60, bottom = 70, top = 40;
  double maxV = 0;
  for (double v : values) maxV = std::max(maxV, v);
  if (!(maxV > 0)) maxV = 1;
  std::string svg = fmt::format(
      "<svg width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n"
      "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" class=\"ttl\">{}</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n",
      w, h, w, h, esc(title), w / 2, esc(title), left, h - bottom, w - 10, h - bottom);
  size_t n = std::max<size_t>(values.size(), 1);
  double slot = double(w - left - 10) / double(n);
  double barW = std::min(80.0, slot * 0.6);
  for (size_t i = 0; i < values.size(); ++i) {
    double v = std::isfinite(values[i]) ? values[i] : 0;
    double bh = v / maxV * (h - bottom - top);
    double x = left + slot * double(i) + (slot - barW) / 2;
    // "system xCHIPS" on two lines so neighbouring labels do not overlap.
    std::string first = labels[i], second;
    if (size_t cut = first.rfind(" x"); cut != std::string::npos) {
      second = first.substr(cut + 1);
      first.resize(cut);
    }
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"val\">{}{}</text>\n"
        "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" class=\"lbl\">{}</text>\n"
        "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" class=\"val\">{}</text>\n",
        x, h - bottom - bh, barW, bh, colors[i], x + barW / 2,
        h - bottom - bh - 6, v > 0 ? si(v) : "n/a", v > 0 ? unit : "", x + barW / 2,
        h - bottom + 18, esc(first), x + barW / 2, h - bottom + 34, esc(second));
  }
  svg += "</svg>\n";
  return svg;
}

/// Goodput (y) against chips (x, log scale), one line per system.
std::string goodputSvg(const PlanReport& r) {
  const int w = 1000, h = 420, left = 70, right = 200, top = 30, bottom = 60;
  uint64_t minC = UINT64_MAX, maxC = 0;
  double minG = 1;
  for (const GoodputCurve& c : r.goodput)
    for (auto [chips, g] : c.points) {
      minC = std::min(minC, chips);
      maxC = std::max(maxC, chips);
      if (g > 0) minG = std::min(minG, g);
    }
  if (maxC == 0) return "<p>No goodput curve.</p>\n";
  double yLo = std::max(0.0, std::floor(minG * 10 - 0.5) / 10);
  double lx0 = std::log2(double(minC)), lx1 = std::log2(double(std::max(maxC, minC * 2)));
  auto X = [&](double chips) {
    return left + (std::log2(chips) - lx0) / (lx1 - lx0) * (w - left - right);
  };
  auto Y = [&](double g) { return top + (1.0 - (g - yLo) / (1.0 - yLo)) * (h - top - bottom); };
  std::string svg = fmt::format(
      "<svg width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"goodput "
      "against scale\">\n",
      w, h, w, h);
  for (int i = 0; i <= 5; ++i) {
    double g = yLo + (1.0 - yLo) * i / 5.0;
    svg += fmt::format(
        "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/><text x=\"{}\" "
        "y=\"{:.1f}\" text-anchor=\"end\" class=\"val\">{:.0f}%</text>\n",
        left, Y(g), w - right, Y(g), left - 8, Y(g) + 4, g * 100);
  }
  for (double lc = std::ceil(lx0); lc <= lx1 + 1e-9; lc += 2) {
    double chips = std::exp2(lc);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{:.1f}\" "
        "y=\"{}\" text-anchor=\"middle\" class=\"val\">{}</text>\n",
        X(chips), top, X(chips), h - bottom, X(chips), h - bottom + 18, si(chips));
  }
  svg += fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"lbl\">chips (log scale)</text>\n"
      "<text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\" "
      "class=\"lbl\">goodput</text>\n",
      (left + w - right) / 2, h - 15, (top + h - bottom) / 2, (top + h - bottom) / 2);
  for (size_t i = 0; i < r.goodput.size(); ++i) {
    const GoodputCurve& c = r.goodput[i];
    const char* color = systemColor(r, c.system);
    std::string pts;
    for (auto [chips, g] : c.points)
      pts += fmt::format("{:.1f},{:.1f} ", X(double(chips)), Y(std::max(g, yLo)));
    // Later systems dashed, so lines that coincide stay visible.
    svg += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"3\"{}/>\n", pts, color,
        i == 0 ? "" : fmt::format(" stroke-dasharray=\"{} 6\"", 14 - 4 * int(i % 3)));
    for (auto [chips, g] : c.points)
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\"><title>{} chips: {:.1f}%</title>"
          "</circle>\n",
          X(double(chips)), Y(std::max(g, yLo)), color, chips, g * 100);
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" "
        "class=\"leg\">{}</text>\n",
        w - right + 15, top + 10 + int(i) * 24, color, w - right + 34, top + 22 + int(i) * 24,
        esc(c.system));
  }
  // The planned chip count of each system: a dashed line in its colour, a label (one row per
  // plan, so plans at the same count stay readable) and a ring on its curve.
  const std::vector<const SystemPlan*> planned = plannedSystems(r);
  for (size_t i = 0; i < planned.size(); ++i) {
    const SystemPlan* p = planned[i];
    if (p->chips < minC || p->chips > maxC) continue;
    const char* color = systemColor(r, p->system);
    const double x = X(double(p->chips));
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-dasharray=\"3 3\"/><text x=\"{4:.1f}\" y=\"{5}\" text-anchor=\"end\" "
        "class=\"val\" style=\"fill:{3}\">planned {6} x{7}</text>\n",
        x, top, h - bottom, color, x - 4, h - bottom - 10 - 16 * int(i), p->system, p->chips);
    if (p->run)
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"8\" fill=\"none\" stroke=\"{}\" "
          "stroke-width=\"2\"><title>planned: {} chips, goodput {:.1f}%</title></circle>\n",
          x, Y(std::max(p->run->goodput, yLo)), color, p->chips, p->run->goodput * 100);
  }
  svg += "</svg>\n";
  return svg;
}

std::string summaryRows(const PlanReport& r) {
  std::string rows;
  for (const SystemPlan* p : plannedSystems(r)) {
    const StepEstimate& e = p->step;
    rows += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3g}</td><td>{:.1f}%</td><td>{:.1f} "
        "/ {:.0f}</td>",
        esc(p->system), p->chips, esc(parallelismText(e.parallelism)),
        esc(e.computeModel.empty() ? "-" : e.computeModel), e.stepTimeS, e.mfu * 100,
        e.memoryPerChipGib, e.memoryCapacityGib);
    if (p->run && p->run->timeToTrainDays > 0) {
      const RunEstimate& run = *p->run;
      rows += fmt::format(
          "<td>{:.1f}</td><td>{}</td><td>{:.0f}</td><td>{:.1f}%</td><td>{:.3g}</td><td>{:.0f}</td>"
          "</tr>\n",
          run.timeToTrainDays, run.priced ? "$" + si(run.costUsd) : "n/a", run.energyMwh,
          run.goodput * 100, run.expectedInterruptions, run.checkpointIntervalS);
    } else {
      rows += "<td colspan=\"6\">-</td></tr>\n";
    }
  }
  for (const SystemPlan& p : r.compare)
    if (!p.error.empty())
      rows += fmt::format("<tr><td>{}</td><td>{}</td><td colspan=\"11\">{}</td></tr>\n",
                          esc(p.system), p.chips, esc(p.error));
  return rows;
}

}  // namespace

Expected<GoodputCurve> goodputCurve(const arch::SystemConfig& system,
                                    const std::vector<uint64_t>& chipCounts, double checkpointBytes,
                                    double computeFraction, const ReliabilityModel& reliability) {
  GoodputCurve curve;
  curve.system = system.name;
  double sigma =
      reliability.stragglerSigma < 0 ? kDefaultStragglerSigma : reliability.stragglerSigma;
  for (uint64_t chips : chipCounts) {
    TRNSIM_ASSIGN_OR_RETURN(ReliabilityEstimate rel,
                            estimateReliability(system, chips, checkpointBytes, reliability));
    double slow = reliability.stragglerSlowdown > 0 ? reliability.stragglerSlowdown
                                                    : stragglerSlowdown(chips, sigma);
    curve.points.emplace_back(chips,
                              rel.goodput / (1.0 + slow * std::clamp(computeFraction, 0.0, 1.0)));
  }
  return curve;
}

std::vector<uint64_t> goodputChipCounts(const arch::SystemConfig& system, uint64_t atLeast) {
  uint64_t unit = unitOf(system);
  uint64_t limit = system.scaleOut.maxChips ? system.scaleOut.maxChips : UINT64_MAX;
  uint64_t target = std::max<uint64_t>(atLeast, 131072);
  std::vector<uint64_t> out;
  for (uint64_t n = unit; n <= limit; n *= 2) {
    out.push_back(n);
    if (n >= target) break;
  }
  if (out.empty()) out.push_back(unit);
  return out;
}

uint64_t comparableChips(const arch::SystemConfig& base, uint64_t chips,
                         const arch::SystemConfig& other) {
  double target = double(chips);
  if (base.accel.peakTflopsBf16 > 0 && other.accel.peakTflopsBf16 > 0)
    target = double(chips) * base.accel.peakTflopsBf16 / other.accel.peakTflopsBf16;
  uint64_t unit = unitOf(other);
  uint64_t limit = other.scaleOut.maxChips ? other.scaleOut.maxChips : UINT64_MAX;
  uint64_t best = unit;
  double bestErr = std::fabs(std::log(double(unit) / target));
  for (uint64_t n = unit * 2; n <= limit && n <= (UINT64_MAX >> 2); n *= 2) {
    double err = std::fabs(std::log(double(n) / target));
    if (err < bestErr) {
      best = n;
      bestErr = err;
    }
    if (double(n) > 2 * target) break;
  }
  return best;
}

namespace {
/// "compiled layers", "kernel composition", "roofline" for the terminal table.
std::string_view computeModelText(std::string_view name) {
  if (name == "compiled") return "compiled layers (timing-only simulation of each layer's graphs)";
  if (name == "kernels") return "kernel composition (matmul, attention, memory-bound passes)";
  return name;
}
}  // namespace

std::string planConclusion(const PlanReport& r) {
  const std::vector<const SystemPlan*> planned = plannedSystems(r);
  if (planned.size() < 2) return "";
  const SystemPlan& a = r.primary;
  auto days = [](const SystemPlan& p) {
    return p.run && p.run->timeToTrainDays > 0 ? p.run->timeToTrainDays : 0.0;
  };
  auto cost = [&](const SystemPlan& p) { return days(p) > 0 && p.run->priced ? p.run->costUsd : 0.0; };
  auto band = [](const SystemPlan& p) {
    const Confidence& c = p.step.confidence;
    if (!(c.errorBand > 0)) return fmt::format("none ({} is not validated)", p.system);
    return fmt::format("{:.0f}% ({}{})", 100 * c.errorBand, p.system,
                       c.direct ? "" : p.step.computeModel == "compiled" ? ", extrapolated from Trn1"
                                                                         : ", extrapolated from A100");
  };
  std::string out;
  for (size_t i = 1; i < planned.size(); ++i) {
    const SystemPlan& b = *planned[i];
    const bool byDays = days(a) > 0 && days(b) > 0;
    // Time to train with failures and checkpoints when known, else the step (the same work).
    const double ta = byDays ? days(a) : a.step.stepTimeS, tb = byDays ? days(b) : b.step.stepTimeS;
    if (!(ta > 0) || !(tb > 0)) continue;
    const bool aFaster = ta <= tb;
    const SystemPlan& fast = aFaster ? a : b;
    const SystemPlan& slow = aFaster ? b : a;
    const double speed = aFaster ? tb / ta : ta / tb;
    // The two models' bands added: the ratio could be off by about that much.
    const double eFast = fast.step.confidence.errorBand, eSlow = slow.step.confidence.errorBand;
    const bool known = eFast > 0 && eSlow > 0;
    std::string s = fmt::format("On {}, {} x {} is {:.2f} times {}", r.workload.model.name,
                                fast.system, fast.chips, speed, byDays ? "faster to train" : "faster per step");
    const double ca = cost(a), cb = cost(b);
    if (ca > 0 && cb > 0) {
      const double cheaper = (aFaster ? cb / ca : ca / cb);
      s += cheaper >= 1 ? fmt::format(" and {:.2f} times cheaper", cheaper)
                        : fmt::format(" but {:.2f} times dearer", 1 / cheaper);
    }
    s += fmt::format(" than {} x {}", slow.system, slow.chips);
    s += fmt::format(", within the validated error of {} and {}", band(fast), band(slow));
    if (known && speed - 1 < eFast + eSlow)
      s += ": the difference is within the two models' combined error";
    out += (out.empty() ? "" : " ") + s + ".";
  }
  return out;
}

std::string planToText(const PlanReport& r) {
  std::string out;
  const Workload& w = r.workload;
  auto one = [&](const SystemPlan& p) {
    const StepEstimate& e = p.step;
    out += fmt::format("{} on {} x {} ({} ranks)\n", w.model.name, p.chips, p.system, p.ranks);
    out += fmt::format("  parallelism           {}\n", parallelismText(e.parallelism));
    if (!e.computeModel.empty())
      out += fmt::format("  compute model         {}{}\n", computeModelText(e.computeModel),
                         e.computeNote.empty() ? "" : "; " + e.computeNote);
    if (!e.confidence.basis.empty())
      out += fmt::format("  validation            {}\n", e.confidence.basis);
    if (!e.confidence.assumptions.empty())
      out += fmt::format("  assumptions           {}\n", fmt::join(e.confidence.assumptions, "; "));
    out += fmt::format("  step time             {:.4g} s   ({} sequences x {} tokens)\n",
                       e.stepTimeS, w.globalBatch, w.seq);
    out += fmt::format("  tokens/s              {}\n", si(e.tokensPerS));
    out += fmt::format("  TFLOPS/chip           {:.1f} model, {:.1f} hardware\n",
                       e.modelTflopsPerChip, e.hardwareTflopsPerChip);
    out += fmt::format("  MFU / HFU             {:.1f}% / {:.1f}%\n", e.mfu * 100, e.hfu * 100);
    out += fmt::format("  memory/chip           {:.1f} of {:.1f} GiB{}\n", e.memoryPerChipGib,
                       e.memoryCapacityGib, e.fits ? "" : "  DOES NOT FIT");
    if (!e.fits && !e.why.empty()) out += fmt::format("                        {}\n", e.why);
    out += "  step breakdown (s)   ";
    double sum = 0;
    for (const Part& part : kParts) {
      double v = e.breakdown.*part.field;
      sum += v;
      if (v > 0) out += fmt::format(" {} {:.3g} |", part.name, v);
    }
    if (e.stepTimeS - sum > 1e-9 * e.stepTimeS)
      out += fmt::format(" other {:.3g} |", e.stepTimeS - sum);
    if (e.breakdown.overlappedComm > 0)
      out += fmt::format(" (overlapped comm {:.3g})", e.breakdown.overlappedComm);
    out += "\n";
    if (p.run) {
      const RunEstimate& run = *p.run;
      out += fmt::format("  tokens                {} in {} steps\n", si(run.tokens),
                         si(double(run.steps)));
      if (run.timeToTrainDays > 0) {
        out += fmt::format("  time to train         {:.1f} days ({:.1f} days of steps)\n",
                           run.timeToTrainDays, run.computeDays);
        out += fmt::format("  cost                  {}\n",
                           run.priced ? fmt::format("${} ({} nodes at ${:.2f}/node-hour)",
                                                    si(run.costUsd), run.nodes, run.usdPerNodeHour)
                                      : std::string("n/a"));
        out += fmt::format("  energy                {:.0f} MWh\n", run.energyMwh);
      }
      out += fmt::format("  goodput               {:.1f}% (stragglers +{:.1f}% per step)\n",
                         run.goodput * 100, run.stragglerSlowdown * 100);
      out += fmt::format("  job MTBF              {:.3g} h; {:.3g} interruptions expected\n",
                         run.mtbfHours, run.expectedInterruptions);
      out += fmt::format("  checkpoint            every {:.0f} s; {:.3g} GB written in {:.3g} s\n",
                         run.checkpointIntervalS, run.checkpointBytes / 1e9, run.checkpointWriteS);
      if (!run.note.empty()) out += fmt::format("  note                  {}\n", run.note);
    }
    if (p.search) {
      const SearchResult& s = *p.search;
      out += fmt::format(
          "  search ({})         {} configurations, {} fit, {:.2f} s on {} threads; top {}:\n",
          objectiveName(r.objective), s.evaluated, s.fitting, s.seconds, s.threads, s.top.size());
      if (s.reranked)
        out += fmt::format(
            "                        (ranked by the kernel composition; the best {} re-timed with "
            "compiled layers)\n",
            s.reranked);
      for (size_t i = 0; i < s.top.size(); ++i)
        out += fmt::format("    {}. {:<58} {:.4g} s  MFU {:.1f}%  {:.1f} GiB\n", i + 1,
                           parallelismText(s.top[i].parallelism), s.top[i].stepTimeS,
                           s.top[i].mfu * 100, s.top[i].memoryPerChipGib);
    }
  };
  one(r.primary);
  if (std::string c = planConclusion(r); !c.empty()) out = c + "\n\n" + out;
  for (const SystemPlan& p : r.compare) {
    out += "\n";
    if (!p.error.empty()) {
      out += fmt::format("{} x {}: {}\n", p.system, p.chips, p.error);
      continue;
    }
    one(p);
  }
  return out;
}

std::string planToHtml(const PlanReport& r) {
  const Workload& w = r.workload;
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  html += fmt::format("<title>trnsim plan: {} on {}</title>\n", esc(w.model.name),
                      esc(r.primary.system));
  html +=
      "<style>\n"
      "body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1380px}\n"
      "h1{font-size:24px} h2{font-size:19px;margin-top:28px;border-bottom:1px solid #ccc}\n"
      "table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:4px "
      "8px}\n"
      "th{background:#f3f3f3} .lbl{font-size:13px} .val{font-size:12px;fill:#333}\n"
      ".leg{font-size:12px} .ttl{font-size:15px;font-weight:bold} .row{display:flex;gap:8px}\n"
      ".note{color:#555;font-size:13px}\n"
      "</style></head><body>\n";
  html += fmt::format("<h1>trnsim plan: {} on {} chips of {}</h1>\n", esc(w.model.name),
                      r.primary.chips, esc(r.primary.system));
  if (std::string c = planConclusion(r); !c.empty())
    html += fmt::format("<p><b>{}</b></p>\n", esc(c));
  html += fmt::format(
      "<p>{} sequences of {} tokens per step{}; parallelism {}by {}.</p>\n", w.globalBatch, w.seq,
      r.tokens > 0 ? fmt::format(", {} tokens in all", si(r.tokens)) : std::string(),
      r.primary.search ? "searched " : "given, ",
      r.primary.search ? objectiveName(r.objective) : "the user");

  html +=
      "<h2>Plans</h2>\n<table><tr><th>system</th><th>chips</th><th>parallelism</th>"
      "<th>compute model</th>"
      "<th>step s</th><th>MFU</th><th>GiB/chip</th><th>days</th><th>cost</th><th>MWh</th>"
      "<th>goodput</th><th>interruptions</th><th>checkpoint every s</th></tr>\n";
  html += summaryRows(r);
  html += "</table>\n";
  html += "<h2>How sure</h2>\n<table><tr><th>system</th><th>validation</th><th>assumptions"
          "</th></tr>\n";
  for (const SystemPlan* p : plannedSystems(r))
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", esc(p->system),
                        esc(p->step.confidence.basis),
                        esc(fmt::format("{}", fmt::join(p->step.confidence.assumptions, "; "))));
  html += "</table>\n";

  html += "<h2>Step time breakdown</h2>\n";
  html +=
      "<p class=\"note\">Seconds of one training step: compute, recomputation, communication "
      "left exposed per parallel dimension, pipeline bubble, optimizer.</p>\n";
  html += breakdownSvg(r);

  html += "<h2>Time, cost and energy per system</h2>\n";
  if (r.tokens > 0) {
    std::vector<std::string> labels;
    std::vector<double> days, cost, energy;
    std::vector<const char*> colors;
    for (const SystemPlan* p : plannedSystems(r)) {
      labels.push_back(label(*p));
      colors.push_back(systemColor(r, p->system, p->chips));
      bool ok = p->run && p->run->timeToTrainDays > 0;
      days.push_back(ok ? p->run->timeToTrainDays : 0);
      cost.push_back(ok && p->run->priced ? p->run->costUsd : 0);
      energy.push_back(ok ? p->run->energyMwh : 0);
    }
    html += "<div class=\"row\">\n";
    html += barsSvg("Time to train (days)", labels, days, colors, " d");
    html += barsSvg("Cost (USD)", labels, cost, colors, "");
    html += barsSvg("Energy (MWh)", labels, energy, colors, "");
    html += "</div>\n";
  } else {
    html += "<p class=\"note\">Run with --tokens to see time, cost and energy.</p>\n";
  }

  html += "<h2>Goodput against scale</h2>\n";
  html +=
      "<p class=\"note\">Useful time / wall time with the reliability model: job MTBF = chip "
      "MTBF / chips, Young/Daly checkpoint interval, lost work, restart and restore per "
      "interruption, and stragglers.</p>\n";
  html += goodputSvg(r);

  if (r.primary.search) {
    const SearchResult& s = *r.primary.search;
    html += fmt::format(
        "<h2>Search</h2>\n<p>{} configurations evaluated, {} fit in memory, {:.2f} s on {} "
        "threads; the best {} by {}:</p>\n<table><tr><th>#</th><th>parallelism</th><th>step "
        "s</th><th>MFU</th><th>GiB/chip</th></tr>\n",
        s.evaluated, s.fitting, s.seconds, s.threads, s.top.size(), objectiveName(r.objective));
    for (size_t i = 0; i < s.top.size(); ++i)
      html += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.4g}</td><td>{:.1f}%</td><td>{:.1f}</td></tr>\n", i + 1,
          esc(parallelismText(s.top[i].parallelism)), s.top[i].stepTimeS, s.top[i].mfu * 100,
          s.top[i].memoryPerChipGib);
    html += "</table>\n";
  }
  html += "<p class=\"note\">Made by trnsim plan; formulas in docs/plan.md.</p>\n</body></html>\n";
  return html;
}

}  // namespace trnsim::plan
