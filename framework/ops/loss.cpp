#include "framework/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/loss_cuda.h"

namespace oodkit::ops {

namespace {

constexpr int64_t kParallelElems = 1 << 15;

// Throws naming the first label outside [0, k) of CPU labels. (CUDA labels are checked by the
// forward kernel itself and a bad one is reported at the next synchronisation: no host sync.)
void check_labels(const Tensor& labels, int64_t k) {
  const int64_t* p = labels.data<int64_t>();
  for (int64_t i = 0, n = labels.numel(); i < n; ++i)
    OODKIT_CHECK(p[i] >= 0 && p[i] < k, "cross_entropy: label ", p[i], " at index ", i,
                 " is out of range [0, ", k, ") for ", k, " classes");
}

// CPU cross-entropy forward: returns the mean loss and fills lse[r] = log sum_j exp(x[r, j]).
// Row loss = log s + (1 - eps) (m - x_y) + eps / k * sum_j (m - x_j) with m the row maximum and
// s = sum_j exp(x_j - m); equal to lse - (1 - eps) x_y - eps / k sum_j x_j but without cancellation.
template <class T>
double cross_entropy_cpu(const T* x, const int64_t* labels, int64_t n, int64_t k, double eps, T* lse) {
  std::vector<double> row(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) if (n * k >= kParallelElems)
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * k;
    T mt = xr[0];
    for (int64_t j = 1; j < k; ++j) mt = std::max(mt, xr[j]);
    const double m = double(mt);
    // exp in T (expf for float, as softmax's row_stats), accumulated in double; gap in double.
    double s = 0.0, gap = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      s += double(std::exp(xr[j] - mt));
      gap += m - double(xr[j]);
    }
    const double log_s = std::log(s);
    lse[r] = T(m + log_s);
    // The smoothing term only when eps > 0: a -inf logit makes gap inf, and 0 * inf is NaN.
    row[size_t(r)] = log_s + (1.0 - eps) * (m - double(xr[labels[r]])) + (eps > 0.0 ? eps / double(k) * gap : 0.0);
  }
  double total = 0.0;
  for (double v : row) total += v;  // fixed order
  return total / double(n);
}

// Deterministic sum of w (p - t)^2 over count elements: fixed chunks summed in parallel, then in order.
template <class T>
double weighted_sq_sum_cpu(const T* p, const T* t, const T* w, int64_t count) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<double> part(size_t(std::max<int64_t>(chunks, 1)), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * kChunk, hi = std::min(count, lo + kChunk);
    double acc = 0.0;
    for (int64_t i = lo; i < hi; ++i) {
      const double d = double(p[i]) - double(t[i]);
      acc += (w ? double(w[i]) : 1.0) * d * d;
    }
    part[size_t(c)] = acc;
  }
  double total = 0.0;
  for (double v : part) total += v;
  return total;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  const char* op = "cross_entropy";
  check_float(logits, op, "logits");
  check_ndim(logits, 2, op, "logits");
  check_dtype(labels, DType::I64, op, "labels");
  check_ndim(labels, 1, op, "labels");
  check_same_device(logits, labels, op, "logits", "labels");
  const int64_t n = logits.size(0), k = logits.size(1);
  OODKIT_CHECK(labels.size(0) == n, "cross_entropy: logits is ", shape_str(logits.shape()), " but labels is ",
               shape_str(labels.shape()), ": labels must have one entry per row of logits");
  OODKIT_CHECK(n > 0 && k > 0, "cross_entropy: logits must be non-empty, got ", logits.describe());
  OODKIT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
               "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  if (!labels.is_cuda()) check_labels(labels, k);

  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({n}, logits.dtype(), logits.device());
  if (logits.is_cuda()) {
    Tensor row_loss = Tensor::empty({n}, logits.dtype(), logits.device());
    OODKIT_CUDA_CALL(cuda::cross_entropy_forward(logits.data<float>(), labels.data<int64_t>(), n, k,
                                                 float(label_smoothing), row_loss.data<float>(),
                                                 lse.data<float>(), loss.data<float>()));
  } else {
    dispatch_float(logits.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      loss.data<T>()[0] = T(cross_entropy_cpu<T>(logits.data<T>(), labels.data<int64_t>(), n, k,
                                                 label_smoothing, lse.data<T>()));
    });
  }

  autograd::record(loss, "cross_entropy", {logits, labels}, [logits, labels, lse, label_smoothing](const Tensor& g) {
    const int64_t n = logits.size(0), k = logits.size(1);
    Tensor dx = Tensor::empty_like(logits);
    if (logits.is_cuda()) {
      OODKIT_CUDA_CALL(cuda::cross_entropy_backward(logits.data<float>(), labels.data<int64_t>(),
                                                    lse.data<float>(), g.data<float>(), n, k,
                                                    float(label_smoothing), dx.data<float>()));
    } else {
      dispatch_float(logits.dtype(), "cross_entropy backward", [&](auto tag) {
        using T = decltype(tag);
        const T* x = logits.data<T>();
        const T* l = lse.data<T>();
        const int64_t* y = labels.data<int64_t>();
        T* d = dx.data<T>();
        const T scale = T(double(g.data<T>()[0]) / double(n));
        const T on = T(1.0 - label_smoothing), off = T(label_smoothing / double(k));
#pragma omp parallel for schedule(static) if (n * k >= kParallelElems)
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = 0; j < k; ++j)
            d[r * k + j] = scale * (std::exp(x[r * k + j] - l[r]) - (j == y[r] ? on : T(0)) - off);
      });
    }
    return std::vector<Tensor>{dx, Tensor()};
  });
  return loss;
}

