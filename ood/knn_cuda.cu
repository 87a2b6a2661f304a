// Exact k-NN on CUDA, the faiss way: distances as ||q||^2 + ||c||^2 - 2 q.c with the product on
// cuBLAS, queries x database tiled to bound memory, and the norms fused into the per-tile top-k
// selection. The selection differs from faiss's warp queues: one thread block per query row runs
// a 4-pass radix select (8 bits per pass) over the float bits of the candidates' distances
// (non-negative floats order like their bit patterns), then gathers the k winners in candidate
// order, which gives the "smaller index wins ties" rule for free (see select_kernel), and sorts
// them by (distance, index) with a bitonic network after the last database tile. Cost per tile:
// five coalesced passes over the tile row, independent of k (k <= 1024).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "framework/cuda/context.h"
#include "framework/cuda_api.h"
#include "ood/knn_cuda.h"

namespace oodkit::cuda {

namespace {

constexpr int kThreads = 256;  // select_kernel block size == number of radix bins
constexpr int kWarps = kThreads / 32;
constexpr int kMaxK = 1024;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kDefaultDbTile = 16384;   // database rows per tile
constexpr int64_t kTileBudget = 1LL << 25;  // floats in the distance tile (128 MiB)

// Device scratch from oodkit's caching allocator, released on every path (stream-ordered reuse).
class Scratch {
 public:
  explicit Scratch(size_t bytes) : device_(current_device()), ptr_(alloc(bytes, device_)) {}
  ~Scratch() { release(ptr_, device_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  int device_;
  void* ptr_;
};

// out[r] = ||x[r, :]||^2, one warp per row.
__global__ void row_sq_norms_kernel(const float* x, int64_t rows, int64_t d, float* out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x / 32;
  const int64_t stride = int64_t(gridDim.x) * warps_per_block;
  for (int64_t r = int64_t(blockIdx.x) * warps_per_block + threadIdx.x / 32; r < rows; r += stride) {
    const float* row = x + r * d;
    float s = 0.f;
    for (int64_t j = lane; j < d; j += 32) s = fmaf(row[j], row[j], s);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(kFullMask, s, o);
    if (lane == 0) out[r] = s;
  }
}

// ||q||^2 + ||c||^2 + (-2 q.c), clamped at +0 (rounding), NaN -> +inf (ranks last). No product
// in the expression, so no FMA contraction: the CPU path forms the same sums.
__device__ __forceinline__ float fused_distance(float qn, float cn, float m2dot) {
  const float d = (qn + cn) + m2dot;
  if (isnan(d)) return __int_as_float(0x7f800000);
  return d > 0.f ? d : 0.f;
}

// Inclusive prefix sum of v over the kThreads threads of the block. warp_tot: kWarps shared words.
// Contains __syncthreads(): call from all threads.
__device__ __forceinline__ unsigned block_inclusive_scan(unsigned v, unsigned* warp_tot) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned t = __shfl_up_sync(kFullMask, v, o);
    if (lane >= o) v += t;
  }
  if (lane == 31) warp_tot[warp] = v;
  __syncthreads();
  unsigned off = 0;
  for (int w = 0; w < warp; ++w) off += warp_tot[w];
  __syncthreads();  // warp_tot may be rewritten by the next call
  return v + off;
}

// One block per query row of the tile; `k` best of the row's candidates, which are, in this
// order: the running best list of the earlier database tiles (best_d/best_i, k entries; none
// for the first tile) and the tile's columns j = 0..mt-1 (database rows m0 + j).
//   tile:  [rows, mt] = -2 q.c of this query tile and database tile (row stride mt)
//   qnorm: [rows] query norms; cnorm: [mt] norms of database rows m0..m0+mt-1
//   best_d / best_i: [rows, k], read (has_prev) and rewritten in place; after the last tile
//   (final) each row is sorted by (distance, index), before that it is kept in "candidate
//   order" (see below).
// Invariant making ties exact: among candidates with equal distance, candidate order is
// increasing index order. It holds for the tile (increasing j, and every earlier tile's rows
// are smaller than m0) and is preserved by the gather, which writes keys < T in candidate order
// then keys == T in candidate order. So taking the first `rank` candidates with key == T takes
// the `rank` smallest indices at distance T.
__global__ void __launch_bounds__(kThreads)
    select_kernel(const float* __restrict__ tile, int64_t mt, const float* __restrict__ qnorm,
                  const float* __restrict__ cnorm, int64_t m0, int k, float* best_d, int64_t* best_i,
                  bool has_prev, bool final) {
  __shared__ unsigned hist[kThreads];
  __shared__ unsigned warp_tot[kWarps];
  __shared__ unsigned warp_less[kWarps], warp_eq[kWarps];
  __shared__ unsigned s_prefix, s_rank;
  __shared__ unsigned sel_key[kMaxK];
  __shared__ int64_t sel_idx[kMaxK];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t row = blockIdx.x;
  const float* trow = tile + row * mt;
  float* bd = best_d + row * k;
  int64_t* bi = best_i + row * k;
  const float qn = qnorm[row];
  const int64_t kprev = has_prev ? k : 0;
  const int64_t n = kprev + mt;  // candidates; n >= k (the first tile has mt >= k)

  // Distances are >= +0 or +inf, so their bit patterns order like the values.
  auto key_at = [&](int64_t i) -> unsigned {
    if (i < kprev) return __float_as_uint(bd[i]);
    const int64_t j = i - kprev;
    return __float_as_uint(fused_distance(qn, cnorm[j], trow[j]));
  };
  auto index_at = [&](int64_t i) -> int64_t { return i < kprev ? bi[i] : m0 + (i - kprev); };

  // ---- radix select: T = the k-th smallest key; `rank` = how many keys == T to take ----
  unsigned prefix = 0, mask = 0, rank = unsigned(k);
  for (int shift = 24; shift >= 0; shift -= 8) {
    hist[tid] = 0;
    __syncthreads();
    for (int64_t base = 0; base < n; base += kThreads) {  // same trip count in every thread
      const int64_t i = base + tid;
      unsigned bin = 256u;  // no bin
      if (i < n) {
        const unsigned u = key_at(i);
        if ((u & mask) == prefix) bin = (u >> shift) & 255u;
      }
      // Lanes with the same bin add once (distances share their top bits, so bins collide).
      const unsigned peers = __match_any_sync(kFullMask, bin);
      if (bin < 256u && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], unsigned(__popc(peers)));
    }
    __syncthreads();
    const unsigned c = hist[tid];
    const unsigned incl = block_inclusive_scan(c, warp_tot);
    const unsigned excl = incl - c;
    if (excl < rank && rank <= incl) {  // exactly one bin holds the rank-th key
      s_prefix = prefix | (unsigned(tid) << shift);
      s_rank = rank - excl;
    }
    __syncthreads();
    prefix = s_prefix;
    rank = s_rank;
    mask |= 255u << shift;
  }
  const unsigned T = prefix;
  const unsigned n_less = unsigned(k) - rank;  // exactly this many keys are < T

