#include "ood/scores.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/cuda_api.h"
#include "framework/ops/reduce.h"
#include "ood/scores_cuda.h"

namespace oodkit::ood {

namespace {

using cuda::LogitScoreKind;

// Parallelise loops over samples only when there is enough work to pay for the threads.
constexpr int64_t kParallelElems = 1 << 15;

// Maximum that propagates NaN (std::max and fmax may drop it).
template <class T>
inline T nan_max(T a, T b) {
  return (a > b || std::isnan(a)) ? a : b;
}

// ---- argument checks ---------------------------------------------------------------------------

void check_temperature(double t, const char* op) {
  OODKIT_CHECK(std::isfinite(t) && t > 0, op, ": temperature must be a positive finite number, got ", t);
}

void check_logits(const Tensor& x, const char* op) {
  check_float(x, op, "logits");
  check_ndim(x, 2, op, "logits");
  OODKIT_CHECK(x.size(1) >= 1, op, ": argument 'logits' must have at least one class (dim 1), got ",
               x.describe());
}

void check_feature_map(const Tensor& f, const char* op) {
  check_float(f, op, "F");
  check_ndim(f, 4, op, "F");
  OODKIT_CHECK(f.size(1) >= 1 && f.size(2) >= 1 && f.size(3) >= 1, op,
               ": argument 'F' [N, C, H, W] must have C, H, W >= 1, got ", f.describe());
}

void check_eps(double eps, const char* op) {
  OODKIT_CHECK(std::isfinite(eps) && eps > 0, op, ": eps must be a positive finite number, got ", eps);
}

void check_pair(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  check_float(a, op, an);
  check_ndim(a, 1, op, an);
  check_same_shape(a, b, op, an, bn);
  check_same_device(a, b, op, an, bn);
  check_dtype(b, a.dtype(), op, bn);
}

// ---- logit scores --------------------------------------------------------------------------------

// out [n] from x [n, k] (and z [n, d] for GradNorm); sums in double.
template <class T>
void logit_scores_cpu(const T* x, int64_t n, int64_t k, double t, LogitScoreKind kind, const T* z, int64_t d,
                      T* out) {
  const double inv_t = 1.0 / t, inv_k = 1.0 / double(k);
  const int64_t row_work = k + (kind == LogitScoreKind::GradNorm ? d : 0);
#pragma omp parallel for schedule(static) if (n * row_work >= kParallelElems)
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * k;
    T m = xr[0];
    for (int64_t j = 1; j < k; ++j) m = nan_max(m, xr[j]);
    if (kind == LogitScoreKind::MaxLogit) {
      out[r] = m;
      continue;
    }
    const double md = double(m);
    double s = 0.0;
    for (int64_t j = 0; j < k; ++j) s += std::exp((double(xr[j]) - md) * inv_t);
    if (kind == LogitScoreKind::Msp) {
      out[r] = T(1.0 / s);
    } else if (kind == LogitScoreKind::Energy) {
      out[r] = T(md + t * std::log(s));
    } else {  // GradNorm
      const double inv_s = 1.0 / s;
      double a = 0.0, b = 0.0;
      for (int64_t j = 0; j < k; ++j) a += std::fabs(std::exp((double(xr[j]) - md) * inv_t) * inv_s - inv_k);
      const T* zr = z + r * d;
      for (int64_t j = 0; j < d; ++j) b += std::fabs(double(zr[j]));
      out[r] = T(a * b * inv_t);
    }
  }
}

Tensor logit_score(const Tensor& x, double t, LogitScoreKind kind, const Tensor& z) {
  const int64_t n = x.size(0), k = x.size(1);
  const int64_t d = z.defined() ? z.size(1) : 0;
  Tensor out = Tensor::empty({n}, x.dtype(), x.device());
  if (n == 0) return out;
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::score_logits(x.data<float>(), n, k, float(t), kind,
                                        z.defined() ? z.data<float>() : nullptr, d, out.data<float>()));
    return out;
  }
  dispatch_float(x.dtype(), "logit score", [&](auto tag) {
    using T = decltype(tag);
    logit_scores_cpu<T>(x.data<T>(), n, k, t, kind, z.defined() ? z.data<T>() : nullptr, d, out.data<T>());
  });
  return out;
}

// ---- feature-map scores ----------------------------------------------------------------------------

