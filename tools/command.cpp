#include "tools/command.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace oodkit::tools {

void add_device_option(CLI::App* app, Command& command) {
  command.device = std::make_shared<std::string>("cpu");
  app->add_option("--device", *command.device, "cpu, cuda or cuda:<i>")->capture_default_str();
}

const CLI::Validator& positive_count() {
  static const CLI::Validator v(
      [](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long n = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno == ERANGE || n <= 0)
          return "must be a whole number greater than 0, got '" + text + "'";
        return "";
      },
      "POSITIVE");
  return v;
}

const CLI::Validator& positive_number() {
  static const CLI::Validator v(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double x = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(x) || !(x > 0))
          return "must be a finite number greater than 0, got '" + text + "'";
        return "";
      },
      "POSITIVE");
  return v;
}

}  // namespace oodkit::tools
