// The heatmap detector: its decoder file, its score, its training (ood/heatmap.h, heatmap_train.h).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "framework/autograd.h"
#include "framework/ops/channel.h"
#include "framework/safetensors.h"
#include "ood/heatmap.h"
#include "ood/heatmap_train.h"
#include "ood/metrics.h"
#include "ood/protocol.h"
#include "ood/scores.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::kF32;

namespace {

class HeatmapTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(HeatmapTest);

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "oodkit_heatmap_" + std::to_string(::getpid()) + "_" + name;
}

// A small decoder: D = 4, K = 2, C0 = 8, channels 8/4 -> 8x8 heatmaps.
ood::HeatmapModelInfo small_info() {
  ood::HeatmapModelInfo i;
  i.config.feature_dim = 4;
  i.config.num_classes = 2;
  i.config.fc_channels = 8;
  i.config.channels = {8, 4};
  i.norm = {-1.0, 3.0};
  i.classifier_fingerprint = "fnv1a64:0000000000000001";
  i.classifier_arch = "test";
  i.id_dataset = "synthetic";
  i.image_size = 8;
  i.oe = "synthetic:oe";
  return i;
}

TEST(Heatmap, FeatureNormIsGlobalMinMax) {
  const Tensor z = Tensor::from_vector<float>({1, -2, 4, 0.5f, 3, 2}, {2, 3});
  const ood::FeatureNorm n = ood::fit_feature_norm(z);
  EXPECT_EQ(n.min, -2.0);
  EXPECT_EQ(n.max, 4.0);
  // (z + 2) / 6, every row (not only the first: the official code's slip).
  EXPECT_ALL_CLOSE(ood::normalize_features(z, n),
                   Tensor::from_vector<float>({0.5f, 0, 1, 2.5f / 6, 5.f / 6, 4.f / 6}, {2, 3}), kF32);
  EXPECT_THROW(ood::fit_feature_norm(Tensor::full({2, 2}, 1.0)), Error);  // max == min
  EXPECT_THROW(ood::fit_feature_norm(Tensor::from_vector<float>({0, NAN}, {1, 2})), Error);
}

