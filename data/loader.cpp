#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "data/augment.h"
#include "framework/random.h"

namespace oodkit::data {

BatchLoader::BatchLoader(Dataset dataset, LoaderOptions options, std::vector<int64_t> rows)
    : ds_(std::move(dataset)), opt_(std::move(options)), rows_(std::move(rows)) {
  check_defined(ds_.images, "BatchLoader", "dataset.images");
  check_dtype(ds_.images, DType::U8, "BatchLoader", "dataset.images");
  check_ndim(ds_.images, 4, "BatchLoader", "dataset.images");
  OODKIT_CHECK(!ds_.images.is_cuda(), "BatchLoader: dataset images must be on the CPU, got ", ds_.images.describe());
  OODKIT_CHECK(ds_.images.size(1) == 3, "BatchLoader: images must have 3 channels, got ", ds_.images.describe());
  const int64_t n = ds_.images.size(0);
  if (ds_.labels.defined()) {
    check_dtype(ds_.labels, DType::I64, "BatchLoader", "dataset.labels");
    OODKIT_CHECK(ds_.labels.ndim() == 1 && ds_.labels.size(0) == n && !ds_.labels.is_cuda(),
                 "BatchLoader: labels must be int64 [", n, "] on the CPU, got ", ds_.labels.describe());
  }
  OODKIT_CHECK(opt_.batch_size > 0, "BatchLoader: batch_size must be > 0, got ", opt_.batch_size);
  OODKIT_CHECK(opt_.queue_depth >= 1 && opt_.queue_depth <= 16, "BatchLoader: queue_depth must be in [1, 16], got ",
               opt_.queue_depth);
  OODKIT_CHECK(opt_.pad >= 0, "BatchLoader: pad must be >= 0, got ", opt_.pad);
  if (rows_.empty()) {
    rows_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) rows_[size_t(i)] = i;
  }
  for (int64_t r : rows_) OODKIT_CHECK(r >= 0 && r < n, "BatchLoader: row ", r, " out of range [0, ", n, ")");
  OODKIT_CHECK(!opt_.drop_last || opt_.batch_size <= size(), "batch size ", opt_.batch_size, " is larger than the ",
               size(), " samples per epoch and the last, partial batch is dropped: an epoch would have no batch "
               "(lower --batch)");
}

BatchLoader::~BatchLoader() { stop_worker(); }

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = size(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> BatchLoader::epoch_order(int64_t epoch) const {
  if (!opt_.shuffle) return rows_;
  const std::vector<int64_t> perm = shuffled_indices(size(), counter_hash(opt_.seed, uint64_t(2 * epoch)));
  std::vector<int64_t> order(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) order[i] = rows_[size_t(perm[i])];
  return order;
}

void BatchLoader::stop_worker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  not_full_.notify_all();
  not_empty_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void BatchLoader::start_epoch(int64_t epoch) {
  OODKIT_CHECK(epoch >= 0, "BatchLoader::start_epoch: epoch must be >= 0, got ", epoch);
  stop_worker();
  std::vector<int64_t> order = epoch_order(epoch);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.clear();
    stop_ = false;
    done_ = false;
    started_ = true;
    error_ = nullptr;
  }
  worker_ = std::thread(&BatchLoader::produce, this, epoch, std::move(order));
}

Batch BatchLoader::make_batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order) const {
  const int64_t start = b * opt_.batch_size;
  const int64_t count = std::min(opt_.batch_size, int64_t(order.size()) - start);
  const int64_t h = ds_.images.size(2), w = ds_.images.size(3), per = 3 * h * w;
  Batch batch;
  batch.epoch = epoch;
  batch.index = b;
  batch.indices.assign(order.begin() + std::ptrdiff_t(start), order.begin() + std::ptrdiff_t(start + count));
  std::vector<uint8_t> raw(size_t(count * per));
  const uint8_t* src = ds_.images.data<uint8_t>();
  const bool augment = opt_.random_crop || opt_.hflip;
  const uint64_t aug_seed = counter_hash(opt_.seed, uint64_t(2 * epoch + 1));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = batch.indices[size_t(i)];
    if (augment) {
      const CropFlip p = draw_crop_flip(aug_seed, uint64_t(row), opt_.pad, opt_.random_crop, opt_.hflip);
      crop_flip(src + row * per, 3, h, w, opt_.pad, p, raw.data() + i * per);
    } else {
      std::memcpy(raw.data() + i * per, src + row * per, size_t(per));
    }
  }
  batch.images = Tensor::empty({count, 3, h, w});
  normalize_into(raw.data(), count, h * w, opt_.norm, batch.images.data<float>());
  if (ds_.labels.defined()) {
    batch.labels = Tensor::empty({count}, DType::I64);
    const int64_t* lab = ds_.labels.data<int64_t>();
    int64_t* out = batch.labels.data<int64_t>();
    for (int64_t i = 0; i < count; ++i) out[i] = lab[batch.indices[size_t(i)]];
  }
  return batch;
}

