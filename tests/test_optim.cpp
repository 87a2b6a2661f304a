#include "framework/optim.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "framework/ops/elementwise.h"
#include "framework/safetensors.h"
#include "testing.h"

using namespace oodkit;
using namespace oodkit::optim;
using oodkit::testing::DeviceTest;
using oodkit::testing::kF32;
using oodkit::testing::Tol;

namespace {

using Vec = std::vector<double>;
constexpr Tol kExact{0, 0};

Vec to_doubles(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }

// ---- naive double-precision references of torch's update equations ----

struct RefSGD {
  SGDOptions o;
  std::vector<Vec> buf;  // empty: no buffer yet
  void step(std::vector<Vec>& p, const std::vector<const Vec*>& grads, double lr) {
    buf.resize(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      if (!grads[i]) continue;
      Vec d = *grads[i];
      for (size_t k = 0; k < d.size(); ++k) d[k] += o.weight_decay * p[i][k];
      if (o.momentum != 0) {
        if (buf[i].empty()) {
          buf[i] = d;  // torch: buf = clone(grad) on the first step
        } else {
          for (size_t k = 0; k < d.size(); ++k) buf[i][k] = o.momentum * buf[i][k] + (1 - o.dampening) * d[k];
        }
        for (size_t k = 0; k < d.size(); ++k) d[k] = o.nesterov ? d[k] + o.momentum * buf[i][k] : buf[i][k];
      }
      for (size_t k = 0; k < d.size(); ++k) p[i][k] -= lr * d[k];
    }
  }
};

struct RefAdam {
  AdamOptions o;
  std::vector<Vec> m, v;
  std::vector<int> t;
  void step(std::vector<Vec>& p, const std::vector<const Vec*>& grads, double lr) {
    m.resize(p.size());
    v.resize(p.size());
    t.resize(p.size(), 0);
    for (size_t i = 0; i < p.size(); ++i) {
      if (!grads[i]) continue;
      if (m[i].empty()) m[i] = v[i] = Vec(p[i].size(), 0.0);
      ++t[i];
      Vec d = *grads[i];
      for (size_t k = 0; k < d.size(); ++k) {
        if (o.decoupled_weight_decay) p[i][k] *= 1 - lr * o.weight_decay;
        else d[k] += o.weight_decay * p[i][k];
        m[i][k] = o.beta1 * m[i][k] + (1 - o.beta1) * d[k];
        v[i][k] = o.beta2 * v[i][k] + (1 - o.beta2) * d[k] * d[k];
        const double mhat = m[i][k] / (1 - std::pow(o.beta1, t[i]));
        const double vhat = v[i][k] / (1 - std::pow(o.beta2, t[i]));
        p[i][k] -= lr * mhat / (std::sqrt(vhat) + o.eps);
      }
    }
  }
};

using MakeOpt = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

// Runs 6 steps of the optimiser on three parameters of `dtype` on `dev` and of the reference in
// double, comparing every parameter after every step. Param 1 has no grad at step 0 (its state
// starts one step later) and param 2 none at step 3 (skipped); the lr is halved at step 4.
template <class Ref>
void check_against_reference(Device dev, DType dtype, const MakeOpt& make, Ref ref, Tol tol, Generator& gen) {
  const std::vector<Shape> shapes = {{3, 4}, {5}, {2, 1, 3}};
  std::vector<Tensor> params;
  std::vector<Vec> refp;
  for (const Shape& s : shapes) {
    Tensor p = Tensor::randn(s, gen, dtype, dev);
    p.set_requires_grad(true);
    params.push_back(p);
    refp.push_back(to_doubles(p));
  }
  std::unique_ptr<Optimizer> opt = make(params);
  for (int step = 0; step < 6; ++step) {
    if (step == 4) opt->set_lr(opt->lr() * 0.5);
    std::vector<Vec> gvals(params.size());
    std::vector<const Vec*> gref(params.size(), nullptr);
    std::vector<Tensor> gcopy(params.size());
    std::vector<const void*> where(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      where[i] = params[i].raw_data();
      if ((step == 0 && i == 1) || (step == 3 && i == 2)) {
        params[i].zero_grad();
        continue;
      }
      Tensor g = Tensor::randn(shapes[i], gen, dtype, dev);
      params[i].set_grad(g);
      gcopy[i] = g.clone();
      gvals[i] = to_doubles(g);
      gref[i] = &gvals[i];
    }
    opt->step();
    ref.step(refp, gref, opt->lr());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].raw_data(), where[i]) << "parameter " << i << " was not updated in place";
      EXPECT_TRUE(params[i].is_leaf());
      EXPECT_ALL_CLOSE(params[i], Tensor::from_vector(refp[i], shapes[i]), tol) << "step " << step << " param " << i;
      if (gcopy[i].defined())
        EXPECT_ALL_CLOSE(params[i].grad(), gcopy[i], kExact) << "step() modified the grad of param " << i;
    }
  }
}

