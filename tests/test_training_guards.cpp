// The non-finite guards of the two trainers: ops::all_finite (framework/ops/reduce.h), which
// `oodkit train` and the decoder trainer compute from every step's gradients, and
// ood::first_nonfinite, which they run on the state before saving a checkpoint. More
// all_finite cases (float64, many tensors, against a naive loop): tests/test_reduce.cpp.
#include <cmath>
#include <limits>

#include "framework/ops/reduce.h"
#include "ood/heatmap_train.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;

namespace {

class TrainingGuardTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(TrainingGuardTest);

Tensor values(std::vector<float> v, Device d) { return Tensor::from_vector(v, {int64_t(v.size())}).to(d); }

TEST_P(TrainingGuardTest, AllFiniteIsOneForFiniteTensorsEvenHugeOnes) {
  const float big = std::numeric_limits<float>::max();
  // Summing these would overflow float32; the flag must not mistake that for a non-finite element.
  const Tensor flag = ops::all_finite({values({big, big, -big, 1e-30f}, device()), Tensor(),
                                       values({big, big}, device())});
  ASSERT_TRUE(flag.defined());
  EXPECT_EQ(flag.device(), device());
  EXPECT_EQ(flag.item(), 1.0);
}

TEST_P(TrainingGuardTest, AllFiniteIsZeroWhenAnyElementIsNanOrInf) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    const Tensor flag = ops::all_finite({values({1.f, 2.f}, device()), values({3.f, bad, 4.f}, device())});
    EXPECT_EQ(flag.item(), 0.0) << "element " << bad;
  }
}

TEST_P(TrainingGuardTest, AllFiniteOfNoDefinedTensorIsOneOnTheCpu) {
  for (const Tensor& flag : {ops::all_finite({Tensor(), Tensor()}), ops::all_finite({})}) {
    EXPECT_EQ(flag.device(), Device::cpu());
    EXPECT_EQ(flag.item(), 1.0);
  }
}

TEST_P(TrainingGuardTest, FirstNonfiniteNamesTheFirstBadFloatTensor) {
  const float inf = std::numeric_limits<float>::infinity();
  NamedTensors state{{"a", values({1.f, 2.f}, device())},
                     {"steps", Tensor::from_vector(std::vector<int64_t>{7}, {1}).to(device())},
                     {"b", values({0.f, inf}, device())},
                     {"c", Tensor::from_vector(std::vector<double>{std::nan("")}, {1}).to(device())}};
  EXPECT_EQ(ood::first_nonfinite(state), "b");
  state.erase(state.begin() + 2);
  EXPECT_EQ(ood::first_nonfinite(state), "c");  // float64 too
  state.pop_back();
  EXPECT_EQ(ood::first_nonfinite(state), "");
}

}  // namespace