  // ---- ordered gather: keys < T to slots [0, n_less), the first `rank` keys == T after them ----
  const unsigned lanes_below = (1u << lane) - 1u;
  unsigned run_less = 0, run_eq = 0;  // block-uniform running counts
  for (int64_t base = 0; base < n; base += kThreads) {
    const int64_t i = base + tid;
    const unsigned u = i < n ? key_at(i) : 0xffffffffu;
    const bool less = i < n && u < T, eq = i < n && u == T;
    const unsigned bl = __ballot_sync(kFullMask, less), be = __ballot_sync(kFullMask, eq);
    if (lane == 0) {
      warp_less[warp] = unsigned(__popc(bl));
      warp_eq[warp] = unsigned(__popc(be));
    }
    __syncthreads();
    unsigned off_less = 0, off_eq = 0, tot_less = 0, tot_eq = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) {
        off_less += warp_less[w];
        off_eq += warp_eq[w];
      }
      tot_less += warp_less[w];
      tot_eq += warp_eq[w];
    }
    if (less) {
      const unsigned s = run_less + off_less + unsigned(__popc(bl & lanes_below));
      sel_key[s] = u;
      sel_idx[s] = index_at(i);
    }
    if (eq) {
      const unsigned p = run_eq + off_eq + unsigned(__popc(be & lanes_below));
      if (p < rank) {
        sel_key[n_less + p] = u;
        sel_idx[n_less + p] = index_at(i);
      }
    }
    run_less += tot_less;
    run_eq += tot_eq;
    __syncthreads();  // warp_less / warp_eq are rewritten in the next round
    if (run_less >= n_less && run_eq >= rank) break;  // block-uniform
  }
  __syncthreads();

  if (!final) {
    for (int s = tid; s < k; s += kThreads) {
      bd[s] = __uint_as_float(sel_key[s]);
      bi[s] = sel_idx[s];
    }
    return;
  }

  // ---- last tile: bitonic sort of the k winners by (key, index), padded to a power of two ----
  int p2 = 1;
  while (p2 < k) p2 <<= 1;
  for (int s = k + tid; s < p2; s += kThreads) {
    sel_key[s] = 0xffffffffu;  // above +inf
    sel_idx[s] = INT64_MAX;
  }
  __syncthreads();
  for (int size = 2; size <= p2; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = tid; t < p2 / 2; t += kThreads) {
        const int a = 2 * stride * (t / stride) + (t % stride), b = a + stride;
        const bool ascending = (a & size) == 0;
        const unsigned ka = sel_key[a], kb = sel_key[b];
        const int64_t ia = sel_idx[a], ib = sel_idx[b];
        const bool a_after_b = ka > kb || (ka == kb && ia > ib);
        if (a_after_b == ascending) {
          sel_key[a] = kb;
          sel_key[b] = ka;
          sel_idx[a] = ib;
          sel_idx[b] = ia;
        }
      }
      __syncthreads();
    }
  }
  for (int s = tid; s < k; s += kThreads) {
    bd[s] = __uint_as_float(sel_key[s]);
    bi[s] = sel_idx[s];
  }
}

}  // namespace

