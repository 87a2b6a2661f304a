// Exact k-NN: against a brute-force double-precision reference, exactly (integer-valued inputs,
// where float32 arithmetic is exact and every tie is real) and tie-aware (continuous inputs);
// the smaller-index rule on exact duplicates; CUDA against CPU; argument errors.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/ops/elementwise.h"
#include "ood/knn.h"
#include "testing.h"

using namespace oodkit;
using oodkit::ood::knn_search;
using oodkit::ood::KnnResult;
using oodkit::ood::KnnTiling;
using oodkit::testing::DeviceTest;

namespace {

class KnnTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(KnnTest);

// Exact squared distances in double from the float inputs: [Q, M].
std::vector<double> exact_distances(const Tensor& q, const Tensor& db) {
  const std::vector<float> qv = q.cpu().to_vector<float>(), cv = db.cpu().to_vector<float>();
  const int64_t nq = q.size(0), nd = db.size(0), d = q.size(1);
  std::vector<double> out(size_t(nq * nd));
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < nd; ++j) {
      double s = 0;
      for (int64_t t = 0; t < d; ++t) {
        const double diff = double(qv[size_t(i * d + t)]) - double(cv[size_t(j * d + t)]);
        s += diff * diff;
      }
      out[size_t(i * nd + j)] = s;
    }
  return out;
}

// Reference order of row i: database indices sorted by (exact distance, index).
std::vector<int64_t> reference_order(const std::vector<double>& dist, int64_t i, int64_t nd, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(nd));
  std::iota(idx.begin(), idx.end(), 0);
  const double* row = dist.data() + i * nd;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [row](int64_t a, int64_t b) {
    return row[a] < row[b] || (row[a] == row[b] && a < b);
  });
  idx.resize(size_t(k));
  return idx;
}

