#include "framework/nn/init.h"
#include "framework/nn/module.h"
#include "testing.h"

using namespace oodkit;

namespace {

struct Leaf : nn::Module {
  explicit Leaf(int64_t n) {
    w = Tensor::ones({n, 2});
    stat = Tensor::zeros({n});
    count = Tensor::zeros({}, DType::I64);
    register_parameter("weight", &w);
    register_buffer("running", &stat);
    register_buffer("count", &count, /*optional=*/true);
  }
  Tensor w, stat, count;
};

struct Tree : nn::Module {
  Tree() {
    b = Tensor::zeros({3});
    register_parameter("bias", &b);
    left = register_module("left", std::make_shared<Leaf>(2));
    right = register_module("right", std::make_shared<Leaf>(4));
  }
  Tensor b;
  std::shared_ptr<Leaf> left, right;
};

std::vector<std::string> names(const nn::NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

TEST(Module, NamesFollowTorchOrder) {
  Tree t;
  EXPECT_EQ(names(t.named_parameters()), (std::vector<std::string>{"bias", "left.weight", "right.weight"}));
  EXPECT_EQ(names(t.state_dict()),
            (std::vector<std::string>{"bias", "left.weight", "left.running", "left.count", "right.weight",
                                      "right.running", "right.count"}));
  EXPECT_EQ(t.num_parameters(), 3 + 4 + 8);
  for (const Tensor& p : t.parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(Module, LoadStateDictCopiesAndValidates) {
  Tree a, b;
  Generator gen(3);
  nn::init::normal_(a.left->w, 0, 1, gen);
  a.right->stat.fill_(2.5);
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.left->w.to_vector<float>(), a.left->w.to_vector<float>());
  EXPECT_EQ(b.right->stat.to_vector<float>(), std::vector<float>(4, 2.5f));

  // Optional buffers may be missing; required ones may not; unknown names are rejected.
  nn::NamedTensors partial;
  for (auto& [n, t] : a.state_dict())
    if (n.find("count") == std::string::npos) partial.emplace_back(n, t);
  EXPECT_NO_THROW(b.load_state_dict(partial));
  nn::NamedTensors missing(partial.begin() + 1, partial.end());
  EXPECT_THROW(b.load_state_dict(missing), Error);
  EXPECT_NO_THROW(b.load_state_dict(missing, /*strict=*/false));
  nn::NamedTensors extra = partial;
  extra.emplace_back("nope", Tensor::zeros({1}));
  EXPECT_THROW(b.load_state_dict(extra), Error);

  // A shape mismatch names the entry and both shapes, and nothing is written.
  const std::vector<float> before = b.left->w.to_vector<float>();
  nn::NamedTensors bad = a.state_dict();
  bad[0].second = Tensor::zeros({5});
  nn::init::normal_(bad[1].second, 0, 1, gen);
  try {
    b.load_state_dict(bad);
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'bias'"), std::string::npos) << m;
    EXPECT_NE(m.find("[5]"), std::string::npos) << m;
    EXPECT_NE(m.find("[3]"), std::string::npos) << m;
  }
  EXPECT_EQ(b.left->w.to_vector<float>(), before);
}

TEST(Module, TrainEvalIsRecursive) {
  Tree t;
  t.eval();
  EXPECT_FALSE(t.is_training());
  EXPECT_FALSE(t.left->is_training());
  t.train();
  EXPECT_TRUE(t.right->is_training());
}

TEST(Module, ToCudaKeepsParametersTrainable) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  Tree t;
  t.to(Device::cuda());
  for (const auto& [n, p] : t.named_parameters()) {
    EXPECT_TRUE(p.is_cuda()) << n;
    EXPECT_TRUE(p.requires_grad()) << n;
  }
  EXPECT_TRUE(t.left->stat.is_cuda());
  EXPECT_FALSE(t.left->count.is_cuda());  // optional buffers stay on the host
}

TEST(Module, ToFloat64CastsFloatEntriesOnly) {
  Tree t;
  t.left->w = Tensor::full({2, 2}, 0.1);  // a value float32 cannot hold exactly
  t.to(DType::F64);
  for (const auto& [n, p] : t.named_parameters()) {
    EXPECT_EQ(p.dtype(), DType::F64) << n;
    EXPECT_TRUE(p.requires_grad()) << n;
  }
  EXPECT_EQ(t.right->stat.dtype(), DType::F64);
  EXPECT_EQ(t.left->count.dtype(), DType::I64);  // integer bookkeeping keeps its dtype
  EXPECT_EQ(t.left->w.to_vector<double>()[0], double(0.1f));  // the float32 value, widened
  t.to(DType::F32);
  EXPECT_EQ(t.b.dtype(), DType::F32);
  EXPECT_THROW(t.to(DType::I32), Error);
}

TEST(Init, KaimingAndDefaultUniformStatistics) {
  Generator gen(11);
  Tensor w = Tensor::empty({64, 32, 3, 3});
  nn::init::kaiming_normal_(w, /*fan_out_mode=*/true, gen);
  double s2 = 0;
  for (float v : w.to_vector<float>()) s2 += double(v) * v;
  EXPECT_NEAR(s2 / double(w.numel()), 2.0 / (64 * 9), 0.1 * 2.0 / (64 * 9));
  Tensor u = Tensor::empty({10, 40});
  nn::init::default_uniform_(u, gen);
  for (float v : u.to_vector<float>()) EXPECT_LE(std::fabs(v), 1.0 / std::sqrt(40.0));
}

}  // namespace
