// CUDA launcher behind ood/knn.h (float32, current device, oodkit stream).
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// queries [nq, d] and database [nd, d] row-major; out_dist / out_idx [nq, k] row-major, each row
// ascending by (distance, index). Requires 1 <= k <= min(nd, 1024), d >= 1. query_tile /
// db_tile: rows per tile, 0 = automatic (see knn_cuda.cu).
void knn_search(const float* queries, const float* database, int64_t nq, int64_t nd, int64_t d, int64_t k,
                float* out_dist, int64_t* out_idx, int64_t query_tile, int64_t db_tile);
}  // namespace oodkit::cuda
