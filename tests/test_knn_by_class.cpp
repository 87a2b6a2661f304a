// Class-restricted k-NN: against a brute-force double-precision search restricted to each query's
// class (integer-valued inputs: exact, ties included), a hand-worked case where the nearest row
// overall has another class, and the error for a class without database rows.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "ood/knn_by_class.h"
#include "testing.h"

using namespace oodkit;
using oodkit::ood::knn_search_by_class;
using oodkit::ood::KnnResult;
using oodkit::ood::KnnTiling;
using oodkit::testing::DeviceTest;

namespace {

class KnnByClassTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(KnnByClassTest);

// Integer values in [-2, 2]: float32 distances are exact, so ties are real and must resolve to
// the smaller database index.
Tensor small_integers(int64_t rows, int64_t d, Generator& gen) {
  Tensor t = Tensor::uniform({rows, d}, -2.5, 2.5, gen);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::round(p[i]);
  return t;
}

Tensor labels_of(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

TEST_P(KnnByClassTest, MatchesBruteForceWithinEachClassExactly) {
  const int64_t nq = 41, nd = 103, d = 6, classes = 5;
  const Tensor q = small_integers(nq, d, gen), db = small_integers(nd, d, gen);
  std::vector<int64_t> ql(static_cast<size_t>(nq)), dl(static_cast<size_t>(nd));
  for (int64_t i = 0; i < nq; ++i) ql[size_t(i)] = (i * 7) % classes;
  for (int64_t j = 0; j < nd; ++j) dl[size_t(j)] = (j * 3) % classes;  // >= 20 rows per class
  const std::vector<float> qv = q.to_vector<float>(), dv = db.to_vector<float>();
  for (int64_t k : {1, 3, 20})
    for (const KnnTiling tiling : {KnnTiling{}, KnnTiling{4, 7}}) {
      SCOPED_TRACE("k = " + std::to_string(k) + ", tiles " + std::to_string(tiling.query_tile) + "x" +
                   std::to_string(tiling.database_tile));
      const KnnResult r =
          knn_search_by_class(q.to(device()), labels_of(ql), db.to(device()), labels_of(dl).to(device()), k, tiling);
      ASSERT_EQ(r.indices.shape(), (Shape{nq, k}));
      EXPECT_EQ(r.indices.device(), device());
      const std::vector<int64_t> got = r.indices.cpu().to_vector<int64_t>();
      const std::vector<float> got_d = r.distances.cpu().to_vector<float>();
      for (int64_t i = 0; i < nq; ++i) {
        std::vector<int64_t> cand;
        std::vector<double> dist(static_cast<size_t>(nd));
        for (int64_t j = 0; j < nd; ++j) {
          double s = 0;
          for (int64_t t = 0; t < d; ++t) {
            const double diff = double(qv[size_t(i * d + t)]) - dv[size_t(j * d + t)];
            s += diff * diff;
          }
          dist[size_t(j)] = s;
          if (dl[size_t(j)] == ql[size_t(i)]) cand.push_back(j);
        }
        std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) { return dist[size_t(a)] < dist[size_t(b)]; });
        for (int64_t j = 0; j < k; ++j) {
          EXPECT_EQ(got[size_t(i * k + j)], cand[size_t(j)]) << "query " << i << " rank " << j;
          EXPECT_EQ(double(got_d[size_t(i * k + j)]), dist[size_t(cand[size_t(j)])]) << "query " << i << " rank " << j;
        }
      }
    }
}

TEST_P(KnnByClassTest, NearestRowOfAnotherClassIsNotChosen) {
  // Database: class 0 at (0, 0) and (1, 0); class 1 at (5, 5) and (6, 5). The query (5.5, 5) of
  // class 0 is nearest to (5, 5) and (6, 5) overall, but its answer is (1, 0): index 1,
  // distance 4.5^2 + 5^2 = 45.25.
  const Tensor db = Tensor::from_vector<float>({0, 0, 1, 0, 5, 5, 6, 5}, {4, 2}).to(device());
  const Tensor q = Tensor::from_vector<float>({5.5f, 5, 5.5f, 5}, {2, 2}).to(device());
  const KnnResult r = knn_search_by_class(q, labels_of({0, 1}), db, labels_of({0, 0, 1, 1}), 1);
  EXPECT_EQ(r.indices.cpu().to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));  // class 1: the tie goes to index 2
  const std::vector<float> dist = r.distances.cpu().to_vector<float>();
  EXPECT_FLOAT_EQ(dist[0], 45.25f);
  EXPECT_FLOAT_EQ(dist[1], 0.25f);
}

TEST_P(KnnByClassTest, ClassWithoutDatabaseRowsIsAnErrorNamingIt) {
  const Tensor db = Tensor::from_vector<float>({0, 0, 1, 0, 5, 5}, {3, 2}).to(device());
  const Tensor q = Tensor::from_vector<float>({1, 1, 2, 2, 3, 3}, {3, 2}).to(device());
  try {
    knn_search_by_class(q, labels_of({0, 7, 7}), db, labels_of({0, 0, 1}), 1);
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("class 7 has 2 queries but 0 database rows"), std::string::npos) << m;
  }
  try {  // k larger than a class's rows
    knn_search_by_class(q, labels_of({1, 1, 1}), db, labels_of({0, 0, 1}), 2);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 1 has 3 queries but 1 database row (k = 2)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(knn_search_by_class(q, labels_of({0, -1, 0}), db, labels_of({0, 0, 1}), 1), Error);
  EXPECT_THROW(knn_search_by_class(q, labels_of({0, 0}), db, labels_of({0, 0, 1}), 1), Error);
  EXPECT_THROW(knn_search_by_class(q, labels_of({0, 0, 0}), db, labels_of({0, 0, 1}), 0), Error);
  // No queries: an empty result of the right shape.
  const KnnResult r = knn_search_by_class(Tensor::empty({0, 2}, DType::F32, device()), labels_of(std::vector<int64_t>{}), db,
                                          labels_of({0, 0, 1}), 1);
  EXPECT_EQ(r.indices.shape(), (Shape{0, 1}));
}

}  // namespace
