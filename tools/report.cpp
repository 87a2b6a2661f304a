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

// Runs `python script args...` (the report script's interpreter; `script` a file beside
// tools/report.py, or report.py itself); `what` names the output in warnings. Returns the exit
// status (0 or 3 count as written), or -1 when the script could not be run (one warning printed).
int run_script(const std::string& script_name, const std::vector<std::string>& script_args, const std::string& what) {
  const std::string python = env_or("OODKIT_PYTHON", OODKIT_REPORT_PYTHON);
  std::string script = env_or("OODKIT_REPORT_SCRIPT", OODKIT_REPORT_SCRIPT);
  if (script_name != "report.py") {
    const size_t slash = script.find_last_of('/');
    script = (slash == std::string::npos ? std::string() : script.substr(0, slash + 1)) + script_name;
  }
  struct stat st {};
  if (::stat(script.c_str(), &st) != 0) {
    std::fprintf(stderr, "oodkit: warning: no %s: script %s not found (set OODKIT_REPORT_SCRIPT to tools/report.py)\n",
                 what.c_str(), script.c_str());
    return -1;
  }
  std::vector<std::string> args = {python, script};
  args.insert(args.end(), script_args.begin(), script_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ);
  if (err != 0) {
    std::fprintf(stderr, "oodkit: warning: no %s: cannot run %s (%s; set OODKIT_PYTHON)\n", what.c_str(),
                 python.c_str(), std::strerror(err));
    return -1;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) return WEXITSTATUS(status);
  std::fprintf(stderr, "oodkit: warning: the script %s %s failed (%s %d): no %s\n", python.c_str(), script.c_str(),
               WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
               what.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

bool write_html_report(const std::string& run_dir, const std::string& title) {
  const int rc = run_script("report.py", {run_dir, "--title", title}, "report.html/plots (results.* are complete)");
  return rc == 0 || rc == 3;  // 3: tables only; the script said why
}

bool draw_picture_grid(const std::string& arrays, const std::string& png) {
  return draw_figure("picture_grid.py", {arrays, "--out", png}, "labelled picture " + png);
}

bool draw_figure(const std::string& script, const std::vector<std::string>& args, const std::string& what) {
  return run_script(script, args, what) == 0;
}

}  // namespace oodkit::tools
