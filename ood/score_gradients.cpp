#include "ood/score_gradients.h"

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

Tensor logit_score_gradient(const std::string& method, const Tensor& logits) {
  const Tensor f = host64(logits, 2, "logit_score_gradient", "logits");
  const int64_t n = f.size(0), k = f.size(1);
  std::vector<double> p;
  std::vector<int64_t> arg;
  softmax_rows(f.data<double>(), n, k, p, arg);
  std::vector<double> g(size_t(n * k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t m = arg[size_t(i)];
    for (int64_t j = 0; j < k; ++j) {
      const double pj = p[size_t(i * k + j)], pm = p[size_t(i * k + m)];
      double& out = g[size_t(i * k + j)];
      if (method == "msp") out = pm * ((j == m ? 1.0 : 0.0) - pj);
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

}  // namespace oodkit::ood
