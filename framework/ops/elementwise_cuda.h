// CUDA launchers behind framework/ops/elementwise.h (float32, current device, oodkit stream) that
// are not elementwise maps; the maps (axpby, multiply, affine) are functors in
// elementwise_functors.h, instantiated for CUDA in elementwise_cuda.cu.
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y[i] = scale * s[0] for i < n (s on the device: no host round trip)
void broadcast_scaled(const float* s, float scale, float* y, int64_t n);
// out[0] = scale * sum(x[0..n)); deterministic two-pass reduction, accumulated in double
void sum(const float* x, int64_t n, float* out, float scale);
}  // namespace oodkit::cuda
