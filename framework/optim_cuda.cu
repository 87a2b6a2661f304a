#include "framework/cuda/context.h"
#include "framework/optim_cuda.h"

namespace oodkit::cuda {

namespace {
// Hyperparameter structs are passed by value (kernel parameter space).
__global__ void sgd_kernel(float* p, const float* grad, float* buf, int64_t n, optim::detail::SGDParams<float> h) {
  OODKIT_GRID_STRIDE(i, n) optim::detail::sgd_update(p, grad, buf, i, h);
}
__global__ void adam_kernel(float* p, const float* grad, float* m, float* v, int64_t n,
                            optim::detail::AdamParams<float> h) {
  OODKIT_GRID_STRIDE(i, n) optim::detail::adam_update(p, grad, m, v, i, h);
}
}  // namespace

void sgd_step(float* p, const float* grad, float* buf, int64_t n, const optim::detail::SGDParams<float>& h) {
  if (n == 0) return;
  sgd_kernel<<<grid_for(n), 256, 0, stream()>>>(p, grad, buf, n, h);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void adam_step(float* p, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const optim::detail::AdamParams<float>& h) {
  if (n == 0) return;
  adam_kernel<<<grid_for(n), 256, 0, stream()>>>(p, grad, exp_avg, exp_avg_sq, n, h);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
