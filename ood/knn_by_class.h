// Class-restricted exact k-NN: for each query, the k nearest database rows among those whose
// label equals the query's label. The heatmap method's "nearest ID training image of the same
// predicted class" is this with k = 1, the OE images' predictions as query labels and the ID
// training images' predictions as database labels.
//
// Method: the rows of each class are gathered on the host and searched with knn_search (CPU or
// CUDA, the features' device), one call per class present among the queries; indices are mapped
// back to rows of the full database. Same contract as knn_search (ood/knn.h): squared Euclidean
// distances in float32, rows ordered by (distance, smaller database index); strict FP32 on CUDA.
#pragma once
#include <cstdint>

#include "framework/tensor.h"
#include "ood/knn.h"

namespace oodkit::ood {

// queries [Q, D] and database [M, D]: float32 on one device. query_labels int64 [Q] and
// database_labels int64 [M], on any device, >= 0. Every class that appears among query_labels
// must have at least k database rows, else the error names the class and both counts (a class
// with queries and no database rows is never skipped silently). Result on the features' device:
// distances [Q, k], indices [Q, k] (rows of `database`). Q = 0 gives [0, k].
KnnResult knn_search_by_class(const Tensor& queries, const Tensor& query_labels, const Tensor& database,
                              const Tensor& database_labels, int64_t k, const KnnTiling& tiling = KnnTiling{});

}  // namespace oodkit::ood
