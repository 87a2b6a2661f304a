#include <atomic>
#include <set>
#include <thread>

#include "data/augment.h"
#include "data/loader.h"
#include "framework/random.h"
#include "testing.h"

using namespace oodkit;

namespace {

// n images of 3 x h x w whose pixels encode their row index; labels = row % 10.
data::Dataset indexed_dataset(int64_t n, int64_t h = 4, int64_t w = 4, bool labels = true) {
  data::Dataset ds;
  ds.name = "indexed";
  ds.images = Tensor::empty({n, 3, h, w}, DType::U8);
  uint8_t* p = ds.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < 3 * h * w; ++k) p[i * 3 * h * w + k] = uint8_t((i * 7 + k) % 256);
  if (labels) {
    std::vector<int64_t> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) y[size_t(i)] = i % 10;
    ds.labels = Tensor::from_vector<int64_t>(y, {n});
    ds.num_classes = 10;
  }
  return ds;
}

std::vector<data::Batch> drain(data::BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<data::Batch> out;
  data::Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

std::vector<int64_t> visit_order(const std::vector<data::Batch>& batches) {
  std::vector<int64_t> order;
  for (const data::Batch& b : batches) order.insert(order.end(), b.indices.begin(), b.indices.end());
  return order;
}

TEST(Loader, EverySampleOncePerEpochWithMatchingContent) {
  const data::Dataset ds = indexed_dataset(103);
  data::LoaderOptions o;
  o.batch_size = 10;
  o.seed = 5;
  o.norm = {{0.1f, 0.2f, 0.3f}, {0.5f, 0.6f, 0.7f}};
  data::BatchLoader loader(ds, o);
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  const std::vector<data::Batch> batches = drain(loader, 0);
  ASSERT_EQ(batches.size(), 11u);
  EXPECT_EQ(batches.back().images.size(0), 3);
  std::vector<int64_t> order = visit_order(batches);
  EXPECT_EQ(order, loader.epoch_order(0));
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(sorted[size_t(i)], i);
  EXPECT_NE(order, sorted);  // shuffled
  const Tensor all = data::normalize(ds.images, o.norm);
  for (size_t b = 0; b < batches.size(); ++b) {
    EXPECT_EQ(batches[b].index, int64_t(b));
    EXPECT_EQ(batches[b].epoch, 0);
    const std::vector<int64_t> y = batches[b].labels.to_vector<int64_t>();
    const std::vector<float> x = batches[b].images.to_vector<float>();
    for (size_t i = 0; i < batches[b].indices.size(); ++i) {
      const int64_t row = batches[b].indices[i];
      EXPECT_EQ(y[i], row % 10);
      const std::vector<float> want = all.narrow(row, 1).to_vector<float>();
      for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(x[i * 48 + k], want[k]);  // bit-identical
    }
  }
}

TEST(Loader, DropLastAndNoShuffleAndSubsetRows) {
  const data::Dataset ds = indexed_dataset(23, 2, 2, false);
  data::LoaderOptions o;
  o.batch_size = 5;
  o.drop_last = true;
  o.shuffle = false;
  data::BatchLoader loader(ds, o, {4, 9, 1, 2, 3, 5, 7, 8, 11, 12, 13});
  EXPECT_EQ(loader.size(), 11);
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  const std::vector<data::Batch> batches = drain(loader, 3);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_FALSE(batches[0].labels.defined());
  EXPECT_EQ(visit_order(batches), (std::vector<int64_t>{4, 9, 1, 2, 3, 5, 7, 8, 11, 12}));
  EXPECT_THROW(data::BatchLoader(ds, o, {0, 23}), Error);
  o.batch_size = 0;
  EXPECT_THROW(data::BatchLoader(ds, o), Error);
}

TEST(Loader, OrderIsAFunctionOfSeedAndEpochOnly) {
  const data::Dataset ds = indexed_dataset(200, 2, 2);
  data::LoaderOptions o;
  o.batch_size = 16;
  o.seed = 42;
  data::BatchLoader a(ds, o);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 4; ++e) epochs.push_back(visit_order(drain(a, e)));
  for (int e = 1; e < 4; ++e) EXPECT_NE(epochs[size_t(e)], epochs[0]);
  // A "resumed" loader with another batch size and queue depth starting at epoch 3.
  o.batch_size = 7;
  o.queue_depth = 1;
  data::BatchLoader resumed(ds, o);
  EXPECT_EQ(visit_order(drain(resumed, 3)), epochs[3]);
  o.seed = 43;
  data::BatchLoader other(ds, o);
  EXPECT_NE(visit_order(drain(other, 3)), epochs[3]);
}

