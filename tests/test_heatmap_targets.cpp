// Heatmap targets: nearest ID image of the same predicted class (hand-worked), the x_n - x_o
// images, the audit file round trip and its checks.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "framework/safetensors.h"
#include "ood/heatmap_targets.h"
#include "ood/scores.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;

namespace {

class HeatmapTargetsTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(HeatmapTargetsTest);

Tensor i64(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

// ID rows: 0 (0,0) c0; 1 (2,0) c0; 2 (10,10) c1; 3 (9,9) c1; 4 (0,3) c0.
// OE rows: (1,1) predicted 1 -> rows 2 (162) and 3 (128): row 3, 128; although row 0 is nearest
// overall (2). (1.5,0) predicted 0 -> rows 0 (2.25), 1 (0.25), 4 (11.25): row 1, 0.25.
// (0,2) predicted 0 -> rows 0 (4), 1 (8), 4 (1): row 4, 1.
TEST_P(HeatmapTargetsTest, NearestIdImageOfTheSamePredictedClass) {
  const Tensor id_f = Tensor::from_vector<float>({0, 0, 2, 0, 10, 10, 9, 9, 0, 3}, {5, 2}).to(device());
  const Tensor oe_f = Tensor::from_vector<float>({1, 1, 1.5f, 0, 0, 2}, {3, 2}).to(device());
  const ood::HeatmapTargets t =
      ood::nearest_id_targets(id_f, i64({0, 0, 1, 1, 0}).to(device()), oe_f, i64({1, 0, 0}).to(device()),
                              {"oe:0", "oe:1", "oe:2"});
  EXPECT_EQ(t.oe_nn_index.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 4}));
  EXPECT_EQ(t.oe_nn_distance.to_vector<float>(), (std::vector<float>{128.f, 0.25f, 1.f}));
  EXPECT_FALSE(t.oe_nn_index.is_cuda());
  EXPECT_EQ(t.oe_images.size(), 3u);
}

// Same rows, now rows 10, 20, 30, 40, 50 of a dataset (the others held out): the neighbours are the
// same, reported as dataset rows, and oe_nn_positions maps them back to id_features rows.
TEST_P(HeatmapTargetsTest, IndicesAreDatasetRows) {
  const Tensor id_f = Tensor::from_vector<float>({0, 0, 2, 0, 10, 10, 9, 9, 0, 3}, {5, 2}).to(device());
  const Tensor oe_f = Tensor::from_vector<float>({1, 1, 1.5f, 0, 0, 2}, {3, 2}).to(device());
  const ood::HeatmapTargets t = ood::nearest_id_targets(id_f, i64({0, 0, 1, 1, 0}).to(device()), oe_f,
                                                        i64({1, 0, 0}).to(device()), {}, i64({10, 20, 30, 40, 50}));
  EXPECT_EQ(t.oe_nn_index.to_vector<int64_t>(), (std::vector<int64_t>{40, 20, 50}));
  EXPECT_EQ(ood::oe_nn_positions(t), (std::vector<int64_t>{3, 1, 4}));
  EXPECT_THROW(ood::nearest_id_targets(id_f, i64({0, 0, 1, 1, 0}).to(device()), oe_f, i64({1, 0, 0}).to(device()),
                                       {}, i64({10, 20, 20, 40, 50})),
               Error);  // not increasing
}

// The fitting rows are a subset of a dataset's rows: 60 rows minus the held-out ones (every row r
// with r % 3 == 1 or r % 7 == 0: 0, 1, 4, 7, 10, 13, 14, ..., gaps of one and two rows, the first at
// row 0), random features, three classes. Each OE row's neighbour must be the nearest fitting row of its
// predicted class (brute force here, in double, over the fitting rows only), reported as that row's
// dataset row, with its squared distance; oe_nn_positions maps it back to its id_features row.
TEST_P(HeatmapTargetsTest, HeldOutGapsNeighboursMatchBruteForceOverTheFittingRows) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < 60; ++r)
    if (r % 3 != 1 && r % 7 != 0) rows.push_back(r);
  const int64_t n_id = int64_t(rows.size()), n_oe = 30, d = 5;
  Generator g(41);
  const std::vector<float> id_z = Tensor::randn({n_id, d}, g).to_vector<float>();
  const std::vector<float> oe_z = Tensor::randn({n_oe, d}, g).to_vector<float>();
  std::vector<int64_t> id_pred, oe_pred;
  for (int64_t p = 0; p < n_id; ++p) id_pred.push_back((p * 5) % 3);
  for (int64_t j = 0; j < n_oe; ++j) oe_pred.push_back((j * 2) % 3);
  const ood::HeatmapTargets t = ood::nearest_id_targets(
      Tensor::from_vector(id_z, {n_id, d}).to(device()), i64(id_pred).to(device()),
      Tensor::from_vector(oe_z, {n_oe, d}).to(device()), i64(oe_pred).to(device()), {}, i64(rows));
  const std::vector<int64_t> nn = t.oe_nn_index.to_vector<int64_t>(), pos = ood::oe_nn_positions(t);
  const std::vector<float> dist = t.oe_nn_distance.to_vector<float>();
  ASSERT_EQ(nn.size(), size_t(n_oe));
  int64_t shifted = 0;  // neighbours whose dataset row is not their position (the gaps matter)
  for (int64_t j = 0; j < n_oe; ++j) {
    int64_t best = -1;
    double best_d = 0;
    for (int64_t p = 0; p < n_id; ++p) {
      if (id_pred[size_t(p)] != oe_pred[size_t(j)]) continue;
      double s = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double diff = double(oe_z[size_t(j * d + k)]) - double(id_z[size_t(p * d + k)]);
        s += diff * diff;
      }
      if (best < 0 || s < best_d) {
        best = p;
        best_d = s;
      }
    }
    ASSERT_GE(best, 0);
    EXPECT_EQ(nn[size_t(j)], rows[size_t(best)]) << "OE row " << j;
    EXPECT_EQ(pos[size_t(j)], best) << "OE row " << j;
    EXPECT_NEAR(dist[size_t(j)], best_d, 1e-5 + 1e-4 * best_d) << "OE row " << j;
    shifted += rows[size_t(best)] != best;
  }
  EXPECT_GT(shifted, n_oe / 2);
}