// Integer-valued inputs: every float32 operation is exact (|values| <= 4, D <= 2048 keeps all
// sums below 2^24), so the result must equal the reference exactly, indices included.
::testing::AssertionResult matches_exactly(const KnnResult& r, const Tensor& q, const Tensor& db, int64_t k) {
  const int64_t nq = q.size(0), nd = db.size(0);
  if (r.distances.shape() != Shape{nq, k} || r.indices.shape() != Shape{nq, k})
    return ::testing::AssertionFailure() << "shapes " << shape_str(r.distances.shape()) << " / "
                                         << shape_str(r.indices.shape()) << ", expected [" << nq << ", " << k << "]";
  const std::vector<double> dist = exact_distances(q, db);
  const std::vector<float> rd = r.distances.cpu().to_vector<float>();
  const std::vector<int64_t> ri = r.indices.cpu().to_vector<int64_t>();
  for (int64_t i = 0; i < nq; ++i) {
    const std::vector<int64_t> ref = reference_order(dist, i, nd, k);
    for (int64_t j = 0; j < k; ++j) {
      const size_t o = size_t(i * k + j);
      const double want = dist[size_t(i * nd + ref[size_t(j)])];
      if (ri[o] != ref[size_t(j)] || double(rd[o]) != want)
        return ::testing::AssertionFailure()
               << "query " << i << " rank " << j << ": got (" << rd[o] << ", index " << ri[o] << "), expected ("
               << want << ", index " << ref[size_t(j)] << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// Continuous inputs, tie-aware. tol(i) = 4e-7 sqrt(D) (||q_i||^2 + max_c ||c||^2) bounds the float32
// error of ||q||^2 + ||c||^2 - 2 q.c. Checks per row: indices distinct and in range; the reported
// distance of each index is that index's exact distance (within tol); the j-th reported distance is
// the j-th exact one (within tol), so the list is ascending up to tol; and no database row whose
// exact distance is below the exact k-th distance minus tol is missing (only near-ties at the
// boundary may swap).
::testing::AssertionResult matches_tie_aware(const KnnResult& r, const Tensor& q, const Tensor& db, int64_t k) {
  const int64_t nq = q.size(0), nd = db.size(0), d = q.size(1);
  if (r.distances.shape() != Shape{nq, k} || r.indices.shape() != Shape{nq, k})
    return ::testing::AssertionFailure() << "wrong result shapes " << shape_str(r.distances.shape());
  const std::vector<double> dist = exact_distances(q, db);
  const std::vector<float> qv = q.cpu().to_vector<float>(), cv = db.cpu().to_vector<float>();
  double cmax = 0;
  for (int64_t j = 0; j < nd; ++j) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += double(cv[size_t(j * d + t)]) * cv[size_t(j * d + t)];
    cmax = std::max(cmax, s);
  }
  const std::vector<float> rd = r.distances.cpu().to_vector<float>();
  const std::vector<int64_t> ri = r.indices.cpu().to_vector<int64_t>();
  for (int64_t i = 0; i < nq; ++i) {
    double qn = 0;
    for (int64_t t = 0; t < d; ++t) qn += double(qv[size_t(i * d + t)]) * qv[size_t(i * d + t)];
    const double tol = 4e-7 * std::sqrt(double(d)) * (qn + cmax);
    const std::vector<int64_t> ref = reference_order(dist, i, nd, k);
    const double* row = dist.data() + i * nd;
    std::vector<char> seen(size_t(nd), 0);
    for (int64_t j = 0; j < k; ++j) {
      const size_t o = size_t(i * k + j);
      const int64_t idx = ri[o];
      if (idx < 0 || idx >= nd || seen[size_t(idx)])
        return ::testing::AssertionFailure() << "query " << i << " rank " << j << ": bad or repeated index " << idx;
      seen[size_t(idx)] = 1;
      if (!(std::fabs(double(rd[o]) - row[idx]) <= tol))
        return ::testing::AssertionFailure() << "query " << i << " rank " << j << ": distance " << rd[o]
                                             << " but index " << idx << " is at " << row[idx] << " (tol " << tol << ")";
      const double want = row[ref[size_t(j)]];
      if (!(std::fabs(double(rd[o]) - want) <= tol))
        return ::testing::AssertionFailure() << "query " << i << " rank " << j << ": distance " << rd[o]
                                             << ", exact " << j << "-th distance " << want << " (tol " << tol << ")";
    }
    const double kth = row[ref[size_t(k - 1)]];
    for (int64_t c = 0; c < nd; ++c)
      if (row[c] < kth - tol && !seen[size_t(c)])
        return ::testing::AssertionFailure() << "query " << i << ": missed index " << c << " at " << row[c]
                                             << " (k-th exact distance " << kth << ")";
  }
  return ::testing::AssertionSuccess();
}

Tensor random_integers(const Shape& shape, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v) x = float(dist(rng));
  return Tensor::from_vector(v, shape);
}

// ---- exact cases ---------------------------------------------------------------------------

TEST_P(KnnTest, IntegerInputsMatchReferenceExactlyIncludingTies) {
  std::mt19937 rng(11);
  struct Case { int64_t nq, nd, d, k; };
  const Case cases[] = {{5, 37, 1, 1},   {9, 200, 3, 50},    {4, 1100, 8, 1000}, {3, 1500, 2048, 7},
                        {2, 1024, 64, 1024}, {17, 300, 5, 300}, {1, 1, 4, 1}};
  for (const Case& c : cases) {
    // Narrow value ranges: many exactly equal distances, often within a row's top k.
    Tensor q = random_integers({c.nq, c.d}, -2, 2, rng), db = random_integers({c.nd, c.d}, -2, 2, rng);
    const KnnResult r = knn_search(q.to(device()), db.to(device()), c.k);
    EXPECT_EQ(r.distances.device(), device());
    EXPECT_EQ(r.indices.dtype(), DType::I64);
    EXPECT_TRUE(matches_exactly(r, q, db, c.k)) << "Q=" << c.nq << " M=" << c.nd << " D=" << c.d << " k=" << c.k;
  }
}

TEST_P(KnnTest, ManyTilesMatchReferenceExactly) {
  // Small tiles force the cross-tile merge: database tiles of 64 rows (the last one partial,
  // 1000 = 15 * 64 + 40), 7 queries per tile, k = 1, 50, and k = 64 (one full tile).
  std::mt19937 rng(12);
  Tensor q = random_integers({30, 6}, -3, 3, rng), db = random_integers({1000, 6}, -3, 3, rng);
  for (int64_t k : {1, 50, 64}) {
    const KnnResult r = knn_search(q.to(device()), db.to(device()), k, KnnTiling{7, 64});
    EXPECT_TRUE(matches_exactly(r, q, db, k)) << "k=" << k;
  }
  // database_tile below k is raised to k: k = 1000 with tiles of 1000 rows over 1100 rows.
  Tensor db2 = random_integers({1100, 6}, -4, 4, rng);
  const KnnResult r = knn_search(q.to(device()), db2.to(device()), 1000, KnnTiling{5, 10});
  EXPECT_TRUE(matches_exactly(r, q, db2, 1000));
}

TEST_P(KnnTest, CloserRowsAtTheEndsOfChunksAndTilesAreFound) {
  // The CPU selection skips a chunk of 32 candidates when none beats the heap's worst: here every
  // row is at distance 40^2 from the query except the last row of each 32-row chunk, which gets
  // closer with the index, so every improvement sits at a chunk's (and each 1024-row tile's) end.
  const int64_t nd = 2500;
  std::vector<float> dbv(size_t(nd * 2), 0.f);
  for (int64_t j = 0; j < nd; ++j) dbv[size_t(2 * j)] = j % 32 == 31 ? float(78 - j / 32) : 40.f;
  const Tensor db = Tensor::from_vector(dbv, {nd, 2});
  const Tensor q = Tensor::from_vector(std::vector<float>{0.f, 0.f, 1.f, 0.f}, {2, 2});
  for (int64_t k : {1, 3, 40}) {
    const KnnResult r = knn_search(q.to(device()), db.to(device()), k);
    EXPECT_TRUE(matches_exactly(r, q, db, k)) << "k=" << k;
    EXPECT_EQ(r.indices.cpu().to_vector<int64_t>()[0], 2495) << "k=" << k;  // 78 - 2495 / 32 = 0
  }
}

TEST_P(KnnTest, DefaultTilesWithDatabaseNotAMultipleOfTheTile) {
  // 16500 rows: over the CUDA default tile (16384) by 116, with k = 1000 reaching into both tiles.
  std::mt19937 rng(13);
  Tensor q = random_integers({3, 4}, -4, 4, rng), db = random_integers({16500, 4}, -4, 4, rng);
  const KnnResult r = knn_search(q.to(device()), db.to(device()), 1000);
  EXPECT_TRUE(matches_exactly(r, q, db, 1000));
}

TEST_P(KnnTest, ExactDuplicatesResolveToTheSmallerIndex) {
  // Database rows 0..99 random; rows 100..199 repeat them in reverse order, and row 200 repeats
  // row 50 again. Query i is database row i (distance 0 to row i and its copies).
  std::mt19937 rng(14);
  const int64_t d = 16;
  Tensor base = random_integers({100, d}, -4, 4, rng);
  std::vector<float> bv = base.to_vector<float>(), all = bv;
  for (int64_t i = 99; i >= 0; --i) all.insert(all.end(), bv.begin() + i * d, bv.begin() + (i + 1) * d);
  all.insert(all.end(), bv.begin() + 50 * d, bv.begin() + 51 * d);
  Tensor db = Tensor::from_vector(all, {201, d});
  const KnnResult r1 = knn_search(base.to(device()), db.to(device()), 1);
  const std::vector<int64_t> i1 = r1.indices.cpu().to_vector<int64_t>();
  const std::vector<float> d1 = r1.distances.cpu().to_vector<float>();
  for (int64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(i1[size_t(i)], i) << "query " << i;
    EXPECT_EQ(d1[size_t(i)], 0.f) << "query " << i;
  }
  // k = 3: for query 50 the three copies 50, 149 (= 100 + 99 - 50) and 200, in that order.
  const KnnResult r3 = knn_search(base.to(device()), db.to(device()), 3);
  const std::vector<int64_t> i3 = r3.indices.cpu().to_vector<int64_t>();
  EXPECT_EQ(i3[150], 50);
  EXPECT_EQ(i3[151], 149);
  EXPECT_EQ(i3[152], 200);
  EXPECT_TRUE(matches_exactly(r3, base, db, 3));
  // The same with tiles that put the copies in different database tiles.
  EXPECT_TRUE(matches_exactly(knn_search(base.to(device()), db.to(device()), 3, KnnTiling{8, 33}), base, db, 3));
}

TEST_P(KnnTest, AllRowsEqualGivesIndicesInOrder) {
  Tensor q = Tensor::full({2, 5}, 1.5), db = Tensor::full({300, 5}, -0.5);
  const KnnResult r = knn_search(q.to(device()), db.to(device()), 256, KnnTiling{0, 100});
  const std::vector<int64_t> idx = r.indices.cpu().to_vector<int64_t>();
  const std::vector<float> dist = r.distances.cpu().to_vector<float>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 256; ++j) {
      EXPECT_EQ(idx[size_t(i * 256 + j)], j);
      EXPECT_EQ(dist[size_t(i * 256 + j)], 20.f);  // 5 * 2^2
    }
}

