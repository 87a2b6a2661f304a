#include "ood/spatial_maps.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "framework/error.h"

namespace oodkit::ood {

namespace {
// Host doubles of a float32/float64 CPU tensor of rank `rank` (an Error naming `fn` otherwise).
std::vector<double> host(const Tensor& t, int rank, const char* fn, const char* what) {
  OODKIT_CHECK(t.defined() && t.ndim() == rank, fn, ": ", what, " must have rank ", rank, ", got ",
               t.defined() ? t.describe() : std::string("an undefined tensor"));
  OODKIT_CHECK(!t.is_cuda(), fn, ": ", what, " must be on the CPU, got ", t.describe());
  OODKIT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, fn, ": ", what,
               " must be float32 or float64, got ", t.describe());
  for (int d = 1; d < rank; ++d) OODKIT_CHECK(t.size(d) >= 1, fn, ": ", what, " has an empty dimension: ", t.describe());
  return t.to(DType::F64).to_vector<double>();
}

Tensor to_f32(const std::vector<double>& v, const Shape& shape) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from_vector(f, shape);
}

// max that propagates NaN (as the scores do).
double nan_max(double a, double b) { return (std::isnan(a) || a > b) ? a : b; }
}  // namespace

Tensor upsample_bilinear(const Tensor& maps, int64_t height, int64_t width) {
  const std::vector<double> m = host(maps, 3, "upsample_bilinear", "maps");
  OODKIT_CHECK(height >= 1 && width >= 1, "upsample_bilinear: output size ", height, "x", width, " must be positive");
  const int64_t n = maps.size(0), h = maps.size(1), w = maps.size(2);
  // One source coordinate per output row/column: index pair and weight.
  struct Tap { int64_t i0, i1; double l; };
  const auto taps = [](int64_t in, int64_t out) {
    std::vector<Tap> t(static_cast<size_t>(out));
    const double scale = double(in) / double(out);
    for (int64_t o = 0; o < out; ++o) {
      const double s = std::max(0.0, (double(o) + 0.5) * scale - 0.5);
      const int64_t i0 = std::min(int64_t(s), in - 1);
      t[size_t(o)] = {i0, std::min(i0 + 1, in - 1), s - double(i0)};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(h, height), tx = taps(w, width);
  std::vector<double> out(size_t(n * height * width));
  for (int64_t b = 0; b < n; ++b) {
    const double* src = m.data() + b * h * w;
    for (int64_t y = 0; y < height; ++y) {
      const Tap& a = ty[size_t(y)];
      for (int64_t x = 0; x < width; ++x) {
        const Tap& c = tx[size_t(x)];
        const double top = (1 - c.l) * src[a.i0 * w + c.i0] + c.l * src[a.i0 * w + c.i1];
        const double bottom = (1 - c.l) * src[a.i1 * w + c.i0] + c.l * src[a.i1 * w + c.i1];
        out[size_t((b * height + y) * width + x)] = (1 - a.l) * top + a.l * bottom;
      }
    }
  }
  return to_f32(out, {n, height, width});
}

Tensor heatmap_map(const Tensor& h) {
  const std::vector<double> v = host(h, 4, "heatmap_map", "h");
  const int64_t n = h.size(0), c = h.size(1), hw = h.size(2) * h.size(3);
  std::vector<double> out(size_t(n * hw), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < hw; ++p) {
      double m = std::fabs(v[size_t((b * c) * hw + p)]);
      for (int64_t k = 1; k < c; ++k) m = nan_max(m, std::fabs(v[size_t((b * c + k) * hw + p)]));
      out[size_t(b * hw + p)] = m;
    }
  return to_f32(out, {n, h.size(2), h.size(3)});
}

Tensor fs_contribution_map(const Tensor& F) {
  const std::vector<double> v = host(F, 4, "fs_contribution_map", "F");
  const int64_t n = F.size(0), c = F.size(1), hw = F.size(2) * F.size(3);
  std::vector<double> out(size_t(n * hw), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < c; ++k) {
      const double* row = v.data() + (b * c + k) * hw;
      double mean = 0;
      for (int64_t p = 0; p < hw; ++p) mean += row[p];
      mean /= double(hw);
      for (int64_t p = 0; p < hw; ++p) out[size_t(b * hw + p)] -= std::fabs(row[p] - mean) / double(c);
    }
  return to_f32(out, {n, F.size(2), F.size(3)});
}

Tensor nap_contribution_map(const Tensor& F, double eps, bool squared) {
  const std::vector<double> v = host(F, 4, "nap_contribution_map", "F");
  OODKIT_CHECK(eps > 0 && std::isfinite(eps), "nap_contribution_map: eps must be positive and finite, got ", eps);
  const int64_t n = F.size(0), c = F.size(1), hw = F.size(2) * F.size(3);
  std::vector<double> out(size_t(n * hw), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < c; ++k) {
      const double* row = v.data() + (b * c + k) * hw;
      double mean = 0, mx = row[0];
      int64_t at = 0;
      for (int64_t p = 0; p < hw; ++p) {
        mean += row[p];
        if (std::isnan(row[p]) && !std::isnan(mx)) mx = row[p], at = p;  // the first NaN holds the max
        else if (!std::isnan(mx) && row[p] > mx) mx = row[p], at = p;
      }
      mean /= double(hw);
      const double r = mx / (mean + eps);
      out[size_t(b * hw + at)] -= double(hw) / double(c) * (squared ? r * r : r);
    }
  return to_f32(out, {n, F.size(2), F.size(3)});
}

Tensor gradcam_map(const Tensor& A, const Tensor& grad) {
  const std::vector<double> a = host(A, 4, "gradcam_map", "A");
  const std::vector<double> g = host(grad, 2, "gradcam_map", "grad");
  const int64_t n = A.size(0), c = A.size(1), hw = A.size(2) * A.size(3);
  OODKIT_CHECK(grad.size(0) == n && grad.size(1) == c, "gradcam_map: grad ", grad.describe(),
               " must be [N, C] of A ", A.describe());
  std::vector<double> out(size_t(n * hw), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < hw; ++p) {
      double s = 0;
      for (int64_t k = 0; k < c; ++k) s += g[size_t(b * c + k)] / double(hw) * a[size_t((b * c + k) * hw + p)];
      out[size_t(b * hw + p)] = std::isnan(s) ? s : std::max(0.0, -s);
    }
  return to_f32(out, {n, A.size(2), A.size(3)});
}

}  // namespace oodkit::ood
