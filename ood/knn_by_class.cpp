#include "ood/knn_by_class.h"

#include <cstring>
#include <map>
#include <vector>

#include "framework/error.h"

namespace oodkit::ood {

namespace {

constexpr const char* kOp = "knn_search_by_class";

// Host copy of int64 labels [n], checked non-negative; `what` names the argument.
std::vector<int64_t> host_labels(const Tensor& labels, int64_t n, const char* what) {
  check_defined(labels, kOp, what);
  check_dtype(labels, DType::I64, kOp, what);
  check_ndim(labels, 1, kOp, what);
  OODKIT_CHECK(labels.size(0) == n, kOp, ": ", what, " has ", labels.size(0), " entries for ", n, " rows");
  std::vector<int64_t> v = labels.cpu().to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); ++i)
    OODKIT_CHECK(v[i] >= 0, kOp, ": ", what, "[", i, "] = ", v[i], " is negative (labels are class indices)");
  return v;
}

// Rows `rows` of the host float32 matrix `m` [*, d] as a new [rows.size(), d] tensor on `device`.
Tensor gather_rows(const Tensor& m, const std::vector<int64_t>& rows, int64_t d, Device device) {
  Tensor out = Tensor::empty({int64_t(rows.size()), d}, DType::F32, Device::cpu());
  const float* src = m.data<float>();
  float* dst = out.data<float>();
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(dst + int64_t(i) * d, src + rows[i] * d, sizeof(float) * size_t(d));
  return out.to(device);
}

}  // namespace

KnnResult knn_search_by_class(const Tensor& queries, const Tensor& query_labels, const Tensor& database,
                              const Tensor& database_labels, int64_t k, const KnnTiling& tiling) {
  check_defined(queries, kOp, "queries");
  check_defined(database, kOp, "database");
  check_ndim(queries, 2, kOp, "queries");
  check_ndim(database, 2, kOp, "database");
  check_dtype(queries, DType::F32, kOp, "queries");
  check_dtype(database, DType::F32, kOp, "database");
  check_same_device(queries, database, kOp, "queries", "database");
  const int64_t nq = queries.size(0), nd = database.size(0), d = queries.size(1);
  OODKIT_CHECK(database.size(1) == d, kOp, ": queries are ", shape_str(queries.shape()), " but database is ",
               shape_str(database.shape()), ": the feature dimensions (size(1)) differ");
  OODKIT_CHECK(k >= 1 && k <= kKnnMaxK, kOp, ": k = ", k, " must be in [1, ", kKnnMaxK, "]");
  const std::vector<int64_t> ql = host_labels(query_labels, nq, "query_labels");
  const std::vector<int64_t> dl = host_labels(database_labels, nd, "database_labels");

  std::map<int64_t, std::vector<int64_t>> q_rows, d_rows;  // class -> rows, ascending
  for (int64_t i = 0; i < nq; ++i) q_rows[ql[size_t(i)]].push_back(i);
  for (int64_t j = 0; j < nd; ++j) d_rows[dl[size_t(j)]].push_back(j);
  for (const auto& [c, rows] : q_rows) {
    const auto it = d_rows.find(c);
    const size_t have = it == d_rows.end() ? 0 : it->second.size();
    OODKIT_CHECK(have >= size_t(k), kOp, ": class ", c, " has ", rows.size(), " quer", rows.size() == 1 ? "y" : "ies",
                 " but ", have, " database row", have == 1 ? "" : "s", " (k = ", k, "): no ", k,
                 " nearest neighbours of the same class exist");
  }

  const Tensor qh = queries.cpu(), dh = database.cpu();
  Tensor dist = Tensor::empty({nq, k}, DType::F32, Device::cpu());
  Tensor idx = Tensor::empty({nq, k}, DType::I64, Device::cpu());
  float* pd = dist.data<float>();
  int64_t* pi = idx.data<int64_t>();
  for (const auto& [c, rows] : q_rows) {
    const std::vector<int64_t>& db_rows = d_rows.at(c);
    const KnnResult r = knn_search(gather_rows(qh, rows, d, queries.device()),
                                   gather_rows(dh, db_rows, d, queries.device()), k, tiling);
    const std::vector<float> rd = r.distances.cpu().to_vector<float>();
    const std::vector<int64_t> ri = r.indices.cpu().to_vector<int64_t>();
    for (size_t i = 0; i < rows.size(); ++i)
      for (int64_t j = 0; j < k; ++j) {
        pd[rows[i] * k + j] = rd[i * size_t(k) + size_t(j)];
        pi[rows[i] * k + j] = db_rows[size_t(ri[i * size_t(k) + size_t(j)])];  // subset row -> database row
      }
  }
  return {dist.to(queries.device()), idx.to(queries.device())};
}

}  // namespace oodkit::ood
