#include "framework/ops/batch_norm.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/batch_norm_cuda.h"

namespace oodkit::ops {

namespace {

constexpr const char* kOp = "batch_norm";

// Sizes of x viewed as [n, c, hw].
struct BnDims {
  int64_t n, c, hw;
  int64_t m() const { return n * hw; }  // values per channel
};

BnDims bn_dims(const Tensor& x) {
  return {x.size(0), x.size(1), x.ndim() == 4 ? x.size(2) * x.size(3) : 1};
}

void check_channel_tensor(const Tensor& t, const Tensor& x, int64_t c, const char* arg) {
  check_same_device(x, t, kOp, "x", arg);
  check_dtype(t, x.dtype(), kOp, arg);
  OODKIT_CHECK(t.ndim() == 1 && t.size(0) == c, kOp, ": argument '", arg, "' must have shape [", c,
               "] (the channels of x ", shape_str(x.shape()), "), got ", shape_str(t.shape()));
}

// ---------------------------------------------------------------- CPU kernels

// Training forward: batch statistics (double accumulation, two passes), y, saved
// mean/invstd, running statistics update.
// Per-slab reductions in double with kLanes interleaved partial sums, added in lane order at the
// end: independent add chains (the compiler vectorises them) instead of one chain whose add
// latency bounds the loop. The order is fixed, so results stay deterministic.
constexpr int64_t kLanes = 8;

template <class T>
double lane_sum(const T* p, int64_t n) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += double(p[j + l]);
  double s = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  for (; j < n; ++j) s += double(p[j]);
  return s;
}

// sum over j of (p[j] - mean)^2
template <class T>
double lane_sum_sq_dev(const T* p, int64_t n, double mean) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const double t = double(p[j + l]) - mean;
      acc[l] += t * t;
    }
  double s = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  for (; j < n; ++j) s += (double(p[j]) - mean) * (double(p[j]) - mean);
  return s;
}

// sg += sum of g[j]; sgx += sum of g[j] * (x[j] - mu)
template <class T>
void lane_sum_g_gx(const T* g, const T* x, int64_t n, double mu, double& sg, double& sgx) {
  double a[kLanes] = {}, b[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      a[l] += double(g[j + l]);
      b[l] += double(g[j + l]) * (double(x[j + l]) - mu);
    }
  double s1 = 0.0, s2 = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) {
    s1 += a[l];
    s2 += b[l];
  }
  for (; j < n; ++j) {
    s1 += double(g[j]);
    s2 += double(g[j]) * (double(x[j]) - mu);
  }
  sg += s1;
  sgx += s2;
}

template <class T>
void forward_training_cpu(const T* x, T* y, const T* w, const T* b, T* rm, T* rv, T* smean, T* sinvstd,
                          const BnDims& d, double momentum, double eps) {
  const int64_t C = d.c, HW = d.hw, N = d.n;
  const double m = double(d.m());
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0.0;
    for (int64_t n = 0; n < N; ++n) s += lane_sum(x + (n * C + c) * HW, HW);
    const double mean = s / m;
    double ss = 0.0;
    for (int64_t n = 0; n < N; ++n) ss += lane_sum_sq_dev(x + (n * C + c) * HW, HW, mean);
    const double var = ss / m;
    const double invstd = 1.0 / std::sqrt(var + eps);
    smean[c] = T(mean);
    sinvstd[c] = T(invstd);
    rm[c] = T((1.0 - momentum) * double(rm[c]) + momentum * mean);
    rv[c] = T((1.0 - momentum) * double(rv[c]) + momentum * var * m / (m - 1.0));
    const T tm = T(mean), scale = T(invstd * (w ? double(w[c]) : 1.0)), shift = T(b ? double(b[c]) : 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const T* px = x + (n * C + c) * HW;
      T* py = y + (n * C + c) * HW;
      for (int64_t j = 0; j < HW; ++j) py[j] = (px[j] - tm) * scale + shift;
    }
  }
}

// Inference forward: y = (x - rm) * (w / sqrt(rv + eps)) + b.
template <class T>
void forward_inference_cpu(const T* x, T* y, const T* w, const T* b, const T* rm, const T* rv,
                           const BnDims& d, double eps) {
  const int64_t C = d.c, HW = d.hw, N = d.n;
  if (HW == 1) {  // [N, C]: rows are contiguous over channels
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const T scale = T((w ? double(w[c]) : 1.0) / std::sqrt(double(rv[c]) + eps));
        y[n * C + c] = (x[n * C + c] - rm[c]) * scale + (b ? b[c] : T(0));
      }
    return;
  }
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW > 32768)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T scale = T((w ? double(w[c]) : 1.0) / std::sqrt(double(rv[c]) + eps));
      const T tm = rm[c], shift = b ? b[c] : T(0);
      const T* px = x + (n * C + c) * HW;
      T* py = y + (n * C + c) * HW;
      for (int64_t j = 0; j < HW; ++j) py[j] = (px[j] - tm) * scale + shift;
    }
}

