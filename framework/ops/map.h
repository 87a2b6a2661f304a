// Elementwise maps written once. An elementwise op is a functor: one formula, marked OODKIT_HD,
// that both the CPU loop below and the CUDA kernel (framework/cuda/map.cuh) call per element.
//
//   map_n(op, n, out, in...)   out[i] = op(in[i]...)   for i in [0, n)
//   for_n(n, f)                f(i)                    for i in [0, n)   (a functor that needs the
//                                                       index, or writes several outputs)
//
// ops::map_n / ops::for_n run on the CPU (OpenMP from kMapParallelMin elements; each element is
// computed by the same expression whatever the thread count, so results do not depend on it).
// cuda::map_n / cuda::for_n run on the current CUDA device, on oodkit's stream; they are declared
// here so that .cpp files can call them (inside OODKIT_CUDA_CALL), and a .cu file instantiates
// them once per functor, e.g.
//   template void cuda::map_n(const ops::Relu<float>&, int64_t, float*, const float*);
// Functors are small trivially copyable structs (they are passed to the kernel by value); any
// pointers they hold point to memory on the device they run on.
#pragma once
#include <cstdint>

#include "framework/host_device.h"

namespace oodkit {

namespace ops {

// Elementwise CPU loops go parallel from this many elements.
constexpr int64_t kMapParallelMin = int64_t(1) << 15;

template <class F>
void for_n(int64_t n, const F& f) {
#pragma omp parallel for schedule(static) if (n >= kMapParallelMin)
  for (int64_t i = 0; i < n; ++i) f(i);
}

template <class Op, class T, class... In>
void map_n(const Op& op, int64_t n, T* out, const In*... in) {
#pragma omp parallel for schedule(static) if (n >= kMapParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = op(in[i]...);
}

}  // namespace ops

namespace cuda {
// Defined in framework/cuda/map.cuh; no-ops for n == 0.
template <class F>
void for_n(int64_t n, const F& f);
template <class Op, class T, class... In>
void map_n(const Op& op, int64_t n, T* out, const In*... in);
}  // namespace cuda

}  // namespace oodkit