std::vector<SGDOptions> sgd_configs() {
  std::vector<SGDOptions> c;
  c.push_back({0.1, 0, 0, 0, false});
  c.push_back({0.05, 0, 0, 0.1, false});
  c.push_back({0.1, 0.9, 0, 0, false});
  c.push_back({0.1, 0.9, 0.3, 0, false});
  c.push_back({0.1, 0.9, 0, 0, true});
  c.push_back({0.2, 0.8, 0, 0.05, true});
  c.push_back({0.1, 0.7, 0.5, 0.01, false});
  return c;
}

std::vector<AdamOptions> adam_configs() {
  std::vector<AdamOptions> c;
  c.push_back({1e-3, 0.9, 0.999, 1e-8, 0, false});
  c.push_back({0.05, 0.8, 0.99, 1e-6, 0, false});
  c.push_back({0.01, 0.9, 0.999, 1e-8, 0.1, false});  // Adam: L2 added to the gradient
  c.push_back({0.01, 0.9, 0.999, 1e-8, 0.1, true});   // AdamW: decoupled
  c.push_back({0.02, 0.3, 0.5, 1e-3, 0.5, true});     // 1 - beta1 >= 0.5: the other lerp branch
  return c;
}

MakeOpt make_sgd(SGDOptions o) {
  return [o](std::vector<Tensor> p) { return std::unique_ptr<Optimizer>(new SGD(std::move(p), o)); };
}
MakeOpt make_adam(AdamOptions o) {
  return [o](std::vector<Tensor> p) { return std::unique_ptr<Optimizer>(new Adam(std::move(p), o)); };
}

class OptimTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(OptimTest);

TEST_P(OptimTest, SGDMatchesReference) {
  for (const SGDOptions& o : sgd_configs()) {
    SCOPED_TRACE(::testing::Message() << "momentum " << o.momentum << " dampening " << o.dampening << " wd "
                                      << o.weight_decay << " nesterov " << o.nesterov);
    check_against_reference(device(), DType::F32, make_sgd(o), RefSGD{o, {}}, kF32, gen);
  }
}

TEST_P(OptimTest, AdamMatchesReference) {
  for (const AdamOptions& o : adam_configs()) {
    SCOPED_TRACE(::testing::Message() << "beta1 " << o.beta1 << " beta2 " << o.beta2 << " wd " << o.weight_decay
                                      << " decoupled " << o.decoupled_weight_decay);
    check_against_reference(device(), DType::F32, make_adam(o), RefAdam{o, {}, {}, {}}, kF32, gen);
  }
}

// float64 on the CPU: the fused kernels must agree with the reference to rounding.
TEST(OptimF64, MatchesReferenceTightly) {
  Generator gen(77);
  const Tol tight{1e-13, 1e-12};
  for (const SGDOptions& o : sgd_configs())
    check_against_reference(Device::cpu(), DType::F64, make_sgd(o), RefSGD{o, {}}, tight, gen);
  for (const AdamOptions& o : adam_configs())
    check_against_reference(Device::cpu(), DType::F64, make_adam(o), RefAdam{o, {}, {}, {}}, tight, gen);
}