Tensor weighted_mse(const Tensor& pred, const Tensor& target, const Tensor& weight) {
  const char* op = "weighted_mse";
  check_float(pred, op, "pred");
  check_same_shape(pred, target, op, "pred", "target");
  check_same_device(pred, target, op, "pred", "target");
  check_dtype(target, pred.dtype(), op, "target");
  if (weight.defined()) {
    check_same_shape(pred, weight, op, "pred", "weight");
    check_same_device(pred, weight, op, "pred", "weight");
    check_dtype(weight, pred.dtype(), op, "weight");
  }
  OODKIT_CHECK(pred.ndim() >= 1 && pred.size(0) > 0, "weighted_mse: pred must be [N, ...] with N >= 1, got ",
               pred.describe());
  const int64_t n = pred.size(0), count = pred.numel();
  const double inv_n = 1.0 / double(n);

  Tensor loss = Tensor::empty({}, pred.dtype(), pred.device());
  if (pred.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::weighted_mse_forward(pred.data<float>(), target.data<float>(),
                                                weight.defined() ? weight.data<float>() : nullptr, count,
                                                float(inv_n), loss.data<float>()));
  } else {
    dispatch_float(pred.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      const T* w = weight.defined() ? weight.data<T>() : nullptr;
      loss.data<T>()[0] = T(weighted_sq_sum_cpu<T>(pred.data<T>(), target.data<T>(), w, count) * inv_n);
    });
  }

  const bool gp = pred.requires_grad(), gt = target.requires_grad();
  std::vector<Tensor> inputs{pred, target};
  if (weight.defined()) inputs.push_back(weight);
  autograd::record(loss, "weighted_mse", inputs, [pred, target, weight, gp, gt, inv_n](const Tensor& g) {
    Tensor dp = gp ? Tensor::empty_like(pred) : Tensor();
    Tensor dt = gt ? Tensor::empty_like(pred) : Tensor();
    const int64_t count = pred.numel();
    if (pred.is_cuda()) {
      OODKIT_CUDA_CALL(cuda::weighted_mse_backward(
          pred.data<float>(), target.data<float>(), weight.defined() ? weight.data<float>() : nullptr,
          g.data<float>(), count, float(2.0 * inv_n), gp ? dp.data<float>() : nullptr,
          gt ? dt.data<float>() : nullptr));
    } else {
      dispatch_float(pred.dtype(), "weighted_mse backward", [&](auto tag) {
        using T = decltype(tag);
        const T* p = pred.data<T>();
        const T* t = target.data<T>();
        const T* w = weight.defined() ? weight.data<T>() : nullptr;
        T* pdp = gp ? dp.data<T>() : nullptr;
        T* pdt = gt ? dt.data<T>() : nullptr;
        const T c = T(2.0 * inv_n * double(g.data<T>()[0]));
#pragma omp parallel for schedule(static) if (count >= kParallelElems)
        for (int64_t i = 0; i < count; ++i) {
          const T d = c * (w ? w[i] : T(1)) * (p[i] - t[i]);
          if (pdp) pdp[i] = d;
          if (pdt) pdt[i] = -d;
        }
      });
    }
    std::vector<Tensor> grads{dp, dt};
    if (weight.defined()) grads.push_back(Tensor());
    return grads;
  });
  return loss;
}

}  // namespace oodkit::ops