void BatchLoader::produce(int64_t epoch, std::vector<int64_t> order) {
  const int64_t batches = opt_.drop_last ? int64_t(order.size()) / opt_.batch_size
                                         : (int64_t(order.size()) + opt_.batch_size - 1) / opt_.batch_size;
  int64_t b = 0;
  try {
    for (; b < batches; ++b) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      Batch batch = make_batch(epoch, b, order);
      if (opt_.transform) opt_.transform(batch);
      std::unique_lock<std::mutex> lock(mu_);
      not_full_.wait(lock, [&] { return stop_ || int(queue_.size()) < opt_.queue_depth; });
      if (stop_) return;
      queue_.push_back(std::move(batch));
      lock.unlock();
      not_empty_.notify_one();
    }
  } catch (const InternalError&) {  // keeps its own location and bug-report wording
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  } catch (const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::make_exception_ptr(
        Error(detail::str_cat("BatchLoader worker (epoch ", epoch, ", batch ", b, "): ", e.what()),
              err ? err->where() : std::string()));
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::make_exception_ptr(
        Error(detail::str_cat("BatchLoader worker (epoch ", epoch, ", batch ", b, "): unknown exception")));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  not_empty_.notify_all();
}

bool BatchLoader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mu_);
  OODKIT_CHECK(started_, "BatchLoader::next: call start_epoch(epoch) first");
  not_empty_.wait(lock, [&] { return !queue_.empty() || done_ || stop_; });
  if (!queue_.empty()) {
    batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return true;
  }
  if (error_) std::rethrow_exception(error_);
  return false;
}

// ---------------------------------------------------------------- hold-out split

namespace {
HoldoutSplit split_groups(const std::vector<std::vector<int64_t>>& groups, double fraction, uint64_t seed) {
  HoldoutSplit s;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::vector<int64_t>& members = groups[g];
    const int64_t n = int64_t(members.size());
    const int64_t n_val = std::min<int64_t>(n, int64_t(std::llround(double(n) * fraction)));
    const std::vector<int64_t> perm = shuffled_indices(n, counter_hash(seed, uint64_t(g)));
    for (int64_t i = 0; i < n; ++i) (i < n_val ? s.val : s.train).push_back(members[size_t(perm[size_t(i)])]);
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  return s;
}

void check_fraction(double f) {
  OODKIT_CHECK(f >= 0.0 && f <= 1.0, "holdout_split: val_fraction must be in [0, 1], got ", f);
}
}  // namespace

HoldoutSplit holdout_split(int64_t n, double val_fraction, uint64_t seed) {
  check_fraction(val_fraction);
  OODKIT_CHECK(n >= 0, "holdout_split: n must be >= 0, got ", n);
  std::vector<std::vector<int64_t>> groups(1);
  for (int64_t i = 0; i < n; ++i) groups[0].push_back(i);
  return split_groups(groups, val_fraction, seed);
}

HoldoutSplit holdout_split(const Tensor& labels, double val_fraction, uint64_t seed, bool stratified) {
  check_fraction(val_fraction);
  check_dtype(labels, DType::I64, "holdout_split", "labels");
  check_ndim(labels, 1, "holdout_split", "labels");
  if (!stratified) return holdout_split(labels.size(0), val_fraction, seed);
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (size_t i = 0; i < y.size(); ++i) by_class[y[i]].push_back(int64_t(i));
  std::vector<std::vector<int64_t>> groups;
  for (auto& kv : by_class) groups.push_back(std::move(kv.second));
  return split_groups(groups, val_fraction, seed);
}

Dataset take_rows(const Dataset& ds, const std::vector<int64_t>& rows) {
  check_defined(ds.images, "take_rows", "dataset.images");
  check_dtype(ds.images, DType::U8, "take_rows", "dataset.images");
  const Tensor images = ds.images.cpu();
  const int64_t n = images.size(0), per = images.numel() / std::max<int64_t>(n, 1);
  Shape shape = images.shape();
  shape[0] = int64_t(rows.size());
  Dataset out;
  out.name = ds.name;
  out.num_classes = ds.num_classes;
  out.class_names = ds.class_names;
  out.images = Tensor::empty(shape, DType::U8);
  const uint8_t* p = images.data<uint8_t>();
  uint8_t* q = out.images.data<uint8_t>();
  std::vector<int64_t> labels;
  const std::vector<int64_t> all = ds.labels.defined() ? ds.labels.to_vector<int64_t>() : std::vector<int64_t>{};
  for (size_t i = 0; i < rows.size(); ++i) {
    OODKIT_CHECK(rows[i] >= 0 && rows[i] < n, "take_rows: row ", rows[i], " out of range [0, ", n, ")");
    std::memcpy(q + int64_t(i) * per, p + rows[i] * per, size_t(per));
    if (!all.empty()) labels.push_back(all[size_t(rows[i])]);
    if (!ds.files.empty()) out.files.push_back(ds.files.at(size_t(rows[i])));
  }
  if (ds.labels.defined()) out.labels = Tensor::from_vector<int64_t>(labels, {int64_t(rows.size())});
  return out;
}

}  // namespace oodkit::data
