// Exact order statistics of a tensor's values, as numpy computes them.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ood {

// q-th quantile (q in [0, 1]) of all elements of `values` (any shape, any dtype, any device;
// read as double on the host), with numpy's default method 'linear' (numpy.quantile(a, q),
// R's type 7): with the values sorted ascending as v[0..n-1], h = (n - 1) * q, i = floor(h),
// g = h - i,
//   result = v[i] + g * (v[i+1] - v[i])            when g <  0.5
//          = v[i+1] - (1 - g) * (v[i+1] - v[i])    when g >= 0.5 (numpy's _lerp, same rounding)
// and v[n-1] when i >= n - 1. Exact (selection, no sampling or binning), O(n).
// Errors (oodkit::Error): undefined or empty `values`, any NaN among them, q outside [0, 1] or NaN.
double quantile(const Tensor& values, double q);

// p-th percentile (p in [0, 100]): quantile(values, p / 100), as numpy.percentile(a, p) with its
// default method 'linear'. Errors as quantile (p outside [0, 100]).
double percentile(const Tensor& values, double p);

}  // namespace oodkit::ood
