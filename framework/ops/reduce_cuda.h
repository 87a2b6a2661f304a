// CUDA launchers behind framework/ops/reduce.h (float32, current device, oodkit stream).
// x is viewed as [outer, r, inner] (row-major); reduced outputs are [outer, inner].
// One thread per output element, looping over r in ascending order: deterministic, no atomics.
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y[o, i] = float(sum_j double(x[o, j, i])), the CPU's order and accumulator.
void sum_dim(const float* x, float* y, int64_t outer, int64_t r, int64_t inner);
// y[o, i] = max_j x[o, j, i] and idx[o, i] = its first index (first NaN if any); r >= 1.
// y may be null (argmax only).
void max_dim(const float* x, float* y, int64_t* idx, int64_t outer, int64_t r, int64_t inner);
// y[o, j, i] = x[o, i] for j < r (repeat along the middle dimension).
void expand_dim(const float* x, float* y, int64_t outer, int64_t r, int64_t inner);
// dx[o, j, i] = j == idx[o, i] ? g[o, i] : 0 (the backward of max_dim).
void max_dim_backward(const float* g, const int64_t* idx, float* dx, int64_t outer, int64_t r, int64_t inner);

// Tensors per all_finite launch (their pointers and sizes travel as a kernel parameter).
constexpr int kAllFiniteChunk = 64;
// Sets *flag = 0 when any of data[t][0..numel[t]) (t < count <= kAllFiniteChunk) is NaN or
// +-Inf; leaves it unchanged otherwise. Every writer stores the same 0, so there is no race on
// the result.
void all_finite_chunk(const float* const* data, const int64_t* numel, int count, float* flag);
}  // namespace oodkit::cuda
