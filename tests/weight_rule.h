// The seeded weight rule shared with tools/make_model_fixtures.py (and the torchvision fixtures of
// tests/fixtures/torchvision/make_fixtures.py): weights that PyTorch and these tests both generate
// from a state-dict name, so that fixtures hold results, never weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::testing {

constexpr double kRuleGamma = 0.5;  // BatchNorm weights GAMMA + 0.1 v

uint64_t fnv1a64(const std::string& key);

// n values in [-1, 1): splitmix64 seeded with FNV-1a-64(key) (the script's values(key, n)).
std::vector<double> rule_values(const std::string& key, int64_t n);

// The state-dict entry `name` of shape `shape` (the script's entry_values), float64 on the CPU
// (num_batches_tracked: int64 zeros):
//   *.running_mean 0.1 v; *.running_var 1 + 0.25 (v + 1); ndim >= 2: v sqrt(6 / fan), fan = numel / s[0];
//   ndim 1 ending in .weight: GAMMA + 0.1 v; other ndim 1: 0.1 v.
Tensor rule_entry(const std::string& name, const Shape& shape);

}  // namespace oodkit::testing
