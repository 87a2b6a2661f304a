// The `oodkit` command line: registers every command (tools/command.h), runs the one given and
// turns errors into one "oodkit: error:" line and exit status 1.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include "data/image_folder.h"
#include "framework/error.h"
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
      std::fprintf(stderr, "oodkit: error: %s\n", x.what());
    } catch (...) {
      std::fprintf(stderr, "oodkit: error: unknown exception\n");
    }
    std::fflush(stderr);
    std::_Exit(1);
  }
  std::fprintf(stderr, "oodkit: error: std::terminate called without an exception\n");
  std::abort();
}
}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
  CLI::App app{"oodkit: out-of-distribution detection on a from-scratch C++/CUDA framework"};
  app.require_subcommand(1);
  // Each command's file registers its subcommand and options (tools/command.h); this order is
  // the order of `oodkit --help`.
  oodkit::tools::CommandList commands;
  oodkit::tools::add_info_command(app, commands);
  oodkit::tools::add_eval_command(app, commands);
  oodkit::tools::add_train_command(app, commands);
  oodkit::tools::add_score_command(app, commands);
  oodkit::tools::add_heatmap_command(app, commands);
  oodkit::tools::add_study_command(app, commands);

  CLI11_PARSE(app, argc, argv);
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
    std::fprintf(stderr, "oodkit: error: %s%s\n", e.what(),
                 has_flag ? "; pass --skip-unreadable to leave unreadable images out (they are counted and listed)"
                          : "");
    return 1;
  } catch (const oodkit::Error& e) {
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {  // Tensor allocations say so themselves (OutOfMemoryError)
    std::fprintf(stderr, "oodkit: error: out of host memory (a memory allocation failed)\n");
    return 1;
  } catch (const std::exception& e) {  // e.g. a malformed JSON file
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
