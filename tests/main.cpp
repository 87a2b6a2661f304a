// Test entry point: poisons every new allocation (NaN bytes) so unwritten outputs fail.
#include <gtest/gtest.h>

#include "framework/cuda_api.h"
#include "framework/tensor.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  oodkit::set_poison_allocations(true);
  return RUN_ALL_TESTS();
}
