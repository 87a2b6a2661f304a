// Mini-batch loading for training and evaluation: a background thread gathers, augments and
// normalises float batches into a small bounded queue while the consumer (the training step,
// GPU or CPU) works on the previous one.
//
// Reproducibility: epoch e's order is shuffled_indices(n, counter_hash(seed, 2e)) and sample
// i's crop/flip is draw_crop_flip(counter_hash(seed, 2e + 1), i, ...), both pure functions of
// (seed, epoch, dataset row). A run is thus repeatable, and a resumed run that calls
// start_epoch(k) sees exactly what the uninterrupted run saw at epoch k, whatever the batch
// size, queue depth or thread timing.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

struct Batch {
  Tensor images;                 // float32 [B, 3, H, W], normalised (CPU)
  Tensor labels;                 // int64 [B], undefined when the dataset has no labels
  std::vector<int64_t> indices;  // the dataset rows in this batch, in order
  int64_t epoch = 0;
  int64_t index = 0;             // batch number within the epoch
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;       // false: rows in order (evaluation)
  bool drop_last = false;    // drop the last batch when it is smaller than batch_size
  bool random_crop = false;  // zero-pad by `pad`, random crop back to size
  int pad = 4;
  bool hflip = false;        // random horizontal flip (p = 1/2)
  Normalization norm;        // applied after augmentation: (x/255 - mean) / std
  uint64_t seed = 0;
  int queue_depth = 3;       // batches prepared ahead (1..16)
  // Optional extra step on the worker thread after normalisation (e.g. a custom augmentation);
  // an exception thrown here reaches the consumer like any worker error.
  std::function<void(Batch&)> transform;
};

class BatchLoader {
 public:
  // `rows`: the dataset rows to iterate (e.g. a hold-out split's train part); all when empty.
  // The dataset must be uint8 [N, 3, H, W] on the CPU (labels int64 [N] or undefined); it is
  // shared, not copied. With drop_last, a batch size larger than the rows is an error (an epoch
  // would have no batch).
  BatchLoader(Dataset dataset, LoaderOptions options, std::vector<int64_t> rows = {});
  ~BatchLoader();  // stops the worker (even mid-epoch, with a full queue) and joins it
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Begins epoch `epoch` (>= 0), abandoning whatever is left of the current one.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false at its end (`batch` untouched). A worker error
  // is rethrown here as oodkit::Error("BatchLoader worker (epoch e, batch b): <message>"),
  // after the batches completed before it. Throws if no epoch was started.
  bool next(Batch& batch);

  int64_t size() const { return int64_t(rows_.size()); }  // samples per epoch before drop_last
  int64_t batches_per_epoch() const;
  // The rows in the order epoch `epoch` visits them (all of them; drop_last trims the tail).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  const LoaderOptions& options() const { return opt_; }

 private:
  void stop_worker();
  void produce(int64_t epoch, std::vector<int64_t> order);
  Batch make_batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order) const;

  Dataset ds_;
  LoaderOptions opt_;
  std::vector<int64_t> rows_;

  std::thread worker_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch> queue_;
  bool stop_ = false, done_ = true, started_ = false;
  std::exception_ptr error_;
};

// Train/validation rows for a hold-out split: round(n * val_fraction) rows go to `val`
// (per class when stratified: round(n_c * val_fraction) of each class c). Both lists are
// sorted; together they are a partition of 0..n-1. Deterministic for (n or labels, fraction, seed).
struct HoldoutSplit {
  std::vector<int64_t> train, val;
};
HoldoutSplit holdout_split(int64_t n, double val_fraction, uint64_t seed);
HoldoutSplit holdout_split(const Tensor& labels, double val_fraction, uint64_t seed, bool stratified = true);

// The dataset restricted to `rows` (copied, in the given order).
Dataset take_rows(const Dataset& dataset, const std::vector<int64_t>& rows);

}  // namespace oodkit::data