TEST(Heatmap, WidthScalesChannelsOnly) {
  const models::DecoderConfig c = models::DecoderConfig::for_classifier("resnet20", 64, 10, 32);
  const models::DecoderConfig h = ood::scale_decoder_width(c, 0.25);
  EXPECT_EQ(h.channels, (std::vector<int64_t>{128, 64, 32, 16}));
  EXPECT_EQ(h.fc_channels, 100);
  EXPECT_EQ(ood::scale_decoder_width(c, 0.001).channels, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_THROW(ood::scale_decoder_width(c, 0.0), Error);
}

// The detector's score is heatmap_score(D(norm(z), onehot(argmax logits))), here recomputed
// through the decoder with the inputs built by hand; after a file round trip it is unchanged.
TEST_P(HeatmapTest, DetectorScoresTheDecoderOutputAndSurvivesSaveLoad) {
  Generator g(5);
  auto model = std::make_shared<ood::HeatmapModel>(small_info(), g);
  ood::Features f;
  f.z = Tensor::uniform({6, 4}, -1.0, 3.0, g);
  f.logits = Tensor::from_vector<float>({0, 1, 2, 1, 5, 5, -1, -2, 0.5f, 0.4f, 3, 4}, {6, 2});
  // By hand: (z + 1) / 4 and the one-hot of argmax: rows 0, 5 -> class 1; 1, 3, 4 -> 0; the tie
  // in row 2 -> 0 (first maximum).
  std::vector<float> zn(24), oh(12, 0.f);
  for (int i = 0; i < 24; ++i) zn[size_t(i)] = (f.z.data<float>()[i] + 1.f) / 4.f;
  for (int i : {0, 5}) oh[size_t(2 * i + 1)] = 1.f;
  for (int i : {1, 2, 3, 4}) oh[size_t(2 * i)] = 1.f;
  model->decoder().eval();
  const Tensor h = model->decoder().forward(Tensor::from_vector(zn, {6, 4}), Tensor::from_vector(oh, {6, 2}));
  const Tensor expected = ood::heatmap_score(h);

  ood::HeatmapDetector det(model);
  ood::Features fd = f;
  fd.z = f.z.to(device());
  fd.logits = f.logits.to(device());
  EXPECT_ALL_CLOSE(det.score(fd), expected, kF32);

  const std::string path = temp_path("det");
  det.save(path);
  const std::unique_ptr<ood::Detector> loaded = ood::load_detector(path);
  ASSERT_EQ(loaded->name(), "heatmap");
  EXPECT_ALL_CLOSE(loaded->score(fd), expected, kF32);
  const auto& hm = dynamic_cast<const ood::HeatmapDetector&>(*loaded).model();
  EXPECT_EQ(hm.info().norm.min, -1.0);
  EXPECT_EQ(hm.info().config.channels, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(hm.info().oe, "synthetic:oe");
  for (const char* ext : {".json", ".safetensors", ".decoder.safetensors"}) std::remove((path + ext).c_str());
}

TEST(Heatmap, DecoderIsRefusedWithAnotherClassifier) {
  ood::HeatmapModel m(small_info());
  m.check_classifier("fnv1a64:0000000000000001", "decoder");  // its own: fine
  try {
    m.check_classifier("fnv1a64:0000000000000002", "the decoder 'x'");
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string s = e.what();
    EXPECT_NE(s.find("the decoder 'x' was trained for another classifier"), std::string::npos) << s;
  }
  // Fingerprints: equal for equal weights, different after one changed value.
  Generator g1(3), g2(3);
  models::HeatmapDecoder a(small_info().config, g1), b(small_info().config, g2);
  EXPECT_EQ(ood::module_fingerprint(a), ood::module_fingerprint(b));
  b.fc().bias.data<float>()[0] += 1e-6f;
  EXPECT_NE(ood::module_fingerprint(a), ood::module_fingerprint(b));
  // A decoder file with a wrong tensor shape or a foreign tensor is refused, naming the file.
  const std::string path = temp_path("bad.safetensors");
  m.save(path, {{"stray", Tensor::zeros({1})}});
  try {
    ood::HeatmapModel::load(path);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("stray"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

// The training options `heatmap fit` records: saved as the "options" metadata, read back as
// written; a model without them writes no such key and reads back "" (files from before).
TEST(Heatmap, FitOptionsSurviveSaveLoadAndAreAbsentWhenEmpty) {
  const std::string with = temp_path("with_options.safetensors"), without = temp_path("without_options.safetensors");
  ood::HeatmapModelInfo info = small_info();
  ood::HeatmapModel(info).save(without);
  info.fit_options = R"({"--lr":0.0002,"--skip-unreadable":["a/x.png"]})";
  ood::HeatmapModel(info).save(with);
  std::map<std::string, std::string> meta;
  load_safetensors(with, &meta);
  EXPECT_EQ(meta["options"], info.fit_options);
  EXPECT_EQ(ood::HeatmapModel::load(with)->info().fit_options, info.fit_options);
  meta.clear();
  load_safetensors(without, &meta);
  EXPECT_EQ(meta.count("options"), 0u);
  EXPECT_EQ(ood::HeatmapModel::load(without)->info().fit_options, "");
  std::remove(with.c_str());
  std::remove(without.c_str());
}

TEST(Heatmap, EpochOrderIsAPermutationFixedBySeedAndEpoch) {
  const std::vector<int64_t> a = ood::decoder_epoch_order(1000, 7, 3);
  std::vector<int64_t> s = a;
  std::sort(s.begin(), s.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(s[size_t(i)], i);
  EXPECT_EQ(a, ood::decoder_epoch_order(1000, 7, 3));
  EXPECT_NE(a, ood::decoder_epoch_order(1000, 7, 4));
  EXPECT_NE(a, ood::decoder_epoch_order(1000, 8, 3));
}

// ---- training on a synthetic problem --------------------------------------------------------------
//
// ID: z around (+-2, 0, 0, 0) by class, images a smooth class pattern; OE: z around (0, 0, 3, 3)
// (predicted class alternating), images a stripe pattern. Held-out samples from both distributions test
// whether the trained heatmap score separates them.
struct Synthetic {
  ood::DecoderTrainSet set;
  Tensor val_id_z, val_id_logits, val_oe_z, val_oe_logits;
};

Tensor cluster(int64_t n, const std::vector<float>& centre, float spread, Generator& g) {
  Tensor z = Tensor::randn({n, 4}, g);
  float* p = z.data<float>();
  for (int64_t i = 0; i < n * 4; ++i) p[i] = centre[size_t(i % 4)] + spread * p[i];
  return z;
}

Synthetic make_synthetic(int64_t n_id, int64_t n_oe, uint64_t seed) {
  Generator g(seed);
  Synthetic s;
  std::vector<int64_t> id_pred(static_cast<size_t>(n_id)), oe_pred(static_cast<size_t>(n_oe));
  Tensor id_z = Tensor::empty({n_id, 4});
  Tensor id_x = Tensor::empty({n_id, 3, 8, 8}, DType::U8), oe_x = Tensor::empty({n_oe, 3, 8, 8}, DType::U8);
  for (int64_t i = 0; i < n_id; ++i) {
    const int64_t c = i % 2;
    id_pred[size_t(i)] = c;
    const Tensor zi = cluster(1, {c ? 2.f : -2.f, 0, 0, 0}, 0.3f, g);
    std::copy(zi.data<float>(), zi.data<float>() + 4, id_z.data<float>() + i * 4);
    for (int64_t e = 0; e < 192; ++e)
      id_x.data<uint8_t>()[i * 192 + e] = uint8_t(128 + (c ? 40 : -40) * std::sin(0.3 * double(e)));
  }
  // OE images: one stripe pattern (dark and bright columns) plus a little noise, so the targets
  // x_n - x_o are mostly a function of the predicted class (learnable from few samples).
  const Tensor noise = Tensor::uniform({n_oe * 192}, -10.0, 10.0, g);
  for (int64_t i = 0; i < n_oe * 192; ++i)
    oe_x.data<uint8_t>()[i] = uint8_t((i % 8) < 4 ? 30 + noise.data<float>()[i] : 220 + noise.data<float>()[i]);
  for (int64_t i = 0; i < n_oe; ++i) oe_pred[size_t(i)] = (i * 7 / 3) % 2;
  const Tensor oe_z = cluster(n_oe, {0, 0, 3, 3}, 0.3f, g);
  s.set.id_images = id_x;
  s.set.oe_images = oe_x;
  s.set.targets = ood::nearest_id_targets(id_z, Tensor::from_vector(id_pred, {n_id}), oe_z,
                                          Tensor::from_vector(oe_pred, {n_oe}));
  const auto logits_for = [](int64_t n, int64_t offset) {
    std::vector<float> l(size_t(2 * n), 0.f);
    for (int64_t i = 0; i < n; ++i) l[size_t(2 * i + (i + offset) % 2)] = 1.f;
    return Tensor::from_vector(l, {n, 2});
  };
  s.val_id_z = Tensor::empty({40, 4});
  for (int64_t i = 0; i < 40; ++i) {
    const Tensor zi = cluster(1, {i % 2 ? 2.f : -2.f, 0, 0, 0}, 0.3f, g);
    std::copy(zi.data<float>(), zi.data<float>() + 4, s.val_id_z.data<float>() + i * 4);
  }
  s.val_id_logits = logits_for(40, 0);
  s.val_oe_z = cluster(40, {0, 0, 3, 3}, 0.3f, g);
  s.val_oe_logits = logits_for(40, 1);
  return s;
}

ood::HeatmapModelInfo synthetic_info(const Synthetic& s) {
  ood::HeatmapModelInfo i = small_info();
  i.norm = ood::fit_feature_norm(s.set.targets.id_features);
  return i;
}

TEST_P(HeatmapTest, TrainingLearnsZeroForIdAndLargeHeatmapsForOe) {
  const Synthetic s = make_synthetic(200, 40, 11);
  Generator g(2);
  ood::HeatmapModel model(synthetic_info(s), g);
  ood::DecoderTrainOptions o;
  o.batch = 48;
  o.lr = 2e-3;
  o.device = device();
  ood::DecoderTrainer trainer(model, s.set, o);
  EXPECT_EQ(trainer.steps_per_epoch(), 5);  // 240 samples, the last batch 48 too
  std::vector<ood::DecoderEpoch> epochs;
  for (int e = 0; e < 25; ++e) epochs.push_back(trainer.run_epoch(e));
  EXPECT_EQ(epochs.front().samples, 240);
  // The loss falls (ID part most: its target, 0, is learnable exactly).
  EXPECT_LT(epochs.back().loss, 0.8 * epochs.front().loss);
  EXPECT_LT(epochs.back().id_loss, 0.25 * epochs.front().id_loss);
  // Held-out samples: OE heatmaps are larger (lower score) than ID ones, and the score separates them.
  const std::vector<double> sid =
      ood::to_doubles(ood::heatmap_score(model.heatmaps(s.val_id_z.to(device()), s.val_id_logits.to(device()))));
  const std::vector<double> soe =
      ood::to_doubles(ood::heatmap_score(model.heatmaps(s.val_oe_z.to(device()), s.val_oe_logits.to(device()))));
  double mid = 0, moe = 0;
  for (size_t i = 0; i < sid.size(); ++i) {
    mid += sid[i] / double(sid.size());
    moe += soe[i] / double(soe.size());
  }
  EXPECT_LT(moe, mid);  // score = -mean |h|: larger heatmaps give lower scores
  EXPECT_GT(ood::compute_ood_metrics(sid, soe).auroc, 0.95);
  // On the OE training images the heatmaps move towards their targets x_n - x_o (built here by
  // oe_heatmap_targets from [-1, 1] images): closer to them than an all-zero heatmap is.
  const auto to_pm1 = [](const Tensor& u8) {
    std::vector<float> v(size_t(u8.numel()));
    for (int64_t i = 0; i < u8.numel(); ++i) v[size_t(i)] = float(u8.data<uint8_t>()[i]) / 127.5f - 1.f;
    return Tensor::from_vector(v, u8.shape());
  };
  const Tensor target =
      ood::oe_heatmap_targets(to_pm1(s.set.id_images), to_pm1(s.set.oe_images), s.set.targets.oe_nn_index);
  const int64_t n_oe = s.set.targets.oe_pred.size(0);
  std::vector<float> oe_logits(size_t(2 * n_oe), 0.f);
  for (int64_t i = 0; i < n_oe; ++i) oe_logits[size_t(2 * i + s.set.targets.oe_pred.data<int64_t>()[i])] = 1.f;
  const Tensor h = model.heatmaps(s.set.targets.oe_features.to(device()), Tensor::from_vector(oe_logits, {n_oe, 2}).to(device())).cpu();
  double err = 0, zero_err = 0;
  for (int64_t i = 0; i < h.numel(); ++i) {
    const double t = target.data<float>()[i], d = h.data<float>()[i] - t;
    err += d * d;
    zero_err += t * t;
  }
  EXPECT_LT(err, 0.85 * zero_err);
}

// Three epochs straight == two epochs, a checkpoint file, a fresh model and trainer loaded from it,
// one more epoch: bit-identical weights, buffers and Adam state (CPU).
TEST(Heatmap, ResumeFromACheckpointIsBitExact) {
  const Synthetic s = make_synthetic(90, 30, 12);
  ood::DecoderTrainOptions o;
  o.batch = 32;
  o.lr = 1e-3;
  o.seed = 9;
  Generator g1(4);
  ood::HeatmapModel straight(synthetic_info(s), g1);
  ood::DecoderTrainer t1(straight, s.set, o);
  for (int e = 0; e < 3; ++e) t1.run_epoch(e);

  Generator g2(4);
  ood::HeatmapModel first(synthetic_info(s), g2);
  ood::DecoderTrainer t2(first, s.set, o);
  for (int e = 0; e < 2; ++e) t2.run_epoch(e);
  first.info().epoch = 2;
  const std::string path = temp_path("last.safetensors");
  NamedTensors extra;
  for (const auto& [n, t] : t2.optimizer_state()) extra.emplace_back("optim/" + n, t);
  first.save(path, extra);
  NamedTensors optim_state;
  std::shared_ptr<ood::HeatmapModel> resumed = ood::HeatmapModel::load(path, &optim_state);
  EXPECT_EQ(resumed->info().epoch, 2);
  ood::DecoderTrainer t3(*resumed, s.set, o);
  t3.load_optimizer_state(optim_state);
  t3.run_epoch(2);
  std::remove(path.c_str());

  const NamedTensors a = straight.decoder().state_dict(), b = resumed->decoder().state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes());
    EXPECT_EQ(std::memcmp(a[i].second.raw_data(), b[i].second.raw_data(), a[i].second.nbytes()), 0) << a[i].first;
  }
  const NamedTensors oa = t1.optimizer_state(), ob = t3.optimizer_state();
  ASSERT_EQ(oa.size(), ob.size());
  for (size_t i = 0; i < oa.size(); ++i)
    EXPECT_EQ(std::memcmp(oa[i].second.cpu().raw_data(), ob[i].second.cpu().raw_data(), oa[i].second.nbytes()), 0)
        << oa[i].first;
}

// ---- one training batch and its loss, against the definition (heatmap_train.h) -----------------------
//
// The ID rows are rows of a dataset with held-out rows removed, as in `heatmap fit`: dataset rows
// 0..15 minus {1, 4, 5, 9, 12}, so id_features row p is dataset row kGapRows[p], and an OE image's
// neighbour (oe_nn_index, a dataset row) must be read from the ID images at its position, not at
// its dataset row. Features are random, classes 0/1 (K = 2), images random uint8 8x8.
const std::vector<int64_t> kGapRows{0, 2, 3, 6, 7, 8, 10, 11, 13, 14, 15};

struct GapSet {
  ood::DecoderTrainSet set;
  std::vector<float> id_z, oe_z;        // [N_id, 4], [N_oe, 4]
  std::vector<int64_t> id_pred, oe_pred;
  std::vector<uint8_t> id_x, oe_x;      // [N, 3, 8, 8]
  int64_t n_id = 0, n_oe = 0;
};

GapSet make_gap_set(uint64_t seed) {
  Generator g(seed);
  GapSet s;
  s.n_id = int64_t(kGapRows.size());
  s.n_oe = 6;
  s.id_z = Tensor::randn({s.n_id, 4}, g).to_vector<float>();
  s.oe_z = Tensor::randn({s.n_oe, 4}, g).to_vector<float>();
  for (int64_t p = 0; p < s.n_id; ++p) s.id_pred.push_back(p % 2);
  s.oe_pred = {0, 1, 1, 0, 1, 0};
  for (float v : Tensor::uniform({s.n_id * 192}, 0.0, 256.0, g).to_vector<float>())
    s.id_x.push_back(uint8_t(std::min(255.f, std::floor(v))));
  for (float v : Tensor::uniform({s.n_oe * 192}, 0.0, 256.0, g).to_vector<float>())
    s.oe_x.push_back(uint8_t(std::min(255.f, std::floor(v))));
  s.set.id_images = Tensor::from_vector(s.id_x, {s.n_id, 3, 8, 8});
  s.set.oe_images = Tensor::from_vector(s.oe_x, {s.n_oe, 3, 8, 8});
  s.set.targets = ood::nearest_id_targets(Tensor::from_vector(s.id_z, {s.n_id, 4}),
                                          Tensor::from_vector(s.id_pred, {s.n_id}),
                                          Tensor::from_vector(s.oe_z, {s.n_oe, 4}),
                                          Tensor::from_vector(s.oe_pred, {s.n_oe}), {},
                                          Tensor::from_vector(kGapRows, {s.n_id}));
  return s;
}

// The position (id_features row) of OE row j's nearest ID row of the same predicted class, by brute
// force in double over the fitting rows.
int64_t brute_force_neighbour(const GapSet& s, int64_t j) {
  int64_t best = -1;
  double best_d = 0;
  for (int64_t p = 0; p < s.n_id; ++p) {
    if (s.id_pred[size_t(p)] != s.oe_pred[size_t(j)]) continue;
    double d = 0;
    for (int k = 0; k < 4; ++k) {
      const double diff = double(s.oe_z[size_t(j * 4 + k)]) - double(s.id_z[size_t(p * 4 + k)]);
      d += diff * diff;
    }
    if (best < 0 || d < best_d) {
      best = p;
      best_d = d;
    }
  }
  return best;
}

// small_info() with the min-max of the set's ID features, taken here by a plain loop.
ood::HeatmapModelInfo gap_info(const GapSet& s) {
  ood::HeatmapModelInfo i = small_info();
  i.norm.min = *std::min_element(s.id_z.begin(), s.id_z.end());
  i.norm.max = *std::max_element(s.id_z.begin(), s.id_z.end());
  return i;
}

// Sample id (< N_id: ID row; else OE row id - N_id) -> its input x and its y, in [-1, 1], as doubles
// from the uint8 images: y = x for ID, the brute-force neighbour's image for OE.
struct SampleImages {
  std::vector<double> x, y;
};
SampleImages sample_images(const GapSet& s, int64_t id) {
  SampleImages r;
  const bool oe = id >= s.n_id;
  const int64_t row = oe ? id - s.n_id : id, nn = oe ? brute_force_neighbour(s, row) : row;
  for (int64_t e = 0; e < 192; ++e) {
    r.x.push_back(double((oe ? s.oe_x : s.id_x)[size_t(row * 192 + e)]) / 127.5 - 1.0);
    r.y.push_back(double(s.id_x[size_t(nn * 192 + e)]) / 127.5 - 1.0);
  }
  return r;
}

// make_batch against its definition, everything recomputed here from the raw set: per element
// target = y - x and weight = 1 + s |y| (the loss weight of the paper, s = weight_scale, the default
// 5 and another one), z = (z - min) / (max - min), pred = one-hot of the predicted class, in the
// order of the ids given (here OE first and reversed, so the order is not the natural one).
TEST_P(HeatmapTest, BatchTargetAndWeightFollowTheDefinitionWithHeldOutGaps) {
  const GapSet s = make_gap_set(31);
  // The gaps matter: some OE image's neighbour has a dataset row that is another, existing position
  // (reading the ID images at the dataset row gives another image).
  int64_t shifted = 0;
  for (int64_t j = 0; j < s.n_oe; ++j) {
    const int64_t p = brute_force_neighbour(s, j);
    shifted += kGapRows[size_t(p)] != p && kGapRows[size_t(p)] < s.n_id;
  }
  ASSERT_GT(shifted, 0);
  const ood::HeatmapModelInfo info = gap_info(s);
  std::vector<int64_t> ids;
  for (int64_t i = s.n_id + s.n_oe; i-- > 0;) ids.push_back(i);
  const int64_t b = int64_t(ids.size());
  for (const auto& [scale, by] : {std::pair{5.0, ood::LossWeight::Target}, std::pair{0.5, ood::LossWeight::Target},
                                  std::pair{5.0, ood::LossWeight::Heatmap}}) {
    SCOPED_TRACE("weight_scale " + std::to_string(scale) + ", loss weight " + ood::loss_weight_name(by));
    ood::HeatmapModel model(info);
    ood::DecoderTrainOptions o;
    o.weight_scale = scale;
    o.loss_weight = by;
    o.device = device();
    ood::DecoderTrainer trainer(model, s.set, o);
    const ood::DecoderTrainer::Batch batch = trainer.make_batch(ids);
    EXPECT_EQ(batch.n_oe, s.n_oe);
    std::vector<double> target, weight, z, onehot;
    for (int64_t id : ids) {
      const SampleImages im = sample_images(s, id);
      for (size_t e = 0; e < im.x.size(); ++e) {
        target.push_back(im.y[e] - im.x[e]);
        // The official code weighs by the target image y; the paper's text by the heatmap y - x.
        const double what = by == ood::LossWeight::Target ? im.y[e] : im.y[e] - im.x[e];
        weight.push_back(1.0 + scale * std::fabs(what));
      }
      const bool oe = id >= s.n_id;
      const int64_t row = oe ? id - s.n_id : id;
      for (int k = 0; k < 4; ++k)
        z.push_back((double((oe ? s.oe_z : s.id_z)[size_t(row * 4 + k)]) - info.norm.min) /
                    (info.norm.max - info.norm.min));
      const int64_t c = (oe ? s.oe_pred : s.id_pred)[size_t(row)];
      for (int64_t k = 0; k < 2; ++k) onehot.push_back(k == c ? 1.0 : 0.0);
    }
    EXPECT_ALL_CLOSE(batch.target, Tensor::from_vector(target, {b, 3, 8, 8}), kF32);
    EXPECT_ALL_CLOSE(batch.weight, Tensor::from_vector(weight, {b, 3, 8, 8}), kF32);
    EXPECT_ALL_CLOSE(batch.z, Tensor::from_vector(z, {b, 4}), kF32);
    EXPECT_ALL_CLOSE(batch.pred, Tensor::from_vector(onehot, {b, 2}), kF32);
    EXPECT_THROW(trainer.make_batch({s.n_id + s.n_oe}), Error);
  }
}

// One epoch in one batch: its reported losses are (1/B) sum_b sum_e (1 + 5 |y|) (h - (y - x))^2 over
// all samples, the ID and the OE ones, with h the decoder's training-mode output on the batch's
// inputs built here by hand (the step's update comes after the loss). BatchNorm sees the same batch
// in another order, which changes only rounding.
TEST_P(HeatmapTest, EpochLossIsTheWeightedSquaredErrorOfTheDefinition) {
  const GapSet s = make_gap_set(32);
  const ood::HeatmapModelInfo info = gap_info(s);
  Generator g(6);
  ood::HeatmapModel model(info, g);
  const int64_t b = s.n_id + s.n_oe;
  std::vector<float> z, onehot;
  for (int64_t id = 0; id < b; ++id) {
    const bool oe = id >= s.n_id;
    const int64_t row = oe ? id - s.n_id : id;
    for (int k = 0; k < 4; ++k)
      z.push_back(float((double((oe ? s.oe_z : s.id_z)[size_t(row * 4 + k)]) - info.norm.min) /
                        (info.norm.max - info.norm.min)));
    const int64_t c = (oe ? s.oe_pred : s.id_pred)[size_t(row)];
    for (int64_t k = 0; k < 2; ++k) onehot.push_back(k == c ? 1.f : 0.f);
  }
  model.decoder().to(device());
  model.decoder().train();
  std::vector<float> h;
  {
    autograd::NoGradGuard ng;
    h = model.decoder()
            .forward(Tensor::from_vector(z, {b, 4}).to(device()), Tensor::from_vector(onehot, {b, 2}).to(device()))
            .cpu()
            .to_vector<float>();
  }
  double id_sum = 0, oe_sum = 0;
  for (int64_t id = 0; id < b; ++id) {
    const SampleImages im = sample_images(s, id);
    double l = 0;
    for (size_t e = 0; e < im.x.size(); ++e) {
      const double d = double(h[size_t(id * 192) + e]) - (im.y[e] - im.x[e]);
      l += (1.0 + 5.0 * std::fabs(im.y[e])) * d * d;
    }
    (id < s.n_id ? id_sum : oe_sum) += l;
  }
  ood::DecoderTrainOptions o;
  o.batch = b;
  o.device = device();
  ood::DecoderTrainer trainer(model, s.set, o);
  ASSERT_EQ(trainer.steps_per_epoch(), 1);
  const ood::DecoderEpoch r = trainer.run_epoch(0);
  EXPECT_EQ(r.samples, b);
  const double id_loss = id_sum / double(s.n_id), oe_loss = oe_sum / double(s.n_oe), loss = (id_sum + oe_sum) / double(b);
  EXPECT_NEAR(r.id_loss, id_loss, 1e-4 * id_loss);
  EXPECT_NEAR(r.oe_loss, oe_loss, 1e-4 * oe_loss);
  EXPECT_NEAR(r.loss, loss, 1e-4 * loss);
}

TEST(Heatmap, TrainerRejectsBadSets) {
  Synthetic s = make_synthetic(20, 6, 13);
  ood::HeatmapModel model(synthetic_info(s));
  ood::DecoderTrainSet bad = s.set;
  bad.id_images = Tensor::zeros({20, 3, 16, 16}, DType::U8);  // not the decoder's 8x8
  try {
    ood::DecoderTrainer t(model, bad, {});
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id_images must be uint8 [20, 3, 8, 8]"), std::string::npos) << e.what();
  }
  bad = s.set;
  bad.targets.id_pred = Tensor::from_vector(std::vector<int64_t>(20, 5), {20});  // class 5 of 2
  EXPECT_THROW(ood::DecoderTrainer(model, bad, {}), Error);
  // A NaN reaching the loss stops the epoch with an error naming the epoch and the step.
  bad = s.set;
  bad.targets.id_features = s.set.targets.id_features.cpu().to(DType::F32);
  bad.targets.id_features = Tensor::from_vector(bad.targets.id_features.to_vector<float>(), {20, 4});
  bad.targets.id_features.data<float>()[5] = NAN;
  ood::DecoderTrainOptions o;
  o.batch = 8;
  ood::DecoderTrainer t(model, bad, o);
  try {
    t.run_epoch(0);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the loss became nan at epoch 1 step "), std::string::npos) << e.what();
  }
}

}  // namespace
