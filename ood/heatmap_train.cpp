#include "ood/heatmap_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/reduce.h"
#include "framework/ops/loss.h"
#include "framework/random.h"

namespace oodkit::ood {

std::vector<int64_t> decoder_epoch_order(int64_t n, uint64_t seed, int epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  const uint64_t s = counter_hash(seed, uint64_t(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = int64_t(counter_hash(s, uint64_t(i)) % uint64_t(i + 1));
    std::swap(p[size_t(i)], p[size_t(j)]);
  }
  return p;
}

std::string first_nonfinite(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t.defined() || (t.dtype() != DType::F32 && t.dtype() != DType::F64)) continue;
    const Tensor c = t.cpu();
    const int64_t n = c.numel();
    bool finite = true;
    if (c.dtype() == DType::F32)
      for (const float* p = c.data<float>(); finite && p != c.data<float>() + n; ++p) finite = std::isfinite(*p);
    else
      for (const double* p = c.data<double>(); finite && p != c.data<double>() + n; ++p) finite = std::isfinite(*p);
    if (!finite) return name;
  }
  return "";
}

namespace {

constexpr const char* kOp = "heatmap decoder training";

void check_images(const Tensor& x, int64_t rows, int64_t size, const char* what) {
  check_defined(x, kOp, what);
  check_dtype(x, DType::U8, kOp, what);
  OODKIT_CHECK(!x.is_cuda(), kOp, ": ", what, " must be on the CPU");
  OODKIT_CHECK(x.ndim() == 4 && x.size(0) == rows && x.size(1) == 3 && x.size(2) == size && x.size(3) == size, kOp,
               ": ", what, " must be uint8 [", rows, ", 3, ", size, ", ", size, "] (the decoder's output size), got ",
               x.describe());
}

}  // namespace

DecoderTrainer::DecoderTrainer(HeatmapModel& model, const DecoderTrainSet& data, const DecoderTrainOptions& options)
    : model_(model), data_(data), options_(options) {
  const HeatmapTargets& t = data.targets;
  OODKIT_CHECK(options.batch > 0, kOp, ": batch must be positive, got ", options.batch);
  OODKIT_CHECK(options.weight_scale >= 0 && std::isfinite(options.weight_scale), kOp,
               ": weight_scale must be finite and >= 0");
  n_id_ = t.id_features.size(0);
  n_oe_ = t.oe_features.size(0);
  OODKIT_CHECK(n_id_ > 0, kOp, ": no ID training rows");
  const models::DecoderConfig& c = model.info().config;
  OODKIT_CHECK(t.id_features.size(1) == c.feature_dim, kOp, ": features have ", t.id_features.size(1),
               " dimensions but the decoder expects ", c.feature_dim);
  check_images(data.id_images, n_id_, c.output_size(), "id_images");
  if (n_oe_ > 0) check_images(data.oe_images, n_oe_, c.output_size(), "oe_images");
  for (const Tensor& p : {t.id_pred, t.oe_pred}) {
    const std::vector<int64_t> v = p.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i)
      OODKIT_CHECK(v[i] >= 0 && v[i] < c.num_classes, kOp, ": predicted class ", v[i], " at row ", i,
                   " is outside [0, ", c.num_classes, ")");
  }
  nn_pos_ = oe_nn_positions(t);
  model.decoder().to(options.device);
  optim::AdamOptions a;
  a.lr = options.lr;
  a.beta1 = options.beta1;
  a.beta2 = options.beta2;
  adam_ = std::make_unique<optim::Adam>(model.decoder().parameters(), a);
}

std::string loss_weight_name(LossWeight w) { return w == LossWeight::Heatmap ? "heatmap" : "target"; }

LossWeight parse_loss_weight(const std::string& name) {
  if (name == "target") return LossWeight::Target;
  if (name == "heatmap") return LossWeight::Heatmap;
  OODKIT_FAIL("--loss-weight must be target (1 + s|y|, the official code) or heatmap (1 + s|y - x|, the paper's "
              "text), got '", name, "'");
}

int64_t DecoderTrainer::steps_per_epoch() const { return (n_id_ + n_oe_ + options_.batch - 1) / options_.batch; }