// Backward in both modes, given the per-channel mean and invstd used by the forward.
// training: dx = w*invstd * (dy - sum(dy)/M - xhat * sum(dy*xhat)/M); eval: dx = dy*w*invstd.
// dx / dw / db may be null (not wanted).
template <class T>
void backward_cpu(const T* x, const T* dy, const T* w, const double* mean, const double* invstd, T* dx,
                  T* dw, T* db, const BnDims& d, bool training) {
  const int64_t C = d.c, HW = d.hw, N = d.n;
  const double m = double(d.m());
  const bool need_sums = training || dw || db;
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    const double mu = mean[c], is = invstd[c];
    double sg = 0.0, sgx = 0.0;
    if (need_sums) {
      for (int64_t n = 0; n < N; ++n) lane_sum_g_gx(dy + (n * C + c) * HW, x + (n * C + c) * HW, HW, mu, sg, sgx);
      sgx *= is;  // sum(dy * xhat)
    }
    if (dw) dw[c] = T(sgx);
    if (db) db[c] = T(sg);
    if (!dx) continue;
    const double wc = w ? double(w[c]) : 1.0;
    const T k = T(wc * is);
    if (training) {
      const T tm = T(mu), a = T(sg / m), bq = T(sgx / m), tis = T(is);
      for (int64_t n = 0; n < N; ++n) {
        const T* px = x + (n * C + c) * HW;
        const T* pg = dy + (n * C + c) * HW;
        T* pd = dx + (n * C + c) * HW;
        for (int64_t j = 0; j < HW; ++j) pd[j] = k * (pg[j] - a - (px[j] - tm) * tis * bq);
      }
    } else {
      for (int64_t n = 0; n < N; ++n) {
        const T* pg = dy + (n * C + c) * HW;
        T* pd = dx + (n * C + c) * HW;
        for (int64_t j = 0; j < HW; ++j) pd[j] = pg[j] * k;
      }
    }
  }
}

// ---------------------------------------------------------------- backward dispatch