// ---- continuous data, tie-aware ----------------------------------------------------------------

TEST_P(KnnTest, RandomFeaturesMatchReferenceTieAware) {
  struct Case { int64_t nq, nd, d, k; };
  const Case cases[] = {{20, 500, 1, 1},   {20, 700, 3, 50},     {12, 1500, 128, 1000},
                        {6, 900, 2048, 50}, {33, 2100, 17, 100}, {8, 1024, 512, 1024}};
  for (const Case& c : cases) {
    Tensor q = Tensor::randn({c.nq, c.d}, gen), db = Tensor::randn({c.nd, c.d}, gen);
    const KnnResult r = knn_search(q.to(device()), db.to(device()), c.k);
    EXPECT_TRUE(matches_tie_aware(r, q, db, c.k)) << "Q=" << c.nq << " M=" << c.nd << " D=" << c.d << " k=" << c.k;
  }
}

TEST_P(KnnTest, ShiftedFeaturesKeepDistancesAccurate) {
  // Far from the origin (norms ~ 50x the distances): the expansion loses digits to cancellation,
  // and the tolerance (relative to the norms) accounts for it; no negative distances come out.
  Tensor q = ops::add_scalar(Tensor::randn({10, 32}, gen), 10.0);
  Tensor db = ops::add_scalar(Tensor::randn({400, 32}, gen), 10.0);
  const KnnResult r = knn_search(q.to(device()), db.to(device()), 20);
  EXPECT_TRUE(matches_tie_aware(r, q, db, 20));
  for (float v : r.distances.cpu().to_vector<float>()) EXPECT_GE(v, 0.f);
}