// Hand-computed two steps on a single scalar parameter (p = 1, grad = 1 then 2).
TEST(OptimHand, WorkedExamples) {
  auto run = [](auto make) {
    Tensor p = Tensor::full({1}, 1.0, DType::F64);
    p.set_requires_grad(true);
    auto opt = make(std::vector<Tensor>{p});
    std::vector<double> out;
    for (double g : {1.0, 2.0}) {
      p.set_grad(Tensor::full({1}, g, DType::F64));
      opt->step();
      out.push_back(p.item());
    }
    return out;
  };
  auto sgd = [](SGDOptions o) {
    return [o](std::vector<Tensor> p) { return std::make_unique<SGD>(std::move(p), o); };
  };
  // Plain: 1 - 0.1 = 0.9, 0.9 - 0.2 = 0.7.
  auto r = run(sgd({0.1, 0, 0, 0, false}));
  EXPECT_NEAR(r[0], 0.9, 1e-15);
  EXPECT_NEAR(r[1], 0.7, 1e-15);
  // Momentum 0.9: buf = 1 -> p = 0.9; buf = 0.9 + 2 = 2.9 -> p = 0.9 - 0.29 = 0.61.
  r = run(sgd({0.1, 0.9, 0, 0, false}));
  EXPECT_NEAR(r[0], 0.9, 1e-15);
  EXPECT_NEAR(r[1], 0.61, 1e-15);
  // Dampening 0.5 (not applied to the first buffer): buf = 1 -> 0.9; buf = 0.9 + 0.5 * 2 = 1.9 -> 0.71.
  r = run(sgd({0.1, 0.9, 0.5, 0, false}));
  EXPECT_NEAR(r[0], 0.9, 1e-15);
  EXPECT_NEAR(r[1], 0.71, 1e-15);
  // Nesterov: buf = 1, d = 1 + 0.9 = 1.9 -> 0.81; buf = 2.9, d = 2 + 2.61 = 4.61 -> 0.81 - 0.461 = 0.349.
  r = run(sgd({0.1, 0.9, 0, 0, true}));
  EXPECT_NEAR(r[0], 0.81, 1e-15);
  EXPECT_NEAR(r[1], 0.349, 1e-15);
  // Weight decay 0.5: d = 1 + 0.5 = 1.5 -> 0.85; d = 2 + 0.425 = 2.425 -> 0.6075.
  r = run(sgd({0.1, 0, 0, 0.5, false}));
  EXPECT_NEAR(r[0], 0.85, 1e-15);
  EXPECT_NEAR(r[1], 0.6075, 1e-15);

  auto adam = [](AdamOptions o) {
    return [o](std::vector<Tensor> p) { return std::make_unique<Adam>(std::move(p), o); };
  };
  // Adam, first step: bias correction makes mhat = g, vhat = g^2: p = 1 - 0.1 * 1 / (1 + 1e-8).
  // Second step (g = 2): m = 0.09 + 0.2 = 0.29, v = 0.000999 + 0.004 = 0.004999,
  // mhat = 0.29 / 0.19, vhat = 0.004999 / 0.001999.
  r = run(adam({0.1, 0.9, 0.999, 1e-8, 0, false}));
  const double p1 = 1 - 0.1 / (1 + 1e-8);
  EXPECT_NEAR(r[0], p1, 1e-15);
  EXPECT_NEAR(r[1], p1 - 0.1 * (0.29 / 0.19) / (std::sqrt(0.004999 / 0.001999) + 1e-8), 1e-14);
  // AdamW wd 0.5: p = 1 * (1 - 0.05) = 0.95 first, then the same Adam step as above.
  r = run(adam({0.1, 0.9, 0.999, 1e-8, 0.5, true}));
  const double q1 = 0.95 - 0.1 / (1 + 1e-8);
  EXPECT_NEAR(r[0], q1, 1e-15);
  EXPECT_NEAR(r[1], q1 * 0.95 - 0.1 * (0.29 / 0.19) / (std::sqrt(0.004999 / 0.001999) + 1e-8), 1e-14);
}

