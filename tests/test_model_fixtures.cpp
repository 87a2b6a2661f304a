// Every architecture against PyTorch: tests/fixtures/models/<network>.safetensors hold PyTorch's
// float64 results (tools/make_model_fixtures.py, PyTorch 2.15 from the package index, with the
// independent definitions of tools/torch_models.py) for weights and inputs that the script and
// this file both generate from one rule (below), so no weights are stored.
//
// Checked per network: eval-mode logits (decoder: output), train-mode logits, loss, input
// gradient, the gradient of every parameter and every BatchNorm running statistic after one
// train-mode forward. Large tensors are compared through probes [dot(t, r), ||t||] with r a
// rule-generated vector: any error e in t moves the dot by about ||e|| rms(r), so
//   err_dot = |dot - dot_ref| / (||t_ref|| rms(r)) and err_norm = | ||t|| - ||t_ref|| | / ||t_ref||
// are relative L2 errors.
// CPU: the model in float64; every error <= 1e-9 (float64 with different summation orders
// agrees to ~1e-13; a wrong layer, stride, padding, shortcut or BN statistic moves results by
// far more than 1e-9). CUDA (skipped without a GPU): float32, every error <= max(1e-4, 3 x the
// CPU float32 error of the same quantity) for forward quantities and max(1e-3, 3 x) for
// gradients: float32 rounding differs between backends, and some float32 gradients are
// ill-conditioned (the CPU float32 run measures how much).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/autograd.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/loss.h"
#include "framework/safetensors.h"
#include "framework/tensor.h"
#include "models/decoder.h"
#include "models/registry.h"
#include "models/wide_resnet.h"
#include "tests/testing.h"

