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
cublasHandle_t cublas(MathMode mode);  // the same handle with `mode`'s math (set only on a change)

// cuDNN math type for the current oodkit::math_mode() (FP32 -> CUDNN_FMA_MATH).
cudnnMathType_t cudnn_math_type();
// cuBLAS compute type for float GEMMs (FP32 -> CUBLAS_COMPUTE_32F, TF32 -> ..._FAST_TF32).
cublasComputeType_t cublas_compute_type();

// ---- device-side argument checks (no host sync on the hot path) ----------------------------
// A kernel that finds a bad argument value (a label outside [0, bound), say) records the first one
// in the current device's slot (report_bad_value in framework/cuda/device_check.cuh). The error is
// thrown, naming the op, the index and the value, by raise_device_checks(), which oodkit calls
// right after each host synchronisation of its stream (copy_device_to_host, i.e. Tensor::item and
// Tensor::cpu; cuda_synchronize) and, in OODKIT_CUDA_SYNC mode, after every launch.
struct DeviceCheckSlot {
  unsigned long long what;  // 0: nothing found; else a DeviceCheck code (first failure wins)
  long long index, value, bound;
};
enum DeviceCheck : unsigned long long { kCrossEntropyLabel = 1 };
// The current device's slot, marking a check as pending (call before launching the kernel).
DeviceCheckSlot* device_check_slot();
// Throws oodkit::Error for a failure recorded since the last call, and clears it. Call only after
// the stream was synchronised; costs nothing when no check is pending.
void raise_device_checks();

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