// The same float32 run on the device and on the CPU.
TEST_P(OptimTest, DeviceMatchesCpu) {
  const Shape shape{40, 33};  // not a multiple of the block size
  Tensor p0 = Tensor::randn(shape, gen);
  std::vector<Tensor> grads;
  for (int s = 0; s < 4; ++s) grads.push_back(Tensor::randn(shape, gen));
  for (int which = 0; which < 2; ++which) {
    auto run = [&](Device d) {
      Tensor p = p0.to(d).clone();
      p.set_requires_grad(true);
      std::unique_ptr<Optimizer> opt;
      if (which == 0) opt = std::make_unique<SGD>(std::vector<Tensor>{p}, SGDOptions{0.1, 0.9, 0, 1e-2, true});
      else opt = std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.1, true});
      for (const Tensor& g : grads) {
        p.set_grad(g.to(d));
        opt->step();
      }
      return std::make_pair(p, opt->state());
    };
    auto ref = run(Device::cpu());
    auto got = run(device());
    EXPECT_ALL_CLOSE(got.first, ref.first, kF32) << (which ? "AdamW" : "SGD");
    ASSERT_EQ(got.second.size(), ref.second.size());
    for (size_t k = 0; k < ref.second.size(); ++k) {
      EXPECT_EQ(got.second[k].first, ref.second[k].first);
      EXPECT_EQ(got.second[k].second.device(), device());
      EXPECT_ALL_CLOSE(got.second[k].second, ref.second[k].second, kF32) << ref.second[k].first;
    }
  }
}

// Save the state after 3 steps, build a new optimiser over the saved parameter values, load it
// and continue: the result equals the uninterrupted run exactly.
TEST_P(OptimTest, StateRoundTripResumesExactly) {
  const std::vector<Shape> shapes = {{4, 3}, {6}};
  std::vector<Tensor> init;
  for (const Shape& s : shapes) init.push_back(Tensor::randn(s, gen, DType::F32, device()));
  // grads[step][i]; param 1 has no grad before step 4, so it has no state when saved.
  std::vector<std::vector<Tensor>> grads(7);
  for (int s = 0; s < 7; ++s)
    for (size_t i = 0; i < shapes.size(); ++i)
      grads[s].push_back(i == 1 && s < 4 ? Tensor() : Tensor::randn(shapes[i], gen, DType::F32, device()));

  const std::string file = ::testing::TempDir() + "oodkit_optim_state_" + std::to_string(::getpid()) + ".safetensors";
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which == 0 ? "SGD" : which == 1 ? "Adam" : "AdamW");
    auto make = [&](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> {
      if (which == 0) return std::make_unique<SGD>(std::move(p), SGDOptions{0.1, 0.9, 0.1, 1e-3, false});
      return std::make_unique<Adam>(std::move(p), AdamOptions{1e-2, 0.9, 0.99, 1e-8, 0.05, which == 2});
    };
    auto leaves = [&](const std::vector<Tensor>& src) {
      std::vector<Tensor> out;
      for (const Tensor& t : src) {
        Tensor c = t.clone();
        c.set_requires_grad(true);
        out.push_back(c);
      }
      return out;
    };
    auto run_steps = [&](Optimizer& opt, std::vector<Tensor>& p, int from, int to) {
      for (int s = from; s < to; ++s) {
        for (size_t i = 0; i < p.size(); ++i) {
          if (grads[s][i].defined()) p[i].set_grad(grads[s][i]);
          else p[i].zero_grad();
        }
        opt.set_lr(0.1 / (1 + s));
        opt.step();
      }
    };
    std::vector<Tensor> a = leaves(init);
    auto opt_a = make(a);
    run_steps(*opt_a, a, 0, 3);
    const NamedTensors saved = opt_a->state();
    std::vector<Tensor> saved_params;
    for (const Tensor& t : a) saved_params.push_back(t.clone());
    // The names document the per-parameter layout; param 1 has none yet.
    std::vector<std::string> names;
    for (const auto& kv : saved) names.push_back(kv.first);
    if (which == 0) EXPECT_EQ(names, (std::vector<std::string>{"0.momentum_buffer"}));
    else EXPECT_EQ(names, (std::vector<std::string>{"0.step", "0.exp_avg", "0.exp_avg_sq"}));
    run_steps(*opt_a, a, 3, 7);
    // state() was a snapshot: continuing did not change it.
    EXPECT_FALSE(::oodkit::testing::all_close(saved[which == 0 ? 0 : 1].second, opt_a->state()[which == 0 ? 0 : 1].second,
                                              kExact));

    // Through a checkpoint file (tensors come back on the CPU).
    NamedTensors file_state(saved.begin(), saved.end());
    save_safetensors(file, file_state);
    std::vector<Tensor> b = leaves(saved_params);
    auto opt_b = make(b);
    opt_b->load_state(load_safetensors(file));
    const NamedTensors reloaded = opt_b->state();
    ASSERT_EQ(reloaded.size(), saved.size());
    for (size_t k = 0; k < saved.size(); ++k) {
      EXPECT_EQ(reloaded[k].first, saved[k].first);
      EXPECT_EQ(reloaded[k].second.device(), saved[k].second.device()) << saved[k].first;
      EXPECT_ALL_CLOSE(reloaded[k].second, saved[k].second, kExact) << saved[k].first;
    }
    run_steps(*opt_b, b, 3, 7);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_ALL_CLOSE(b[i], a[i], kExact) << "param " << i;
  }
  std::remove(file.c_str());
}