// f [n, c, hw] -> z [n, c] (if non-null), nap, nap_unsquared, fs [n]; sums in double.
template <class T>
void feature_maps_cpu(const T* f, int64_t n, int64_t c, int64_t hw, double eps, T* z, T* nap, T* nap_u, T* fs) {
#pragma omp parallel for schedule(static) if (n * c * hw >= kParallelElems)
  for (int64_t s = 0; s < n; ++s) {
    double acc_r2 = 0.0, acc_r = 0.0, acc_dev = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) {
      const T* row = f + (s * c + ch) * hw;
      double sum = 0.0;
      T mx = row[0];
      for (int64_t j = 0; j < hw; ++j) {
        sum += double(row[j]);
        mx = nan_max(mx, row[j]);
      }
      const double mean = sum / double(hw);
      if (z) z[s * c + ch] = T(mean);
      double dev = 0.0;
      for (int64_t j = 0; j < hw; ++j) dev += std::fabs(double(row[j]) - mean);
      const double r = double(mx) / (mean + eps);
      acc_r2 += r * r;
      acc_r += r;
      acc_dev += dev;
    }
    nap[s] = T(acc_r2 / double(c));
    nap_u[s] = T(acc_r / double(c));
    fs[s] = T(acc_dev / (double(c) * double(hw)));
  }
}

FeatureMapScores feature_maps(const Tensor& f, double eps, bool want_z) {
  const int64_t n = f.size(0), c = f.size(1), hw = f.size(2) * f.size(3);
  FeatureMapScores out;
  if (want_z) out.z = Tensor::empty({n, c}, f.dtype(), f.device());
  out.nap = Tensor::empty({n}, f.dtype(), f.device());
  out.nap_unsquared = Tensor::empty({n}, f.dtype(), f.device());
  out.fs = Tensor::empty({n}, f.dtype(), f.device());
  if (n == 0) return out;
  if (f.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::score_feature_maps(f.data<float>(), n, c, hw, float(eps),
                                              want_z ? out.z.data<float>() : nullptr, out.nap.data<float>(),
                                              out.nap_unsquared.data<float>(), out.fs.data<float>()));
    return out;
  }
  dispatch_float(f.dtype(), "feature_map_scores", [&](auto tag) {
    using T = decltype(tag);
    feature_maps_cpu<T>(f.data<T>(), n, c, hw, eps, want_z ? out.z.data<T>() : nullptr, out.nap.data<T>(),
                        out.nap_unsquared.data<T>(), out.fs.data<T>());
  });
  return out;
}

// ---- ASH -------------------------------------------------------------------------------------------

// The ranking of torch.topk: by value, NaN above every number, -0 == +0.
template <class T>
inline bool ranks_above(T a, T b) {
  return std::isnan(a) ? !std::isnan(b) : (!std::isnan(b) && a > b);
}
template <class T>
inline bool ranks_equal(T a, T b) {
  return std::isnan(a) ? std::isnan(b) : a == b;
}

template <class T>
void ash_cpu(const T* z, T* y, int64_t n, int64_t d, int64_t k, AshMode mode) {
#pragma omp parallel for schedule(static) if (n * d >= kParallelElems)
  for (int64_t r = 0; r < n; ++r) {
    const T* zr = z + r * d;
    T* yr = y + r * d;
    // The k-th ranked value, how many rank strictly above it, and so how many of its equals to keep
    // (the lowest indices).
    std::vector<T> buf(zr, zr + d);
    std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), ranks_above<T>);
    const T kth = buf[size_t(k - 1)];
    int64_t above = 0;
    double s1 = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      above += ranks_above(zr[i], kth) ? 1 : 0;
      s1 += double(zr[i]);
    }
    const int64_t take_equal = k - above;  // >= 1
    std::vector<char> keep(size_t(d), 0);
    int64_t taken = 0;
    double s2 = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      bool kp = ranks_above(zr[i], kth);
      if (!kp && ranks_equal(zr[i], kth) && taken < take_equal) {
        kp = true;
        ++taken;
      }
      keep[size_t(i)] = kp;
      if (kp) s2 += double(zr[i]);
    }
    if (mode == AshMode::Prune) {
      for (int64_t i = 0; i < d; ++i) yr[i] = keep[size_t(i)] ? zr[i] : T(0);
    } else if (mode == AshMode::Binarize) {
      const T fill = T(s1 / double(k));
      for (int64_t i = 0; i < d; ++i) yr[i] = keep[size_t(i)] ? fill : T(0);
    } else {
      const double scale = (s1 == 0.0 && s2 == 0.0) ? 1.0 : std::exp(s1 / s2);
      for (int64_t i = 0; i < d; ++i) yr[i] = keep[size_t(i)] ? T(double(zr[i]) * scale) : T(0);
    }
  }
}

// ---- fusions ---------------------------------------------------------------------------------------

