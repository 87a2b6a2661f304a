#include "ood/score_gradients.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/autograd.h"
#include "framework/error.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "ood/knn.h"
#include "ood/input_ops.h"  // normalize_rows

namespace oodkit::ood {

namespace {
Tensor host64(const Tensor& t, int rank, const char* fn, const char* what) {
  OODKIT_CHECK(t.defined() && t.ndim() == rank, fn, ": ", what, " must have rank ", rank, ", got ",
               t.defined() ? t.describe() : std::string("an undefined tensor"));
  OODKIT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, fn, ": ", what, " must be float, got ",
               t.describe());
  return t.detach().cpu().to(DType::F64).clone();
}

// Grad mode on for a scope (the callers may be under a NoGradGuard), restored after.
struct GradOn {
  bool prev = autograd::grad_enabled();
  GradOn() { autograd::set_grad_enabled(true); }
  ~GradOn() { autograd::set_grad_enabled(prev); }
};

// Row-wise softmax of x [N, K] (double) and the first argmax of each row.
void softmax_rows(const double* x, int64_t n, int64_t k, std::vector<double>& p, std::vector<int64_t>& arg) {
  p.assign(size_t(n * k), 0.0);
  arg.assign(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const double* r = x + i * k;
    int64_t m = 0;
    for (int64_t j = 1; j < k; ++j)
      if (r[j] > r[m]) m = j;
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(r[j] - r[m]);
    for (int64_t j = 0; j < k; ++j) p[size_t(i * k + j)] = std::exp(r[j] - r[m]) / s;
    arg[size_t(i)] = m;
  }
}
}  // namespace

Tensor logit_score_gradient(const std::string& method, const Tensor& logits, double temperature) {
  const Tensor f = host64(logits, 2, "logit_score_gradient", "logits");
  const int64_t n = f.size(0), k = f.size(1);
  OODKIT_CHECK(std::isfinite(temperature) && temperature > 0, "logit_score_gradient: temperature must be positive, got ",
               temperature);
  OODKIT_CHECK(method == "msp" || temperature == 1.0, "logit_score_gradient: '", method, "' takes no temperature");
  std::vector<double> scaled(f.data<double>(), f.data<double>() + n * k);
  for (double& v : scaled) v /= temperature;
  std::vector<double> p;
  std::vector<int64_t> arg;
  softmax_rows(scaled.data(), n, k, p, arg);
  std::vector<double> g(size_t(n * k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t m = arg[size_t(i)];
    for (int64_t j = 0; j < k; ++j) {
      const double pj = p[size_t(i * k + j)], pm = p[size_t(i * k + m)];
      double& out = g[size_t(i * k + j)];
      if (method == "msp") out = pm * ((j == m ? 1.0 : 0.0) - pj) / temperature;
      else if (method == "maxlogit") out = j == m ? 1.0 : 0.0;
      else if (method == "energy") out = pj;
      else OODKIT_FAIL("logit_score_gradient: unknown logit score '", method, "' (msp, maxlogit, energy)");
    }
  }
  return Tensor::from_vector(g, {n, k});
}

Tensor through_head(const Tensor& dlogits, const Tensor& weight) {
  const Tensor g = host64(dlogits, 2, "through_head", "dlogits"), w = host64(weight, 2, "through_head", "weight");
  OODKIT_CHECK(g.size(1) == w.size(0), "through_head: dlogits ", g.describe(), " and weight ", w.describe(),
               " disagree on K");
  autograd::NoGradGuard ng;
  return ops::matmul(g, w);
}

Tensor react_score_gradient(const Tensor& z, const Tensor& weight, const Tensor& bias, double threshold) {
  const Tensor zz = host64(z, 2, "react_score_gradient", "z"), w = host64(weight, 2, "react_score_gradient", "weight");
  const int64_t n = zz.size(0), d = zz.size(1), k = w.size(0);
  OODKIT_CHECK(w.size(1) == d, "react_score_gradient: weight ", w.describe(), " does not match z ", zz.describe());
  std::vector<double> clipped(size_t(n * d));
  const double* zp = zz.data<double>();
  for (int64_t i = 0; i < n * d; ++i) clipped[size_t(i)] = std::min(zp[i], threshold);
  const Tensor b = bias.defined() ? host64(bias, 1, "react_score_gradient", "bias") : Tensor::zeros({k}, DType::F64);
  Tensor f;
  {
    autograd::NoGradGuard ng;
    f = ops::linear(Tensor::from_vector(clipped, {n, d}), w, b);
  }
  std::vector<double> p;
  std::vector<int64_t> arg;
  softmax_rows(f.data<double>(), n, k, p, arg);
  const Tensor g = through_head(Tensor::from_vector(p, {n, k}), w);
  double* gp = const_cast<double*>(g.data<double>());
  for (int64_t i = 0; i < n * d; ++i)
    if (!(zp[i] < threshold)) gp[i] = 0.0;
  return g;
}

Tensor knn_score_gradient(const Tensor& z, const Tensor& bank, int64_t k) {
  const Tensor zz = host64(z, 2, "knn_score_gradient", "z"), bb = host64(bank, 2, "knn_score_gradient", "bank");
  const int64_t n = zz.size(0), d = zz.size(1);
  OODKIT_CHECK(bb.size(1) == d, "knn_score_gradient: bank ", bb.describe(), " does not match z ", zz.describe());
  OODKIT_CHECK(k >= 1 && k <= bb.size(0), "knn_score_gradient: k = ", k, " but the bank holds ", bb.size(0), " rows");
  const KnnResult r = knn_search(normalize_rows(zz.to(DType::F32)), bb.to(DType::F32), k);
  const std::vector<int64_t> idx = r.indices.cpu().to_vector<int64_t>();
  std::vector<double> g(size_t(n * d), 0.0);
  const double* zp = zz.data<double>();
  const double* bp = bb.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    const double* zi = zp + i * d;
    const double* b = bp + idx[size_t(i * k + k - 1)] * d;
    double norm = 0;
    for (int64_t j = 0; j < d; ++j) norm += zi[j] * zi[j];
    norm = std::sqrt(norm);
    std::vector<double> u(static_cast<size_t>(d)), v(static_cast<size_t>(d));  // u = z/|z|, v = b - u
    double dist = 0, uv = 0;
    for (int64_t j = 0; j < d; ++j) {
      u[size_t(j)] = zi[j] / norm;
      v[size_t(j)] = b[j] - u[size_t(j)];
      dist += v[size_t(j)] * v[size_t(j)];
      uv += u[size_t(j)] * v[size_t(j)];
    }
    dist = std::sqrt(dist);
    for (int64_t j = 0; j < d; ++j) g[size_t(i * d + j)] = (v[size_t(j)] - u[size_t(j)] * uv) / (dist * norm);
  }
  return Tensor::from_vector(g, {n, d});
}

