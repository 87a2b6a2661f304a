// The `oodkit` command line: registers every command (tools/command.h), runs the one given and
// turns errors into one "oodkit: error:" line and exit status 1.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <regex>
#include <string>

#include "data/image_folder.h"
#include "framework/error.h"
#include "run/provenance.h"
#include "tools/command.h"
#include "tools/common.h"

namespace {
// Last resort for an exception that cannot reach main's handlers (one thrown inside an OpenMP
// worker or a noexcept function calls std::terminate): the same one-line "oodkit: error:" message
// and exit status 1 instead of an abort with "terminate called ...". Files being written are
// left as temporaries (the writers rename only complete files).
[[noreturn]] void on_terminate() {
  static std::atomic_flag entered = ATOMIC_FLAG_INIT;
  if (entered.test_and_set()) {  // another thread is already reporting
    for (;;) ::pause();
  }
  if (const std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "oodkit: error: out of host memory (a memory allocation failed)\n");
    } catch (const std::exception& x) {
      std::fprintf(stderr, "oodkit: error: %s\n", oodkit::error_text(x, oodkit::debug_errors_requested()).c_str());
    } catch (...) {
      std::fprintf(stderr, "oodkit: error: unknown exception\n");
    }
    std::fflush(stderr);
    std::_Exit(1);
  }
  std::fprintf(stderr, "oodkit: error: std::terminate called without an exception\n");
  std::abort();
}

// Test hook of on_terminate (tests/cli/check_errors.py), not for users: with OODKIT_TEST_TERMINATE
// set, an oodkit::Error carrying its value leaves a noexcept function, which calls std::terminate
// as any escaping exception does. No input is known to get there: the parallel loops that can throw
// (image decoding) and the batch loader's thread catch inside, and the allocations made inside
// OpenMP regions (convolution columns, resampling rows) are bounded by chunk and image sizes that
// earlier, caught allocations exceed.
void raise_error(const char* what) { OODKIT_FAIL(what); }
void raise_error_noexcept(const char* what) noexcept { raise_error(what); }
void run_terminate_test_hook() {
  if (const char* what = std::getenv("OODKIT_TEST_TERMINATE")) raise_error_noexcept(what);
}
// CLI11's stock messages in oodkit's words (one line, the option first, what to do). Messages that
// are already oodkit's (the checks of tools/command.h) pass unchanged.
std::string oodkit_text(const std::string& cli11) {
  std::smatch m;
  static const std::regex at_most(R"(^(\S+): At Most (\d+) required but received (\d+)$)");
  static const std::regex missing_value(R"(^(\S+): (\d+) required (\S+) missing$)");
  static const std::regex required(R"(^(\S+) is required$)");
  static const std::regex unexpected(R"(^The following arguments? (?:was|were) not expected: (.*)$)");
  static const std::regex convert(R"(^Could not convert: (\S+) = (.*)$)");
  if (std::regex_match(cli11, m, at_most))
    return m[1].str() + " given " + m[3].str() + " times; give it once (a list goes in one value, comma-separated, "
           "e.g. " + m[1].str() + " a,b)";
  if (std::regex_match(cli11, m, missing_value)) return m[1].str() + " needs a value";
  if (std::regex_match(cli11, m, required)) return "missing " + m[1].str() + " (required)";
  if (std::regex_match(cli11, m, unexpected)) return "unknown option or extra argument: " + m[1].str();
  if (std::regex_match(cli11, m, convert)) return m[1].str() + ": cannot read '" + m[2].str() + "' as its value";
  if (cli11 == "A subcommand is required") return "a subcommand is required";
  return cli11;
}

// A command-line mistake CLI11 found (unknown command or option, a value that is not a number,
// a check such as positive_count): one line naming it and where to look, exit status 2.
int usage_error(const CLI::App& app, const CLI::ParseError& e) {
  // The deepest command that was parsed: its --help is the one to read.
  const CLI::App* at = &app;
  std::string path = "oodkit";
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* sub : at->get_subcommands()) {
      at = sub;
      path += " " + sub->get_name();
      deeper = true;
      break;
    }
  }
  std::string what = oodkit_text(e.what());
  if (at == &app && app.remaining_size() > 0) {  // the first word is no command
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
    what = "unknown command '" + app.remaining().front() + "' (commands: " + names + ")";
  }
  std::fprintf(stderr, "oodkit: error: %s; see `%s --help`\n", what.c_str(), path.c_str());
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
  run_terminate_test_hook();
  oodkit::run::set_command_line(argc, argv);
  CLI::App app{"oodkit: out-of-distribution detection on a from-scratch C++/CUDA framework"};
  app.set_version_flag("--version", oodkit::run::version_line(), "print the version, commit and build, then exit");
  app.require_subcommand(1);
  // Each command's file registers its subcommand and options (tools/command.h); this order is
  // the order of `oodkit --help`.
  oodkit::tools::CommandList commands;
  oodkit::tools::add_info_command(app, commands);
  oodkit::tools::add_eval_command(app, commands);
  oodkit::tools::add_train_command(app, commands);
  oodkit::tools::add_score_command(app, commands);
  oodkit::tools::add_explain_command(app, commands);
  oodkit::tools::add_heatmap_command(app, commands);
  oodkit::tools::add_study_command(app, commands);
  oodkit::tools::add_convert_command(app, commands);
  oodkit::tools::add_data_command(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help: the help of the (sub)command given
    return usage_error(app, e);
  }
  const oodkit::tools::Command* given = nullptr;
  for (const auto& c : commands)
    if (*c.app) given = &c;
  if (!given) return 0;  // unreachable: CLI11 requires a (leaf) subcommand
  try {
    const oodkit::Device device =
        given->device ? oodkit::tools::parse_device_option(*given->device) : oodkit::Device::cpu();
    return given->run(device);
  } catch (const oodkit::data::UnreadableImageError& e) {
    const bool has_flag = given->app->get_option_no_throw("--skip-unreadable") != nullptr;
    std::fprintf(stderr, "oodkit: error: %s%s\n", oodkit::error_text(e, oodkit::debug_errors_requested()).c_str(),
                 has_flag ? "; pass --skip-unreadable to leave unreadable images out (they are counted and listed)"
                          : "");
    return 1;
  } catch (const oodkit::Error& e) {
    std::fprintf(stderr, "oodkit: error: %s\n", oodkit::error_text(e, oodkit::debug_errors_requested()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {  // Tensor allocations say so themselves (OutOfMemoryError)
    std::fprintf(stderr, "oodkit: error: out of host memory (a memory allocation failed)\n");
    return 1;
  } catch (const std::exception& e) {  // e.g. a malformed JSON file
    std::fprintf(stderr, "oodkit: error: %s\n", oodkit::error_text(e, oodkit::debug_errors_requested()).c_str());
    return 1;
  }
  return 0;
}
