// CUDA kernels behind ood/scores.h. All reductions are fixed-order (warp shuffles, then shared
// memory read in a fixed order): results are deterministic and no float atomics are used.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "framework/cuda/context.h"
#include "ood/scores_cuda.h"

namespace oodkit::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
// Row elements (floats or float4s) each lane of a group loads at once and, for the feature-map
// deviations, keeps in registers for the second pass.
constexpr int kPerLane = 4;

// Maximum that propagates NaN (fmaxf drops it).
__device__ __forceinline__ float nan_max(float a, float b) { return (a > b || isnan(a)) ? a : b; }

// Reductions over aligned groups of G lanes (G a power of two <= 32). Every lane of the warp must
// call them (full mask); after the xor butterfly every lane of a group holds the same value.
template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}
template <int G>
__device__ __forceinline__ float group_max(float v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

// Sum over the block (kThreads threads, all must call); every thread gets the same value.
// `sh` holds kWarps floats; it may be reused as soon as this returns.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  v = group_sum<32>(v);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  float t = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) t += sh[w];
  __syncthreads();
  return t;
}

// Group size for rows of `units` elements: enough lanes that each loads at most kPerLane of them.
int group_for(int64_t units) {
  const int64_t per = (units + kPerLane - 1) / kPerLane;
  int g = 1;
  while (g < 32 && g < per) g <<= 1;
  return g;
}

int sm_count() {
  int sms = 0;
  OODKIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, current_device()));
  return sms > 0 ? sms : 1;
}

// ---- logit scores ------------------------------------------------------------------------------
//
// Groups of G lanes per row (kThreads / G rows per block step); the row loop is warp-uniform so all
// lanes reach the shuffles. Rows are contiguous, so a warp reads 32 / G consecutive rows.
template <int G>
__global__ void __launch_bounds__(kThreads)
    logit_score_kernel(const float* __restrict__ x, int64_t n, int64_t k, float t, int kind,
                       const float* __restrict__ z, int64_t d, float* __restrict__ out) {
  constexpr int kRowsPerWarp = 32 / G;
  const int lane_in_warp = threadIdx.x & 31;
  const int lane = lane_in_warp & (G - 1);
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  const float inv_t = 1.f / t;
  for (int64_t first = warp * kRowsPerWarp; first < n; first += warps * kRowsPerWarp) {
    const int64_t r = first + lane_in_warp / G;
    const bool valid = r < n;
    const float* xr = x + (valid ? r : 0) * k;
    float m = -INFINITY;
    if (valid)
      for (int64_t j = lane; j < k; j += G) m = nan_max(m, __ldg(xr + j));
    m = group_max<G>(m);
    float result = m;  // MaxLogit
    if (kind != int(LogitScoreKind::MaxLogit)) {
      float s = 0.f;
      if (valid)
        for (int64_t j = lane; j < k; j += G) s += expf((__ldg(xr + j) - m) * inv_t);
      s = group_sum<G>(s);
      if (kind == int(LogitScoreKind::Msp)) {
        result = 1.f / s;
      } else if (kind == int(LogitScoreKind::Energy)) {
        result = m + t * logf(s);
      } else {  // GradNorm: (sum_k |p_k - 1/K|) (sum_d |z_d|) / T
        const float inv_s = 1.f / s, inv_k = 1.f / float(k);
        float a = 0.f, b = 0.f;
        if (valid) {
          for (int64_t j = lane; j < k; j += G) a += fabsf(expf((__ldg(xr + j) - m) * inv_t) * inv_s - inv_k);
          const float* zr = z + r * d;
          for (int64_t j = lane; j < d; j += G) b += fabsf(__ldg(zr + j));
        }
        a = group_sum<G>(a);
        b = group_sum<G>(b);
        result = a * b * inv_t;
      }
    }
    if (valid && lane == 0) out[r] = result;
  }
}

template <int G>
void launch_logit(const float* x, int64_t n, int64_t k, float t, LogitScoreKind kind, const float* z, int64_t d,
                  float* out) {
  logit_score_kernel<G><<<grid_for(n * G, kThreads), kThreads, 0, stream()>>>(x, n, k, t, int(kind), z, d, out);
  OODKIT_CUDA_CHECK_LAUNCH();
}

