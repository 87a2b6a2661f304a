#include "framework/cuda/reduce.cuh"

namespace oodkit::cuda {

namespace {
__global__ void finish_partial_sums_kernel(const double* partial, int count, float* out, double scale) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += kReduceThreads) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = float(acc * scale);
}
}  // namespace

void finish_partial_sums(const double* partial, int count, float* out, double scale) {
  finish_partial_sums_kernel<<<1, kReduceThreads, 0, stream()>>>(partial, count, out, scale);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
