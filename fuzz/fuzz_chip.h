#pragma once
// What the fuzz targets share.

#include <cstdint>

#include "trnsim/arch/chip_config.h"

namespace {

/// The chip the fuzzers verify against: the built-in trn2, or trn2-like numbers if the
/// config loader is unavailable.
trnsim::arch::ChipConfig fuzzChip() {
  auto loaded = trnsim::arch::loadChip("trn2");
  if (loaded.hasValue()) return *loaded;
  trnsim::arch::ChipConfig c;
  c.name = "trn2-fuzz";
  c.pe.fp8Speedup = 2;
  c.mem.sbufBytesPerPartition = 192 * 1024;
  c.mem.hbmBytes = uint64_t(96) << 30;
  return c;
}

}  // namespace
