// A plan request's checks before any work: see request.h.

#include "trnsim/plan/request.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <system_error>

namespace trnsim::plan {

Status checkReportPath(const std::string& path) {
  namespace fs = std::filesystem;
  auto error = [&](std::string message) {
    return Status(ErrorCode::kInvalidArgument, std::move(message), "--report");
  };
  if (path.empty()) return error("no file name; give one, e.g. --report plan.html");
  std::error_code ec;
  const fs::path file(path);
  if (fs::is_directory(file, ec))
    return error(fmt::format("{} is a folder; give a file in it, e.g. {}",
                             path, (file / "plan.html").string()));
  const fs::path folder = file.has_parent_path() ? file.parent_path() : fs::path(".");
  if (!fs::is_directory(folder, ec))
    return error(fmt::format("cannot write {}: the folder {} does not exist; create it or write "
                             "the report elsewhere",
                             path, folder.string()));
  const bool existed = fs::exists(file, ec);
  {
    // Append mode: an existing report is not truncated by the probe.
    std::ofstream probe(file, std::ios::binary | std::ios::app);
    if (!probe)
      return error(fmt::format("cannot write {} (no permission?); choose a path you can write",
                               path));
  }
  if (!existed) fs::remove(file, ec);
  return Status::ok();
}

}  // namespace trnsim::plan