TEST(HeatmapTargets, ClassMissingFromTheIdSetIsAnErrorNamingIt) {
  const Tensor id_f = Tensor::from_vector<float>({0, 0, 2, 0}, {2, 2});
  const Tensor oe_f = Tensor::from_vector<float>({1, 1}, {1, 2});
  try {
    ood::nearest_id_targets(id_f, i64({0, 0}), oe_f, i64({2}));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 2 has 1 query but 0 database rows"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ood::nearest_id_targets(id_f, i64({0}), oe_f, i64({0})), Error);             // sizes
  EXPECT_THROW(ood::nearest_id_targets(id_f, i64({0, 0}), oe_f, i64({0}), {"a", "b"}), Error);  // names
}

TEST(HeatmapTargets, OeTargetIsNeighbourMinusImage) {
  // ID images [3, 1, 1, 2] and OE images [2, 1, 1, 2]; OE 0 -> ID 2, OE 1 -> ID 0.
  const Tensor id_x = Tensor::from_vector<float>({0.5f, -0.5f, 1, 1, -1, 0.25f}, {3, 1, 1, 2});
  const Tensor oe_x = Tensor::from_vector<float>({0, 0.5f, 1, -1}, {2, 1, 1, 2});
  const Tensor y = ood::oe_heatmap_targets(id_x, oe_x, i64({2, 0}));
  EXPECT_EQ(y.shape(), (Shape{2, 1, 1, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-1 - 0.f, 0.25f - 0.5f, 0.5f - 1, -0.5f + 1}));
  EXPECT_THROW(ood::oe_heatmap_targets(id_x, oe_x, i64({3, 0})), Error);  // index out of range
  EXPECT_THROW(ood::oe_heatmap_targets(id_x, Tensor::zeros({2, 1, 2, 1}), i64({0, 0})), Error);  // shapes
}

TEST(HeatmapTargets, FileRoundTripAndChecks) {
  const std::string path = ::testing::TempDir() + "oodkit_targets_" + std::to_string(::getpid()) + ".safetensors";
  const ood::HeatmapTargets t = ood::nearest_id_targets(
      Tensor::from_vector<float>({0, 0, 2, 0, 10, 10}, {3, 2}), i64({0, 0, 1}),
      Tensor::from_vector<float>({1.5f, 0, 9, 9}, {2, 2}), i64({0, 1}), {"tinyimagenet:val/7", "tinyimagenet:val/9"});
  ood::save_heatmap_targets(path, t);
  const ood::HeatmapTargets r = ood::load_heatmap_targets(path);
  EXPECT_EQ(r.oe_nn_index.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r.oe_images, t.oe_images);
  EXPECT_EQ(r.id_features.to_vector<float>(), t.id_features.to_vector<float>());
  // A neighbour of another class than its OE row is refused, naming the file and the row.
  save_safetensors(path, {{"id_features", t.id_features}, {"id_pred", t.id_pred}, {"oe_features", t.oe_features},
                          {"oe_pred", t.oe_pred}, {"oe_nn_index", i64({2, 2})}, {"oe_nn_distance", t.oe_nn_distance}});
  try {
    ood::load_heatmap_targets(path);
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("OE row 0 (class 0) points to ID row 2 of class 1"), std::string::npos) << m;
  }
  // A neighbour that is not one of id_rows (a held-out row) is refused; metadata round-trips.
  save_safetensors(path, {{"id_features", t.id_features}, {"id_pred", t.id_pred}, {"id_rows", i64({0, 2, 3})},
                          {"oe_features", t.oe_features}, {"oe_pred", t.oe_pred}, {"oe_nn_index", t.oe_nn_index},
                          {"oe_nn_distance", t.oe_nn_distance}});
  try {
    ood::load_heatmap_targets(path);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("oe_nn_index[0] = 1 is not one of the ID rows"), std::string::npos)
        << e.what();
  }
  ood::save_heatmap_targets(path, t, {{"classifier_fingerprint", "abc"}});
  std::map<std::string, std::string> meta;
  ood::load_heatmap_targets(path, &meta);
  EXPECT_EQ(meta["classifier_fingerprint"], "abc");
  std::remove(path.c_str());
}

TEST(PredictedClasses, FirstMaximumWins) {
  const Tensor logits = Tensor::from_vector<float>({0, 2, 2, 5, -1, 0}, {2, 3});
  EXPECT_EQ(ood::predicted_classes(logits).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

}  // namespace