// Runs the backward on x's device. `stat_a`/`stat_b` are (save_mean, save_invstd) in training
// mode and (running_mean, running_var) copies in eval mode.
std::vector<Tensor> bn_backward(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& stat_a,
                                const Tensor& stat_b, bool training, double eps, bool want_x, bool want_w,
                                bool want_b) {
  const BnDims d = bn_dims(x);
  Tensor dx = want_x ? Tensor::empty_like(x) : Tensor();
  Tensor dw = want_w ? Tensor::empty({d.c}, x.dtype(), x.device()) : Tensor();
  Tensor db = want_b ? Tensor::empty({d.c}, x.dtype(), x.device()) : Tensor();
  if (x.is_cuda()) {
    if (training) {
      // cuDNN computes all three; scratch for the ones not wanted.
      Tensor w1 = weight.defined() ? weight : Tensor::ones({d.c}, x.dtype(), x.device());
      Tensor dx_ = want_x ? dx : Tensor::empty_like(x);
      Tensor dw_ = want_w ? dw : Tensor::empty({d.c}, x.dtype(), x.device());
      Tensor db_ = want_b ? db : Tensor::empty({d.c}, x.dtype(), x.device());
      OODKIT_CUDA_CALL(cuda::batch_norm_backward_training(
          x.data<float>(), g.data<float>(), w1.data<float>(), stat_a.data<float>(), stat_b.data<float>(),
          dx_.data<float>(), dw_.data<float>(), db_.data<float>(), d.n, d.c, d.hw, eps));
    } else {
      OODKIT_CUDA_CALL(cuda::batch_norm_backward_inference(
          want_w ? x.data<float>() : nullptr, g.data<float>(), weight.defined() ? weight.data<float>() : nullptr,
          stat_a.data<float>(), stat_b.data<float>(), want_x ? dx.data<float>() : nullptr,
          want_w ? dw.data<float>() : nullptr, want_b ? db.data<float>() : nullptr, d.n, d.c, d.hw, eps));
    }
  } else {
    dispatch_float(x.dtype(), kOp, [&](auto tag) {
      using T = decltype(tag);
      std::vector<double> mean(size_t(d.c)), invstd(size_t(d.c));
      const T* a = stat_a.data<T>();
      const T* b = stat_b.data<T>();
      for (int64_t c = 0; c < d.c; ++c) {
        mean[size_t(c)] = double(a[c]);
        invstd[size_t(c)] = training ? double(b[c]) : 1.0 / std::sqrt(double(b[c]) + eps);
      }
      backward_cpu<T>(x.data<T>(), g.data<T>(), weight.defined() ? weight.data<T>() : nullptr, mean.data(),
                      invstd.data(), want_x ? dx.data<T>() : nullptr, want_w ? dw.data<T>() : nullptr,
                      want_b ? db.data<T>() : nullptr, d, training);
    });
  }
  return {dx, dw, db};
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum, double eps) {
  check_float(x, kOp, "x");
  OODKIT_CHECK(x.ndim() == 2 || x.ndim() == 4, kOp, ": argument 'x' must be [N, C] or [N, C, H, W], got ",
               x.describe());
  OODKIT_CHECK(x.numel() > 0, kOp, ": argument 'x' is empty: ", x.describe());
  const BnDims d = bn_dims(x);
  if (weight.defined()) check_channel_tensor(weight, x, d.c, "weight");
  if (bias.defined()) check_channel_tensor(bias, x, d.c, "bias");
  check_channel_tensor(running_mean, x, d.c, "running_mean");
  check_channel_tensor(running_var, x, d.c, "running_var");
  OODKIT_CHECK(!running_mean.requires_grad() && !running_var.requires_grad(), kOp,
               ": running_mean / running_var are buffers updated in place and must not require grad");
  OODKIT_CHECK(eps >= 0.0 && std::isfinite(eps), kOp, ": eps must be finite and >= 0, got ", eps);
  OODKIT_CHECK(momentum >= 0.0 && momentum <= 1.0, kOp, ": momentum must be in [0, 1], got ", momentum);
  if (training)
    OODKIT_CHECK(d.m() > 1, kOp, ": training needs more than one value per channel (N*H*W = ", d.m(),
                 " for x ", shape_str(x.shape()), "): the batch variance is undefined");

  Tensor y = Tensor::empty_like(x);
  const bool grad = autograd::needs_grad({&x, &weight, &bias});
  Tensor stat_a, stat_b;  // what backward needs besides x and weight (see bn_backward)

  if (training) {
    stat_a = Tensor::empty({d.c}, x.dtype(), x.device());
    stat_b = Tensor::empty({d.c}, x.dtype(), x.device());
    if (x.is_cuda()) {
      Tensor w1 = weight.defined() ? weight : Tensor::ones({d.c}, x.dtype(), x.device());
      Tensor b0 = bias.defined() ? bias : Tensor::zeros({d.c}, x.dtype(), x.device());
      OODKIT_CUDA_CALL(cuda::batch_norm_forward_training(
          x.data<float>(), y.data<float>(), w1.data<float>(), b0.data<float>(), running_mean.data<float>(),
          running_var.data<float>(), stat_a.data<float>(), stat_b.data<float>(), d.n, d.c, d.hw, momentum,
          eps));
    } else {
      dispatch_float(x.dtype(), kOp, [&](auto tag) {
        using T = decltype(tag);
        forward_training_cpu<T>(x.data<T>(), y.data<T>(), weight.defined() ? weight.data<T>() : nullptr,
                                bias.defined() ? bias.data<T>() : nullptr, running_mean.data<T>(),
                                running_var.data<T>(), stat_a.data<T>(), stat_b.data<T>(), d, momentum, eps);
      });
    }
  } else {
    if (x.is_cuda()) {
      Tensor w1 = weight.defined() ? weight : Tensor::ones({d.c}, x.dtype(), x.device());
      Tensor b0 = bias.defined() ? bias : Tensor::zeros({d.c}, x.dtype(), x.device());
      OODKIT_CUDA_CALL(cuda::batch_norm_forward_inference(
          x.data<float>(), y.data<float>(), w1.data<float>(), b0.data<float>(), running_mean.data<float>(),
          running_var.data<float>(), d.n, d.c, d.hw, eps));
    } else {
      dispatch_float(x.dtype(), kOp, [&](auto tag) {
        using T = decltype(tag);
        forward_inference_cpu<T>(x.data<T>(), y.data<T>(), weight.defined() ? weight.data<T>() : nullptr,
                                 bias.defined() ? bias.data<T>() : nullptr, running_mean.data<T>(),
                                 running_var.data<T>(), d, eps);
      });
    }
    // Copies: the buffers may be updated by later training steps before this backward runs.
    if (grad) {
      stat_a = running_mean.clone();
      stat_b = running_var.clone();
    }
  }

  if (grad) {
    const bool want_x = x.requires_grad(), want_w = weight.defined() && weight.requires_grad(),
               want_b = bias.defined() && bias.requires_grad();
    autograd::record(y, kOp, {x, weight, bias},
                     [x, weight, stat_a, stat_b, training, eps, want_x, want_w, want_b](const Tensor& g) {
                       return bn_backward(g, x, weight, stat_a, stat_b, training, eps, want_x, want_w, want_b);
                     });
  }
  return y;
}

}  // namespace oodkit::ops
