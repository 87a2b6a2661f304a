// Reduction building blocks shared by CUDA kernels (include from .cu files only).
#pragma once
#include <cstdint>

#include "framework/cuda/context.h"

namespace oodkit::cuda {

// Full-warp reductions (every lane of the warp must participate); result in every lane.
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Two-pass deterministic reductions: pass 1 kernels are launched with kReduceThreads threads
// and at most kReduceBlocks blocks and write one double per block; finish_partial_sums adds
// them in a fixed order.
constexpr int kReduceThreads = 256;
constexpr int kReduceBlocks = 256;

// Number of pass-1 blocks for n elements.
inline int reduce_blocks(int64_t n) {
  int64_t b = (n + kReduceThreads - 1) / kReduceThreads;
  if (b < 1) b = 1;
  if (b > kReduceBlocks) b = kReduceBlocks;
  return int(b);
}

// Sum of v over a block of kReduceThreads threads, in a fixed order; the result is valid in
// thread 0. All threads of the block must call it.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double sh[kReduceThreads];
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

// out[0] = float(scale * sum(partial[0..count))), one block, fixed order (pass 2).
void finish_partial_sums(const double* partial, int count, float* out, double scale);

}  // namespace oodkit::cuda
