// Exact k-nearest-neighbour search in squared Euclidean distance (the KNN detector's kernel and
// the heatmap method's nearest-ID-image search). CPU: Eigen GEMM of query blocks (up to 1024
// rows) against database tiles (1024 rows) and a bounded heap per query, fed in chunks of 32
// candidates that are skipped when none beats the heap's worst; OpenMP over query blocks. CUDA (faiss-style): cuBLAS GEMM for -2 q.c over
// query x database tiles, then one fused kernel per tile that adds the norms and selects each
// query's k best (radix select + ordered gather), merging with the best of the earlier tiles.
//
// Distances are computed as ||q||^2 + ||c||^2 - 2 q.c in float32 and clamped at 0 (rounding can
// make them slightly negative); a NaN distance (NaN or inf in the inputs) ranks as +inf, after
// every finite one. The absolute error is a few float32 ulps of ||q||^2 + ||c||^2, so
// neighbours whose true distances differ by less than that may be ranked either way.
// On CUDA the GEMM always runs in strict FP32 (CUBLAS_COMPUTE_32F_PEDANTIC), whatever
// oodkit::math_mode() says: TF32's ~1e-3 relative error in q.c would reorder neighbours, and
// the k-NN's whole output is an ordering. Not differentiable (outputs carry no autograd history).
#pragma once
#include <cstdint>

#include "framework/tensor.h"

namespace oodkit::ood {

constexpr int64_t kKnnMaxK = 1024;

struct KnnResult {
  Tensor distances;  // [Q, k] float32 squared Euclidean distances, ascending per row
  Tensor indices;    // [Q, k] int64 database row indices
};

// queries [Q, D] and database [M, D]: float32, same device, D >= 1, M >= 1;
// 1 <= k <= min(M, kKnnMaxK). Row q of the result lists the k database rows nearest to query q,
// ordered by (distance, index): among equal computed distances the smaller index comes first
// (exact duplicates in the database therefore resolve to the first copy). Q = 0 gives [0, k].
KnnResult knn_search(const Tensor& queries, const Tensor& database, int64_t k);

// Tile sizes (rows of queries and of the database handled per step; 0 = automatic). Results do
// not depend on them except through float rounding; they bound the scratch memory
// (CUDA: query_tile x database_tile floats; defaults keep it near 128 MiB) and let tests
// exercise the multi-tile paths on small inputs. database_tile is raised to at least k.
struct KnnTiling {
  int64_t query_tile = 0;
  int64_t database_tile = 0;
};
KnnResult knn_search(const Tensor& queries, const Tensor& database, int64_t k, const KnnTiling& tiling);

}  // namespace oodkit::ood
