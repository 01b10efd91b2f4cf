// Commands whose work is Python (`trnsim nki run`, `trnsim torch run`): the process becomes the
// Python interpreter installed beside this executable (the .venv's), running a module of the
// trnsim package with the user's arguments.

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "commands.h"

namespace trnsim::cli {

int execPythonModule(const std::string& module, const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  std::string python = "python3";
  for (const char* name : {"python", "python3"}) {
    const fs::path candidate = self.parent_path() / name;
    if (!ec && fs::exists(candidate)) {
      python = candidate.string();
      break;
    }
  }
  std::vector<std::string> argvStrings = {python, "-m", module};
  argvStrings.insert(argvStrings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argvStrings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  execvp(argv[0], argv.data());
  return printError(
      fmt::format("cannot start '{}' for {}: {}; install trnsim with `make` so "
                  "its Python environment sits beside the trnsim executable",
                  python, module, std::strerror(errno)));
}

int nkiRunCommand(const NkiRunArgs& args) {
  std::vector<std::string> all;
  if (args.traceback) all.push_back("--traceback");
  all.push_back(args.script);
  all.insert(all.end(), args.args.begin(), args.args.end());
  return execPythonModule("trnsim.nki.compat", all);
}

}  // namespace trnsim::cli
