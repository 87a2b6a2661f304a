#pragma once
#include <cstdint>

#include "framework/dtype.h"

namespace oodkit::tools {
struct DemoOptions {
  int64_t train_size = 4096, test_size = 1024, batch = 64;
  int epochs = 8;
  double lr = 0.05;
  uint64_t seed = 0;
  Device device = Device::cpu();
};
// Returns the process exit code (non-zero when the network failed to learn the task).
int run_demo(const DemoOptions& options);
}  // namespace oodkit::tools
