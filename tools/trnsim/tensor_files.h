#pragma once
// Inputs from and outputs to .npy files for `trnsim run` and `trnsim cluster run`
// (`--input [RANK:]NAME=FILE`, `--output-dir DIR`; docs/cli.md). The .npy format itself is
// support/npy.h; this file maps it onto a program's HBM tensors: shapes must match exactly,
// dtypes match or convert without changing any value, and every error names the file, the
// tensor and what to do.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::cli {

/// One `--input` option: `[RANK:]NAME=FILE`.
struct InputSpec {
  std::optional<uint32_t> rank;  ///< cluster runs: this rank only (none: every rank)
  std::string tensor;            ///< a tensor of the program (a leading '%' is dropped)
  std::string path;              ///< the .npy file; cluster runs replace "{rank}" in it
  std::string option;            ///< the option as given, for messages
};

/// Parses the `--input` options. `ranks`: whether a `RANK:` prefix is allowed (cluster run).
Expected<std::vector<InputSpec>> parseInputSpecs(const std::vector<std::string>& options,
                                                 bool ranks);

/// The tensors the CLI fills before a run: input and inout tensors (HBM only when `hbmOnly`),
/// other than `skip` (cluster runs: "rank_id", which the cluster fills).
std::vector<uint32_t> inputTensors(const isa::Program& program, bool hbmOnly,
                                   std::string_view skip = {});

/// Checks that every spec names one of `inputs` (tensor indices of `program`), that ranks are
/// below `chips` and that no tensor is given twice for the same rank (or for all ranks).
Status checkInputSpecs(const std::vector<InputSpec>& specs, const isa::Program& program,
                       const std::vector<uint32_t>& inputs, uint32_t chips,
                       const std::string& programPath);

/// Files for the inputs of `rank` (none: a single-chip run): tensor index -> path, a
/// rank-specific option winning over one for every rank, "{rank}" replaced in cluster runs.
std::map<uint32_t, std::string> inputFilesFor(const std::vector<InputSpec>& specs,
                                              const isa::Program& program,
                                              std::optional<uint32_t> rank);

/// The bytes (the tensor's dtype, row-major) to write into tensor `decl` from the .npy file
/// at `path`. The file's shape must equal the tensor's. Its dtype must be the tensor's (raw
/// items of the same size, '<V2' as ml_dtypes writes bfloat16, are taken as the tensor's
/// bits), or every value must convert exactly; then `note` receives a line saying so.
Expected<std::vector<std::byte>> loadTensorFile(const std::string& path,
                                                const isa::TensorDecl& decl, std::string* note);

/// Creates `dir` (and its parents) if needed and checks that a file can be written in it.
Status prepareOutputDir(const std::string& dir);

/// The tensors written to --output-dir: output and inout HBM tensors, in declaration order.
std::vector<uint32_t> outputTensors(const isa::Program& program);

/// File names of `tensors` in an output dir: "NAME.npy", characters other than letters,
/// digits, '_', '-' and '.' replaced by '_' ("tensor<index>" for an empty name). An error
/// when two tensors would get the same file.
Expected<std::vector<std::string>> outputFileNames(const isa::Program& program,
                                                   const std::vector<uint32_t>& tensors);

/// Writes the bytes of tensor `decl` (its dtype, row-major) as a .npy file of the tensor's
/// shape: float32, float16 and integer tensors keep their dtype; bfloat16, float8 and tfloat32
/// are written as float32, which holds each of their values exactly.
Status writeTensorFile(const std::string& path, const isa::TensorDecl& decl,
                       std::span<const std::byte> bytes);

}  // namespace trnsim::cli
