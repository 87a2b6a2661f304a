#include "tools/report.h"

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

#ifndef OODKIT_REPORT_PYTHON
#define OODKIT_REPORT_PYTHON "python3"
#endif
#ifndef OODKIT_REPORT_SCRIPT
#define OODKIT_REPORT_SCRIPT "tools/report.py"
#endif

namespace oodkit::tools {

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

bool write_html_report(const std::string& run_dir, const std::string& title) {
  const std::string python = env_or("OODKIT_PYTHON", OODKIT_REPORT_PYTHON);
  const std::string script = env_or("OODKIT_REPORT_SCRIPT", OODKIT_REPORT_SCRIPT);
  struct stat st {};
  if (::stat(script.c_str(), &st) != 0) {
    std::fprintf(stderr, "oodkit: warning: no report.html/plots: report script %s not found (set OODKIT_REPORT_SCRIPT)\n",
                 script.c_str());
    return false;
  }
  std::vector<std::string> args = {python, script, run_dir, "--title", title};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ);
  if (err != 0) {
    std::fprintf(stderr, "oodkit: warning: no report.html/plots: cannot run %s (%s; set OODKIT_PYTHON)\n",
                 python.c_str(), std::strerror(err));
    return false;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return true;  // tables only; the script said why
  std::fprintf(stderr, "oodkit: warning: the report script (%s %s) failed (%s %d): no report.html/plots; results.* are complete\n",
               python.c_str(), script.c_str(), WIFEXITED(status) ? "exit" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return false;
}

}  // namespace oodkit::tools
