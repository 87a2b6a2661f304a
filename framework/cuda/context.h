// Per-device CUDA state shared by all kernels (CUDA translation units only): one stream,
// one cuDNN handle and one cuBLAS handle per device, created on first use and bound to
// that stream. All oodkit work on a device is ordered on its stream.
#pragma once
#include <cstdint>

#include "framework/cuda/check.h"

namespace oodkit::cuda {

int current_device();
cudaStream_t stream();
cudnnHandle_t cudnn();
cublasHandle_t cublas();  // math mode follows oodkit::math_mode() at each call of this

// cuDNN math type for the current oodkit::math_mode() (FP32 -> CUDNN_FMA_MATH).
cudnnMathType_t cudnn_math_type();
// cuBLAS compute type for float GEMMs (FP32 -> CUBLAS_COMPUTE_32F, TF32 -> ..._FAST_TF32).
cublasComputeType_t cublas_compute_type();

// A workspace buffer on the current device, grown on demand, valid until the next call
// on the same stream asks for one.
void* workspace(size_t bytes);

// Grid size for a 1-D launch over n elements (capped; kernels use grid-stride loops).
inline unsigned grid_for(int64_t n, unsigned threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535LL * 8) b = 65535LL * 8;
  return unsigned(b);
}

}  // namespace oodkit::cuda

// Grid-stride loop over [0, n) for 1-D kernels launched with grid_for(n).
#define OODKIT_GRID_STRIDE(i, n)                                                        \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < int64_t(n); \
       i += int64_t(gridDim.x) * blockDim.x)