template <class T>
void geometric_fusion_cpu(const T* a, const T* b, T* out, int64_t n, double w, double floor) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = double(a[i]), y = double(b[i]);
    out[i] = (std::isnan(x) || std::isnan(y))
                 ? T(NAN)
                 : T(std::pow(std::max(x, floor), w) * std::pow(std::max(y, floor), 1.0 - w));
  }
}

}  // namespace

Tensor msp_score(const Tensor& logits, double temperature) {
  check_logits(logits, "msp_score");
  check_temperature(temperature, "msp_score");
  return logit_score(logits, temperature, LogitScoreKind::Msp, Tensor());
}

Tensor max_logit_score(const Tensor& logits) {
  check_logits(logits, "max_logit_score");
  return logit_score(logits, 1.0, LogitScoreKind::MaxLogit, Tensor());
}

Tensor energy_score(const Tensor& logits, double temperature) {
  check_logits(logits, "energy_score");
  check_temperature(temperature, "energy_score");
  return logit_score(logits, temperature, LogitScoreKind::Energy, Tensor());
}

Tensor gradnorm_score(const Tensor& logits, const Tensor& z, double temperature) {
  check_logits(logits, "gradnorm_score");
  check_float(z, "gradnorm_score", "z");
  check_ndim(z, 2, "gradnorm_score", "z");
  check_same_device(logits, z, "gradnorm_score", "logits", "z");
  check_dtype(z, logits.dtype(), "gradnorm_score", "z");
  OODKIT_CHECK(z.size(0) == logits.size(0), "gradnorm_score: batch mismatch: logits is ",
               shape_str(logits.shape()), " but z is ", shape_str(z.shape()));
  OODKIT_CHECK(z.size(1) >= 1, "gradnorm_score: argument 'z' must have at least one feature (dim 1), got ",
               z.describe());
  check_temperature(temperature, "gradnorm_score");
  return logit_score(logits, temperature, LogitScoreKind::GradNorm, z);
}

Tensor nap_score(const Tensor& F, double eps, bool squared) {
  check_feature_map(F, "nap_score");
  check_eps(eps, "nap_score");
  FeatureMapScores s = feature_maps(F, eps, false);
  return squared ? s.nap : s.nap_unsquared;
}

Tensor fs_score(const Tensor& F) {
  check_feature_map(F, "fs_score");
  return feature_maps(F, 1.0, false).fs;
}

FeatureMapScores feature_map_scores(const Tensor& F, double eps) {
  check_feature_map(F, "feature_map_scores");
  check_eps(eps, "feature_map_scores");
  return feature_maps(F, eps, true);
}

int64_t ash_keep_count(int64_t d, double percentile) {
  OODKIT_CHECK(d >= 1, "ash: z must have at least one feature, got D = ", d);
  OODKIT_CHECK(std::isfinite(percentile) && percentile >= 0 && percentile < 100,
               "ash: percentile must be in [0, 100), got ", percentile);
  // np.round(D * p / 100.0): round half to even.
  const double x = double(d) * percentile / 100.0;
  double r = std::floor(x);
  const double frac = x - r;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  const int64_t k = d - int64_t(r);
  OODKIT_CHECK(k >= 1, "ash: percentile ", percentile, " keeps no entry of D = ", d,
               " (k = D - round(D * p / 100) = ", k, "); use a lower percentile");
  return k;
}

Tensor ash(const Tensor& z, double percentile, AshMode mode) {
  check_float(z, "ash", "z");
  check_ndim(z, 2, "ash", "z");
  OODKIT_CHECK(z.size(1) >= 1, "ash: argument 'z' must have at least one feature (dim 1), got ", z.describe());
  OODKIT_CHECK(mode == AshMode::Prune || mode == AshMode::Binarize || mode == AshMode::Scale,
               "ash: invalid mode ", int(mode));
  const int64_t n = z.size(0), d = z.size(1);
  const int64_t k = ash_keep_count(d, percentile);
  Tensor y = Tensor::empty_like(z);
  if (n == 0) return y;
  if (z.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::score_ash(z.data<float>(), y.data<float>(), n, d, k, int(mode)));
    return y;
  }
  dispatch_float(z.dtype(), "ash", [&](auto tag) {
    using T = decltype(tag);
    ash_cpu<T>(z.data<T>(), y.data<T>(), n, d, k, mode);
  });
  return y;
}

