// The `oodkit` command line.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "framework/cuda_api.h"
#include "framework/error.h"
#include "tools/demo.h"

int main(int argc, char** argv) {
  CLI::App app{"oodkit: out-of-distribution detection on a from-scratch C++/CUDA framework"};
  app.require_subcommand(1);

  auto* info = app.add_subcommand("info", "Print the build configuration and the devices found");

  oodkit::tools::DemoOptions demo;
  std::string demo_device = "cpu";
  auto* demo_cmd = app.add_subcommand("demo", "Train a small CNN on a built-in toy image task (no files needed)");
  demo_cmd->add_option("--device", demo_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  demo_cmd->add_option("--epochs", demo.epochs)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--train-size", demo.train_size)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--batch", demo.batch)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--lr", demo.lr)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--seed", demo.seed)->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*info) {
      std::printf("oodkit 0.1.0\nCUDA backend: %s\n", oodkit::cuda_built() ? "built" : "not built");
      const int n = oodkit::cuda_device_count();
      std::printf("CUDA devices: %d\n", n);
      for (int i = 0; i < n; ++i) std::printf("  cuda:%d %s\n", i, oodkit::cuda_device_name(i).c_str());
      return 0;
    }
    if (*demo_cmd) {
      demo.device = oodkit::Device::parse(demo_device);
      return oodkit::tools::run_demo(demo);
    }
  } catch (const oodkit::Error& e) {
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