DecoderTrainer::Batch DecoderTrainer::make_batch(const std::vector<int64_t>& ids) const {
  const HeatmapTargets& t = data_.targets;
  const int64_t b = int64_t(ids.size()), d = t.id_features.size(1);
  const int64_t s = model_.info().config.output_size(), per = 3 * s * s;
  Tensor z = Tensor::empty({b, d}, DType::F32), pred = Tensor::empty({b}, DType::I64);
  Tensor target = Tensor::empty({b, 3, s, s}, DType::F32), weight = Tensor::empty({b, 3, s, s}, DType::F32);
  const float* idf = t.id_features.data<float>();
  const float* oef = n_oe_ ? t.oe_features.data<float>() : nullptr;
  const int64_t* idp = t.id_pred.data<int64_t>();
  const int64_t* oep = n_oe_ ? t.oe_pred.data<int64_t>() : nullptr;
  const uint8_t* idx = data_.id_images.data<uint8_t>();
  const uint8_t* oex = n_oe_ ? data_.oe_images.data<uint8_t>() : nullptr;
  const float ws = float(options_.weight_scale);
  const bool by_heatmap = options_.loss_weight == LossWeight::Heatmap;
  Batch out;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t id = ids[size_t(i)];
    OODKIT_CHECK(id >= 0 && id < n_id_ + n_oe_, kOp, ": sample id ", id, " is outside [0, ", n_id_ + n_oe_, ")");
    const bool oe = id >= n_id_;
    const int64_t r = oe ? id - n_id_ : id;
    std::memcpy(z.data<float>() + i * d, (oe ? oef : idf) + r * d, sizeof(float) * size_t(d));
    pred.data<int64_t>()[i] = oe ? oep[r] : idp[r];
    float* tg = target.data<float>() + i * per;
    float* w = weight.data<float>() + i * per;
    const uint8_t* x = (oe ? oex : idx) + r * per;
    const uint8_t* y = oe ? idx + nn_pos_[size_t(r)] * per : x;
    for (int64_t e = 0; e < per; ++e) {
      const float xv = float(x[e]) / 127.5f - 1.f, yv = float(y[e]) / 127.5f - 1.f;
      tg[e] = yv - xv;
      w[e] = 1.f + ws * std::fabs(by_heatmap ? yv - xv : yv);
    }
    out.n_oe += oe;
  }
  const DecoderInputs in = decoder_inputs(z.to(options_.device), pred, model_.info().norm,
                                          model_.info().config.num_classes);
  out.z = in.z_normalized;
  out.pred = in.onehot;
  out.target = target.to(options_.device);
  out.weight = weight.to(options_.device);
  return out;
}

DecoderEpoch DecoderTrainer::run_epoch(int epoch, const DecoderProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  models::HeatmapDecoder& dec = model_.decoder();
  dec.train();
  const std::vector<int64_t> order = decoder_epoch_order(n_id_ + n_oe_, options_.seed, epoch);
  const int64_t steps = steps_per_epoch();
  DecoderEpoch r;
  r.epoch = epoch + 1;
  double id_sum = 0, oe_sum = 0;
  int64_t id_n = 0, oe_n = 0;
  // Losses are read back every kReadEvery steps (each read waits for the device).
  constexpr int64_t kReadEvery = 10;
  struct Pending {
    int64_t step, n_id, n_oe;
    Tensor id_loss, oe_loss;  // batch means over the ID / OE samples (undefined when none)
    Tensor grad_flag;         // ops::all_finite of the step's gradients (1 or 0)
  };
  std::vector<Pending> pending;
  const auto read_back = [&] {
    for (const Pending& p : pending) {
      const double li = p.n_id ? p.id_loss.item() : 0.0, lo = p.n_oe ? p.oe_loss.item() : 0.0;
      OODKIT_CHECK(std::isfinite(li) && std::isfinite(lo), kOp, ": the loss became ", std::isfinite(li) ? lo : li,
                   " at epoch ", epoch + 1, " step ", p.step + 1, " (lower the learning rate?)");
      OODKIT_CHECK(p.grad_flag.item() != 0.0, kOp,
                   ": the gradients became non-finite (NaN or Inf) at epoch ", epoch + 1, " step ", p.step + 1,
                   " with a finite loss (lower the learning rate?)");
      id_sum += li * double(p.n_id);
      oe_sum += lo * double(p.n_oe);
      id_n += p.n_id;
      oe_n += p.n_oe;
    }
    pending.clear();
  };
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t start = step * options_.batch, len = std::min(options_.batch, int64_t(order.size()) - start);
    std::vector<int64_t> ids(order.begin() + start, order.begin() + start + len);
    // ID samples first, then OE (so the two partial losses are contiguous rows).
    std::stable_partition(ids.begin(), ids.end(), [&](int64_t v) { return v < n_id_; });
    const Batch b = make_batch(ids);
    const Tensor h = dec.forward(b.z, b.pred);
    const Tensor loss = ops::weighted_mse(h, b.target, b.weight);
    adam_->zero_grad();
    loss.backward();
    std::vector<Tensor> grads;
    for (const Tensor& w : adam_->params()) grads.push_back(w.grad());
    Pending p{step, len - b.n_oe, b.n_oe, Tensor(), Tensor(), ops::all_finite(grads)};
    adam_->step();
    {
      autograd::NoGradGuard ng;
      const Tensor hd = h.detach();
      if (p.n_id) p.id_loss = ops::weighted_mse(hd.narrow(0, p.n_id), b.target.narrow(0, p.n_id), b.weight.narrow(0, p.n_id));
      if (p.n_oe)
        p.oe_loss = ops::weighted_mse(hd.narrow(p.n_id, p.n_oe), b.target.narrow(p.n_id, p.n_oe),
                                      b.weight.narrow(p.n_id, p.n_oe));
    }
    pending.push_back(p);
    if ((step + 1) % kReadEvery != 0 && step + 1 != steps) continue;
    read_back();
    if (progress) progress(step + 1, steps, (id_sum + oe_sum) / double(std::max<int64_t>(id_n + oe_n, 1)));
  }
  read_back();
  cuda_synchronize();
  r.samples = id_n + oe_n;
  r.loss = (id_sum + oe_sum) / double(std::max<int64_t>(r.samples, 1));
  r.id_loss = id_n ? id_sum / double(id_n) : 0.0;
  r.oe_loss = oe_n ? oe_sum / double(oe_n) : 0.0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace oodkit::ood
