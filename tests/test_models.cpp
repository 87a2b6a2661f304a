// The classifiers of models/ (ResNet-18/34/50, WideResNet-40-2, DenseNet-BC-100 and the CIFAR
// ResNets through the registry) and the heatmap decoder: parameter counts, state-dict names,
// shapes of every stage, forward_from, train/eval behaviour, gradient flow, and float64
// gradchecks of one block of each kind.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "framework/ops/activation.h"
#include "framework/ops/channel.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/loss.h"
#include "framework/ops/pool.h"
#include "models/decoder.h"
#include "models/densenet.h"
#include "models/registry.h"
#include "models/resnet.h"
#include "models/wide_resnet.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::kF32;

namespace {

// ---------------------------------------------------------------------------------------
// Parameter counts, written out layer by layer (independently of the model code).
// ---------------------------------------------------------------------------------------
int64_t conv(int64_t in, int64_t out, int64_t k, bool bias = false) { return in * out * k * k + (bias ? out : 0); }
int64_t bn(int64_t c) { return 2 * c; }
int64_t linear(int64_t in, int64_t out) { return in * out + out; }

// kuangliu BasicBlock: conv3x3 + bn, conv3x3 + bn, optional 1x1 projection + bn.
int64_t basic_block(int64_t in, int64_t planes, bool projection) {
  return conv(in, planes, 3) + bn(planes) + conv(planes, planes, 3) + bn(planes) +
         (projection ? conv(in, planes, 1) + bn(planes) : 0);
}
// kuangliu Bottleneck: 1x1, 3x3, 1x1 (x4), each + bn, optional projection to 4 planes.
int64_t bottleneck(int64_t in, int64_t planes, bool projection) {
  return conv(in, planes, 1) + bn(planes) + conv(planes, planes, 3) + bn(planes) + conv(planes, 4 * planes, 1) +
         bn(4 * planes) + (projection ? conv(in, 4 * planes, 1) + bn(4 * planes) : 0);
}

int64_t expected_resnet18(int64_t k) {
  const int64_t stem = conv(3, 64, 3) + bn(64);
  const int64_t l1 = 2 * basic_block(64, 64, false);
  const int64_t l2 = basic_block(64, 128, true) + basic_block(128, 128, false);
  const int64_t l3 = basic_block(128, 256, true) + basic_block(256, 256, false);
  const int64_t l4 = basic_block(256, 512, true) + basic_block(512, 512, false);
  return stem + l1 + l2 + l3 + l4 + linear(512, k);
}
int64_t expected_resnet34(int64_t k) {
  const int64_t stem = conv(3, 64, 3) + bn(64);
  const int64_t l1 = 3 * basic_block(64, 64, false);
  const int64_t l2 = basic_block(64, 128, true) + 3 * basic_block(128, 128, false);
  const int64_t l3 = basic_block(128, 256, true) + 5 * basic_block(256, 256, false);
  const int64_t l4 = basic_block(256, 512, true) + 2 * basic_block(512, 512, false);
  return stem + l1 + l2 + l3 + l4 + linear(512, k);
}
int64_t expected_resnet50(int64_t k) {
  const int64_t stem = conv(3, 64, 3) + bn(64);
  const int64_t l1 = bottleneck(64, 64, true) + 2 * bottleneck(256, 64, false);
  const int64_t l2 = bottleneck(256, 128, true) + 3 * bottleneck(512, 128, false);
  const int64_t l3 = bottleneck(512, 256, true) + 5 * bottleneck(1024, 256, false);
  const int64_t l4 = bottleneck(1024, 512, true) + 2 * bottleneck(2048, 512, false);
  return stem + l1 + l2 + l3 + l4 + linear(2048, k);
}
// xternalz block: bn(in), conv3x3 in->out, bn(out), conv3x3 out->out, 1x1 shortcut when in != out.
int64_t wide_block(int64_t in, int64_t out) {
  return bn(in) + conv(in, out, 3) + bn(out) + conv(out, out, 3) + (in != out ? conv(in, out, 1) : 0);
}
int64_t expected_wrn40_2(int64_t k) {
  const int64_t stem = conv(3, 16, 3);
  const int64_t b1 = wide_block(16, 32) + 5 * wide_block(32, 32);
  const int64_t b2 = wide_block(32, 64) + 5 * wide_block(64, 64);
  const int64_t b3 = wide_block(64, 128) + 5 * wide_block(128, 128);
  return stem + b1 + b2 + b3 + bn(128) + linear(128, k);
}
// ODIN DenseNet3 (BC, growth 12): bottleneck layer bn(c), 1x1 c->48, bn(48), 3x3 48->12.
int64_t expected_densenet100(int64_t k) {
  int64_t total = conv(3, 24, 3);
  int64_t c = 24;
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 16; ++i, c += 12) total += bn(c) + conv(c, 48, 1) + bn(48) + conv(48, 12, 3);
    if (b < 2) {
      total += bn(c) + conv(c, c / 2, 1);
      c /= 2;
    }
  }
  EXPECT_EQ(c, 342);
  return total + bn(342) + linear(342, k);
}
int64_t expected_resnet20(int64_t k) {  // option A: no shortcut parameters
  int64_t total = conv(3, 16, 3) + bn(16);
  const int64_t w[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < 3; ++b) {
      const int64_t in = (s > 0 && b == 0) ? w[s - 1] : w[s];
      total += conv(in, w[s], 3) + bn(w[s]) + conv(w[s], w[s], 3) + bn(w[s]);
    }
  return total + linear(64, k);
}

