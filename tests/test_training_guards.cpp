// The non-finite guards of the two trainers (ood/heatmap_train.h): nonfinite_flag, which
// `oodkit train` and the decoder trainer compute from every step's gradients, and
// first_nonfinite, which they run on the state before saving a checkpoint.
#include <cmath>
#include <limits>

#include "ood/heatmap_train.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;

namespace {

class TrainingGuardTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(TrainingGuardTest);

Tensor values(std::vector<float> v, Device d) { return Tensor::from_vector(v, {int64_t(v.size())}).to(d); }

TEST_P(TrainingGuardTest, NonfiniteFlagIsZeroForFiniteTensorsEvenHugeOnes) {
  const float big = std::numeric_limits<float>::max();
  // Summing these would overflow float32; the flag must not mistake that for a non-finite element.
  const Tensor flag = ood::nonfinite_flag({values({big, big, -big, 1e-30f}, device()), Tensor(),
                                           values({big, big}, device())});
  ASSERT_TRUE(flag.defined());
  EXPECT_EQ(flag.device(), device());
  EXPECT_EQ(flag.item(), 0.0);
}

TEST_P(TrainingGuardTest, NonfiniteFlagIsNanWhenAnyElementIsNanOrInf) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    const Tensor flag = ood::nonfinite_flag({values({1.f, 2.f}, device()), values({3.f, bad, 4.f}, device())});
    EXPECT_TRUE(std::isnan(flag.item())) << "element " << bad;
  }
}

TEST_P(TrainingGuardTest, NonfiniteFlagOfNoDefinedTensorIsUndefined) {
  EXPECT_FALSE(ood::nonfinite_flag({Tensor(), Tensor()}).defined());
  EXPECT_FALSE(ood::nonfinite_flag({}).defined());
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
