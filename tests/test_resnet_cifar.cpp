#include "data/cifar.h"
#include "framework/safetensors.h"
#include "models/resnet_cifar.h"
#include "testing.h"

using namespace oodkit;

namespace {

class ResNetCifarTest : public oodkit::testing::DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ResNetCifarTest);

// The shipped ResNet-20 (trained in PyTorch elsewhere) must reproduce the independent
// reference: 915 of the 1,000 CIFAR-10 test images correct (docs/data.md).
TEST_P(ResNetCifarTest, PretrainedResNet20Gets915Of1000) {
  models::ResNetCifar net(20, 10);
  net.load_state_dict(load_safetensors(oodkit::testing::shared_path("weights/resnet20_cifar10.safetensors")));
  net.to(device());
  net.eval();
  const data::Dataset test =
      data::load_cifar({oodkit::testing::shared_path("datasets/cifar10/test_batch.bin")}, data::CifarLayout::Cifar10);
  ASSERT_EQ(test.size(), 1000);
  const Tensor x = data::normalize(test.images, data::imagenet_normalization());
  const std::vector<int64_t> labels = test.labels.to_vector<int64_t>();
  autograd::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t b = 0; b < 1000; b += 250) {
    const Tensor logits = net.forward(x.narrow(b, 250).to(device())).cpu();
    const float* p = logits.data<float>();
    for (int64_t i = 0; i < 250; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < 10; ++k)
        if (p[i * 10 + k] > p[i * 10 + best]) best = k;
      correct += best == labels[size_t(b + i)];
    }
  }
  EXPECT_EQ(correct, 915);
}

TEST(ResNetCifar, StateDictNamesMatchPyTorch) {
  models::ResNetCifar net(20, 10);
  const auto infos = list_safetensors(oodkit::testing::shared_path("weights/resnet20_cifar10.safetensors"));
  std::vector<std::string> ours;
  for (const auto& [n, t] : net.state_dict())
    if (n.find("num_batches_tracked") == std::string::npos) ours.push_back(n);
  std::vector<std::string> theirs;
  for (const auto& info : infos) theirs.push_back(info.name);
  std::sort(ours.begin(), ours.end());
  std::sort(theirs.begin(), theirs.end());
  EXPECT_EQ(ours, theirs);
  EXPECT_EQ(net.num_parameters(), 269722);  // He et al.: 0.27M
}

TEST(ResNetCifar, ForwardFromStageMatchesFullForward) {
  Generator gen(3);
  models::ResNetCifar net(20, 10, gen);
  net.eval();
  autograd::NoGradGuard ng;
  const Tensor x = Tensor::randn({2, 3, 32, 32}, gen);
  const models::ClassifierOutput full = net.forward_all(x);
  ASSERT_EQ(full.stages.size(), 4u);
  EXPECT_EQ(full.features.shape(), (Shape{2, 64, 8, 8}));
  EXPECT_EQ(full.penultimate.shape(), (Shape{2, 64}));
  const models::ClassifierOutput tail = net.forward_from(2, full.stages[2]);
  EXPECT_ALL_CLOSE(tail.logits, full.logits, oodkit::testing::kF32);
  EXPECT_THROW(net.forward_from(4, x), Error);
}

}  // namespace
