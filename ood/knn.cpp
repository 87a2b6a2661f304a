#include "ood/knn.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "framework/cuda_api.h"
#include "framework/error.h"
#include "ood/knn_cuda.h"

namespace oodkit::ood {

namespace {

using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Queries per GEMM (one OpenMP work item), at most, and database rows per GEMM: up to a
// 1024 x 1024 float tile (4 MiB per thread). Large query blocks amortise Eigen's packing of each
// database tile: 65 Gflop/s per core with 64 queries, 91 with 256, 100 with 1000 (AVX2 + FMA,
// bench_ood_fit_score --gemm-tiles).
constexpr int64_t kCpuMaxQueryBlock = 1024;
constexpr int64_t kCpuDbTile = 1024;

// ||q||^2 + ||c||^2 + (-2 q.c), as the CUDA kernel forms it: clamped at +0, NaN ranks as +inf.
inline float fused_distance(float qn, float cn, float m2dot) {
  const float d = (qn + cn) + m2dot;
  if (std::isnan(d)) return std::numeric_limits<float>::infinity();
  return d > 0.f ? d : 0.f;
}

struct Candidate {
  float dist;
  int64_t index;
};
// The result order: by distance, then by index.
inline bool before(const Candidate& a, const Candidate& b) {
  return a.dist < b.dist || (a.dist == b.dist && a.index < b.index);
}

// Offers the database rows m0 .. m0 + n - 1 (squared norms cn[0 .. n), dot products dots[0 .. n)
// with one query of squared norm qn) to that query's heap: a max-heap under before() holding the
// k best so far, whose front is the worst kept. Candidates come in increasing index order, so an
// equal distance never displaces a kept one: once the heap is full, a candidate enters iff its
// distance is below the front's. The distances of a chunk are computed into a buffer first (a
// loop the compiler vectorises) and the chunk is skipped when none is below that bound, which is
// almost always the case after the first tiles; the heap sees exactly the insertions of the
// one-at-a-time loop, so the result is the same.
void select_row(std::vector<Candidate>& heap, int64_t k, float qn, const float* cn, const float* dots, int64_t n,
                int64_t m0) {
  constexpr int64_t kChunk = 32;
  float dist[kChunk];
  for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
    const int64_t len = std::min(kChunk, n - j0);
    for (int64_t j = 0; j < len; ++j) dist[j] = fused_distance(qn, cn[j0 + j], -2.f * dots[j0 + j]);
    if (int64_t(heap.size()) == k) {
      const float bound = heap.front().dist;
      int below = 0;
      for (int64_t j = 0; j < len; ++j) below |= dist[j] < bound;
      if (!below) continue;
    }
    for (int64_t j = 0; j < len; ++j) {
      const Candidate c{dist[j], m0 + j0 + j};
      if (int64_t(heap.size()) < k) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), before);
      } else if (before(c, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), before);
        heap.back() = c;
        std::push_heap(heap.begin(), heap.end(), before);
      }
    }
  }
}

// queries [nq, d], database [nd, d] -> out_dist / out_idx [nq, k] (see knn.h).
void knn_cpu(const float* queries, const float* database, int64_t nq, int64_t nd, int64_t d, int64_t k,
             float* out_dist, int64_t* out_idx, int64_t query_tile, int64_t db_tile) {
  const Eigen::Map<const RowMatF> Q(queries, nq, d), DB(database, nd, d);
  std::vector<float> qnorm(static_cast<size_t>(nq)), cnorm(static_cast<size_t>(nd));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < nq; ++i) qnorm[size_t(i)] = Q.row(i).squaredNorm();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < nd; ++i) cnorm[size_t(i)] = DB.row(i).squaredNorm();

  const int64_t mt = std::min(nd, db_tile > 0 ? std::max(db_tile, k) : std::max(kCpuDbTile, k));
  // A multiple of the thread count of equal query blocks (every thread gets the same number),
  // at most kCpuMaxQueryBlock queries each.
  const int64_t threads = std::max(1, omp_get_max_threads());
  const int64_t rounds = (nq + threads * kCpuMaxQueryBlock - 1) / (threads * kCpuMaxQueryBlock);
  const int64_t qb = query_tile > 0 ? std::min(query_tile, nq)
                                    : std::max<int64_t>(1, (nq + threads * rounds - 1) / (threads * rounds));
  const int64_t nblocks = (nq + qb - 1) / qb;

  // Always inside a parallel region, so Eigen's GEMM stays single-threaded per work item.