Tensor mahalanobis_score_gradient(const Mahalanobis& model, const Tensor& z) {
  Tensor leaf = host64(z, 2, "mahalanobis_score_gradient", "z").set_requires_grad(true);
  const GradOn on;
  return autograd::grad(ops::sum(model.score(leaf)), {leaf})[0].detach();
}

Tensor vim_score_gradient(const Vim& model, const Tensor& z, const Tensor& weight, const Tensor& bias) {
  Tensor leaf = host64(z, 2, "vim_score_gradient", "z").set_requires_grad(true);
  const Tensor w = host64(weight, 2, "vim_score_gradient", "weight");
  const Tensor b = bias.defined() ? host64(bias, 1, "vim_score_gradient", "bias") : Tensor();
  const GradOn on;
  return autograd::grad(ops::sum(model.score(ops::linear(leaf, w, b), leaf)), {leaf})[0].detach();
}

namespace {
// p = softmax(W y + b) for rows y [N, D] (double, row-major), as [N, K] doubles.
std::vector<double> head_softmax(const std::vector<double>& y, int64_t n, const Tensor& w, const Tensor& b) {
  Tensor f;
  {
    autograd::NoGradGuard ng;
    f = ops::linear(Tensor::from_vector(y, {n, w.size(1)}), w, b);
  }
  std::vector<double> p;
  std::vector<int64_t> arg;
  softmax_rows(f.data<double>(), n, w.size(0), p, arg);
  return p;
}

Tensor optional_bias(const Tensor& bias, int64_t k, const char* fn) {
  if (!bias.defined()) return Tensor::zeros({k}, DType::F64);
  Tensor b = host64(bias, 1, fn, "bias");
  OODKIT_CHECK(b.size(0) == k, fn, ": bias ", b.describe(), " does not match K = ", k);
  return b;
}
}  // namespace

