// CUDA launchers behind framework/ops/batch_norm.h (float32, current device, oodkit stream).
// Layout: x is [n, c, hw] contiguous (hw = H*W, or 1 for 2-d inputs); per-channel tensors are [c].
#pragma once
#include <cstdint>

namespace oodkit::cuda {

// Training forward (cuDNN, spatial mode): y = (x - mean) * invstd * weight + bias with batch
// statistics; writes save_mean / save_invstd ([c], invstd = 1/sqrt(biased var + eps)) and
// updates running_mean / running_var in place with factor `momentum` (unbiased variance).
// weight and bias must be non-null (pass ones / zeros for a non-affine layer).
void batch_norm_forward_training(const float* x, float* y, const float* weight, const float* bias,
                                 float* running_mean, float* running_var, float* save_mean,
                                 float* save_invstd, int64_t n, int64_t c, int64_t hw, double momentum,
                                 double eps);

// Inference forward (cuDNN): y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
// weight and bias must be non-null.
void batch_norm_forward_inference(const float* x, float* y, const float* weight, const float* bias,
                                  const float* running_mean, const float* running_var, int64_t n,
                                  int64_t c, int64_t hw, double eps);

// Training backward (cuDNN) from the saved batch statistics of the forward: writes dx [n,c,hw],
// dweight = sum(dy * xhat) and dbias = sum(dy) ([c]). All pointers non-null.
void batch_norm_backward_training(const float* x, const float* dy, const float* weight,
                                  const float* save_mean, const float* save_invstd, float* dx,
                                  float* dweight, float* dbias, int64_t n, int64_t c, int64_t hw,
                                  double eps);

// Inference backward (own kernels; the op is affine in x): with invstd = 1/sqrt(var + eps),
// dx = dy * weight * invstd, dweight = sum(dy * (x - mean) * invstd), dbias = sum(dy).
// weight == nullptr means 1; dx / dweight / dbias may each be nullptr (not computed);
// x may be nullptr when dweight is.
void batch_norm_backward_inference(const float* x, const float* dy, const float* weight,
                                   const float* mean, const float* var, float* dx, float* dweight,
                                   float* dbias, int64_t n, int64_t c, int64_t hw, double eps);

}  // namespace oodkit::cuda
