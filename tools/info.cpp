// `oodkit info`: the build configuration and the CUDA devices found.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "framework/cuda_api.h"
#include "tools/command.h"

namespace oodkit::tools {

void add_info_command(CLI::App& app, CommandList& commands) {
  Command c;
  c.app = app.add_subcommand("info", "Print the build configuration and the devices found");
  c.run = [](Device) {
    std::printf("oodkit 0.1.0\nCUDA backend: %s\n", oodkit::cuda_built() ? "built" : "not built");
    const int n = oodkit::cuda_device_count();
    std::printf("CUDA devices: %d\n", n);
    for (int i = 0; i < n; ++i) std::printf("  cuda:%d %s\n", i, oodkit::cuda_device_name(i).c_str());
    return 0;
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