TEST(Models, ParameterCountsFor10Classes) {
  Generator gen(1);
  // The literals were checked against the PyTorch reference implementations
  // (sum(p.numel() for p in model.parameters())).
  EXPECT_EQ(expected_resnet18(10), 11173962);
  EXPECT_EQ(expected_resnet34(10), 21282122);
  EXPECT_EQ(expected_resnet50(10), 23520842);
  EXPECT_EQ(expected_wrn40_2(10), 2243546);
  EXPECT_EQ(expected_densenet100(10), 769162);
  EXPECT_EQ(expected_resnet20(10), 269722);
  const std::map<std::string, int64_t> want = {
      {"resnet18", expected_resnet18(10)}, {"resnet34", expected_resnet34(10)},
      {"resnet50", expected_resnet50(10)}, {"wrn40_2", expected_wrn40_2(10)},
      {"densenet100", expected_densenet100(10)}, {"resnet20", expected_resnet20(10)}};
  for (const auto& [arch, n] : want)
    EXPECT_EQ(models::make_classifier(arch, 10, 32, gen)->num_parameters(), n) << arch;
  // The 64x64 stem only adds a parameter-free max-pool.
  EXPECT_EQ(models::make_classifier("resnet18", 10, 64, gen)->num_parameters(), expected_resnet18(10));
  EXPECT_EQ(models::make_classifier("resnet50", 200, 64, gen)->num_parameters(),
            expected_resnet50(10) - linear(2048, 10) + linear(2048, 200));
}

// ---------------------------------------------------------------------------------------
// State-dict names.
// ---------------------------------------------------------------------------------------
std::set<std::string> names_of(const nn::NamedTensors& t) {
  std::set<std::string> s;
  for (const auto& [n, v] : t) s.insert(n);
  return s;
}

