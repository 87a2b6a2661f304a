#include "framework/cuda/context.h"
#include "framework/ops/elementwise_cuda.h"

namespace oodkit::cuda {

namespace {
__global__ void axpby_kernel(const float* a, const float* b, float* y, float alpha, float beta, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) y[i] = alpha * a[i] + beta * b[i];
}
__global__ void multiply_kernel(const float* a, const float* b, float* y, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}
__global__ void affine_kernel(const float* x, float* y, float alpha, float beta, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta;
}

constexpr int kSumThreads = 256;
constexpr int kSumBlocks = 256;

// Pass 1: each block writes the double sum of its grid-stride slice to partial[blockIdx.x].
__global__ void sum_partial_kernel(const float* x, int64_t n, double* partial) {
  __shared__ double sh[kSumThreads];
  double acc = 0.0;
  OODKIT_GRID_STRIDE(i, n) acc += double(x[i]);
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}
// Pass 2: one block adds the partials in a fixed order.
__global__ void sum_final_kernel(const double* partial, int count, float* out, float scale) {
  __shared__ double sh[kSumThreads];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += kSumThreads) acc += partial[i];
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = float(sh[0] * scale);
}
}  // namespace

void axpby(const float* a, const float* b, float* y, float alpha, float beta, int64_t n) {
  if (n == 0) return;
  axpby_kernel<<<grid_for(n), 256, 0, stream()>>>(a, b, y, alpha, beta, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void multiply(const float* a, const float* b, float* y, int64_t n) {
  if (n == 0) return;
  multiply_kernel<<<grid_for(n), 256, 0, stream()>>>(a, b, y, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void affine(const float* x, float* y, float alpha, float beta, int64_t n) {
  if (n == 0) return;
  affine_kernel<<<grid_for(n), 256, 0, stream()>>>(x, y, alpha, beta, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void sum(const float* x, int64_t n, float* out, float scale) {
  const int blocks = int(std::min<int64_t>(kSumBlocks, std::max<int64_t>(1, (n + kSumThreads - 1) / kSumThreads)));
  double* partial = static_cast<double*>(workspace(sizeof(double) * kSumBlocks));
  sum_partial_kernel<<<blocks, kSumThreads, 0, stream()>>>(x, n, partial);
  OODKIT_CUDA_CHECK_LAUNCH();
  sum_final_kernel<<<1, kSumThreads, 0, stream()>>>(partial, blocks, out, scale);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
