// PyTorch names -> oodkit's (models/checkpoint_names.h) and the ImageNet-stem ResNets.
// The rules on hand-made names with hand-written expectations; then torchvision itself as the
// reference: tests/fixtures/torchvision/ (make_fixtures.py there, torch 2.15 + torchvision 0.29.2)
// lists the state-dict names and shapes of torchvision's resnet18 (7x7 stem), resnet18 with the
// CIFAR 3x3 stem and nn.DataParallel(resnet50), with PyTorch's float64 logits for weights that both
// sides generate from those names (tests/weight_rule.h); and a real torch.save file of a narrow
// torchvision ResNet with a "module." prefix, with its logits. Logits must agree to 1e-9 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "framework/safetensors.h"
#include "framework/torch_file.h"
#include "models/checkpoint_names.h"
#include "models/registry.h"
#include "models/resnet.h"
#include "tests/testing.h"
#include "tests/weight_rule.h"

namespace oodkit {
namespace {

std::string fixture(const std::string& name) {
  return std::string(OODKIT_SOURCE_DIR) + "/tests/fixtures/torchvision/" + name;
}

// Names -> zero tensors of the given shapes (plain: [1]).
NamedTensors shaped(const std::vector<std::pair<std::string, Shape>>& entries) {
  NamedTensors out;
  for (const auto& [n, s] : entries) out.emplace_back(n, Tensor::zeros(s));
  return out;
}
NamedTensors plain(const std::vector<std::string>& names) {
  NamedTensors out;
  for (const std::string& n : names) out.emplace_back(n, Tensor::zeros({1}));
  return out;
}
std::vector<std::string> names_of(const NamedTensors& s) {
  std::vector<std::string> out;
  for (const auto& e : s) out.push_back(e.first);
  return out;
}

TEST(CheckpointNames, PrefixesRemovedOnlyWhenEveryNameHasThem) {
  const auto all = models::map_checkpoint_names(plain({"module.conv1.weight", "module.linear.bias"}), "resnet20");
  EXPECT_EQ(names_of(all.state), (std::vector<std::string>{"conv1.weight", "linear.bias"}));
  EXPECT_EQ(all.notes, (std::vector<std::string>{"prefix 'module.' removed"}));
  EXPECT_EQ(all.arch, "resnet20");
  // DDP around a wrapper: both, in the order they appear.
  const auto both = models::map_checkpoint_names(plain({"module.model.conv1.weight", "module.model.fc.bias"}), "wrn40_2");
  EXPECT_EQ(names_of(both.state), (std::vector<std::string>{"conv1.weight", "fc.bias"}));  // no fc rename for a WRN
  EXPECT_EQ(both.notes.size(), 2u);
  // One name without it: nothing changes.
  const NamedTensors mixed = plain({"module.conv1.weight", "linear.bias"});
  const auto kept = models::map_checkpoint_names(mixed, "resnet20");
  EXPECT_EQ(names_of(kept.state), names_of(mixed));
  EXPECT_TRUE(kept.notes.empty());
  // A name that merely contains the word.
  EXPECT_EQ(names_of(models::map_checkpoint_names(plain({"modules.x", "module.y"}), "resnet20").state),
            (std::vector<std::string>{"modules.x", "module.y"}));
}

TEST(CheckpointNames, TorchvisionResNetNames) {
  const NamedTensors tv = plain({"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                                 "layer2.0.downsample.1.running_var", "layer4.0.downsample.1.num_batches_tracked",
                                 "fc.weight", "fc.bias"});
  const auto m = models::map_checkpoint_names(tv, "resnet34");
  EXPECT_EQ(names_of(m.state),
            (std::vector<std::string>{"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.shortcut.0.weight",
                                      "layer2.0.shortcut.1.running_var", "layer4.0.shortcut.1.num_batches_tracked",
                                      "linear.weight", "linear.bias"}));
  EXPECT_EQ(m.arch, "resnet34");  // conv1 is not 7x7 here
  EXPECT_EQ(m.notes, (std::vector<std::string>{"torchvision names (5 renamed: downsample -> shortcut, fc -> linear)"}));
  // Other architectures keep torchvision-looking names; a target already present is not overwritten.
  EXPECT_EQ(names_of(models::map_checkpoint_names(tv, "densenet100").state), names_of(tv));
  EXPECT_EQ(names_of(models::map_checkpoint_names(plain({"fc.bias", "linear.bias"}), "resnet18").state),
            (std::vector<std::string>{"fc.bias", "linear.bias"}));
}

TEST(CheckpointNames, SevenBySevenStemPicksTheImageNetVariant) {
  const NamedTensors seven = shaped({{"conv1.weight", {64, 3, 7, 7}}, {"fc.bias", {10}}});
  for (const std::string depth : {"18", "34", "50"}) {
    const auto m = models::map_checkpoint_names(seven, "resnet" + depth);
    EXPECT_EQ(m.arch, "resnet" + depth + "_imagenet");
    EXPECT_EQ(m.notes.back(), "7x7 stem: resnet" + depth + "_imagenet");
  }
  const NamedTensors three = shaped({{"conv1.weight", {64, 3, 3, 3}}});
  EXPECT_EQ(models::map_checkpoint_names(three, "resnet18").arch, "resnet18");
  // An explicit variant is kept, whatever the checkpoint (the mismatch is then reported by the load).
  EXPECT_EQ(models::map_checkpoint_names(three, "resnet50_imagenet").arch, "resnet50_imagenet");
  EXPECT_EQ(models::map_checkpoint_names(seven, "resnet20").arch, "resnet20");
}

TEST(CheckpointNames, MismatchSummary) {
  // What the model wants vs what the checkpoint has: a missing head, one unexpected module, a
  // wrong-shape stem, an absent BN counter (optional).
  const NamedTensors model = shaped({{"conv1.weight", {64, 3, 3, 3}},
                                    {"bn1.weight", {64}},
                                    {"bn1.num_batches_tracked", {}},
                                    {"layer1.0.conv1.weight", {64, 64, 3, 3}},
                                    {"linear.weight", {10, 512}},
                                    {"linear.bias", {10}}});
  const NamedTensors ckpt = shaped({{"conv1.weight", {64, 3, 7, 7}},
                                   {"bn1.weight", {64}},
                                   {"layer1.0.conv1.weight", {64, 64, 3, 3}},
                                   {"head.weight", {10, 512}},
                                   {"head.bias", {10}}});
  EXPECT_EQ(models::describe_mismatch(ckpt, model),
            "2 of 5 names fit; missing 2: linear.{weight,bias}; unexpected 2: head.{weight,bias}; wrong shape 1: "
            "conv1.weight (checkpoint [64, 3, 7, 7], model [64, 3, 3, 3]); its names look like a ResNet of 1 "
            "stage of 1 basic block, 7x7 stem, which no oodkit architecture has");
  EXPECT_EQ(models::describe_mismatch(model, model), "");
  // Many modules: the first four groups, then a count of the names left.
  std::vector<std::string> many;
  for (int i = 0; i < 6; ++i) many.push_back("block" + std::to_string(i) + ".w");
  EXPECT_EQ(models::describe_mismatch(plain(many), plain(std::vector<std::string>{})),
            "0 of 6 names fit; unexpected 6: block0.w, block1.w, block2.w, block3.w and 2 more");
}

TEST(CheckpointNames, MismatchSummaryNamesTheResNetItLooksLike) {
  // A real torchvision ResNet-50 state dict (names from the fixture) against ResNet-18.
  std::map<std::string, std::string> meta;
  load_safetensors(fixture("tv_resnet50_module.safetensors"), &meta);
  NamedTensors tv;
  for (const auto& e : nlohmann::json::parse(meta.at("state_dict")))
    tv.emplace_back(e[0].get<std::string>(), Tensor::zeros(e[1].get<Shape>()));
  const auto m = models::map_checkpoint_names(tv, "resnet18");
  EXPECT_EQ(m.arch, "resnet18_imagenet");
  const auto net = models::make_classifier(m.arch, 10, 32);
  const std::string msg = models::describe_mismatch(m.state, net->state_dict());
  EXPECT_NE(msg.find("its names look like resnet50_imagenet (--arch resnet50 picks it from the 7x7 conv1): 4 stages "
                     "of 3,4,6,3 bottleneck blocks, 7x7 stem"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("unexpected "), std::string::npos) << msg;
  EXPECT_NE(msg.find("wrong shape "), std::string::npos) << msg;
  EXPECT_NE(models::architecture_hint().find("resnet18_imagenet, resnet34_imagenet, resnet50_imagenet"),
            std::string::npos);
}

// ---- torchvision as the reference -----------------------------------------------------------
struct Inputs {
  Tensor x32, x45;
};
Inputs rule_inputs() {
  auto scaled = [](const std::string& key, Shape s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    std::vector<double> v = testing::rule_values(key, n);
    for (double& x : v) x *= 2.0;
    return Tensor::from_vector(v, s);
  };
  return {scaled("input.32", {2, 3, 32, 32}), scaled("input.45", {1, 3, 45, 45})};
}

// Eval-mode logits of `net` (float64) against the fixture's, relative to the largest |logit|.
void expect_logits(models::Classifier& net, const std::string& expected_file) {
  const NamedTensors want = load_safetensors(expected_file);
  net.train(false);
  const Inputs in = rule_inputs();
  for (const auto& [key, x] : {std::pair<std::string, Tensor>{"logits.32", in.x32}, {"logits.45", in.x45}}) {
    const Tensor* ref = nullptr;
    for (const auto& e : want)
      if (e.first == key) ref = &e.second;
    ASSERT_NE(ref, nullptr) << key;
    const Tensor got = net.forward(x);
    ASSERT_EQ(got.shape(), ref->shape()) << key;
    double scale = 0;
    for (double v : ref->to_vector<double>()) scale = std::max(scale, std::fabs(v));
    EXPECT_ALL_CLOSE(got, *ref, (testing::Tol{1e-9 * scale, 1e-9})) << expected_file << " " << key;
  }
}

struct TvCase {
  const char* file;
  const char* arch;       // what the user passes
  const char* built;      // the architecture the mapping picks
};

class TorchvisionFixture : public ::testing::TestWithParam<TvCase> {};

TEST_P(TorchvisionFixture, LogitsMatchPyTorchUnderTheMapping) {
  const TvCase c = GetParam();
  std::map<std::string, std::string> meta;
  load_safetensors(fixture(c.file), &meta);
  NamedTensors state;  // torchvision's names as PyTorch listed them, values by the shared rule
  for (const auto& e : nlohmann::json::parse(meta.at("state_dict"))) {
    const std::string name = e[0].get<std::string>();
    state.emplace_back(name, testing::rule_entry(name, e[1].get<Shape>()));
  }
  const auto m = models::map_checkpoint_names(state, c.arch);
  EXPECT_EQ(m.arch, c.built);
  auto net = models::make_classifier(m.arch, 10, 32);
  net->to(DType::F64);
  net->load_state_dict(m.state);  // strict: every name fits
  expect_logits(*net, fixture(c.file));
}

INSTANTIATE_TEST_SUITE_P(Torchvision, TorchvisionFixture,
                         ::testing::Values(TvCase{"tv_resnet18.safetensors", "resnet18", "resnet18_imagenet"},
                                           TvCase{"tv_resnet18_cifar.safetensors", "resnet18", "resnet18"},
                                           TvCase{"tv_resnet50_module.safetensors", "resnet50", "resnet50_imagenet"}),
                         [](const ::testing::TestParamInfo<TvCase>& i) {
                           std::string n = i.param.file;
                           return n.substr(0, n.find('.'));
                         });

TEST(TorchvisionFixture, TorchSaveFileWithModulePrefix) {
  // torch.save({"epoch": 1, "state_dict": DataParallel(narrow torchvision ResNet).state_dict()}).
  const NamedTensors state = load_torch_file(fixture("tiny_resnet_module.pt"));
  ASSERT_EQ(state.size(), 74u);
  EXPECT_EQ(state.front().first, "module.conv1.weight");
  const auto m = models::map_checkpoint_names(state, "resnet18");
  EXPECT_EQ(m.notes, (std::vector<std::string>{"prefix 'module.' removed",
                                               "torchvision names (20 renamed: downsample -> shortcut, fc -> linear)"}));
  EXPECT_EQ(m.arch, "resnet18");  // a 4-wide stem is not torchvision's 64-wide one
  models::ResNetSpec spec;
  spec.blocks = {1, 1, 1, 1};
  spec.stem = models::ResNetStem::ImageNet;
  spec.width = 4;
  models::ResNet net(spec, 10);
  net.to(DType::F64);
  NamedTensors f64;  // the file's float32 weights, exactly, in the float64 slots
  for (const auto& [n, t] : m.state) f64.emplace_back(n, t.dtype() == DType::F32 ? t.to(DType::F64) : t);
  net.load_state_dict(f64);
  expect_logits(net, fixture("tiny_resnet_module.expected.safetensors"));
}

}  // namespace
}  // namespace oodkit
