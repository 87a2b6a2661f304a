#include "tests/weight_rule.h"

#include <cmath>

namespace oodkit::testing {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

uint64_t fnv1a64(const std::string& key) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

std::vector<double> rule_values(const std::string& key, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  uint64_t state = fnv1a64(key);
  for (auto& x : v) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x = 2.0 * (double(z >> 11) * 0x1.0p-53) - 1.0;
  }
  return v;
}

Tensor rule_entry(const std::string& name, const Shape& shape) {
  if (ends_with(name, "num_batches_tracked")) return Tensor::zeros(shape, DType::I64);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  std::vector<double> v = rule_values(name, numel);
  for (double& x : v) {
    if (ends_with(name, "running_mean")) {
      x = 0.1 * x;
    } else if (ends_with(name, "running_var")) {
      x = 1.0 + 0.25 * (x + 1.0);
    } else if (shape.size() >= 2) {
      x *= std::sqrt(6.0 / (double(numel) / double(shape[0])));
    } else if (ends_with(name, ".weight")) {
      x = kRuleGamma + 0.1 * x;
    } else {
      x = 0.1 * x;
    }
  }
  return Tensor::from_vector(v, shape);
}

}  // namespace oodkit::testing
