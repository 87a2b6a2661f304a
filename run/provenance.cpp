#include "run/provenance.h"

#include <cctype>
#include <ctime>

#include "framework/cuda_api.h"
#include "oodkit_commit.h"  // OODKIT_GIT_COMMIT, generated at build time (cmake/commit_header.cmake)

#ifndef OODKIT_VERSION
#define OODKIT_VERSION "unknown"
#endif
#ifndef OODKIT_BUILD_TYPE
#define OODKIT_BUILD_TYPE "unknown"
#endif

namespace oodkit::run {

namespace {
std::string& recorded_command() {
  static std::string c;
  return c;
}

// A shell word as typed: bare when it holds only safe characters, else in single quotes.
std::string quoted(const std::string& w) {
  if (w.empty()) return "''";
  bool safe = true;
  for (char c : w)
    safe = safe && (std::isalnum(static_cast<unsigned char>(c)) || std::string("-_./:=,+@%").find(c) != std::string::npos);
  if (safe) return w;
  std::string out = "'";
  for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

std::string version() { return OODKIT_VERSION; }
std::string git_commit() { return OODKIT_GIT_COMMIT; }
std::string build_type() { return OODKIT_BUILD_TYPE; }

std::string version_line() {
  return "oodkit " + version() + " (commit " + git_commit() + ", " + build_type() + " build; " +
         cuda_build_versions() + ")";
}

void set_command_line(int argc, const char* const* argv) {
  std::string c;
  for (int i = 0; i < argc; ++i) c += (i ? " " : "") + quoted(argv[i]);
  recorded_command() = c;
}

const std::string& command_line() { return recorded_command(); }

nlohmann::ordered_json provenance() {
  char date[32] = "";
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return {{"oodkit", version()},      {"commit", git_commit()}, {"build", build_type()},
          {"libraries", cuda_build_versions()}, {"command", command_line()}, {"date", date}};
}

}  // namespace oodkit::run
