// The `oodkit` subcommands: each tools/<command>.cpp registers its own CLI11 subcommand and options
// with an add_<command>_command(CLI::App&, CommandList&) and appends a Command; main() (oodkit.cpp)
// parses the command line and runs the one given.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/dtype.h"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace oodkit::tools {

struct Command {
  CLI::App* app = nullptr;  // the subcommand (for `oodkit heatmap fit`: fit)
  // The text of its --device option (add_device_option); null for a command without a network.
  std::shared_ptr<std::string> device;
  // Runs the command with its --device parsed by parse_device_option (Device::cpu() when it has
  // none); returns the exit status. Errors are exceptions, reported by main().
  std::function<int(Device)> run;
};
using CommandList = std::vector<Command>;

// The one --device option of every command that runs a network ("cpu, cuda or cuda:<i>", default
// cpu): adds it to `app`, bound to command.device (created here).
void add_device_option(CLI::App* app, Command& command);

// Checks of numeric options whose failure message names the value, e.g. "--batch: must be a
// whole number greater than 0, got '2.5'" (CLI11's PositiveNumber prints its range up to DBL_MAX).
// positive_count: an integer > 0 (batch sizes, epochs, image counts); positive_number: a finite
// real > 0 (widths, scales).
const CLI::Validator& positive_count();
const CLI::Validator& positive_number();

// Registered by info.cpp, train.cpp, eval.cpp, score.cpp, explain.cpp, study.cpp, heatmap_common.cpp (the
// `heatmap` group; its subcommands by heatmap_fit.cpp, heatmap_view.cpp, heatmap_oe_size.cpp),
// convert.cpp.
void add_info_command(CLI::App& app, CommandList& commands);
void add_eval_command(CLI::App& app, CommandList& commands);
void add_train_command(CLI::App& app, CommandList& commands);
void add_score_command(CLI::App& app, CommandList& commands);
void add_heatmap_command(CLI::App& app, CommandList& commands);
void add_study_command(CLI::App& app, CommandList& commands);
void add_convert_command(CLI::App& app, CommandList& commands);
void add_data_command(CLI::App& app, CommandList& commands);
void add_explain_command(CLI::App& app, CommandList& commands);

}  // namespace oodkit::tools