void knn_search(const float* queries, const float* database, int64_t nq, int64_t nd, int64_t d, int64_t k,
                float* out_dist, int64_t* out_idx, int64_t query_tile, int64_t db_tile) {
  if (nq == 0) return;
  OODKIT_CHECK(k >= 1 && k <= kMaxK && k <= nd, "knn_search (CUDA): k = ", k, " must be in [1, min(", nd, ", ",
               kMaxK, ")]");
  OODKIT_CHECK(d >= 1 && d <= INT_MAX, "knn_search (CUDA): feature dimension ", d, " out of range");
  // Database tile: at least k rows, so that the first tile alone has k candidates.
  const int64_t mt = std::min(nd, std::max(db_tile > 0 ? db_tile : kDefaultDbTile, k));
  const int64_t qt = std::min(nq, query_tile > 0 ? query_tile : std::max<int64_t>(1, kTileBudget / mt));
  OODKIT_CHECK(mt <= INT_MAX && qt <= INT_MAX, "knn_search (CUDA): tile ", qt, " x ", mt,
               " exceeds cuBLAS's int range");

  Scratch qnorm(size_t(nq) * sizeof(float)), cnorm(size_t(nd) * sizeof(float));
  Scratch tile(size_t(qt) * size_t(mt) * sizeof(float));
  row_sq_norms_kernel<<<grid_for(nq * 32), 256, 0, stream()>>>(queries, nq, d, qnorm.as<float>());
  OODKIT_CUDA_CHECK_LAUNCH();
  row_sq_norms_kernel<<<grid_for(nd * 32), 256, 0, stream()>>>(database, nd, d, cnorm.as<float>());
  OODKIT_CUDA_CHECK_LAUNCH();

  // Strict FP32 whatever oodkit::math_mode() says (see ood/knn.h): pedantic compute type, and the
  // handle's math mode too (cublas() sets it again from math_mode() for the next caller).
  cublasHandle_t handle = cublas(MathMode::FP32);
  const float alpha = -2.f, beta = 0.f;
  for (int64_t q0 = 0; q0 < nq; q0 += qt) {
    const int64_t nqt = std::min(qt, nq - q0);
    for (int64_t m0 = 0; m0 < nd; m0 += mt) {
      const int64_t nmt = std::min(mt, nd - m0);
      // Row-major tile [nqt, nmt] = -2 Q[q0:q0+nqt] DB[m0:m0+nmt]^T, i.e. column-major
      // [nmt, nqt] = -2 DB_tile Q_tile^T: the row-major database tile reads as its column-major
      // transpose [d, nmt] (hence OP_T), the query tile as [d, nqt] (OP_N).
      OODKIT_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(nmt), int(nqt), int(d), &alpha,
                                       database + m0 * d, CUDA_R_32F, int(d), queries + q0 * d, CUDA_R_32F,
                                       int(d), &beta, tile.as<float>(), CUDA_R_32F, int(nmt),
                                       CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
      select_kernel<<<unsigned(nqt), kThreads, 0, stream()>>>(
          tile.as<float>(), nmt, qnorm.as<float>() + q0, cnorm.as<float>() + m0, m0, int(k), out_dist + q0 * k,
          out_idx + q0 * k, /*has_prev=*/m0 > 0, /*final=*/m0 + nmt >= nd);
      OODKIT_CUDA_CHECK_LAUNCH();
    }
  }
}

}  // namespace oodkit::cuda
