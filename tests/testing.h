// Shared test helpers: the device-parameterised fixture, tolerances, comparison and the
// double-precision finite-difference gradient checker.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/tensor.h"

namespace oodkit {
// Readable test names/params in gtest output.
inline void PrintTo(const Device& d, std::ostream* os) { *os << d.str(); }
}  // namespace oodkit

namespace oodkit::testing {

// Fixture for "one body, both devices": GetParam() is the device under test. CUDA cases
// skip (GTEST_SKIP) when no GPU is present. Instantiate with OODKIT_INSTANTIATE_DEVICES.
class DeviceTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override;
  Device device() const { return GetParam(); }
  bool on_cuda() const { return GetParam().is_cuda(); }
  Generator gen{1234};
};

std::string device_param_name(const ::testing::TestParamInfo<Device>& info);

// The message of the oodkit::Error that f() throws ("" when it throws none; other exceptions pass).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define OODKIT_INSTANTIATE_DEVICES(Fixture)                                              \
  INSTANTIATE_TEST_SUITE_P(Devices, Fixture,                                           \
                           ::testing::Values(::oodkit::Device::cpu(), ::oodkit::Device::cuda()), \
                           ::oodkit::testing::device_param_name)

// Per-element tolerance |actual - expected| <= atol + rtol * |expected|; NaN never passes.
struct Tol {
  double atol;
  double rtol;
};
// float32 against a float32/float64 reference computed the same way.
constexpr Tol kF32{1e-5, 1e-4};
// float32 result of a K-term reduction: atol grows with sqrt(K) (use for GEMM/conv/sums).
Tol f32_reduction(int64_t k);

// Compares element by element (both moved to the CPU and to double). On failure reports the
// count of bad elements, the worst one (index, values) and the first NaN.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, Tol tol);
#define EXPECT_ALL_CLOSE(a, e, tol) EXPECT_TRUE(::oodkit::testing::all_close((a), (e), (tol)))

// Normalised mean squared error sum((a-e)^2) / sum(e^2).
double nmse(const Tensor& actual, const Tensor& expected);

// Finite-difference gradient check in float64 on the CPU.
//  fn: maps the inputs to one output tensor (any shape); it is scalarised as
//      sum(fn(x) * R) with a fixed random R so that every output element is exercised.
//  inputs: float64 CPU tensors; those with requires_grad set are checked.
//  skip(i, j): return true to skip element j of input i (points at kinks, e.g. |x| < eps for ReLU).
struct GradCheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  std::function<bool(size_t, int64_t)> skip;
};
::testing::AssertionResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                     const std::vector<Tensor>& inputs,
                                     const GradCheckOptions& opt = {});
#define EXPECT_GRADCHECK(...) EXPECT_TRUE(::oodkit::testing::gradcheck(__VA_ARGS__))

// Path of a file under ../shared (datasets, weights): $OODKIT_SHARED_DIR if set, else the
// ../shared beside the source tree. Throws, failing the test, when the file is missing:
// CI always has ../shared, so a missing file is a defect, not a reason to skip.
std::string shared_path(const std::string& relative);

// Random float64 CPU tensor (normal) marked requires_grad, for gradchecks.
Tensor randn_f64(const Shape& shape, Generator& gen, bool requires_grad = true);

// Gives every element of a float tensor a magnitude of at least `margin` (keeps sign) so that
// kinks at 0 are avoided; returns a new tensor.
Tensor away_from_zero(const Tensor& t, double margin);

}  // namespace oodkit::testing
