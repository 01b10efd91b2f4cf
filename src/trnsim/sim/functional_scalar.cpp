// ScalarE: activation (act(x * scale + bias), with an optional reduction of the results).

#include "trnsim/sim/functional_detail.h"

namespace trnsim::sim::detail {

Status Exec::activation() {
  const View& dst = operand(0);
  const View& data = operand(1);
  std::vector<float> x, bias, scale;
  TRNSIM_RETURN_IF_ERROR(readFloats(data, x));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(2, -1, data.P, bias));
  TRNSIM_RETURN_IF_ERROR(scalarPerPartition(3, 0, data.P, scale));
  const int64_t F = data.F;
  for (uint32_t p = 0; p < data.P; ++p) {
    const float s = scale[p], b = bias[p];
    float* row = x.data() + int64_t(p) * F;
    for (int64_t f = 0; f < F; ++f) row[f] = detail::activate(in_.act, row[f] * s + b);
  }
  writeFloats(dst, x, 0);
  if (in_.reduceOp != AluOp::kBypass)
    TRNSIM_RETURN_IF_ERROR(writeReduce(4, in_.reduceOp, x, data.P, F));
  return {};
}

}  // namespace trnsim::sim::detail
