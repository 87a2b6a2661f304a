#include "ood/percentile.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace oodkit::ood {

namespace {

double quantile_impl(const Tensor& values, double q, const char* op) {
  check_defined(values, op, "values");
  OODKIT_CHECK(values.numel() > 0, op, ": values is empty (", values.describe(), ")");
  const Tensor host = values.cpu().to(DType::F64);
  const double* p = host.data<double>();
  const int64_t n = host.numel();
  std::vector<double> v(p, p + n);
  for (int64_t i = 0; i < n; ++i)
    OODKIT_CHECK(!std::isnan(v[size_t(i)]), op, ": values contains NaN (first at flat index ", i, " of ",
                 values.describe(), ")");

  // numpy (_quantile, method 'linear'): virtual index (n - 1) * q, neighbours floor and floor + 1,
  // both pinned to the last element when the index reaches n - 1.
  const double h = double(n - 1) * q;
  if (h >= double(n - 1)) return *std::max_element(v.begin(), v.end());
  const double lo_d = std::floor(h);
  const double g = h - lo_d;
  const size_t lo = size_t(lo_d);
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  const double a = v[lo];
  const double b = *std::min_element(v.begin() + lo + 1, v.end());  // the (lo + 1)-th order statistic
  const double diff = b - a;
  return g >= 0.5 ? b - diff * (1.0 - g) : a + diff * g;
}

}  // namespace

double quantile(const Tensor& values, double q) {
  OODKIT_CHECK(q >= 0.0 && q <= 1.0, "quantile: q must lie in [0, 1], got ", q);
  return quantile_impl(values, q, "quantile");
}

double percentile(const Tensor& values, double p) {
  OODKIT_CHECK(p >= 0.0 && p <= 100.0, "percentile: p must lie in [0, 100], got ", p);
  return quantile_impl(values, p / 100.0, "percentile");
}

}  // namespace oodkit::ood