// ---- feature-map scores ------------------------------------------------------------------------
//
// Work item = (sample s, chunk of channels [c0, c1)); one block per item (grid-stride). Groups of G
// lanes reduce one (s, c) row of hw floats each: sum and max, then the mean, then sum |x - mean|.
// Rows of at most G * kPerLane elements (all but huge maps) are loaded once into registers, so F is
// read from memory exactly once; longer rows re-read their elements for the deviations (from
// L1/L2). VEC: rows are read as float4 (hw % 4 == 0, F 16-byte aligned). The block then sums
// r^2, r and the deviations of its channels in a fixed order; with one chunk per sample it writes
// the scores, otherwise a partial triple per item that feature_map_finalize_kernel adds up.
template <bool VEC>
struct Unit;
template <>
struct Unit<true> {
  using type = float4;
};
template <>
struct Unit<false> {
  using type = float;
};

__device__ __forceinline__ float load_ro(const float* p) { return __ldg(p); }
__device__ __forceinline__ float4 load_ro(const float4* p) { return __ldg(p); }
__device__ __forceinline__ void add_stats(float v, float& s, float& m) {
  s += v;
  m = nan_max(m, v);
}
__device__ __forceinline__ void add_stats(const float4& v, float& s, float& m) {
  add_stats(v.x, s, m);
  add_stats(v.y, s, m);
  add_stats(v.z, s, m);
  add_stats(v.w, s, m);
}
__device__ __forceinline__ float abs_dev(float v, float mu) { return fabsf(v - mu); }
__device__ __forceinline__ float abs_dev(const float4& v, float mu) {
  return fabsf(v.x - mu) + fabsf(v.y - mu) + fabsf(v.z - mu) + fabsf(v.w - mu);
}

template <int G, bool VEC>
__global__ void __launch_bounds__(kThreads)
    feature_map_kernel(const float* __restrict__ f, int64_t n, int64_t c, int64_t hw, float eps, int64_t chunks,
                       int64_t cpc, float* __restrict__ z, float* __restrict__ partial, float* __restrict__ nap,
                       float* __restrict__ nap_u, float* __restrict__ fs) {
  using U = typename Unit<VEC>::type;
  constexpr int kGroupsPerWarp = 32 / G;
  __shared__ float red[3][kWarps];
  const int lane_in_warp = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int lane = lane_in_warp & (G - 1);
  const int64_t units = VEC ? hw / 4 : hw;
  const bool cached = units <= int64_t(G) * kPerLane;
  const float fhw = float(hw);
  for (int64_t item = blockIdx.x; item < n * chunks; item += gridDim.x) {
    const int64_t s = item / chunks, chunk = item - s * chunks;
    const int64_t c0 = chunk * cpc, c1 = c0 + cpc < c ? c0 + cpc : c;
    float acc_r2 = 0.f, acc_r = 0.f, acc_dev = 0.f;  // meaningful in group leaders only
    for (int64_t cb = c0 + int64_t(warp) * kGroupsPerWarp; cb < c1; cb += int64_t(kWarps) * kGroupsPerWarp) {
      const int64_t ch = cb + lane_in_warp / G;
      const bool valid = ch < c1;
      const U* row = reinterpret_cast<const U*>(f + (s * c + (valid ? ch : c0)) * hw);
      float sum = 0.f, mx = -INFINITY, dev = 0.f, mean;
      if (cached) {
        U v[kPerLane] = {};
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) {
          const int64_t j = lane + int64_t(e) * G;
          if (valid && j < units) v[e] = load_ro(row + j);
        }
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) {
          const int64_t j = lane + int64_t(e) * G;
          if (valid && j < units) add_stats(v[e], sum, mx);
        }
        sum = group_sum<G>(sum);
        mx = group_max<G>(mx);
        mean = sum / fhw;
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) {
          const int64_t j = lane + int64_t(e) * G;
          if (valid && j < units) dev += abs_dev(v[e], mean);
        }
      } else {
        if (valid) {
#pragma unroll 4
          for (int64_t j = lane; j < units; j += G) add_stats(load_ro(row + j), sum, mx);
        }
        sum = group_sum<G>(sum);
        mx = group_max<G>(mx);
        mean = sum / fhw;
        if (valid) {
#pragma unroll 4
          for (int64_t j = lane; j < units; j += G) dev += abs_dev(load_ro(row + j), mean);
        }
      }
      dev = group_sum<G>(dev);
      if (valid && lane == 0) {
        if (z) z[s * c + ch] = mean;
        const float r = mx / (mean + eps);
        acc_r2 += r * r;
        acc_r += r;
        acc_dev += dev;
      }
    }
    acc_r2 = group_sum<32>(acc_r2);
    acc_r = group_sum<32>(acc_r);
    acc_dev = group_sum<32>(acc_dev);
    if (lane_in_warp == 0) {
      red[0][warp] = acc_r2;
      red[1][warp] = acc_r;
      red[2][warp] = acc_dev;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float a2 = 0.f, a1 = 0.f, ad = 0.f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        a2 += red[0][w];
        a1 += red[1][w];
        ad += red[2][w];
      }
      if (chunks == 1) {
        nap[s] = a2 / float(c);
        nap_u[s] = a1 / float(c);
        fs[s] = ad / (float(c) * fhw);
      } else {
        partial[item * 3 + 0] = a2;
        partial[item * 3 + 1] = a1;
        partial[item * 3 + 2] = ad;
      }
    }
    __syncthreads();  // red is reused by the next item
  }
}