TEST_P(KnnTest, QueryEqualToADatabaseRowGivesZeroNotNegative) {
  Tensor db = Tensor::randn({50, 64}, gen);
  Tensor q = db.narrow(10, 5).clone();
  const KnnResult r = knn_search(q.to(device()), db.to(device()), 1);
  const std::vector<int64_t> idx = r.indices.cpu().to_vector<int64_t>();
  const std::vector<float> dist = r.distances.cpu().to_vector<float>();
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(idx[size_t(i)], 10 + i);
    EXPECT_GE(dist[size_t(i)], 0.f);
    EXPECT_LE(dist[size_t(i)], 1e-4f);  // rounding of ||q||^2 + ||c||^2 - 2 q.c at ||q||^2 ~ 64
  }
}

TEST_P(KnnTest, StrictFp32EvenInTf32Mode) {
  // TF32 would round q.c's inputs to 10-bit mantissas: ~1e-4 relative error at D = 32, far above
  // the tie-aware tolerance (~2e-6 here).
  MathModeGuard tf32(MathMode::TF32);
  Tensor q = Tensor::randn({64, 32}, gen), db = Tensor::randn({3000, 32}, gen);
  const KnnResult r = knn_search(q.to(device()), db.to(device()), 10);
  EXPECT_TRUE(matches_tie_aware(r, q, db, 10));
}

