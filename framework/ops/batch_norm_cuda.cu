#include <climits>

#include "framework/cuda/context.h"
#include "framework/ops/batch_norm_cuda.h"

namespace oodkit::cuda {

namespace {

// RAII cuDNN tensor descriptor.
struct TensorDesc {
  cudnnTensorDescriptor_t desc = nullptr;
  TensorDesc() { OODKIT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc)); }
  ~TensorDesc() {
    if (desc) cudnnDestroyTensorDescriptor(desc);
  }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

// x described as NCHW [n, c, hw, 1] (spatial BN reduces over n and hw either way) and the
// derived [1, c, 1, 1] descriptor for the per-channel tensors.
struct BnDescs {
  TensorDesc x, param;
  BnDescs(int64_t n, int64_t c, int64_t hw) {
    OODKIT_CHECK(n <= INT_MAX && c <= INT_MAX && hw <= INT_MAX && n * c * hw <= INT_MAX,
                 "batch_norm (CUDA): tensor [", n, ", ", c, ", ", hw, "] is too large for cuDNN");
    OODKIT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(n), int(c),
                                                  int(hw), 1));
    OODKIT_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(param.desc, x.desc, CUDNN_BATCHNORM_SPATIAL));
  }
};

void check_eps(double eps) {
  OODKIT_CHECK(eps >= CUDNN_BN_MIN_EPSILON, "batch_norm (CUDA): eps ", eps, " is below cuDNN's minimum ",
               CUDNN_BN_MIN_EPSILON);
}

constexpr int kReduceThreads = 256;

// y = (x - mean[ch]) / sqrt(var[ch] + eps) * weight[ch] + bias[ch] over x [n, c, hw] (total elements).
__global__ void bn_eval_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                       const float* __restrict__ weight, const float* __restrict__ bias,
                                       const float* __restrict__ mean, const float* __restrict__ var, int64_t total,
                                       int64_t c, int64_t hw, float eps) {
  OODKIT_GRID_STRIDE(i, total) {
    const int64_t ch = (i / hw) % c;
    const float scale = weight[ch] / sqrtf(var[ch] + eps);
    y[i] = (x[i] - mean[ch]) * scale + bias[ch];
  }
}

// One block per channel: dweight[ch] = invstd * sum(dy * (x - mean)), dbias[ch] = sum(dy),
// accumulated in double. Either output may be null (x may be null when dweight is).
__global__ void bn_eval_param_grad_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                          const float* __restrict__ mean, const float* __restrict__ var,
                                          float* dweight, float* dbias, int64_t n, int64_t c, int64_t hw,
                                          double eps) {
  __shared__ double sh_g[kReduceThreads];
  __shared__ double sh_gx[kReduceThreads];
  const int64_t ch = blockIdx.x;
  const int64_t m = n * hw;
  const double mu = dweight ? double(mean[ch]) : 0.0;
  double sg = 0.0, sgx = 0.0;
  for (int64_t i = threadIdx.x; i < m; i += kReduceThreads) {
    const int64_t b = i / hw;
    const int64_t idx = (b * c + ch) * hw + (i - b * hw);
    const double g = double(dy[idx]);
    sg += g;
    if (dweight) sgx += g * (double(x[idx]) - mu);
  }
  sh_g[threadIdx.x] = sg;
  sh_gx[threadIdx.x] = sgx;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sh_g[threadIdx.x] += sh_g[threadIdx.x + s];
      sh_gx[threadIdx.x] += sh_gx[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (dbias) dbias[ch] = float(sh_g[0]);
    if (dweight) dweight[ch] = float(sh_gx[0] / sqrt(double(var[ch]) + eps));
  }
}

// dx = dy * weight[ch] / sqrt(var[ch] + eps); weight null means 1.
__global__ void bn_eval_input_grad_kernel(const float* __restrict__ dy, const float* __restrict__ weight,
                                          const float* __restrict__ var, float* __restrict__ dx, int64_t total,
                                          int64_t c, int64_t hw, float eps) {
  OODKIT_GRID_STRIDE(i, total) {
    const int64_t ch = (i / hw) % c;
    const float k = (weight ? weight[ch] : 1.0f) / sqrtf(var[ch] + eps);
    dx[i] = dy[i] * k;
  }
}

}  // namespace

void batch_norm_forward_training(const float* x, float* y, const float* weight, const float* bias,
                                 float* running_mean, float* running_var, float* save_mean,
                                 float* save_invstd, int64_t n, int64_t c, int64_t hw, double momentum,
                                 double eps) {
  check_eps(eps);
  BnDescs d(n, c, hw);
  const float one = 1.0f, zero = 0.0f;
  OODKIT_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.desc, x, d.x.desc, y, d.param.desc, weight, bias,
      momentum, running_mean, running_var, eps, save_mean, save_invstd));
}

void batch_norm_forward_inference(const float* x, float* y, const float* weight, const float* bias,
                                  const float* running_mean, const float* running_var, int64_t n,
                                  int64_t c, int64_t hw, double eps) {
  check_eps(eps);
  const int64_t total = n * c * hw;
  if (total == 0) return;
  // Own kernel rather than cudnnBatchNormalizationForwardInference: one elementwise pass; cuDNN's
  // took 0.042 ms at [128, 512, 4, 4] on an H100 (7% of copy bandwidth, 5x its training forward).
  bn_eval_forward_kernel<<<grid_for(total), 256, 0, stream()>>>(x, y, weight, bias, running_mean, running_var,
                                                                total, c, hw, float(eps));
  OODKIT_CUDA_CHECK_LAUNCH();
}

void batch_norm_backward_training(const float* x, const float* dy, const float* weight,
                                  const float* save_mean, const float* save_invstd, float* dx,
                                  float* dweight, float* dbias, int64_t n, int64_t c, int64_t hw,
                                  double eps) {
  check_eps(eps);
  BnDescs d(n, c, hw);
  const float one = 1.0f, zero = 0.0f;
  OODKIT_CUDNN_CHECK(cudnnBatchNormalizationBackward(cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero,
                                                     d.x.desc, x, d.x.desc, dy, d.x.desc, dx, d.param.desc,
                                                     weight, dweight, dbias, eps, save_mean, save_invstd));
}

void batch_norm_backward_inference(const float* x, const float* dy, const float* weight,
                                   const float* mean, const float* var, float* dx, float* dweight,
                                   float* dbias, int64_t n, int64_t c, int64_t hw, double eps) {
  const int64_t total = n * c * hw;
  if (total == 0) return;
  if (dweight || dbias) {
    OODKIT_CHECK(c <= INT_MAX, "batch_norm (CUDA): too many channels: ", c);
    bn_eval_param_grad_kernel<<<unsigned(c), kReduceThreads, 0, stream()>>>(x, dy, mean, var, dweight, dbias, n,
                                                                            c, hw, eps);
    OODKIT_CUDA_CHECK_LAUNCH();
  }
  if (dx) {
    bn_eval_input_grad_kernel<<<grid_for(total), 256, 0, stream()>>>(dy, weight, var, dx, total, c, hw,
                                                                     float(eps));
    OODKIT_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace oodkit::cuda