namespace oodkit {
namespace {

constexpr int64_t kBatch = 3, kClasses = 10, kDecoderDim = 512;
constexpr double kGamma = 0.5;

// ---- the rule shared with tools/make_model_fixtures.py -------------------------------------
uint64_t fnv1a64(const std::string& key) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

// n values in [-1, 1): splitmix64 seeded with FNV-1a-64(key).
std::vector<double> rule_values(const std::string& key, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  uint64_t state = fnv1a64(key);
  for (auto& x : v) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x = 2.0 * (double(z >> 11) * 0x1.0p-53) - 1.0;
  }
  return v;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The state-dict value rule (see tools/make_model_fixtures.py), loaded strictly.
void fill(nn::Module& m) {
  NamedTensors state;
  for (const auto& [name, t] : m.state_dict()) {
    if (ends_with(name, "num_batches_tracked")) {
      state.emplace_back(name, Tensor::zeros(t.shape(), t.dtype()));
      continue;
    }
    std::vector<double> v = rule_values(name, t.numel());
    for (double& x : v) {
      if (ends_with(name, "running_mean")) {
        x = 0.1 * x;
      } else if (ends_with(name, "running_var")) {
        x = 1.0 + 0.25 * (x + 1.0);
      } else if (t.ndim() >= 2) {
        x *= std::sqrt(6.0 / (double(t.numel()) / double(t.size(0))));
      } else if (ends_with(name, ".weight")) {
        x = kGamma + 0.1 * x;
      } else {
        x = 0.1 * x;
      }
    }
    state.emplace_back(name, Tensor::from_vector(v, t.shape()));
  }
  m.load_state_dict(state, true);
}

Tensor labels() {
  std::vector<int64_t> l;
  for (int64_t i = 0; i < kBatch; ++i) l.push_back((3 * i + 1) % kClasses);
  return Tensor::from_vector(l, {kBatch});
}

// ---- results --------------------------------------------------------------------------------
// name -> values (float64, on the host); probes are [dot, norm] pairs.
using Results = std::map<std::string, std::vector<double>>;

std::vector<double> host(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }

std::vector<double> probe(const std::string& name, const Tensor& t) {
  const std::vector<double> a = host(t);
  const std::vector<double> r = rule_values("probe." + name, int64_t(a.size()));
  double dot = 0, sq = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * r[i];
    sq += a[i] * a[i];
  }
  return {dot, std::sqrt(sq)};
}

// One network: eval forward, then one train-mode forward + backward (as the script).
Results run_network(const std::string& network, Device device, DType dtype) {
  Generator gen(5);
  Results out;
  const bool decoder = network.rfind("decoder_", 0) == 0;
  std::shared_ptr<nn::Module> module;
  Tensor x, onehot;
  std::function<Tensor(const Tensor&)> forward;
  if (!decoder) {
    std::shared_ptr<models::Classifier> net;
    if (network == "wrn40_2") {
      net = std::make_shared<models::WideResNet>(40, 2, kClasses, 0.0, gen);  // dropout off, as the script
    } else {
      net = models::make_classifier(network, kClasses, 32, gen);
    }
    module = net;
    x = Tensor::from_vector(rule_values("input", kBatch * 3 * 32 * 32), {kBatch, 3, 32, 32});
    for (double* p = x.data<double>(); p != x.data<double>() + x.numel(); ++p) *p *= 2.0;
    forward = [net](const Tensor& in) { return net->forward(in); };
  } else {
    const std::string arch = network.substr(8);
    auto dec = std::make_shared<models::HeatmapDecoder>(
        models::DecoderConfig::for_classifier(arch, kDecoderDim, kClasses, 32), gen);
    module = dec;
    std::vector<double> z = rule_values("input.z", kBatch * kDecoderDim);
    for (int64_t i = 0; i < kBatch; ++i) {
      double sq = 0;
      for (int64_t j = 0; j < kDecoderDim; ++j) sq += z[i * kDecoderDim + j] * z[i * kDecoderDim + j];
      for (int64_t j = 0; j < kDecoderDim; ++j) z[i * kDecoderDim + j] /= std::sqrt(sq);
    }
    x = Tensor::from_vector(z, {kBatch, kDecoderDim});
    std::vector<double> oh(kBatch * kClasses, 0.0);
    const std::vector<int64_t> l = labels().to_vector<int64_t>();
    for (int64_t i = 0; i < kBatch; ++i) oh[i * kClasses + l[i]] = 1.0;
    onehot = Tensor::from_vector(oh, {kBatch, kClasses}).to(dtype).to(device);
    forward = [dec, onehot](const Tensor& in) { return dec->forward(in, onehot); };
  }
  module->to(dtype);  // first, so that float64 values are not rounded through float32 slots
  fill(*module);
  module->to(device);
  x = x.to(dtype).to(device);

  module->eval();
  {
    autograd::NoGradGuard ng;
    const Tensor y = forward(x);
    if (decoder) {
      out["eval.output"] = probe("eval.output", y);
    } else {
      out["eval.logits"] = host(y);
    }
  }
  module->train();
  Tensor xg = x.detach();
  xg.set_requires_grad(true);
  const Tensor y = forward(xg);
  Tensor loss;
  if (decoder) {
    const Tensor r = Tensor::from_vector(rule_values("loss.r", y.numel()), y.shape()).to(dtype).to(device);
    loss = ops::scale(ops::sum(ops::mul(y, r)), 1.0 / double(kBatch));
    out["train.output"] = probe("train.output", y);
  } else {
    loss = ops::cross_entropy(y, labels().to(device));
    out["train.logits"] = host(y);
  }
  loss.backward();
  out["train.loss"] = {loss.item()};
  out["train.input_grad"] = probe("train.input_grad", xg.grad());
  for (const auto& [name, p] : module->named_parameters()) out["grad." + name] = probe("grad." + name, p.grad());
  for (const auto& [name, b] : module->named_buffers()) {
    if (ends_with(name, "running_mean") || ends_with(name, "running_var")) {
      out["buffer." + name] = probe("buffer." + name, b);
    }
  }
  return out;
}

// Relative error of `ours` against `ref` (see the file comment); probes when is_probe.
double rel_error(const std::string& name, const std::vector<double>& ours, const std::vector<double>& ref) {
  const bool is_probe = name.rfind("grad.", 0) == 0 || name.rfind("buffer.", 0) == 0 ||
                        name == "train.input_grad" || name == "eval.output" || name == "train.output";
  if (ours.size() != ref.size()) return INFINITY;
  if (is_probe) {
    // rms of the probe vector: its length is not stored, but rms(r) of n uniform [-1, 1) values is
    // 1/sqrt(3) to within a few percent for every tensor here (n >= 3), which is all a scale needs.
    const double rms = 1.0 / std::sqrt(3.0);
    const double norm = ref[1];
    if (!(norm > 0)) return std::fabs(ours[0]) + std::fabs(ours[1]);
    return std::max(std::fabs(ours[0] - ref[0]) / (norm * rms), std::fabs(ours[1] - ref[1]) / norm);
  }
  double d = 0, n = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ours[i])) return INFINITY;
    d += (ours[i] - ref[i]) * (ours[i] - ref[i]);
    n += ref[i] * ref[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

Results load_fixture(const std::string& network) {
  const std::string path = std::string(OODKIT_SOURCE_DIR) + "/tests/fixtures/models/" + network + ".safetensors";
  std::map<std::string, std::string> meta;
  Results r;
  for (const auto& [name, t] : load_safetensors(path, &meta)) r[name] = host(t);
  EXPECT_EQ(meta["network"], network) << path;
  return r;
}

const std::vector<std::string> kNetworks = {"resnet20", "resnet18", "resnet34",        "resnet50",
                                            "wrn40_2",  "densenet100", "decoder_resnet18"};

class ModelFixtureTest : public testing::DeviceTest {};

TEST_P(ModelFixtureTest, MatchesPyTorch) {
  for (const std::string& network : kNetworks) {
    SCOPED_TRACE(network);
    const Results ref = load_fixture(network);
    ASSERT_FALSE(ref.empty());
    const bool cuda = on_cuda();
    const Results ours = run_network(network, device(), cuda ? DType::F32 : DType::F64);
    const Results cpu32 = cuda ? run_network(network, Device::cpu(), DType::F32) : Results{};
    // Same set of names on both sides (parameters and buffers of the PyTorch definition).
    std::vector<std::string> missing, extra;
    for (const auto& [name, v] : ref) {
      if (!ours.count(name)) missing.push_back(name);
    }
    for (const auto& [name, v] : ours) {
      if (!ref.count(name)) extra.push_back(name);
    }
    EXPECT_TRUE(missing.empty()) << missing.size() << " fixture entries oodkit lacks, first " << missing.front();
    EXPECT_TRUE(extra.empty()) << extra.size() << " entries the fixture lacks, first " << extra.front();
    int bad = 0;
    double worst = 0;
    std::string worst_name;
    for (const auto& [name, r] : ref) {
      if (!ours.count(name)) continue;
      const double e = rel_error(name, ours.at(name), r);
      double tol = 1e-9;
      if (cuda) {
        const bool grad = name.rfind("grad.", 0) == 0 || name == "train.input_grad";
        tol = std::max(grad ? 1e-3 : 1e-4, 3 * rel_error(name, cpu32.at(name), r));
      }
      if (!(e <= tol)) {
        if (++bad <= 5) ADD_FAILURE() << name << ": relative error " << e << " > " << tol;
      }
      if (!(e <= worst)) {
        worst = e;
        worst_name = name;
      }
    }
    EXPECT_EQ(bad, 0) << "of " << ref.size() << " entries";
    std::printf("[ fixture ] %-18s %-5s %zu entries, worst relative error %.2e (%s)\n", network.c_str(),
                device().str().c_str(), ref.size(), worst, worst_name.c_str());
  }
}

OODKIT_INSTANTIATE_DEVICES(ModelFixtureTest);

// The rule itself: values pinned by hand-checkable properties and two literals printed by
// tools/make_model_fixtures.py's values() (python: values("input", 2)), so that a change to
// either side's generator fails here rather than as a confusing mismatch above.
TEST(ModelFixtureRule, SplitmixStreamMatchesThePythonSide) {
  EXPECT_EQ(fnv1a64(""), 0xCBF29CE484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xAF63DC4C8601EC8Cull);  // FNV-1a 64 test vector
  const std::vector<double> v = rule_values("input", 2);
  EXPECT_DOUBLE_EQ(v[0], -0.8043633146849236);
  EXPECT_DOUBLE_EQ(v[1], 0.30472085653436465);
}

}  // namespace
}  // namespace oodkit
