#include "framework/cuda/map.cuh"
#include "framework/cuda/reduce.cuh"
#include "framework/ops/elementwise_cuda.h"
#include "framework/ops/elementwise_functors.h"

namespace oodkit::cuda {

// The elementwise maps of elementwise.cpp (framework/ops/map.h).
template void map_n(const ops::Axpby<float>&, int64_t, float*, const float*, const float*);
template void map_n(const ops::Multiply<float>&, int64_t, float*, const float*, const float*);
template void map_n(const ops::Affine<float>&, int64_t, float*, const float*);

namespace {
__global__ void broadcast_scaled_kernel(const float* s, float scale, float* y, int64_t n) {
  const float v = scale * s[0];
  OODKIT_GRID_STRIDE(i, n) y[i] = v;
}

// Pass 1: each block writes the double sum of its grid-stride slice to partial[blockIdx.x].
__global__ void sum_partial_kernel(const float* x, int64_t n, double* partial) {
  double acc = 0.0;
  OODKIT_GRID_STRIDE(i, n) acc += double(x[i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
}  // namespace

void broadcast_scaled(const float* s, float scale, float* y, int64_t n) {
  if (n == 0) return;
  broadcast_scaled_kernel<<<grid_for(n), 256, 0, stream()>>>(s, scale, y, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void sum(const float* x, int64_t n, float* out, float scale) {
  const int blocks = reduce_blocks(n);
  double* partial = static_cast<double*>(workspace(sizeof(double) * kReduceBlocks));
  sum_partial_kernel<<<blocks, kReduceThreads, 0, stream()>>>(x, n, partial);
  OODKIT_CUDA_CHECK_LAUNCH();
  finish_partial_sums(partial, blocks, out, scale);
}

}  // namespace oodkit::cuda