// Every BatchNorm (found by its running_mean) has weight, bias, running_var and
// num_batches_tracked; returns the number of BatchNorms.
int64_t check_batch_norms(const nn::Module& m, const std::string& what) {
  const std::set<std::string> names = names_of(m.state_dict());
  const std::string suffix = ".running_mean";
  int64_t count = 0;
  for (const std::string& n : names) {
    if (n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string prefix = n.substr(0, n.size() - suffix.size());
    for (const char* part : {".weight", ".bias", ".running_var", ".num_batches_tracked"})
      EXPECT_TRUE(names.count(prefix + part)) << what << ": " << prefix << part << " missing";
    ++count;
  }
  return count;
}

void expect_names(const nn::Module& m, const std::vector<std::string>& wanted, const std::string& what) {
  const std::set<std::string> names = names_of(m.state_dict());
  for (const std::string& n : wanted) EXPECT_TRUE(names.count(n)) << what << ": no entry " << n;
}

void expect_no_names(const nn::Module& m, const std::vector<std::string>& unwanted, const std::string& what) {
  const std::set<std::string> names = names_of(m.state_dict());
  for (const std::string& n : unwanted) EXPECT_FALSE(names.count(n)) << what << ": unexpected entry " << n;
}

TEST(Models, StateDictNamesFollowTheReferenceImplementations) {
  Generator gen(2);
  models::ResNet r18(18, 10, 32, gen);
  expect_names(r18, {"conv1.weight", "bn1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
                     "layer1.1.bn2.num_batches_tracked", "layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.bias",
                     "layer2.0.shortcut.1.running_var", "layer4.1.conv2.weight", "linear.weight", "linear.bias"},
               "resnet18");
  expect_no_names(r18, {"layer1.0.shortcut.0.weight", "layer2.1.shortcut.0.weight", "conv1.bias"}, "resnet18");
  // stem 1 + 8 blocks x 2 + 3 projections.
  EXPECT_EQ(check_batch_norms(r18, "resnet18"), 20);
  // torch order: per module its parameters, then buffers, then children.
  const nn::NamedTensors sd = r18.state_dict();
  ASSERT_GE(sd.size(), 8u);
  EXPECT_EQ(sd[0].first, "conv1.weight");
  EXPECT_EQ(sd[1].first, "bn1.weight");
  EXPECT_EQ(sd[3].first, "bn1.running_mean");
  EXPECT_EQ(sd[5].first, "bn1.num_batches_tracked");
  EXPECT_EQ(sd[6].first, "layer1.0.conv1.weight");
  EXPECT_EQ(sd.back().first, "linear.bias");
  // 20 BN x 5 + 20 convs + 2 linear.
  EXPECT_EQ(sd.size(), 122u);
  // PyTorch checkpoints from before num_batches_tracked load strictly.
  nn::NamedTensors old_style;
  for (const auto& [n, t] : sd)
    if (n.find("num_batches_tracked") == std::string::npos) old_style.emplace_back(n, t);
  EXPECT_EQ(old_style.size(), 102u);
  models::ResNet other(18, 10, 32, gen);
  EXPECT_NO_THROW(other.load_state_dict(old_style));

  models::ResNet r50(50, 10, 64, gen);
  expect_names(r50, {"layer1.0.shortcut.0.weight", "layer1.0.conv3.weight", "layer1.2.bn3.running_mean",
                     "layer3.5.conv2.weight", "layer4.0.shortcut.1.weight", "linear.weight"},
               "resnet50");
  expect_no_names(r50, {"layer1.1.shortcut.0.weight", "maxpool.weight"}, "resnet50");
  EXPECT_EQ(check_batch_norms(r50, "resnet50"), 1 + 16 * 3 + 4);
  EXPECT_EQ(r50.state_dict().size(), size_t(53 * 5 + 53 + 2));
  EXPECT_EQ(r50.feature_dim(), 2048);

  models::WideResNet wrn(40, 2, 10, 0.3, gen);
  expect_names(wrn, {"conv1.weight", "block1.layer.0.bn1.weight", "block1.layer.0.conv1.weight",
                     "block1.layer.0.convShortcut.weight", "block1.layer.5.bn2.running_var",
                     "block2.layer.0.convShortcut.weight", "block3.layer.5.conv2.weight", "bn1.running_mean",
                     "fc.weight", "fc.bias"},
               "wrn40_2");
  expect_no_names(wrn, {"block1.layer.1.convShortcut.weight", "block1.layer.0.conv1.bias"}, "wrn40_2");
  EXPECT_EQ(check_batch_norms(wrn, "wrn40_2"), 18 * 2 + 1);
  {
    const nn::NamedTensors w = wrn.state_dict();
    EXPECT_EQ(w[0].first, "conv1.weight");
    EXPECT_EQ(w[1].first, "block1.layer.0.bn1.weight");
    EXPECT_EQ(w.back().first, "fc.bias");
    // conv1, 18 x (2 BN x 5 + 2 conv) + 3 shortcuts, bn1 x 5, fc x 2.
    EXPECT_EQ(w.size(), size_t(1 + 18 * 12 + 3 + 5 + 2));
    // fc bias is initialised to 0 as in the reference.
    for (float v : wrn.head().bias.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  }

  models::DenseNet dn(100, 10, 12, 0.5, gen);
  expect_names(dn, {"conv1.weight", "block1.layer.0.bn1.weight", "block1.layer.0.conv1.weight",
                    "block1.layer.15.conv2.weight", "block1.layer.15.bn2.running_mean", "trans1.bn1.weight",
                    "trans1.conv1.weight", "block2.layer.3.bn1.bias", "trans2.conv1.weight",
                    "block3.layer.15.conv2.weight", "bn1.num_batches_tracked", "fc.weight", "fc.bias"},
               "densenet100");
  expect_no_names(dn, {"block1.layer.16.conv1.weight", "trans3.conv1.weight"}, "densenet100");
  EXPECT_EQ(check_batch_norms(dn, "densenet100"), 48 * 2 + 2 + 1);
  EXPECT_EQ(dn.state_dict().size(), size_t(1 + 48 * 12 + 2 * 6 + 5 + 2));
  EXPECT_EQ(dn.feature_dim(), 342);
  const Tensor w_trans1 = dn.state_dict()[size_t(1 + 16 * 12 + 5)].second;  // trans1.conv1.weight
  EXPECT_EQ(w_trans1.shape(), (Shape{108, 216, 1, 1}));
}

// ---------------------------------------------------------------------------------------
// Shapes of every stage, forward_from, input gradients (both devices).
// ---------------------------------------------------------------------------------------
struct ArchShapes {
  std::string arch;
  int input;
  std::vector<Shape> stages;  // per image (without N)
};

std::vector<ArchShapes> arch_shapes() {
  return {
      {"resnet18", 32, {{64, 32, 32}, {64, 32, 32}, {128, 16, 16}, {256, 8, 8}, {512, 4, 4}}},
      {"resnet18", 64, {{64, 32, 32}, {64, 32, 32}, {128, 16, 16}, {256, 8, 8}, {512, 4, 4}}},
      {"resnet34", 32, {{64, 32, 32}, {64, 32, 32}, {128, 16, 16}, {256, 8, 8}, {512, 4, 4}}},
      {"resnet50", 32, {{64, 32, 32}, {256, 32, 32}, {512, 16, 16}, {1024, 8, 8}, {2048, 4, 4}}},
      {"resnet50", 64, {{64, 32, 32}, {256, 32, 32}, {512, 16, 16}, {1024, 8, 8}, {2048, 4, 4}}},
      {"wrn40_2", 32, {{16, 32, 32}, {32, 32, 32}, {64, 16, 16}, {128, 8, 8}}},
      {"wrn40_2", 64, {{16, 64, 64}, {32, 64, 64}, {64, 32, 32}, {128, 16, 16}}},
      {"densenet100", 32, {{24, 32, 32}, {108, 16, 16}, {150, 8, 8}, {342, 8, 8}}},
      {"densenet100", 64, {{24, 64, 64}, {108, 32, 32}, {150, 16, 16}, {342, 16, 16}}},
      {"resnet20", 32, {{16, 32, 32}, {16, 32, 32}, {32, 16, 16}, {64, 8, 8}}},
      // ImageNet stem: 7x7 stride 2 (32 -> 16) and 3x3 max-pool stride 2 (16 -> 8), any input size.
      {"resnet18_imagenet", 32, {{64, 8, 8}, {64, 8, 8}, {128, 4, 4}, {256, 2, 2}, {512, 1, 1}}},
      {"resnet18_imagenet", 64, {{64, 16, 16}, {64, 16, 16}, {128, 8, 8}, {256, 4, 4}, {512, 2, 2}}},
      {"resnet50_imagenet", 32, {{64, 8, 8}, {256, 8, 8}, {512, 4, 4}, {1024, 2, 2}, {2048, 1, 1}}},
  };
}

Shape with_batch(int64_t n, const Shape& s) {
  Shape out{n};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

// Repeating a computation with the same kernels on the same data: bitwise equal on the CPU;
// on CUDA within kF32, so that the check does not rest on cuDNN/cuBLAS kernel determinism.
oodkit::testing::Tol repeat_tol(Device d) { return d.is_cuda() ? kF32 : oodkit::testing::Tol{0.0, 0.0}; }

bool all_equal(const Tensor& a, const Tensor& b) {
  return bool(oodkit::testing::all_close(a, b, repeat_tol(a.device())));
}

class ModelsTest : public oodkit::testing::DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ModelsTest);

TEST_P(ModelsTest, StageShapesAndForwardFromEveryStage) {
  const int64_t n = 2, k = 10;
  for (const ArchShapes& a : arch_shapes()) {
    SCOPED_TRACE(a.arch + " input " + std::to_string(a.input));
    auto net = models::make_classifier(a.arch, k, a.input, gen);
    net->to(device());
    net->eval();
    ASSERT_EQ(size_t(net->num_stages()), a.stages.size());
    autograd::NoGradGuard ng;
    const Tensor x = Tensor::randn({n, 3, a.input, a.input}, gen, DType::F32, device());
    const models::ClassifierOutput full = net->forward_all(x);
    ASSERT_EQ(full.stages.size(), a.stages.size());
    for (size_t s = 0; s < a.stages.size(); ++s) EXPECT_EQ(full.stages[s].shape(), with_batch(n, a.stages[s])) << s;
    const Shape& last = a.stages.back();
    EXPECT_EQ(full.features.shape(), with_batch(n, last));
    EXPECT_TRUE(full.features.same_storage(full.stages.back()));
    EXPECT_EQ(full.penultimate.shape(), (Shape{n, last[0]}));
    EXPECT_EQ(full.logits.shape(), (Shape{n, k}));
    EXPECT_EQ(net->feature_dim(), last[0]);
    EXPECT_EQ(net->num_classes(), k);
    // F is after the last ReLU: non-negative.
    for (float v : full.features.cpu().to_vector<float>()) ASSERT_GE(v, 0.0f);
    for (int s = 0; s < net->num_stages(); ++s) {
      const models::ClassifierOutput tail = net->forward_from(s, full.stages[size_t(s)]);
      EXPECT_EQ(tail.stages.size(), size_t(net->num_stages() - 1 - s));
      EXPECT_ALL_CLOSE(tail.logits, full.logits, repeat_tol(device())) << "after stage " << s;
      EXPECT_ALL_CLOSE(tail.penultimate, full.penultimate, repeat_tol(device()));
    }
    EXPECT_THROW(net->forward_from(net->num_stages(), x), Error);
    EXPECT_THROW(net->forward_from(-2, x), Error);
    EXPECT_THROW(net->forward_from(0, x), Error);  // 3 channels where the stem output is expected
    EXPECT_THROW(net->forward_all(Tensor::randn({n, 1, a.input, a.input}, gen, DType::F32, device())), Error);
  }
}

// OOD detectors need input gradients through an eval network; training needs every parameter's.
TEST_P(ModelsTest, BackwardReachesEveryParameterAndTheInput) {
  const int64_t n = 2, k = 10;
  for (const std::string arch : {"resnet18", "resnet50", "wrn40_2", "densenet100"}) {
    SCOPED_TRACE(arch);
    auto net = models::make_classifier(arch, k, 32, gen);
    net->to(device());
    const Tensor labels = Tensor::from_vector<int64_t>({3, 7}, {n}).to(device());
    {  // training: loss -> every parameter
      net->train();
      const Tensor x = Tensor::randn({n, 3, 32, 32}, gen, DType::F32, device());
      ops::cross_entropy(net->forward(x), labels).backward();
      for (const auto& [name, p] : net->named_parameters()) {
        const Tensor g = p.grad();
        ASSERT_TRUE(g.defined()) << name;
        ASSERT_EQ(g.shape(), p.shape()) << name;
        bool finite = true, nonzero = false;
        for (float v : g.cpu().to_vector<float>()) {
          finite = finite && std::isfinite(v);
          nonzero = nonzero || v != 0.0f;
        }
        EXPECT_TRUE(finite) << name;
        EXPECT_TRUE(nonzero) << name << ": gradient is all zeros";
      }
      net->zero_grad();
    }
    {  // eval: the input receives a gradient
      net->eval();
      Tensor x = Tensor::randn({n, 3, 32, 32}, gen, DType::F32, device());
      x.set_requires_grad(true);
      const models::ClassifierOutput out = net->forward_all(x);
      ops::sum(out.logits).backward();
      ASSERT_TRUE(x.grad().defined());
      double norm = 0;
      for (float v : x.grad().cpu().to_vector<float>()) {
        ASSERT_TRUE(std::isfinite(v));
        norm += double(v) * v;
      }
      EXPECT_GT(norm, 0.0);
      net->zero_grad();
    }
  }
}

// The 64x64 stem is the 32x32 stem followed by a 2x2 max-pool; the rest is shared.
TEST(Models, SixtyFourPixelStemAddsTwoByTwoMaxPool) {
  Generator gen(6);
  models::ResNet r32(18, 10, 32, gen), r64(18, 10, 64, gen);
  r64.load_state_dict(r32.state_dict());
  r32.eval();
  r64.eval();
  autograd::NoGradGuard ng;
  const Tensor x = Tensor::randn({2, 3, 64, 64}, gen);
  const models::ClassifierOutput a = r32.forward_all(x), b = r64.forward_all(x);
  EXPECT_EQ(a.stages[0].shape(), (Shape{2, 64, 64, 64}));
  EXPECT_ALL_CLOSE(b.stages[0], ops::max_pool2d(a.stages[0], ops::Pool2dOptions::square(2, 2)),
                   (oodkit::testing::Tol{0.0, 0.0}));
  EXPECT_ALL_CLOSE(r32.forward_from(0, b.stages[0]).logits, b.logits, (oodkit::testing::Tol{0.0, 0.0}));
}

// xternalz's block adds the identity when in == out, else convShortcut applied to the
// pre-activated input relu(bn1(x)). With conv2 = 0 the block output is the shortcut alone.
TEST(ModelBlocks, WideBasicBlockShortcut) {
  Generator gen(18);
  autograd::NoGradGuard ng;
  for (const auto& [in, out, stride] : std::vector<std::tuple<int64_t, int64_t, int>>{{4, 6, 2}, {4, 4, 1}}) {
    models::WideBasicBlock block(in, out, stride, 0.3, std::make_shared<Generator>(1), gen);
    block.eval();
    block.bn1->running_mean = Tensor::randn({in}, gen);
    block.bn1->running_var = Tensor::uniform({in}, 0.5, 2.0, gen);
    block.bn1->weight.copy_(Tensor::uniform({in}, 0.5, 1.5, gen));
    block.bn1->bias.copy_(Tensor::randn({in}, gen));
    block.conv2->weight.fill_(0.0);
    const Tensor x = Tensor::randn({2, in, 6, 6}, gen);
    const Tensor y = block.forward(x);
    if (in == out) {
      EXPECT_ALL_CLOSE(y, x, (oodkit::testing::Tol{0.0, 0.0}));
    } else {
      const Tensor pre = ops::relu(block.bn1->forward(x));
      EXPECT_ALL_CLOSE(y, block.conv_shortcut->forward(pre), (oodkit::testing::Tol{0.0, 0.0}));
      EXPECT_FALSE(oodkit::testing::all_close(y, block.conv_shortcut->forward(x), kF32));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Train vs eval.
// ---------------------------------------------------------------------------------------
std::vector<Tensor> buffer_copies(const nn::Module& m) {
  std::vector<Tensor> out;
  for (const auto& [n, b] : m.named_buffers()) out.push_back(b.cpu().clone());
  return out;
}

TEST_P(ModelsTest, TrainAndEvalDifferOnlyThroughBatchNormAndDropout) {
  autograd::NoGradGuard ng;
  const Tensor x = Tensor::randn({4, 3, 32, 32}, gen, DType::F32, device());
  for (const std::string arch : {"resnet18", "densenet100", "wrn40_2"}) {
    SCOPED_TRACE(arch);
    Generator g(5);
    auto net = models::make_classifier(arch, 10, 32, g);
    net->to(device());
    // Eval: deterministic and leaves every buffer as it was.
    net->eval();
    const std::vector<Tensor> before = buffer_copies(*net);
    const Tensor e1 = net->forward(x), e2 = net->forward(x);
    EXPECT_TRUE(all_equal(e1, e2));
    const std::vector<Tensor> after = buffer_copies(*net);
    for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(all_equal(after[i], before[i])) << i;
    // Train: BN uses batch statistics (so the output differs from eval) and updates the buffers.
    net->train();
    const Tensor t1 = net->forward(x);
    EXPECT_FALSE(all_equal(t1, e1));
    for (const auto& [name, b] : net->named_buffers())
      if (name.find("num_batches_tracked") != std::string::npos) EXPECT_EQ(b.item(), 1.0) << name;
    const nn::NamedTensors buffers = net->named_buffers();
    for (size_t i = 0; i < buffers.size(); ++i)
      if (buffers[i].first.find("running_mean") != std::string::npos)
        EXPECT_FALSE(all_equal(buffers[i].second, before[i])) << buffers[i].first;
    // Without dropout a second training pass on the same batch gives the same output.
    const Tensor t2 = net->forward(x);
    if (arch == "wrn40_2") EXPECT_FALSE(all_equal(t1, t2)) << "dropout masks must differ between passes";
    else EXPECT_TRUE(all_equal(t1, t2));
  }
}

TEST_P(ModelsTest, WideResNetDropoutActsOnlyInTraining) {
  autograd::NoGradGuard ng;
  Generator g1(8), g2(9);
  models::WideResNet with(16, 2, 10, 0.3, g1), without(16, 2, 10, 0.0, g2);
  without.load_state_dict(with.state_dict());
  with.to(device());
  without.to(device());
  const Tensor x = Tensor::randn({2, 3, 32, 32}, gen, DType::F32, device());
  with.eval();
  without.eval();
  EXPECT_TRUE(all_equal(with.forward(x), without.forward(x)));
  with.train();
  without.train();
  EXPECT_FALSE(all_equal(with.forward(x), without.forward(x)));
  // The masks come from the network's own generator: reseeding reproduces them.
  with.dropout_generator().manual_seed(77);
  const Tensor a = with.forward(x);
  with.dropout_generator().manual_seed(77);
  EXPECT_TRUE(all_equal(with.forward(x), a));
}

// ---------------------------------------------------------------------------------------
// Heatmap decoder.
// ---------------------------------------------------------------------------------------
int64_t expected_decoder_params(const models::DecoderConfig& c) {
  int64_t total = linear(c.feature_dim + c.num_classes, c.fc_channels);
  int64_t in = c.fc_channels;
  for (int64_t out : c.channels) {
    total += in * out * 16 + bn(out);  // ConvT k4 without bias, BN
    in = out;
  }
  return total + in * 3;  // final 1x1 ConvT without bias
}

TEST(HeatmapDecoder, PresetsNamesAndParameterCounts) {
  using models::DecoderConfig;
  const DecoderConfig r18c10 = DecoderConfig::for_classifier("resnet18", 512, 10, 32);
  EXPECT_EQ(r18c10.fc_channels, 100);
  EXPECT_EQ(r18c10.channels, (std::vector<int64_t>{512, 256, 128, 64}));
  EXPECT_EQ(r18c10.output_size(), 32);
  const DecoderConfig r18c100 = DecoderConfig::for_classifier("resnet18", 512, 100, 32);
  EXPECT_EQ(r18c100.fc_channels, 512);
  const DecoderConfig wrn = DecoderConfig::for_classifier("wrn40_2", 128, 10, 32);
  EXPECT_EQ(wrn.fc_channels, 128);
  EXPECT_EQ(wrn.channels, (std::vector<int64_t>{256, 128, 64, 32}));
  const DecoderConfig tin = DecoderConfig::for_classifier("resnet50", 2048, 200, 64);
  EXPECT_EQ(tin.fc_channels, 512);
  EXPECT_EQ(tin.channels, (std::vector<int64_t>{2048, 1024, 512, 256, 128}));
  EXPECT_EQ(tin.output_size(), 64);
  EXPECT_THROW(DecoderConfig::for_classifier("resnet18", 512, 10, 48), Error);

  Generator gen(4);
  models::HeatmapDecoder d(r18c10, gen);
  // Written out: fc 522*100+100, ConvT 100*512*16, 512*256*16, 256*128*16, 128*64*16, 1x1 64*3,
  // BN 2*(512+256+128+64).
  EXPECT_EQ(d.num_parameters(), 522 * 100 + 100 + 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 +
                                    128 * 64 * 16 + 64 * 3 + 2 * (512 + 256 + 128 + 64));
  EXPECT_EQ(d.num_parameters(), expected_decoder_params(r18c10));
  EXPECT_EQ(expected_decoder_params(r18c10), 3626124);  // PyTorch, the official generator classes
  EXPECT_EQ(expected_decoder_params(r18c100), 7262784);
  EXPECT_EQ(expected_decoder_params(wrn), 1231264);
  EXPECT_EQ(expected_decoder_params(tin), 62501504);
  EXPECT_EQ(models::HeatmapDecoder(wrn, gen).num_parameters(), expected_decoder_params(wrn));
  expect_names(d, {"fc.weight", "fc.bias", "main.0.weight", "main.1.weight", "main.1.running_mean",
                   "main.1.num_batches_tracked", "main.3.weight", "main.4.bias", "main.9.weight", "main.10.running_var",
                   "main.12.weight"},
               "decoder");
  expect_no_names(d, {"main.0.bias", "main.2.weight", "main.12.bias", "main.13.weight"}, "decoder");
  EXPECT_EQ(check_batch_norms(d, "decoder"), 4);
  EXPECT_EQ(d.state_dict().size(), size_t(2 + 5 + 4 * 5));
  for (const auto& [name, t] : d.state_dict()) {
    if (name == "main.0.weight") EXPECT_EQ(t.shape(), (Shape{100, 512, 4, 4}));
    if (name == "main.12.weight") EXPECT_EQ(t.shape(), (Shape{64, 3, 1, 1}));
  }
  models::DecoderConfig bad = r18c10;
  bad.channels.clear();
  EXPECT_THROW(models::HeatmapDecoder(bad, gen), Error);
}

class HeatmapDecoderTest : public oodkit::testing::DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(HeatmapDecoderTest);

Tensor random_onehot(int64_t n, int64_t k, Generator& gen, Device device) {
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(gen.randint(k));
  return ops::one_hot(Tensor::from_vector(labels, {n}), k).to(device);
}

TEST_P(HeatmapDecoderTest, OutputShapeRangeAndGradientFlow) {
  const int64_t n = 2;
  for (const auto& [arch, dim, k] : std::vector<std::tuple<std::string, int64_t, int64_t>>{
           {"resnet18", 512, 10}, {"wrn40_2", 128, 100}}) {
    SCOPED_TRACE(arch);
    models::HeatmapDecoder d(models::DecoderConfig::for_classifier(arch, dim, k, 32), gen);
    d.to(device());
    Tensor z = Tensor::uniform({n, dim}, 0.0, 1.0, gen, DType::F32, device());
    Tensor onehot = random_onehot(n, k, gen, device());
    z.set_requires_grad(true);
    onehot.set_requires_grad(true);
    const Tensor h = d.forward(z, onehot);
    ASSERT_EQ(h.shape(), (Shape{n, 3, 32, 32}));
    for (float v : h.cpu().to_vector<float>()) {
      ASSERT_TRUE(v >= -1.0f && v <= 1.0f) << v;
    }
    // The weighted loss of docs/methods.md against a random target in [-1, 1].
    const Tensor target = Tensor::uniform({n, 3, 32, 32}, -1.0, 1.0, gen, DType::F32, device());
    std::vector<float> w = target.cpu().to_vector<float>();
    for (float& v : w) v = 1.0f + 5.0f * std::fabs(v);
    ops::weighted_mse(h, target, Tensor::from_vector(w, target.shape()).to(device())).backward();
    for (const Tensor* t : {&z, &onehot}) {
      ASSERT_TRUE(t->grad().defined());
      double norm = 0;
      for (float v : t->grad().cpu().to_vector<float>()) {
        ASSERT_TRUE(std::isfinite(v));
        norm += double(v) * v;
      }
      EXPECT_GT(norm, 0.0);
    }
    for (const auto& [name, p] : d.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      bool finite = true, nonzero = false;
      for (float v : p.grad().cpu().to_vector<float>()) {
        finite = finite && std::isfinite(v);
        nonzero = nonzero || v != 0.0f;
      }
      EXPECT_TRUE(finite) << name;
      EXPECT_TRUE(nonzero) << name;
    }
    EXPECT_THROW(d.forward(z, random_onehot(n, k + 1, gen, device())), Error);
    EXPECT_THROW(d.forward(z.narrow(0, 1), onehot), Error);
  }
}

TEST_P(HeatmapDecoderTest, SixtyFourPixelVariant) {
  models::HeatmapDecoder d(models::DecoderConfig::for_classifier("resnet50", 2048, 200, 64), gen);
  EXPECT_EQ(d.num_parameters(), expected_decoder_params(d.config()));
  d.to(device());
  d.eval();
  autograd::NoGradGuard ng;
  const Tensor z = Tensor::uniform({2, 2048}, 0.0, 1.0, gen, DType::F32, device());
  const Tensor h = d.forward(z, random_onehot(2, 200, gen, device()));
  ASSERT_EQ(h.shape(), (Shape{2, 3, 64, 64}));
  for (float v : h.cpu().to_vector<float>()) ASSERT_TRUE(v >= -1.0f && v <= 1.0f) << v;
}

// ---------------------------------------------------------------------------------------
// float64 gradchecks of single blocks. The block is built normally (float32), then its
// parameters and buffers are swapped for float64 tensors: the blocks expose their layers,
// and nn layers their tensors, so the check assigns each gradcheck input to its slot before
// every forward (Module::load_state_dict would convert float64 back to the float32 slots).
// ---------------------------------------------------------------------------------------
struct F64Block {
  std::vector<Tensor*> slots;  // parameters in gradcheck order (after the block input)
  std::vector<double> means;   // mean of each slot's random starting value

  // Any layer with `weight` and an optional `bias` (Conv2d, ConvTranspose2d, Linear); null is skipped.
  template <class Layer>
  void layer(Layer* l) {
    if (!l) return;
    add(&l->weight, 0.0);
    if (l->bias.defined()) add(&l->bias, 0.0);
  }
  template <class Layer>
  void layer(const std::shared_ptr<Layer>& l) {
    layer(l.get());
  }
  // Batch norm with float64 buffers; random running statistics make eval mode non-trivial.
  void batch_norm(const std::shared_ptr<nn::BatchNorm>& b, Generator& gen) {
    if (!b) return;
    b->running_mean = Tensor::randn(b->running_mean.shape(), gen, DType::F64);
    b->running_var = Tensor::uniform(b->running_var.shape(), 0.5, 1.5, gen, DType::F64);
    add(&b->weight, 1.0);
    add(&b->bias, 0.0);
  }
  void add(Tensor* slot, double mean) {
    slots.push_back(slot);
    means.push_back(mean);
  }
  // Inputs for gradcheck: x, then each slot's random float64 value ~ N(mean, 0.5^2).
  std::vector<Tensor> inputs(const Tensor& x, Generator& gen) const {
    std::vector<Tensor> in{x};
    for (size_t i = 0; i < slots.size(); ++i) {
      Tensor v = Tensor::randn(slots[i]->shape(), gen, DType::F64);
      double* p = v.data<double>();
      for (int64_t j = 0; j < v.numel(); ++j) p[j] = means[i] + 0.5 * p[j];
      v.set_requires_grad(true);
      in.push_back(v);
    }
    return in;
  }
  // Puts xs[1..slots.size()] into the slots (xs[0] is the block input; later entries are ignored).
  void assign(const std::vector<Tensor>& xs) const {
    for (size_t i = 0; i < slots.size(); ++i) *slots[i] = xs[i + 1];
  }
};

TEST(ModelBlocks, BasicBlockGradcheck) {
  Generator gen(11);
  models::BasicBlock block(2, 3, 2, gen);  // stride 2, 2 -> 3 channels: projection shortcut
  ASSERT_TRUE(block.shortcut_conv && block.shortcut_bn);
  block.train();
  F64Block f;
  f.layer(block.conv1);
  f.batch_norm(block.bn1, gen);
  f.layer(block.conv2);
  f.batch_norm(block.bn2, gen);
  f.layer(block.shortcut_conv);
  f.batch_norm(block.shortcut_bn, gen);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& xs) {
        f.assign(xs);
        return block.forward(xs[0]);
      },
      f.inputs(oodkit::testing::randn_f64({2, 2, 5, 5}, gen), gen));
}

TEST(ModelBlocks, BasicBlockIdentityShortcutGradcheck) {
  Generator gen(12);
  models::BasicBlock block(3, 3, 1, gen);
  ASSERT_FALSE(block.shortcut_conv);
  block.eval();
  F64Block f;
  f.layer(block.conv1);
  f.batch_norm(block.bn1, gen);
  f.layer(block.conv2);
  f.batch_norm(block.bn2, gen);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& xs) {
        f.assign(xs);
        return block.forward(xs[0]);
      },
      f.inputs(oodkit::testing::randn_f64({2, 3, 4, 4}, gen), gen));
}

TEST(ModelBlocks, BottleneckGradcheck) {
  Generator gen(13);
  models::Bottleneck block(3, 2, 2, gen);  // 3 -> 8 channels, stride 2: projection shortcut
  ASSERT_TRUE(block.shortcut_conv);
  block.train();
  F64Block f;
  f.layer(block.conv1);
  f.batch_norm(block.bn1, gen);
  f.layer(block.conv2);
  f.batch_norm(block.bn2, gen);
  f.layer(block.conv3);
  f.batch_norm(block.bn3, gen);
  f.layer(block.shortcut_conv);
  f.batch_norm(block.shortcut_bn, gen);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& xs) {
        f.assign(xs);
        return block.forward(xs[0]);
      },
      f.inputs(oodkit::testing::randn_f64({2, 3, 5, 5}, gen), gen));
}

