#include "framework/cuda/context.h"
#include "framework/ops/activation_cuda.h"
#include "framework/random.h"

namespace oodkit::cuda {

namespace {
constexpr int kThreads = 256;

__global__ void relu_forward_kernel(const float* x, float* y, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
}
__global__ void relu_backward_kernel(const float* y, const float* g, float* gx, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) gx[i] = y[i] > 0.0f ? g[i] : 0.0f;
}
__global__ void tanh_forward_kernel(const float* x, float* y, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) y[i] = tanhf(x[i]);
}
__global__ void tanh_backward_kernel(const float* y, const float* g, float* gx, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) {
    const float v = y[i];
    gx[i] = g[i] * (1.0f - v * v);
  }
}
__global__ void sigmoid_forward_kernel(const float* x, float* y, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
__global__ void sigmoid_backward_kernel(const float* y, const float* g, float* gx, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) {
    const float v = y[i];
    gx[i] = g[i] * v * (1.0f - v);
  }
}
__global__ void clamp_forward_kernel(const float* x, float* y, float lo, float hi, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}
__global__ void clamp_backward_kernel(const float* x, const float* g, float* gx, float lo, float hi, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) {
    const float v = x[i];
    gx[i] = (v > lo && v < hi) ? g[i] : 0.0f;
  }
}
// Same keep decision as the CPU: double(counter_uniform(seed, i)) >= p, then one float
// multiply, so CPU and CUDA results are bitwise identical.
__global__ void dropout_apply_kernel(const float* x, float* y, uint64_t seed, double p, float scale, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) {
    const bool keep = double(counter_uniform(seed, uint64_t(i))) >= p;
    y[i] = keep ? __fmul_rn(x[i], scale) : 0.0f;
  }
}
}  // namespace

void relu_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  relu_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, y, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void relu_backward(const float* y, const float* g, float* gx, int64_t n) {
  if (n == 0) return;
  relu_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(y, g, gx, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void tanh_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  tanh_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, y, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void tanh_backward(const float* y, const float* g, float* gx, int64_t n) {
  if (n == 0) return;
  tanh_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(y, g, gx, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void sigmoid_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  sigmoid_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, y, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void sigmoid_backward(const float* y, const float* g, float* gx, int64_t n) {
  if (n == 0) return;
  sigmoid_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(y, g, gx, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n) {
  if (n == 0) return;
  clamp_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, y, lo, hi, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void clamp_backward(const float* x, const float* g, float* gx, float lo, float hi, int64_t n) {
  if (n == 0) return;
  clamp_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, g, gx, lo, hi, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}
void dropout_apply(const float* x, float* y, uint64_t seed, double p, float scale, int64_t n) {
  if (n == 0) return;
  dropout_apply_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, y, seed, p, scale, n);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