// Adds each sample's chunk partials in chunk order.
__global__ void feature_map_finalize_kernel(const float* __restrict__ partial, int64_t n, int64_t chunks, int64_t c,
                                            int64_t hw, float* __restrict__ nap, float* __restrict__ nap_u,
                                            float* __restrict__ fs) {
  OODKIT_GRID_STRIDE(s, n) {
    float a2 = 0.f, a1 = 0.f, ad = 0.f;
    for (int64_t q = 0; q < chunks; ++q) {
      const float* p = partial + (s * chunks + q) * 3;
      a2 += p[0];
      a1 += p[1];
      ad += p[2];
    }
    nap[s] = a2 / float(c);
    nap_u[s] = a1 / float(c);
    fs[s] = ad / (float(c) * float(hw));
  }
}

template <int G, bool VEC>
void launch_feature_map(const float* f, int64_t n, int64_t c, int64_t hw, float eps, float* z, float* nap,
                        float* nap_u, float* fs) {
  // Split each sample's channels into chunks when there are too few samples to give every SM
  // several blocks (e.g. [64, 2048, 7, 7]), but never below one full step of the block's groups.
  const int64_t groups_per_block = kThreads / G;
  const int64_t target_blocks = int64_t(sm_count()) * 8;
  int64_t chunks = 1;
  if (n < target_blocks) {
    const int64_t want = (target_blocks + n - 1) / n;
    const int64_t most = (c + groups_per_block - 1) / groups_per_block;
    chunks = want < most ? want : most;
    if (chunks < 1) chunks = 1;
  }
  const int64_t cpc = (c + chunks - 1) / chunks;
  chunks = (c + cpc - 1) / cpc;  // no empty chunk
  float* partial = nullptr;
  if (chunks > 1) partial = static_cast<float*>(workspace(sizeof(float) * size_t(n * chunks * 3)));
  const int64_t items = n * chunks;
  const unsigned blocks = unsigned(items < 65535LL * 8 ? items : 65535LL * 8);
  feature_map_kernel<G, VEC><<<blocks, kThreads, 0, stream()>>>(f, n, c, hw, eps, chunks, cpc, z, partial, nap,
                                                                nap_u, fs);
  OODKIT_CUDA_CHECK_LAUNCH();
  if (chunks > 1) {
    feature_map_finalize_kernel<<<grid_for(n), kThreads, 0, stream()>>>(partial, n, chunks, c, hw, nap, nap_u, fs);
    OODKIT_CUDA_CHECK_LAUNCH();
  }
}

template <bool VEC>
void dispatch_feature_map(const float* f, int64_t n, int64_t c, int64_t hw, float eps, float* z, float* nap,
                          float* nap_u, float* fs) {
  switch (group_for(VEC ? hw / 4 : hw)) {
    case 1: launch_feature_map<1, VEC>(f, n, c, hw, eps, z, nap, nap_u, fs); break;
    case 2: launch_feature_map<2, VEC>(f, n, c, hw, eps, z, nap, nap_u, fs); break;
    case 4: launch_feature_map<4, VEC>(f, n, c, hw, eps, z, nap, nap_u, fs); break;
    case 8: launch_feature_map<8, VEC>(f, n, c, hw, eps, z, nap, nap_u, fs); break;
    case 16: launch_feature_map<16, VEC>(f, n, c, hw, eps, z, nap, nap_u, fs); break;
    default: launch_feature_map<32, VEC>(f, n, c, hw, eps, z, nap, nap_u, fs); break;
  }
}

// ---- ASH ---------------------------------------------------------------------------------------
//
// One block per row (grid-stride). The k-th largest entry is found by an exact radix select on
// order-preserving 32-bit keys (4 passes of 8 bits, shared-memory integer histograms), which needs
// no copy of the row: each pass re-reads it (from L1/L2 after the first). Entries equal to the
// k-th are kept in index order (a block-wide ballot prefix count) until k are kept.