TEST(ModelBlocks, WideBasicBlockGradcheckInEval) {
  Generator gen(14);
  for (const auto& [in, out, stride] : std::vector<std::tuple<int64_t, int64_t, int>>{{2, 3, 2}, {3, 3, 1}}) {
    models::WideBasicBlock block(in, out, stride, 0.3, std::make_shared<Generator>(1), gen);
    EXPECT_EQ(bool(block.conv_shortcut), in != out);
    block.eval();  // dropout off, BN with the running statistics
    F64Block f;
    f.batch_norm(block.bn1, gen);
    f.layer(block.conv1);
    f.batch_norm(block.bn2, gen);
    f.layer(block.conv2);
    f.layer(block.conv_shortcut);
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& xs) {
          f.assign(xs);
          return block.forward(xs[0]);
        },
        f.inputs(oodkit::testing::randn_f64({2, in, 5, 5}, gen), gen));
  }
}

TEST(ModelBlocks, DenseLayerAndTransitionGradcheck) {
  Generator gen(15);
  models::DenseLayer layer(3, 2, gen);  // 3 -> 3 + 2 channels, bottleneck width 8
  layer.train();
  F64Block f;
  f.batch_norm(layer.bn1, gen);
  f.layer(layer.conv1);
  f.batch_norm(layer.bn2, gen);
  f.layer(layer.conv2);
  const Tensor x = oodkit::testing::randn_f64({2, 3, 4, 4}, gen);
  {
    autograd::NoGradGuard ng;
    f.assign(f.inputs(x, gen));
    const Tensor y = layer.forward(x);
    ASSERT_EQ(y.shape(), (Shape{2, 5, 4, 4}));
    // The first channels are the input itself.
    EXPECT_ALL_CLOSE(ops::slice_channels(y, 0, 3), x, (oodkit::testing::Tol{0.0, 0.0}));
  }
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& xs) {
        f.assign(xs);
        return layer.forward(xs[0]);
      },
      f.inputs(x, gen));

  models::DenseTransition trans(4, 2, gen);
  trans.train();
  F64Block t;
  t.batch_norm(trans.bn1, gen);
  t.layer(trans.conv1);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& xs) {
        t.assign(xs);
        return trans.forward(xs[0]);
      },
      t.inputs(oodkit::testing::randn_f64({2, 4, 4, 4}, gen), gen));
}

