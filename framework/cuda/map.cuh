// CUDA side of framework/ops/map.h: one grid-stride kernel per kind of map, and launchers with
// the checks every oodkit launch has (nothing to do for n == 0, grid_for(n) blocks of
// kMapThreads threads, oodkit's stream on the current device, OODKIT_CUDA_CHECK_LAUNCH).
// Include it only from .cu files, which instantiate the launchers for their functors.
#pragma once
#include "framework/cuda/context.h"
#include "framework/ops/map.h"

namespace oodkit::cuda {

constexpr unsigned kMapThreads = 256;

namespace detail {
template <class F>
__global__ void for_n_kernel(int64_t n, F f) {
  OODKIT_GRID_STRIDE(i, n) f(i);
}

template <class Op, class T, class... In>
__global__ void map_kernel(Op op, int64_t n, T* out, const In*... in) {
  OODKIT_GRID_STRIDE(i, n) out[i] = op(in[i]...);
}
}  // namespace detail

template <class F>
void for_n(int64_t n, const F& f) {
  if (n == 0) return;
  detail::for_n_kernel<<<grid_for(n, kMapThreads), kMapThreads, 0, stream()>>>(n, f);
  OODKIT_CUDA_CHECK_LAUNCH();
}

template <class Op, class T, class... In>
void map_n(const Op& op, int64_t n, T* out, const In*... in) {
  if (n == 0) return;
  detail::map_kernel<<<grid_for(n, kMapThreads), kMapThreads, 0, stream()>>>(op, n, out, in...);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
