// The random state and the RNG instructions: per core, engine and partition lane one xorwow
// generator seeded from the run's seed (docs/sim.md, "RNG"); dropout, rng, rand2 and the
// instructions that set and read the state.

#include <algorithm>

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim {

uint32_t RngState::next() {
  // Marsaglia's xorwow: five xorshift words and a Weyl counter.
  uint32_t t = words[4];
  const uint32_t s = words[0];
  words[4] = words[3];
  words[3] = words[2];
  words[2] = words[1];
  words[1] = s;
  t ^= t >> 2;
  t ^= t << 1;
  t ^= s ^ (s << 4);
  words[0] = t;
  words[5] += 362437u;
  return t + words[5];
}

RngState RngState::fromSeed(uint64_t seed) {
  RngState st;
  uint64_t x = seed;
  for (int i = 0; i < 6; i += 2) {
    const uint64_t z = support::splitmix64(x);
    st.words[i] = uint32_t(z);
    st.words[i + 1] = uint32_t(z >> 32);
  }
  if ((st.words[0] | st.words[1] | st.words[2] | st.words[3] | st.words[4]) == 0) st.words[0] = 1;
  return st;
}

RngState& FunctionalChip::Impl::rngLane(uint32_t core, arch::Engine engine, uint32_t lane) {
  auto& lanes = cores[core].rng[size_t(engine)];
  if (lanes.empty()) {
    lanes.resize(config.mem.sbufPartitions);
    for (uint32_t p = 0; p < lanes.size(); ++p)
      lanes[p] = RngState::fromSeed(
          detail::mixSeed(detail::mixSeed(runSeed, core), (uint64_t(engine) << 32) | p));
  }
  return lanes[std::min<size_t>(lane, lanes.size() - 1)];
}

namespace detail {

namespace {

/// Uniform float in [0, 1) from 24 random bits.
float uniform01(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

}  // namespace

Status Exec::dropout() {
  const View& dst = operand(0);
  const View& data = operand(1);
  std::vector<float> x, prob;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, 0, data.P, prob));
  for (uint32_t p = 0; p < data.P; ++p) {
    RngState& r = lane(dst, p);
    for (int64_t f = 0; f < data.F; ++f)
      if (uniform01(r.next()) < prob[p]) x[size_t(p * data.F + f)] = 0.0f;
  }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::rng() {
  const View& dst = operand(0);
  std::vector<int64_t> vals(size_t(dst.numElements()));
  for (uint32_t p = 0; p < dst.P; ++p) {
    RngState& r = lane(dst, p);
    for (int64_t f = 0; f < dst.F; ++f) vals[size_t(p * dst.F + f)] = r.next();
  }
  // The low bits of each 32-bit draw, as the element's bit pattern (any dtype).
  std::vector<std::byte> raw(vals.size() * size_t(dst.esize));
  for (size_t i = 0; i < vals.size(); ++i)
    encodeBits(dst.dtype, vals[i], raw.data() + int64_t(i) * dst.esize);
  scatterRaw(dst, raw.data());
  return {};
}

Status Exec::rand2() {
  const View& dst = operand(0);
  std::vector<float> lo, hi, x(size_t(dst.numElements()));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(1, 0, dst.P, lo));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, 1, dst.P, hi));
  for (uint32_t p = 0; p < dst.P; ++p) {
    RngState& r = lane(dst, p);
    for (int64_t f = 0; f < dst.F; ++f)
      x[size_t(p * dst.F + f)] = lo[p] + uniform01(r.next()) * (hi[p] - lo[p]);
  }
  writeFloats(dst, x, 0);
  return {};
}

Status Exec::setSeed() {
  const View& seeds = operand(0);
  std::vector<int64_t> s;
  TRNSIM_RETURN_IF_ERROR(readInts(seeds, s, true));
  for (uint32_t p = 0; p < seeds.P; ++p)
    lane(seeds, p) = RngState::fromSeed(uint64_t(uint32_t(s[size_t(p * seeds.F)])));
  return {};
}

Status Exec::setState() {
  const View& src = operand(0);
  if (src.F < 6)
    return error(
        ErrorCode::kInvalidArgument,
        fmt::format("{} has {} elements per partition; the RNG state has 6", describe(src), src.F));
  std::vector<int64_t> s;
  TRNSIM_RETURN_IF_ERROR(readInts(src, s, true));
  for (uint32_t p = 0; p < src.P; ++p) {
    RngState& r = lane(src, p);
    for (int k = 0; k < 6; ++k) r.words[size_t(k)] = uint32_t(s[size_t(p * src.F + k)]);
  }
  return {};
}

Status Exec::getState() {
  const View& dst = operand(0);
  if (dst.F < 6)
    return error(
        ErrorCode::kInvalidArgument,
        fmt::format("{} has {} elements per partition; the RNG state has 6", describe(dst), dst.F));
  std::vector<int64_t> out(size_t(dst.numElements()), 0);
  for (uint32_t p = 0; p < dst.P; ++p) {
    const RngState& r = lane(dst, p);
    for (int k = 0; k < 6; ++k) out[size_t(p * dst.F + k)] = r.words[size_t(k)];
  }
  writeInts(dst, out, 0);
  return {};
}

}  // namespace detail
}  // namespace trnsim::sim