TEST(OptimErrors, BadArgumentsThrow) {
  Generator gen(3);
  auto leaf = [&](const Shape& s, DType dt = DType::F32) {
    Tensor t = Tensor::randn(s, gen, dt);
    t.set_requires_grad(true);
    return t;
  };
  Tensor p = leaf({3});
  // Nesterov needs momentum and no dampening (as torch).
  EXPECT_THROW(SGD({p}, SGDOptions{0.1, 0, 0, 0, true}), Error);
  EXPECT_THROW(SGD({p}, SGDOptions{0.1, 0.9, 0.1, 0, true}), Error);
  EXPECT_NO_THROW(SGD({p}, SGDOptions{0.1, 0.9, 0, 0, true}));
  EXPECT_THROW(SGD({p}, SGDOptions{-0.1}), Error);
  EXPECT_THROW(SGD({p}, SGDOptions{0.1, -0.5}), Error);
  EXPECT_THROW(SGD({p}, SGDOptions{0.1, 0, 0, -1e-4}), Error);
  EXPECT_THROW(SGD({}, SGDOptions{}), Error);
  EXPECT_THROW(SGD({Tensor::randn({3}, gen)}, SGDOptions{}), Error);  // no requires_grad
  EXPECT_THROW(SGD({p, p}, SGDOptions{}), Error);                      // duplicate
  EXPECT_THROW(SGD({ops::scale(p, 2.0)}, SGDOptions{}), Error);        // not a leaf
  EXPECT_THROW(Adam({p}, AdamOptions{1e-3, 1.0}), Error);
  EXPECT_THROW(Adam({p}, AdamOptions{1e-3, 0.9, -0.1}), Error);
  EXPECT_THROW(Adam({p}, AdamOptions{1e-3, 0.9, 0.999, -1e-8}), Error);
  EXPECT_THROW(Adam({p}, AdamOptions{-1e-3}), Error);
  EXPECT_THROW(Adam({p}, AdamOptions{1e-3, 0.9, 0.999, 1e-8, -0.1, true}), Error);

  SGD sgd({p}, SGDOptions{0.1, 0.9});
  EXPECT_THROW(sgd.set_lr(-1.0), Error);
  EXPECT_THROW(sgd.set_lr(std::nan("")), Error);
  p.set_grad(Tensor::randn({3}, gen, DType::F64));  // dtype differs from the parameter's
  EXPECT_THROW(sgd.step(), Error);
  p.set_grad(Tensor::randn({3}, gen));
  sgd.step();
  EXPECT_TRUE(autograd::grad_enabled());
  sgd.zero_grad();
  EXPECT_FALSE(p.grad().defined());

  // load_state: every malformed entry throws and leaves the state as it was.
  const NamedTensors good = sgd.state();
  ASSERT_EQ(good.size(), 1u);
  const std::vector<NamedTensors> bad_sgd = {
      {{"0.exp_avg", Tensor::zeros({3})}},                         // unknown key
      {{"1.momentum_buffer", Tensor::zeros({3})}},                 // no parameter 1
      {{"momentum_buffer", Tensor::zeros({3})}},                   // no index
      {{"x.momentum_buffer", Tensor::zeros({3})}},                 // bad index
      {{"0.momentum_buffer", Tensor::zeros({4})}},                 // shape
      {{"0.momentum_buffer", Tensor::zeros({3}, DType::F64)}},     // dtype
      {{"0.momentum_buffer", Tensor()}},                           // undefined
      {{"0.momentum_buffer", Tensor::zeros({3})}, {"0.momentum_buffer", Tensor::zeros({3})}},  // duplicate
  };
  for (const NamedTensors& s : bad_sgd) {
    EXPECT_THROW(sgd.load_state(s), Error) << s[0].first;
    const NamedTensors now = sgd.state();
    ASSERT_EQ(now.size(), 1u);
    EXPECT_ALL_CLOSE(now[0].second, good[0].second, kExact);
  }
  SGD plain({leaf({3})}, SGDOptions{0.1});
  EXPECT_THROW(plain.load_state(good), Error);  // momentum 0 keeps no state
  EXPECT_NO_THROW(plain.load_state({}));

  Adam adam({p, leaf({2, 2})}, AdamOptions{});
  const Tensor step1 = Tensor::full({}, 1.0, DType::I64);
  const std::vector<NamedTensors> bad_adam = {
      {{"0.step", step1}, {"0.exp_avg", Tensor::zeros({3})}},                     // incomplete
      {{"1.exp_avg", Tensor::zeros({2, 2})}, {"1.exp_avg_sq", Tensor::zeros({2, 2})}},  // no step
      {{"0.step", Tensor::full({}, 1.0, DType::F32)}, {"0.exp_avg", Tensor::zeros({3})},
       {"0.exp_avg_sq", Tensor::zeros({3})}},                                    // step dtype
      {{"0.step", Tensor::full({}, 0.0, DType::I64)}, {"0.exp_avg", Tensor::zeros({3})},
       {"0.exp_avg_sq", Tensor::zeros({3})}},                                    // step 0
      {{"0.step", step1}, {"0.exp_avg", Tensor::zeros({3})}, {"0.exp_avg_sq", Tensor::zeros({2, 2})}},  // shape
      {{"0.momentum_buffer", Tensor::zeros({3})}},                               // unknown key
  };
  for (const NamedTensors& s : bad_adam) EXPECT_THROW(adam.load_state(s), Error) << s[0].first;
  EXPECT_TRUE(adam.state().empty());
  EXPECT_NO_THROW(adam.load_state({{"1.step", Tensor::full({}, 5.0, DType::I64)},
                                   {"1.exp_avg", Tensor::zeros({2, 2})},
                                   {"1.exp_avg_sq", Tensor::zeros({2, 2})}}));
  EXPECT_EQ(adam.state().size(), 3u);
  EXPECT_EQ(adam.state()[0].second.item(), 5.0);
}

}  // namespace