Tensor ash_score_gradient(const Tensor& z, const Tensor& weight, const Tensor& bias, double percentile, AshMode mode) {
  const Tensor zz = host64(z, 2, "ash_score_gradient", "z"), w = host64(weight, 2, "ash_score_gradient", "weight");
  const int64_t n = zz.size(0), d = zz.size(1);
  OODKIT_CHECK(w.size(1) == d, "ash_score_gradient: weight ", w.describe(), " does not match z ", zz.describe());
  const Tensor b = optional_bias(bias, w.size(0), "ash_score_gradient");
  const int64_t k = ash_keep_count(d, percentile);
  const double* zp = zz.data<double>();
  // The kept set per row: indices ordered by value descending, the lower index first among equals.
  std::vector<char> keep(size_t(n * d), 0);
  std::vector<double> y(size_t(n * d), 0.0), s1(size_t(n), 0.0), s2(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* r = zp + i * d;
    std::vector<int64_t> order(static_cast<size_t>(d));
    for (int64_t j = 0; j < d; ++j) order[size_t(j)] = j;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return r[a] > r[c]; });
    for (int64_t t = 0; t < k; ++t) keep[size_t(i * d + order[size_t(t)])] = 1;
    for (int64_t j = 0; j < d; ++j) {
      s1[size_t(i)] += r[j];
      if (keep[size_t(i * d + j)]) s2[size_t(i)] += r[j];
    }
  }
  std::vector<double> scale(size_t(n), 1.0);
  for (int64_t i = 0; i < n; ++i) {
    if (mode == AshMode::Scale && !(s1[size_t(i)] == 0.0 && s2[size_t(i)] == 0.0))
      scale[size_t(i)] = std::exp(s1[size_t(i)] / s2[size_t(i)]);
    for (int64_t j = 0; j < d; ++j) {
      if (!keep[size_t(i * d + j)]) continue;
      y[size_t(i * d + j)] = mode == AshMode::Binarize ? s1[size_t(i)] / double(k) : zp[i * d + j] * scale[size_t(i)];
    }
  }
  const std::vector<double> p = head_softmax(y, n, w, b);
  const std::vector<double> g = through_head(Tensor::from_vector(p, {n, w.size(0)}), w).to_vector<double>();  // dS/dy
  std::vector<double> out(size_t(n * d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* gi = g.data() + i * d;
    const char* ki = keep.data() + i * d;
    double kept_g = 0, kept_gz = 0;
    for (int64_t j = 0; j < d; ++j)
      if (ki[j]) kept_g += gi[j], kept_gz += gi[j] * zp[i * d + j];
    for (int64_t j = 0; j < d; ++j) {
      double& o = out[size_t(i * d + j)];
      if (mode == AshMode::Prune) {
        o = ki[j] ? gi[j] : 0.0;
      } else if (mode == AshMode::Binarize) {
        o = kept_g / double(k);
      } else {
        const double e = scale[size_t(i)], a = s1[size_t(i)], c = s2[size_t(i)];
        o = ki[j] ? e * gi[j] : 0.0;
        if (!(a == 0.0 && c == 0.0)) o += e * kept_gz * (1.0 / c - (ki[j] ? a / (c * c) : 0.0));
      }
    }
  }
  return Tensor::from_vector(out, {n, d});
}

Tensor dice_score_gradient(const Dice& model, const Tensor& z) {
  OODKIT_CHECK(model.fitted(), "dice_score_gradient: DICE is not fitted");
  const Tensor zz = host64(z, 2, "dice_score_gradient", "z");
  const Tensor w = model.masked_weight();
  OODKIT_CHECK(w.size(1) == zz.size(1), "dice_score_gradient: z ", zz.describe(), " does not match the weight ",
               w.describe());
  const std::vector<double> y(zz.data<double>(), zz.data<double>() + zz.numel());
  const std::vector<double> p = head_softmax(y, zz.size(0), w, optional_bias(model.bias(), w.size(0), "dice_score_gradient"));
  return through_head(Tensor::from_vector(p, {zz.size(0), w.size(0)}), w);
}

Tensor gradnorm_score_gradient(const Tensor& z, const Tensor& weight, const Tensor& bias) {
  const Tensor zz = host64(z, 2, "gradnorm_score_gradient", "z"), w = host64(weight, 2, "gradnorm_score_gradient", "weight");
  const int64_t n = zz.size(0), d = zz.size(1), k = w.size(0);
  OODKIT_CHECK(w.size(1) == d, "gradnorm_score_gradient: weight ", w.describe(), " does not match z ", zz.describe());
  const std::vector<double> zv(zz.data<double>(), zz.data<double>() + n * d);
  const std::vector<double> p = head_softmax(zv, n, w, optional_bias(bias, k, "gradnorm_score_gradient"));
  const auto sign = [](double v) { return double((v > 0) - (v < 0)); };
  std::vector<double> df(size_t(n * k));  // da/df
  std::vector<double> a(size_t(n), 0.0), b(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* pi = p.data() + i * k;
    double sp = 0;
    for (int64_t j = 0; j < k; ++j) {
      a[size_t(i)] += std::fabs(pi[j] - 1.0 / double(k));
      sp += sign(pi[j] - 1.0 / double(k)) * pi[j];
    }
    for (int64_t j = 0; j < k; ++j) df[size_t(i * k + j)] = pi[j] * (sign(pi[j] - 1.0 / double(k)) - sp);
    for (int64_t j = 0; j < d; ++j) b[size_t(i)] += std::fabs(zv[size_t(i * d + j)]);
  }
  std::vector<double> g = through_head(Tensor::from_vector(df, {n, k}), w).to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      g[size_t(i * d + j)] = b[size_t(i)] * g[size_t(i * d + j)] + a[size_t(i)] * sign(zv[size_t(i * d + j)]);
  return Tensor::from_vector(g, {n, d});
}

}  // namespace oodkit::ood