// Order-preserving key: a > b (as numbers) <=> key(a) > key(b); -0 and +0 share a key and every NaN
// maps to the largest key (torch.topk ranks NaN first).
__device__ __forceinline__ uint32_t rank_key(float v) {
  if (isnan(v)) return 0xffffffffu;
  uint32_t u = __float_as_uint(v);
  if ((u & 0x7fffffffu) == 0u) u = 0u;  // -0 -> +0
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Calls f(i, v, keep) for every entry of the row, keep saying whether it is one of the k kept
// (key > kth, or key == kth and among the first krem such entries by index). All threads of the
// block must call it (it synchronises); `wcount` holds kWarps counters.
template <class F>
__device__ __forceinline__ void for_each_ranked(const float* __restrict__ zr, int64_t d, uint32_t kth, uint32_t krem,
                                                unsigned* wcount, F&& f) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t eq_before = 0;  // equal keys at lower indices, from earlier rounds (same in all threads)
  for (int64_t base = 0; base < d; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    float v = 0.f;
    uint32_t key = 0u;
    if (i < d) {
      v = zr[i];
      key = rank_key(v);
    }
    const bool eq = i < d && key == kth;
    const unsigned bal = __ballot_sync(kFull, eq);
    if (lane == 0) wcount[warp] = unsigned(__popc(bal));
    __syncthreads();
    uint32_t rank = eq_before + uint32_t(__popc(bal & ((1u << lane) - 1u)));
    uint32_t round_total = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) rank += wcount[w];
      round_total += wcount[w];
    }
    __syncthreads();  // wcount is rewritten by the next round
    eq_before += round_total;
    if (i < d) f(i, v, key > kth || (eq && rank < krem));
  }
}

__global__ void __launch_bounds__(kThreads)
    ash_kernel(const float* __restrict__ z, float* __restrict__ y, int64_t n, int64_t d, int64_t k, int mode) {
  __shared__ unsigned hist[256];
  __shared__ float red[kWarps];
  __shared__ unsigned wcount[kWarps];
  __shared__ unsigned sel_digit, sel_krem;
  static_assert(kThreads == 256, "one histogram bin per thread");
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float* zr = z + row * d;
    float* yr = y + row * d;
    float s1 = 0.f;
    for (int64_t i = tid; i < d; i += kThreads) s1 += zr[i];
    s1 = block_sum(s1, red);

    // Radix select of the k-th largest key: after each pass `prefix` holds its top bits and krem
    // the rank it still has among the keys sharing them.
    uint32_t prefix = 0u, mask = 0u, krem = uint32_t(k);
    for (int shift = 24; shift >= 0; shift -= 8) {
      hist[tid] = 0u;
      __syncthreads();
      for (int64_t i = tid; i < d; i += kThreads) {
        const uint32_t key = rank_key(zr[i]);
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xffu], 1u);
      }
      __syncthreads();
      if (warp == 0) {
        // Lane l holds bins [8l, 8l + 8); `above` counts the keys in higher bins.
        unsigned cnt[8];
        unsigned tot = 0u;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          cnt[e] = hist[lane * 8 + e];
          tot += cnt[e];
        }
        unsigned incl = tot;  // inclusive suffix sum over lanes l..31
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
          const unsigned other = __shfl_down_sync(kFull, incl, o);
          if (lane + o < 32) incl += other;
        }
        unsigned above = incl - tot;
#pragma unroll
        for (int e = 7; e >= 0; --e) {
          if (above < krem && above + cnt[e] >= krem) {  // exactly one bin of the warp
            sel_digit = unsigned(lane * 8 + e);
            sel_krem = krem - above;
          }
          above += cnt[e];
        }
      }
      __syncthreads();
      prefix |= sel_digit << shift;
      mask |= 0xffu << shift;
      krem = sel_krem;
      // sel_* are rewritten only after the next pass's two barriers: no barrier needed here.
    }
    const uint32_t kth = prefix;

    if (mode == 2) {  // Scale
      float s2 = 0.f;
      for_each_ranked(zr, d, kth, krem, wcount, [&](int64_t, float v, bool keep) {
        if (keep) s2 += v;
      });
      s2 = block_sum(s2, red);
      const float scale = (s1 == 0.f && s2 == 0.f) ? 1.f : expf(s1 / s2);
      for_each_ranked(zr, d, kth, krem, wcount,
                      [&](int64_t i, float v, bool keep) { yr[i] = keep ? v * scale : 0.f; });
    } else {
      const float fill = s1 / float(k);
      const bool prune = mode == 0;
      for_each_ranked(zr, d, kth, krem, wcount,
                      [&](int64_t i, float v, bool keep) { yr[i] = keep ? (prune ? v : fill) : 0.f; });
    }
  }
}

// ---- fusions -----------------------------------------------------------------------------------

