// Fuzz target: the compiler's IR text. Any bytes must parse to a graph or give a kParse error;
// a parsed graph must print to text that parses back to the same text; the default pipeline
// and the lowering must return a graph/program or a Status, never crash. Lowering runs only
// for small graphs (it is linear in elements and nodes, so big ones only cost time).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_chip.h"
#include "trnsim/compiler/lower.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/compiler/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto g = compiler::parseGraph(text);
  if (!g.hasValue()) {
    if (g.status().code() != ErrorCode::kParse) std::abort();
    return 0;
  }
  const std::string printed = compiler::printGraph(*g);
  auto back = compiler::parseGraph(printed);
  if (!back.hasValue() || compiler::printGraph(*back) != printed) std::abort();
  if (!compiler::runPipeline(*g).isOk()) return 0;
  if (g->nodes.size() > 64) return 0;
  for (const auto& v : g->values)
    if (v.type.numElements() > (int64_t(1) << 16)) return 0;
  static const arch::ChipConfig chip = fuzzChip();
  (void)compiler::lowerGraph(*g, chip);
  return 0;
}
