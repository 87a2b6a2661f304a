#include "testing.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

#include "framework/ops/elementwise.h"

namespace oodkit::testing {

void DeviceTest::SetUp() {
  if (GetParam().is_cuda() && !cuda_available()) GTEST_SKIP() << "no CUDA device present";
}

std::string device_param_name(const ::testing::TestParamInfo<Device>& info) {
  return info.param.is_cpu() ? "CPU" : "CUDA";
}

Tol f32_reduction(int64_t k) {
  const double s = std::sqrt(double(std::max<int64_t>(k, 1)));
  return {1e-5 * s, 1e-4};
}

namespace {
std::vector<double> as_doubles(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }
}  // namespace

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, Tol tol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor in comparison";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << " vs expected "
                                         << shape_str(expected.shape());
  const std::vector<double> a = as_doubles(actual), e = as_doubles(expected);
  int64_t bad = 0, worst = -1, first_nan = -1;
  double worst_excess = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::fabs(a[i] - e[i]);
    const double allowed = tol.atol + tol.rtol * std::fabs(e[i]);
    if (std::isnan(a[i]) || std::isnan(e[i])) {
      if (first_nan < 0) first_nan = int64_t(i);
      ++bad;
    } else if (!(diff <= allowed)) {
      ++bad;
      if (diff - allowed > worst_excess || worst < 0) {
        worst_excess = diff - allowed;
        worst = int64_t(i);
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  auto f = ::testing::AssertionFailure();
  f << bad << " of " << a.size() << " elements differ (atol " << tol.atol << ", rtol " << tol.rtol << ")";
  if (worst >= 0)
    f << "; worst at " << worst << ": " << a[size_t(worst)] << " vs expected " << e[size_t(worst)];
  if (first_nan >= 0)
    f << "; NaN at " << first_nan << ": " << a[size_t(first_nan)] << " vs expected " << e[size_t(first_nan)];
  return f;
}

double nmse(const Tensor& actual, const Tensor& expected) {
  const std::vector<double> a = as_doubles(actual), e = as_doubles(expected);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - e[i]) * (a[i] - e[i]);
    den += e[i] * e[i];
  }
  return den > 0 ? num / den : num;
}

::testing::AssertionResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                     const std::vector<Tensor>& inputs, const GradCheckOptions& opt) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    if (inputs[i].dtype() != DType::F64 || !inputs[i].device().is_cpu())
      return ::testing::AssertionFailure() << "gradcheck input " << i << " must be float64 on the CPU, got "
                                           << inputs[i].describe();
  }
  // Fresh leaves so that repeated checks do not accumulate.
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      leaves.emplace_back();
      continue;
    }
    Tensor c = t.clone();
    if (t.requires_grad()) c.set_requires_grad(true);
    leaves.push_back(c);
  }
  Tensor y = fn(leaves);
  if (!y.defined() || y.dtype() != DType::F64)
    return ::testing::AssertionFailure() << "gradcheck: fn must return a float64 tensor, got " << y.describe();
  Generator rgen(99);
  const Tensor r = Tensor::uniform(y.shape(), 0.5, 1.5, rgen, DType::F64);
  Tensor loss = ops::sum(ops::mul(y, r));
  loss.backward();

  auto objective = [&](const std::vector<Tensor>& xs) {
    autograd::NoGradGuard ng;
    const Tensor out = fn(xs);
    const double* po = out.data<double>();
    const double* pr = r.data<double>();
    double acc = 0.0;
    for (int64_t k = 0; k < out.numel(); ++k) acc += po[k] * pr[k];
    return acc;
  };

  std::ostringstream errors;
  int64_t bad = 0, checked = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    const Tensor analytic = leaves[i].grad();
    std::vector<Tensor> xs;
    for (const Tensor& t : inputs) xs.push_back(t.defined() ? t.clone() : Tensor());
    double* px = xs[i].data<double>();
    for (int64_t j = 0; j < xs[i].numel(); ++j) {
      if (opt.skip && opt.skip(i, j)) continue;
      const double orig = px[j];
      px[j] = orig + opt.eps;
      const double lp = objective(xs);
      px[j] = orig - opt.eps;
      const double lm = objective(xs);
      px[j] = orig;
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic.defined() ? analytic.data<double>()[j] : 0.0;
      ++checked;
      if (!(std::fabs(a - numeric) <= opt.atol + opt.rtol * std::fabs(numeric))) {
        if (bad < 5)
          errors << "\n  input " << i << " element " << j << ": analytic " << a << " numeric " << numeric;
        ++bad;
      }
    }
  }
  if (checked == 0) return ::testing::AssertionFailure() << "gradcheck checked no element";
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << checked << " gradient elements differ" << errors.str();
}

std::string shared_path(const std::string& relative) {
  const char* env = std::getenv("OODKIT_SHARED_DIR");
  const std::string path = std::string(env ? env : OODKIT_SHARED_DIR) + "/" + relative;
  if (::access(path.c_str(), R_OK) != 0)
    throw std::runtime_error("shared data file not found: " + path + " (set OODKIT_SHARED_DIR to the shared folder)");
  return path;
}

Tensor randn_f64(const Shape& shape, Generator& gen, bool requires_grad) {
  Tensor t = Tensor::randn(shape, gen, DType::F64);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor away_from_zero(const Tensor& t, double margin) {
  Tensor out = t.to(DType::F64).cpu().clone();
  double* p = out.data<double>();
  for (int64_t i = 0; i < out.numel(); ++i)
    if (std::fabs(p[i]) < margin) p[i] = p[i] < 0 ? p[i] - margin : p[i] + margin;
  return out.to(t.dtype()).to(t.device());
}

}  // namespace oodkit::testing