__global__ void geometric_fusion_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                        float* __restrict__ out, int64_t n, float w, float floor_v) {
  OODKIT_GRID_STRIDE(i, n) {
    const float x = a[i], y = b[i];
    out[i] = (isnan(x) || isnan(y)) ? NAN : powf(fmaxf(x, floor_v), w) * powf(fmaxf(y, floor_v), 1.f - w);
  }
}

__global__ void linear_fusion_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                     float* __restrict__ out, int64_t n, float lambda) {
  OODKIT_GRID_STRIDE(i, n) out[i] = a[i] + lambda * b[i];
}

__global__ void affine_fusion_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                     float* __restrict__ out, int64_t n, float ca, float cb, float c0) {
  OODKIT_GRID_STRIDE(i, n) out[i] = ca * a[i] + cb * b[i] + c0;
}

// One block per image (grid-stride over images): each thread takes pixels p = tid, tid + kThreads,
// ..., the max over channels of |h| (NaN-propagating), summed in a fixed order, then block_sum.
__global__ void __launch_bounds__(kThreads)
heatmap_score_kernel(const float* __restrict__ h, int64_t n, int64_t c, int64_t hw, float* __restrict__ out) {
  __shared__ float sh[kWarps];
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float* img = h + i * c * hw;
    float part = 0.f;
    for (int64_t p = threadIdx.x; p < hw; p += kThreads) {
      float m = fabsf(img[p]);
      for (int64_t ch = 1; ch < c; ++ch) m = nan_max(m, fabsf(img[ch * hw + p]));
      part += m;
    }
    const float total = block_sum(part, sh);
    if (threadIdx.x == 0) out[i] = -total / float(hw);
  }
}

}  // namespace

void score_logits(const float* x, int64_t n, int64_t k, float temperature, LogitScoreKind kind, const float* z,
                  int64_t d, float* out) {
  if (n == 0) return;
  const int64_t widest = kind == LogitScoreKind::GradNorm && d > k ? d : k;
  switch (group_for(widest)) {
    case 1: launch_logit<1>(x, n, k, temperature, kind, z, d, out); break;
    case 2: launch_logit<2>(x, n, k, temperature, kind, z, d, out); break;
    case 4: launch_logit<4>(x, n, k, temperature, kind, z, d, out); break;
    case 8: launch_logit<8>(x, n, k, temperature, kind, z, d, out); break;
    case 16: launch_logit<16>(x, n, k, temperature, kind, z, d, out); break;
    default: launch_logit<32>(x, n, k, temperature, kind, z, d, out); break;
  }
}

void score_feature_maps(const float* f, int64_t n, int64_t c, int64_t hw, float eps, float* z, float* nap,
                        float* nap_unsquared, float* fs) {
  if (n == 0) return;
  const bool vec = hw % 4 == 0 && reinterpret_cast<uintptr_t>(f) % 16 == 0;
  if (vec)
    dispatch_feature_map<true>(f, n, c, hw, eps, z, nap, nap_unsquared, fs);
  else
    dispatch_feature_map<false>(f, n, c, hw, eps, z, nap, nap_unsquared, fs);
}

void score_ash(const float* z, float* y, int64_t n, int64_t d, int64_t k, int mode) {
  if (n == 0) return;
  OODKIT_CHECK(d < (int64_t(1) << 31) && k >= 1 && k <= d, "ash (CUDA): unsupported sizes D = ", d, ", k = ", k);
  const unsigned blocks = unsigned(n < 65535LL * 8 ? n : 65535LL * 8);
  ash_kernel<<<blocks, kThreads, 0, stream()>>>(z, y, n, d, k, mode);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void score_geometric_fusion(const float* a, const float* b, float* out, int64_t n, float w, float floor) {
  if (n == 0) return;
  geometric_fusion_kernel<<<grid_for(n), kThreads, 0, stream()>>>(a, b, out, n, w, floor);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void score_linear_fusion(const float* a, const float* b, float* out, int64_t n, float lambda) {
  if (n == 0) return;
  linear_fusion_kernel<<<grid_for(n), kThreads, 0, stream()>>>(a, b, out, n, lambda);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void score_affine_fusion(const float* a, const float* b, float* out, int64_t n, float ca, float cb, float c0) {
  if (n == 0) return;
  affine_fusion_kernel<<<grid_for(n), kThreads, 0, stream()>>>(a, b, out, n, ca, cb, c0);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void score_heatmap(const float* h, int64_t n, int64_t c, int64_t hw, float* out) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>(n, int64_t(sm_count()) * 8);
  heatmap_score_kernel<<<unsigned(blocks), kThreads, 0, stream()>>>(h, n, c, hw, out);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