Tensor geometric_fusion(const Tensor& s_cls, const Tensor& s_nap, double w, double floor) {
  check_pair(s_cls, s_nap, "geometric_fusion", "s_cls", "s_nap");
  OODKIT_CHECK(w >= 0 && w <= 1, "geometric_fusion: w must be in [0, 1], got ", w);
  OODKIT_CHECK(std::isfinite(floor) && floor > 0, "geometric_fusion: floor must be a positive finite number, got ",
               floor);
  const int64_t n = s_cls.numel();
  Tensor out = Tensor::empty_like(s_cls);
  if (n == 0) return out;
  if (s_cls.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::score_geometric_fusion(s_cls.data<float>(), s_nap.data<float>(), out.data<float>(), n,
                                                  float(w), float(floor)));
    return out;
  }
  dispatch_float(s_cls.dtype(), "geometric_fusion", [&](auto tag) {
    using T = decltype(tag);
    geometric_fusion_cpu<T>(s_cls.data<T>(), s_nap.data<T>(), out.data<T>(), n, w, floor);
  });
  return out;
}

Tensor linear_fusion(const Tensor& s_fs, const Tensor& s_cls, double lambda) {
  check_pair(s_fs, s_cls, "linear_fusion", "s_fs", "s_cls");
  OODKIT_CHECK(std::isfinite(lambda), "linear_fusion: lambda must be finite, got ", lambda);
  const int64_t n = s_fs.numel();
  Tensor out = Tensor::empty_like(s_fs);
  if (n == 0) return out;
  if (s_fs.is_cuda()) {
    OODKIT_CUDA_CALL(
        cuda::score_linear_fusion(s_fs.data<float>(), s_cls.data<float>(), out.data<float>(), n, float(lambda)));
    return out;
  }
  dispatch_float(s_fs.dtype(), "linear_fusion", [&](auto tag) {
    using T = decltype(tag);
    const T* a = s_fs.data<T>();
    const T* b = s_cls.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = T(double(a[i]) + lambda * double(b[i]));
  });
  return out;
}

Tensor standardized_fusion(const Tensor& a, const Tensor& b, double w, ScoreScale a_scale, ScoreScale b_scale) {
  check_pair(a, b, "standardized_fusion", "a", "b");
  OODKIT_CHECK(w >= 0 && w <= 1, "standardized_fusion: w must be in [0, 1], got ", w);
  for (const ScoreScale& s : {a_scale, b_scale})
    OODKIT_CHECK(std::isfinite(s.mean) && std::isfinite(s.std) && s.std > 0,
                 "standardized_fusion: a scale needs a finite mean and a positive finite std, got mean ", s.mean,
                 ", std ", s.std);
  // out = ca a + cb b + c0
  const double ca = (1 - w) / a_scale.std, cb = w / b_scale.std;
  const double c0 = -ca * a_scale.mean - cb * b_scale.mean;
  const int64_t n = a.numel();
  Tensor out = Tensor::empty_like(a);
  if (n == 0) return out;
  if (a.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::score_affine_fusion(a.data<float>(), b.data<float>(), out.data<float>(), n, float(ca),
                                               float(cb), float(c0)));
    return out;
  }
  dispatch_float(a.dtype(), "standardized_fusion", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = T(ca * double(pa[i]) + cb * double(pb[i]) + c0);
  });
  return out;
}

Tensor heatmap_score(const Tensor& h) {
  check_float(h, "heatmap_score", "h");
  check_ndim(h, 4, "heatmap_score", "h");
  const int64_t n = h.size(0), c = h.size(1), hw = h.size(2) * h.size(3);
  OODKIT_CHECK(c >= 1 && hw >= 1, "heatmap_score: h must have channels and pixels, got ", h.describe());
  Tensor out = Tensor::empty({n}, h.dtype(), h.device());
  if (n == 0) return out;
  if (h.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::score_heatmap(h.data<float>(), n, c, hw, out.data<float>()));
    return out;
  }
  dispatch_float(h.dtype(), "heatmap_score", [&](auto tag) {
    using T = decltype(tag);
    const T* p = h.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      const T* img = p + i * c * hw;
      double sum = 0;
      for (int64_t q = 0; q < hw; ++q) {
        double m = std::fabs(double(img[q]));
        for (int64_t ch = 1; ch < c; ++ch) {
          const double v = std::fabs(double(img[ch * hw + q]));
          if (v > m || std::isnan(v)) m = v;
        }
        if (std::isnan(m)) {
          sum = NAN;
          break;
        }
        sum += m;
      }
      o[i] = T(-sum / double(hw));
    }
  });
  return out;
}

Tensor predicted_classes(const Tensor& logits) {
  check_defined(logits, "predicted_classes", "logits");
  check_ndim(logits, 2, "predicted_classes", "logits");
  OODKIT_CHECK(logits.size(1) >= 1, "predicted_classes: logits ", shape_str(logits.shape()), " has no classes");
  // float32 on every device (float64 logits are rounded first, as before ops::argmax existed).
  return ops::argmax(logits.detach().to(DType::F32), 1);
}

}  // namespace oodkit::ood