TEST_P(KnnTest, NonFiniteDistancesRankLast) {
  // Database row 1 holds a NaN, row 3 an inf: both rank after every finite row, by index.
  std::vector<float> v(5 * 2, 1.f);
  v[2] = std::nanf("");
  v[7] = INFINITY;
  Tensor db = Tensor::from_vector(v, {5, 2}), q = Tensor::zeros({1, 2});
  const KnnResult r = knn_search(q.to(device()), db.to(device()), 5);
  EXPECT_EQ(r.indices.cpu().to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 4, 1, 3}));
  const std::vector<float> dist = r.distances.cpu().to_vector<float>();
  EXPECT_EQ(dist[0], 2.f);
  EXPECT_TRUE(std::isinf(dist[3]) && std::isinf(dist[4]));
}

TEST_P(KnnTest, EmptyQueriesGiveEmptyResult) {
  const KnnResult r = knn_search(Tensor::empty({0, 4}, DType::F32, device()), Tensor::randn({9, 4}, gen).to(device()), 3);
  EXPECT_EQ(r.distances.shape(), (Shape{0, 3}));
  EXPECT_EQ(r.indices.shape(), (Shape{0, 3}));
}

// ---- CUDA against CPU ----------------------------------------------------------------------------

TEST_P(KnnTest, CudaMatchesCpu) {
  if (!on_cuda()) GTEST_SKIP() << "compares CUDA with the CPU";
  std::mt19937 rng(15);
  // Integer data: identical results, bit for bit.
  Tensor q = random_integers({300, 24}, -3, 3, rng), db = random_integers({5000, 24}, -3, 3, rng);
  for (int64_t k : {1, 50, 1000}) {
    const KnnResult a = knn_search(q, db, k), b = knn_search(q.to(device()), db.to(device()), k);
    EXPECT_EQ(a.indices.to_vector<int64_t>(), b.indices.cpu().to_vector<int64_t>()) << "k=" << k;
    EXPECT_EQ(a.distances.to_vector<float>(), b.distances.cpu().to_vector<float>()) << "k=" << k;
  }
  // Continuous data: same neighbour distances within float32 rounding.
  Tensor qc = Tensor::randn({200, 256}, gen), dbc = Tensor::randn({4000, 256}, gen);
  const KnnResult a = knn_search(qc, dbc, 50), b = knn_search(qc.to(device()), dbc.to(device()), 50);
  EXPECT_ALL_CLOSE(b.distances, a.distances, (oodkit::testing::Tol{1e-3, 1e-5}));
  EXPECT_TRUE(matches_tie_aware(b, qc, dbc, 50));
}

// ---- argument errors --------------------------------------------------------------------------------

TEST_P(KnnTest, RejectsBadArguments) {
  Tensor q = Tensor::randn({4, 8}, gen).to(device()), db = Tensor::randn({20, 8}, gen).to(device());
  EXPECT_THROW(knn_search(q, db, 0), Error);
  EXPECT_THROW(knn_search(q, db, 21), Error);  // k > M
  EXPECT_THROW(knn_search(q, db, -1), Error);
  Tensor big = Tensor::randn({1100, 8}, gen).to(device());
  EXPECT_THROW(knn_search(q, big, 1025), Error);  // k > 1024
  EXPECT_NO_THROW(knn_search(q, big, 1024));
  EXPECT_THROW(knn_search(q, Tensor::randn({20, 7}, gen).to(device()), 3), Error);  // D mismatch
  EXPECT_THROW(knn_search(q, Tensor::empty({0, 8}, DType::F32, device()), 1), Error);  // empty database
  EXPECT_THROW(knn_search(Tensor::empty({4, 0}, DType::F32, device()), Tensor::empty({5, 0}, DType::F32, device()), 1),
               Error);  // D = 0
  EXPECT_THROW(knn_search(q.reshape({4, 2, 4}), db, 3), Error);  // not 2-D
  EXPECT_THROW(knn_search(q, db, 3, KnnTiling{-1, 0}), Error);
  if (!on_cuda()) {
    EXPECT_THROW(knn_search(q.to(DType::F64), db.to(DType::F64), 3), Error);  // float32 only
    if (cuda_available()) EXPECT_THROW(knn_search(q, db.to(Device::cuda()), 3), Error);  // devices differ
  } else {
    EXPECT_THROW(knn_search(q, db.cpu(), 3), Error);
  }
  try {
    knn_search(q, db, 21);
    FAIL() << "k > M accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("k = 21"), std::string::npos) << e.what();
  }
}

}  // namespace
