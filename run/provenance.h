// What made a result: oodkit's version, the git commit it was built from, the build, the command
// line. Every results.json, protocol.json and checkpoint records provenance() (see docs/resume.md
// for checkpoints); `oodkit --version` prints version_line().
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace oodkit::run {

std::string version();       // the project version, e.g. "0.1.0"
std::string git_commit();    // the commit the build was configured from ("unknown" outside git)
std::string build_type();    // CMAKE_BUILD_TYPE, e.g. "Release"
// "oodkit 0.1.0 (commit abc123def456, Release build; CUDA 13.0, cuDNN 9.10.2, cuBLAS 13.0.0)"
std::string version_line();

// The command line of this process as the user typed it (arguments shell-quoted where needed);
// main() records it once with set_command_line. "" before that.
void set_command_line(int argc, const char* const* argv);
const std::string& command_line();

// {"oodkit": version, "commit", "build", "libraries", "command", "date" (UTC, ISO 8601)}.
nlohmann::ordered_json provenance();

}  // namespace oodkit::run