#pragma omp parallel
  {
    RowMatF dots(qb, mt);
    std::vector<std::vector<Candidate>> heaps(static_cast<size_t>(qb));
    for (auto& h : heaps) h.reserve(size_t(k));
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t q0 = b * qb, nqb = std::min(qb, nq - q0);
      for (auto& h : heaps) h.clear();
      for (int64_t m0 = 0; m0 < nd; m0 += mt) {
        const int64_t nmb = std::min(mt, nd - m0);
        auto tile = dots.topLeftCorner(nqb, nmb);
        tile.noalias() = Q.middleRows(q0, nqb) * DB.middleRows(m0, nmb).transpose();
        for (int64_t r = 0; r < nqb; ++r)
          select_row(heaps[size_t(r)], k, qnorm[size_t(q0 + r)], cnorm.data() + m0, &tile(r, 0), nmb, m0);
      }
      for (int64_t r = 0; r < nqb; ++r) {
        std::vector<Candidate>& heap = heaps[size_t(r)];
        std::sort_heap(heap.begin(), heap.end(), before);
        float* od = out_dist + (q0 + r) * k;
        int64_t* oi = out_idx + (q0 + r) * k;
        for (int64_t j = 0; j < k; ++j) {
          od[j] = heap[size_t(j)].dist;
          oi[j] = heap[size_t(j)].index;
        }
      }
    }
  }
}

}  // namespace

KnnResult knn_search(const Tensor& queries, const Tensor& database, int64_t k) {
  return knn_search(queries, database, k, KnnTiling{});
}

KnnResult knn_search(const Tensor& queries, const Tensor& database, int64_t k, const KnnTiling& tiling) {
  check_defined(queries, "knn_search", "queries");
  check_defined(database, "knn_search", "database");
  check_ndim(queries, 2, "knn_search", "queries");
  check_ndim(database, 2, "knn_search", "database");
  check_dtype(queries, DType::F32, "knn_search", "queries");
  check_dtype(database, DType::F32, "knn_search", "database");
  check_same_device(queries, database, "knn_search", "queries", "database");
  const int64_t nq = queries.size(0), nd = database.size(0), d = queries.size(1);
  OODKIT_CHECK(nd > 0, "knn_search: the database is empty (", shape_str(database.shape()), ")");
  OODKIT_CHECK(database.size(1) == d, "knn_search: queries are ", shape_str(queries.shape()), " but database is ",
               shape_str(database.shape()), ": the feature dimensions (size(1)) differ");
  OODKIT_CHECK(d > 0, "knn_search: queries ", shape_str(queries.shape()), " and database ",
               shape_str(database.shape()), " have no features (D = 0)");
  OODKIT_CHECK(k >= 1 && k <= std::min(nd, kKnnMaxK), "knn_search: k = ", k, " must be in [1, min(M, ",
               kKnnMaxK, ")] with M = ", nd, " database rows");
  OODKIT_CHECK(tiling.query_tile >= 0 && tiling.database_tile >= 0, "knn_search: tile sizes must be >= 0 (0 = "
               "automatic), got query_tile = ", tiling.query_tile, ", database_tile = ", tiling.database_tile);

  KnnResult r{Tensor::empty({nq, k}, DType::F32, queries.device()),
              Tensor::empty({nq, k}, DType::I64, queries.device())};
  if (nq == 0) return r;
  if (queries.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::knn_search(queries.data<float>(), database.data<float>(), nq, nd, d, k,
                                      r.distances.data<float>(), r.indices.data<int64_t>(), tiling.query_tile,
                                      tiling.database_tile));
  } else {
    knn_cpu(queries.data<float>(), database.data<float>(), nq, nd, d, k, r.distances.data<float>(),
            r.indices.data<int64_t>(), tiling.query_tile, tiling.database_tile);
  }
  return r;
}

}  // namespace oodkit::ood