TEST(Augment, CropFlipByHand) {
  // 1 channel 3x3, values 1..9; pad 1.
  const std::vector<uint8_t> src = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<uint8_t> dst(9);
  data::crop_flip(src.data(), 1, 3, 3, 1, {1, 1, false}, dst.data());  // centred: identity
  EXPECT_EQ(dst, src);
  data::crop_flip(src.data(), 1, 3, 3, 1, {0, 2, false}, dst.data());  // content moves down 1 row, left 1 column
  EXPECT_EQ(dst, (std::vector<uint8_t>{0, 0, 0, 2, 3, 0, 5, 6, 0}));
  data::crop_flip(src.data(), 1, 3, 3, 1, {1, 1, true}, dst.data());  // mirror
  EXPECT_EQ(dst, (std::vector<uint8_t>{3, 2, 1, 6, 5, 4, 9, 8, 7}));
  data::crop_flip(src.data(), 1, 3, 3, 1, {2, 0, true}, dst.data());  // crop then mirror
  // crop at (2, 0) of the padded image: rows 4..9 shifted: [0 4 5; 0 7 8; 0 0 0], mirrored:
  EXPECT_EQ(dst, (std::vector<uint8_t>{5, 4, 0, 8, 7, 0, 0, 0, 0}));
}

TEST(Augment, ParametersCoverTheRangeAndDependOnlyOnSeedAndKey) {
  std::set<int> dys, dxs;
  int flips = 0;
  for (uint64_t key = 0; key < 4000; ++key) {
    const data::CropFlip p = data::draw_crop_flip(9, key, 4, true, true);
    ASSERT_TRUE(p.dy >= 0 && p.dy <= 8 && p.dx >= 0 && p.dx <= 8);
    dys.insert(p.dy);
    dxs.insert(p.dx);
    flips += p.flip;
    const data::CropFlip q = data::draw_crop_flip(9, key, 4, true, true);
    ASSERT_TRUE(q.dy == p.dy && q.dx == p.dx && q.flip == p.flip);
  }
  EXPECT_EQ(dys.size(), 9u);
  EXPECT_EQ(dxs.size(), 9u);
  EXPECT_NEAR(flips, 2000, 150);  // ~4.7 sigma
  const data::CropFlip none = data::draw_crop_flip(9, 1, 4, false, false);
  EXPECT_TRUE(none.dy == 4 && none.dx == 4 && !none.flip);
}

TEST(Loader, AugmentedBatchesMatchTheDrawnCropFlip) {
  const data::Dataset ds = indexed_dataset(50, 6, 5);
  data::LoaderOptions o;
  o.batch_size = 8;
  o.seed = 77;
  o.random_crop = true;
  o.pad = 2;
  o.hflip = true;
  data::BatchLoader loader(ds, o);
  const int epoch = 2;
  const uint64_t aug_seed = counter_hash(77, 2 * epoch + 1);
  int shifted = 0, flipped = 0;
  for (const data::Batch& b : drain(loader, epoch)) {
    const std::vector<float> x = b.images.to_vector<float>();
    for (size_t i = 0; i < b.indices.size(); ++i) {
      const int64_t row = b.indices[i];
      const data::CropFlip p = data::draw_crop_flip(aug_seed, uint64_t(row), 2, true, true);
      shifted += p.dy != 2 || p.dx != 2;
      flipped += p.flip;
      std::vector<uint8_t> want(90);
      data::crop_flip(ds.images.data<uint8_t>() + row * 90, 3, 6, 5, 2, p, want.data());
      const std::vector<float> norm =
          data::normalize(Tensor::from_vector<uint8_t>(want, {1, 3, 6, 5}), o.norm).to_vector<float>();
      for (size_t k = 0; k < 90; ++k) ASSERT_EQ(x[i * 90 + k], norm[k]) << "row " << row << " k " << k;
    }
  }
  EXPECT_GT(shifted, 30);
  EXPECT_GT(flipped, 10);
  // The batch helper agrees with the per-image one.
  const Tensor aug = data::random_crop_flip(ds.images, 2, true, aug_seed);
  std::vector<uint8_t> want(90);
  data::crop_flip(ds.images.data<uint8_t>() + 7 * 90, 3, 6, 5, 2, data::draw_crop_flip(aug_seed, 7, 2, true, true),
                  want.data());
  EXPECT_EQ(aug.narrow(7, 1).to_vector<uint8_t>(), want);
}

