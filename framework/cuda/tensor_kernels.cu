#include "framework/cuda/context.h"
#include "framework/cuda/tensor_kernels.h"

namespace oodkit::cuda {

namespace {
template <class T>
__global__ void fill_kernel(T* dst, int64_t n, T value) {
  OODKIT_GRID_STRIDE(i, n) dst[i] = value;
}

template <class S, class D>
__global__ void cast_kernel(const S* src, D* dst, int64_t n) {
  OODKIT_GRID_STRIDE(i, n) dst[i] = static_cast<D>(src[i]);
}

template <class F>
void with_type(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); break;
    case DType::F64: f(double{}); break;
    case DType::U8: f(uint8_t{}); break;
    case DType::I32: f(int32_t{}); break;
    case DType::I64: f(int64_t{}); break;
  }
}
}  // namespace

void fill(void* dst, DType dtype, int64_t n, double value, int device) {
  if (n == 0) return;
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<grid_for(n), 256, 0, stream()>>>(static_cast<T*>(dst), n, static_cast<T>(value));
  });
  OODKIT_CUDA_CHECK_LAUNCH();
}

void cast(const void* src, DType sdt, void* dst, DType ddt, int64_t n, int device) {
  if (n == 0) return;
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  with_type(sdt, [&](auto stag) {
    using S = decltype(stag);
    with_type(ddt, [&](auto dtag) {
      using D = decltype(dtag);
      cast_kernel<S, D><<<grid_for(n), 256, 0, stream()>>>(static_cast<const S*>(src), static_cast<D*>(dst), n);
    });
  });
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
