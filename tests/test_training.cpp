// End-to-end: the framework's layers, autograd and optimisers learn a small task.
#include "framework/lr_schedule.h"
#include "framework/nn/layers.h"
#include "framework/ops/activation.h"
#include "framework/ops/loss.h"
#include "framework/ops/pool.h"
#include "framework/optim.h"
#include "testing.h"

using namespace oodkit;

namespace {

struct TinyNet : nn::Module {
  explicit TinyNet(Generator& gen)
      : conv(register_module("conv", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, false, 1, gen))),
        bn(register_module("bn", std::make_shared<nn::BatchNorm>(8))),
        fc(register_module("fc", std::make_shared<nn::Linear>(8, 2, true, gen))) {}
  Tensor forward(const Tensor& x) {
    return fc->forward(ops::global_avg_pool(ops::relu(bn->forward(conv->forward(x)))));
  }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm> bn;
  std::shared_ptr<nn::Linear> fc;
};

// Class 1 images have a bright 4x4 square at a random place on noise; class 0 are noise.
std::pair<Tensor, Tensor> make_data(int64_t n, Generator& gen) {
  Tensor x = Tensor::randn({n, 3, 12, 12}, gen);
  Tensor y = Tensor::empty({n}, DType::I64);
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = gen.randint(2);
    y.data<int64_t>()[i] = label;
    if (!label) continue;
    const int64_t r0 = gen.randint(9), c0 = gen.randint(9);
    for (int ch = 0; ch < 3; ++ch)
      for (int64_t r = r0; r < r0 + 4; ++r)
        for (int64_t c = c0; c < c0 + 4; ++c) px[((i * 3 + ch) * 12 + r) * 12 + c] += 2.0f;
  }
  return {x, y};
}

class TrainingTest : public oodkit::testing::DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(TrainingTest);

TEST_P(TrainingTest, SmallConvNetLearnsWithSgdAndAdam) {
  for (int use_adam = 0; use_adam < 2; ++use_adam) {
    Generator g(21);
    auto [x, y] = make_data(512, g);
    auto [tx, ty] = make_data(256, g);
    TinyNet net(g);
    net.to(device());
    std::unique_ptr<optim::Optimizer> opt;
    if (use_adam) opt = std::make_unique<optim::Adam>(net.parameters(), optim::AdamOptions{1e-2});
    else opt = std::make_unique<optim::SGD>(net.parameters(), optim::SGDOptions{0.1, 0.9, 0, 1e-4, true});
    double first = 0, last = 0;
    for (int epoch = 0; epoch < 6; ++epoch)
      for (int64_t b = 0; b < 512; b += 64) {
        Tensor loss = ops::cross_entropy(net.forward(x.narrow(b, 64).to(device())), y.narrow(b, 64).to(device()));
        opt->zero_grad();
        loss.backward();
        opt->step();
        if (epoch == 0 && b == 0) first = loss.item();
        last = loss.item();
      }
    net.eval();
    autograd::NoGradGuard ng;
    const Tensor logits = net.forward(tx.to(device())).cpu();
    int64_t correct = 0;
    for (int64_t i = 0; i < 256; ++i) {
      const float* p = logits.data<float>() + 2 * i;
      correct += int64_t(p[1] > p[0]) == ty.data<int64_t>()[i];
    }
    EXPECT_LT(last, 0.5 * first) << (use_adam ? "Adam" : "SGD");
    EXPECT_GE(correct, 230) << (use_adam ? "Adam" : "SGD") << ": " << correct << "/256 held-out images right";
  }
}

}  // namespace