TEST(Loader, WorkerExceptionReachesTheConsumerAfterEarlierBatches) {
  const data::Dataset ds = indexed_dataset(40, 2, 2);
  data::LoaderOptions o;
  o.batch_size = 5;
  o.transform = [](data::Batch& b) {
    if (b.index == 2) throw std::runtime_error("boom in transform");
  };
  data::BatchLoader loader(ds, o);
  loader.start_epoch(1);
  data::Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.index, 0);
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.index, 1);
  try {
    loader.next(b);
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("boom in transform"), std::string::npos) << m;
    EXPECT_NE(m.find("epoch 1, batch 2"), std::string::npos) << m;
  }
  EXPECT_THROW(loader.next(b), Error);  // the epoch stays failed
  data::BatchLoader fresh(ds, {});
  EXPECT_THROW(fresh.next(b), Error);  // no epoch started
}

TEST(Loader, EarlyDestructionAndRestartDoNotDeadlock) {
  const data::Dataset ds = indexed_dataset(2000, 8, 8);
  data::LoaderOptions o;
  o.batch_size = 4;
  o.queue_depth = 2;
  std::atomic<int> made{0};
  o.transform = [&made](data::Batch&) { ++made; };
  {
    data::BatchLoader never_started(ds, o);
  }
  {
    data::BatchLoader loader(ds, o);
    loader.start_epoch(0);
    data::Batch b;
    ASSERT_TRUE(loader.next(b));
    // The worker fills the queue (depth 2) and blocks; destruction must wake and join it.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(made.load(), 10);  // it did not run ahead of the bounded queue
  {
    data::BatchLoader loader(ds, o);
    for (int e = 0; e < 5; ++e) loader.start_epoch(e);  // restarting abandons unfinished epochs
    data::Batch b;
    ASSERT_TRUE(loader.next(b));
    EXPECT_EQ(b.epoch, 4);
    EXPECT_EQ(b.index, 0);
  }
}

TEST(Split, HoldoutIsAPartitionAndStratified) {
  const data::HoldoutSplit s = data::holdout_split(103, 0.2, 1);
  EXPECT_EQ(s.val.size(), 21u);  // round(20.6)
  EXPECT_EQ(s.train.size(), 82u);
  std::vector<int64_t> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(all[size_t(i)], i);
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
  EXPECT_EQ(data::holdout_split(103, 0.2, 1).val, s.val);
  EXPECT_NE(data::holdout_split(103, 0.2, 2).val, s.val);

  // Labels: 60 of class 0, 30 of class 1, 10 of class 2 (interleaved).
  std::vector<int64_t> y;
  for (int i = 0; i < 100; ++i) y.push_back(i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2);
  const Tensor labels = Tensor::from_vector<int64_t>(y, {100});
  const data::HoldoutSplit st = data::holdout_split(labels, 0.1, 3, true);
  std::vector<int> per(3, 0);
  for (int64_t i : st.val) ++per[size_t(y[size_t(i)])];
  EXPECT_EQ(per, (std::vector<int>{6, 3, 1}));
  EXPECT_EQ(st.train.size(), 90u);
  EXPECT_EQ(data::holdout_split(labels, 0.1, 3, false).val.size(), 10u);
  EXPECT_THROW(data::holdout_split(10, 1.5, 0), Error);

  const data::Dataset ds = indexed_dataset(100, 2, 2);
  const data::Dataset val = data::take_rows(ds, st.val);
  ASSERT_EQ(val.size(), 10);
  EXPECT_EQ(val.labels.to_vector<int64_t>()[3], st.val[3] % 10);
  EXPECT_EQ(val.images.narrow(3, 1).to_vector<uint8_t>(), ds.images.narrow(st.val[3], 1).to_vector<uint8_t>());
}

TEST(Shuffle, IsAPermutationAndSeeded) {
  const std::vector<int64_t> p = data::shuffled_indices(1000, 8);
  std::vector<int64_t> s = p;
  std::sort(s.begin(), s.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(s[size_t(i)], i);
  EXPECT_EQ(data::shuffled_indices(1000, 8), p);
  EXPECT_NE(data::shuffled_indices(1000, 9), p);
  // Position 0 takes every value over many seeds (no gross bias).
  std::vector<int> first(10, 0);
  for (uint64_t seed = 0; seed < 2000; ++seed) ++first[size_t(data::shuffled_indices(10, seed)[0])];
  for (int c : first) EXPECT_NEAR(c, 200, 60);
}

}  // namespace
