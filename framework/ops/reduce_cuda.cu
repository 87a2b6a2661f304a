#include "framework/cuda/reduce.cuh"
#include "framework/ops/reduce_cuda.h"

namespace oodkit::cuda {

namespace {
// Reductions: one thread per output (o, i), consecutive threads take consecutive i, so the
// loads of one step j are coalesced when inner > 1.
__global__ void sum_dim_kernel(const float* x, float* y, int64_t outer, int64_t r, int64_t inner) {
  OODKIT_GRID_STRIDE(t, outer * inner) {
    const int64_t o = t / inner, i = t - o * inner;
    const float* p = x + o * r * inner + i;
    double acc = 0.0;
    for (int64_t j = 0; j < r; ++j) acc += double(p[j * inner]);
    y[t] = float(acc);
  }
}

__global__ void max_dim_kernel(const float* x, float* y, int64_t* idx, int64_t outer, int64_t r, int64_t inner) {
  OODKIT_GRID_STRIDE(t, outer * inner) {
    const int64_t o = t / inner, i = t - o * inner;
    const float* p = x + o * r * inner + i;
    float best = p[0];
    int64_t bj = 0;
    for (int64_t j = 1; j < r && !isnan(best); ++j) {
      const float u = p[j * inner];
      if (u > best || isnan(u)) {
        best = u;
        bj = j;
      }
    }
    if (y) y[t] = best;
    idx[t] = bj;
  }
}

__global__ void expand_dim_kernel(const float* x, float* y, int64_t outer, int64_t r, int64_t inner) {
  OODKIT_GRID_STRIDE(e, outer * r * inner) {
    const int64_t i = e % inner, o = e / (r * inner);
    y[e] = x[o * inner + i];
  }
}

__global__ void max_dim_backward_kernel(const float* g, const int64_t* idx, float* dx, int64_t outer, int64_t r,
                                        int64_t inner) {
  OODKIT_GRID_STRIDE(e, outer * r * inner) {
    const int64_t i = e % inner, oj = e / inner, o = oj / r, j = oj - o * r;
    const int64_t t = o * inner + i;
    dx[e] = idx[t] == j ? g[t] : 0.f;
  }
}

// The tensor list of one all_finite launch, passed by value as a kernel parameter.
struct FiniteList {
  const float* data[kAllFiniteChunk];
  int64_t numel[kAllFiniteChunk];
};

// blockIdx.y picks the tensor; the blocks along x stride over its elements.
__global__ void all_finite_kernel(FiniteList list, float* flag) {
  const float* p = list.data[blockIdx.y];
  const int64_t n = list.numel[blockIdx.y];
  bool bad = false;
  OODKIT_GRID_STRIDE(i, n) bad |= !isfinite(p[i]);
  if (bad) *flag = 0.f;  // every writer stores the same value
}
}  // namespace

void sum_dim(const float* x, float* y, int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  sum_dim_kernel<<<grid_for(outer * inner), 256, 0, stream()>>>(x, y, outer, r, inner);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void max_dim(const float* x, float* y, int64_t* idx, int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  max_dim_kernel<<<grid_for(outer * inner), 256, 0, stream()>>>(x, y, idx, outer, r, inner);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void expand_dim(const float* x, float* y, int64_t outer, int64_t r, int64_t inner) {
  if (outer * r * inner == 0) return;
  expand_dim_kernel<<<grid_for(outer * r * inner), 256, 0, stream()>>>(x, y, outer, r, inner);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void max_dim_backward(const float* g, const int64_t* idx, float* dx, int64_t outer, int64_t r, int64_t inner) {
  if (outer * r * inner == 0) return;
  max_dim_backward_kernel<<<grid_for(outer * r * inner), 256, 0, stream()>>>(g, idx, dx, outer, r, inner);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void all_finite_chunk(const float* const* data, const int64_t* numel, int count, float* flag) {
  if (count <= 0) return;
  FiniteList list{};
  int64_t largest = 0;
  for (int t = 0; t < count; ++t) {
    list.data[t] = data[t];
    list.numel[t] = numel[t];
    largest = numel[t] > largest ? numel[t] : largest;
  }
  // Enough blocks along x for the largest tensor (capped: the loop strides), one row per tensor.
  unsigned bx = grid_for(largest);
  if (bx > 1024) bx = 1024;
  all_finite_kernel<<<dim3(bx, unsigned(count)), 256, 0, stream()>>>(list, flag);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
