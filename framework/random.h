// Seeded random numbers. A Generator drives host-side sampling (mt19937_64); kernels that
// need randomness (dropout) take a 64-bit seed from it and use counter_uniform(), which
// gives the same stream on the CPU and on CUDA, so both devices draw identical masks.
#pragma once
#include <cstdint>
#include <random>

#include "framework/host_device.h"

namespace oodkit {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : engine_(seed), seed_(seed) {}
  void manual_seed(uint64_t seed) { engine_.seed(seed); seed_ = seed; }
  uint64_t initial_seed() const { return seed_; }
  uint64_t next_u64() { return engine_(); }
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }
  double normal() { return std::normal_distribution<double>(0.0, 1.0)(engine_); }
  int64_t randint(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(engine_); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
  uint64_t seed_;
};

// The process-wide generator used when an API takes none.
Generator& default_generator();
void manual_seed(uint64_t seed);

// splitmix64 of (seed, index): a stateless, counter-based 64-bit hash.
OODKIT_HD inline uint64_t counter_hash(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Uniform in [0, 1) with 24 random bits (exact in float).
OODKIT_HD inline float counter_uniform(uint64_t seed, uint64_t index) {
  return float(counter_hash(seed, index) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace oodkit