TEST(ModelBlocks, DecoderGradcheck) {
  Generator gen(16);
  models::DecoderConfig c;
  c.feature_dim = 3;
  c.num_classes = 2;
  c.fc_channels = 2;
  c.channels = {3, 2};  // 1x1 -> 4x4 -> 8x8
  models::HeatmapDecoder d(c, gen);
  d.train();
  F64Block f;
  f.layer(&d.fc());
  for (size_t i = 0; i < d.bns().size(); ++i) {
    f.layer(d.convs()[i]);
    f.batch_norm(d.bns()[i], gen);
  }
  f.layer(d.convs().back());
  // Inputs: z, then the parameters; the one-hot input is a fixed float64 tensor with grad.
  const Tensor onehot = Tensor::from_vector<double>({0, 1, 1, 0}, {2, 2}).set_requires_grad(true);
  std::vector<Tensor> in = f.inputs(oodkit::testing::randn_f64({2, 3}, gen), gen);
  in.push_back(onehot);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& xs) {
        f.assign(xs);
        return d.forward(xs[0], xs.back());
      },
      in);
}

// ---------------------------------------------------------------------------------------
// Registry.
// ---------------------------------------------------------------------------------------
TEST(Models, RegistryBuildsEveryNameAndRejectsUnknownOnes) {
  Generator gen(17);
  for (const std::string& name : models::classifier_names()) {
    auto net = models::make_classifier(name, 7, 32, gen);
    ASSERT_TRUE(net) << name;
    EXPECT_EQ(net->num_classes(), 7) << name;
  }
  try {
    models::make_classifier("resnet19", 10, 32, gen);
    FAIL() << "no error for an unknown architecture";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("resnet19"), std::string::npos) << what;
    for (const std::string& name : models::classifier_names()) EXPECT_NE(what.find(name), std::string::npos) << what;
  }
  EXPECT_THROW(models::make_classifier("resnet18", 10, 48, gen), Error);
  EXPECT_THROW(models::make_classifier("resnet18", 0, 32, gen), Error);
}

}  // namespace
