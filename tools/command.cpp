#include "tools/command.h"

#include <CLI/CLI.hpp>

namespace oodkit::tools {

void add_device_option(CLI::App* app, Command& command) {
  command.device = std::make_shared<std::string>("cpu");
  app->add_option("--device", *command.device, "cpu, cuda or cuda:<i>")->capture_default_str();
}

}  // namespace oodkit::tools
