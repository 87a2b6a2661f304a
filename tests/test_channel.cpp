#include "framework/ops/channel.h"
#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::randn_f64;

namespace {

constexpr oodkit::testing::Tol kExact{0.0, 0.0};  // pure data movement: results must be bit-exact

class ChannelTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ChannelTest);

// ---- naive references on the CPU (any rank-4 float tensor) ----

Tensor naive_concat(const std::vector<Tensor>& xs) {
  const int64_t N = xs[0].size(0), H = xs[0].size(2), W = xs[0].size(3);
  int64_t C = 0;
  for (const Tensor& x : xs) C += x.size(1);
  std::vector<float> out(size_t(N * C * H * W), -1.f);
  int64_t off = 0;
  for (const Tensor& x : xs) {
    const std::vector<float> v = x.to_vector<float>();
    const int64_t Ci = x.size(1);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < Ci; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            out[size_t(((n * C + off + c) * H + h) * W + w)] = v[size_t(((n * Ci + c) * H + h) * W + w)];
    off += Ci;
  }
  return Tensor::from_vector(out, {N, C, H, W});
}

Tensor naive_subsample_pad(const Tensor& x, int s, int64_t Co) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = (H + s - 1) / s, Wo = (W + s - 1) / s, before = (Co - C) / 2;
  const std::vector<float> v = x.to_vector<float>();
  std::vector<float> out(size_t(N * Co * Ho * Wo), -1.f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < Co; ++c)
      for (int64_t h = 0; h < Ho; ++h)
        for (int64_t w = 0; w < Wo; ++w) {
          const int64_t ci = c - before;
          out[size_t(((n * Co + c) * Ho + h) * Wo + w)] =
              (ci >= 0 && ci < C) ? v[size_t(((n * C + ci) * H + h * s) * W + w * s)] : 0.f;
        }
  return Tensor::from_vector(out, {N, Co, Ho, Wo});
}

Tensor naive_slice(const Tensor& x, int64_t start, int64_t count) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const std::vector<float> v = x.to_vector<float>();
  std::vector<float> out(size_t(N * count * H * W), -1.f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < count; ++c)
      for (int64_t k = 0; k < H * W; ++k)
        out[size_t((n * count + c) * H * W + k)] = v[size_t((n * C + start + c) * H * W + k)];
  return Tensor::from_vector(out, {N, count, H, W});
}

std::vector<float> iota(int64_t n, float start = 0.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = start + float(i);
  return v;
}

// ---------------------------------------------------------------- concat

TEST_P(ChannelTest, ConcatHandWorked) {
  Tensor a = Tensor::from_vector<float>({1, 2, 7, 8}, {2, 1, 1, 2}).to(device());
  Tensor b = Tensor::from_vector<float>({3, 4, 5, 6, 9, 10, 11, 12}, {2, 2, 1, 2}).to(device());
  Tensor y = ops::concat_channels({a, b});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 1, 2}));
  EXPECT_EQ(y.device(), device());
  EXPECT_ALL_CLOSE(y, Tensor::from_vector(iota(12, 1.f), {2, 3, 1, 2}), kExact);
  // 2-d [N, Ci]
  Tensor p = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}).to(device());
  Tensor q = Tensor::from_vector<float>({5, 6}, {2, 1}).to(device());
  EXPECT_ALL_CLOSE(ops::concat_channels({p, q, p}), Tensor::from_vector<float>({1, 2, 5, 1, 2, 3, 4, 6, 3, 4}, {2, 5}),
                   kExact);
}

TEST_P(ChannelTest, ConcatMatchesNaiveLoop) {
  std::vector<Tensor> xs = {Tensor::randn({3, 2, 5, 6}, gen), Tensor::randn({3, 1, 5, 6}, gen),
                            Tensor::randn({3, 0, 5, 6}, gen), Tensor::randn({3, 4, 5, 6}, gen)};
  std::vector<Tensor> dxs;
  for (const Tensor& x : xs) dxs.push_back(x.to(device()));
  EXPECT_ALL_CLOSE(ops::concat_channels(dxs), naive_concat(xs), kExact);
  // A single input is a copy, not the same tensor.
  Tensor one = ops::concat_channels({dxs[0]});
  EXPECT_FALSE(one.same_storage(dxs[0]));
  EXPECT_ALL_CLOSE(one, xs[0], kExact);
}

TEST_P(ChannelTest, SliceInvertsConcat) {
  Tensor a = Tensor::randn({4, 3, 2, 5}, gen).to(device()), b = Tensor::randn({4, 5, 2, 5}, gen).to(device());
  Tensor y = ops::concat_channels({a, b});
  EXPECT_ALL_CLOSE(ops::slice_channels(y, 0, 3), a, kExact);
  EXPECT_ALL_CLOSE(ops::slice_channels(y, 3, 5), b, kExact);
  Tensor p = Tensor::randn({3, 4}, gen).to(device()), q = Tensor::randn({3, 2}, gen).to(device());
  Tensor z = ops::concat_channels({p, q});
  EXPECT_ALL_CLOSE(ops::slice_channels(z, 0, 4), p, kExact);
  EXPECT_ALL_CLOSE(ops::slice_channels(z, 4, 2), q, kExact);
}

// ---------------------------------------------------------------- subsample + pad

TEST_P(ChannelTest, SubsamplePadHandWorked) {
  // x[0, c, h, w] = 9c + 3h + w; stride 2 keeps rows/cols {0, 2}.
  Tensor x = Tensor::from_vector(iota(18), {1, 2, 3, 3}).to(device());
  Tensor y = ops::subsample_pad_channels(x, 2, 4);  // pad 1 before, 1 after
  EXPECT_EQ(y.shape(), (Shape{1, 4, 2, 2}));
  EXPECT_ALL_CLOSE(y, Tensor::from_vector<float>({0, 0, 0, 0, 0, 2, 6, 8, 9, 11, 15, 17, 0, 0, 0, 0}, {1, 4, 2, 2}),
                   kExact);
  // Odd padding: out_channels - C = 3 -> 1 before, 2 after.
  Tensor y5 = ops::subsample_pad_channels(x, 2, 5);
  EXPECT_ALL_CLOSE(y5,
                   Tensor::from_vector<float>({0, 0, 0, 0, 0, 2, 6, 8, 9, 11, 15, 17, 0, 0, 0, 0, 0, 0, 0, 0},
                                              {1, 5, 2, 2}),
                   kExact);
  // PyTorch's option A for planes = 2C: C/2 zero channels on each side.
  Tensor x4 = Tensor::randn({2, 4, 8, 8}, gen);
  Tensor y8 = ops::subsample_pad_channels(x4.to(device()), 2, 8).cpu();
  EXPECT_EQ(y8.shape(), (Shape{2, 8, 4, 4}));
  const std::vector<float> v8 = y8.to_vector<float>(), v4 = x4.to_vector<float>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t k = 0; k < 16; ++k) {
        const float got = v8[size_t((n * 8 + c) * 16 + k)];
        const float want = (c < 2 || c >= 6) ? 0.f : v4[size_t(((n * 4 + c - 2) * 8 + (k / 4) * 2) * 8 + (k % 4) * 2)];
        ASSERT_EQ(got, want) << "n " << n << " c " << c << " k " << k;
      }
}

TEST_P(ChannelTest, SubsamplePadMatchesNaiveLoop) {
  Tensor x = Tensor::randn({3, 5, 7, 6}, gen);
  struct Case { int s; int64_t co; };
  for (Case cs : {Case{1, 5}, Case{1, 9}, Case{2, 10}, Case{2, 5}, Case{3, 8}, Case{7, 6}, Case{10, 12}}) {
    SCOPED_TRACE(::testing::Message() << "stride " << cs.s << " out " << cs.co);
    Tensor y = ops::subsample_pad_channels(x.to(device()), cs.s, cs.co);
    EXPECT_ALL_CLOSE(y, naive_subsample_pad(x, cs.s, cs.co), kExact);
  }
}

// ---------------------------------------------------------------- slice

TEST_P(ChannelTest, SliceMatchesNaiveLoop) {
  Tensor x = Tensor::randn({3, 7, 4, 5}, gen);
  for (auto [start, count] : {std::pair<int64_t, int64_t>{0, 7}, {2, 3}, {6, 1}, {4, 0}}) {
    SCOPED_TRACE(start);
    Tensor y = ops::slice_channels(x.to(device()), start, count);
    EXPECT_ALL_CLOSE(y, naive_slice(x, start, count), kExact);
  }
  // Hand-worked 2-d case.
  Tensor m = Tensor::from_vector(iota(8), {2, 4}).to(device());
  EXPECT_ALL_CLOSE(ops::slice_channels(m, 1, 2), Tensor::from_vector<float>({1, 2, 5, 6}, {2, 2}), kExact);
}

// ---------------------------------------------------------------- one_hot

TEST_P(ChannelTest, OneHot) {
  Tensor labels = Tensor::from_vector<int64_t>({2, 0, 3, 2}, {4}).to(device());
  Tensor y = ops::one_hot(labels, 4);
  EXPECT_EQ(y.dtype(), DType::F32);
  EXPECT_EQ(y.device(), device());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_ALL_CLOSE(y, Tensor::from_vector<float>({0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0}, {4, 4}), kExact);
  // Random labels vs a naive loop.
  const int64_t n = 300, k = 10;
  std::vector<int64_t> lv(static_cast<size_t>(n));
  for (auto& l : lv) l = gen.randint(k);
  std::vector<float> want(size_t(n * k), 0.f);
  for (int64_t i = 0; i < n; ++i) want[size_t(i * k + lv[size_t(i)])] = 1.f;
  EXPECT_ALL_CLOSE(ops::one_hot(Tensor::from_vector(lv, {n}).to(device()), k), Tensor::from_vector(want, {n, k}),
                   kExact);
}

TEST_P(ChannelTest, OneHotRejectsOutOfRangeLabels) {
  Tensor labels = Tensor::from_vector<int64_t>({1, 5, 0, -1}, {4}).to(device());
  try {
    ops::one_hot(labels, 5);
    FAIL() << "expected oodkit::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("labels[1] = 5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("labels[3] = -1"), std::string::npos) << msg;
  }
  EXPECT_THROW(ops::one_hot(Tensor::from_vector<int32_t>({0, 1}, {2}).to(device()), 3), Error);
  EXPECT_THROW(ops::one_hot(Tensor::from_vector<int64_t>({0, 1}, {1, 2}).to(device()), 3), Error);
  EXPECT_THROW(ops::one_hot(Tensor::from_vector<int64_t>({0}, {1}).to(device()), 0), Error);
}

// ---------------------------------------------------------------- gradients

TEST(ChannelGrad, FiniteDifferences) {
  Generator gen(17);
  // concat: the middle input needs no grad (its slot of the result is undefined).
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::concat_channels(x); },
                   {randn_f64({2, 2, 3, 2}, gen), randn_f64({2, 1, 3, 2}, gen, false), randn_f64({2, 3, 3, 2}, gen)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::concat_channels({x[0], x[1], x[0]}); },
                   {randn_f64({3, 2}, gen), randn_f64({3, 4}, gen)});
  for (int s : {1, 2, 3}) {
    SCOPED_TRACE(s);
    EXPECT_GRADCHECK([s](const std::vector<Tensor>& x) { return ops::subsample_pad_channels(x[0], s, 7); },
                     {randn_f64({2, 3, 5, 4}, gen)});
  }
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::slice_channels(x[0], 1, 3); },
                   {randn_f64({2, 5, 3, 3}, gen)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::slice_channels(x[0], 2, 2); },
                   {randn_f64({3, 4}, gen)});
}

TEST(ChannelGrad, BackwardHandWorked) {
  // subsample_pad backward routes g back to the kept positions and drops the padded channels.
  Tensor x = Tensor::zeros({1, 1, 3, 3}, DType::F64).set_requires_grad(true);
  Tensor g = Tensor::from_vector<double>({10, 11, 12, 13, 1, 2, 3, 4, 20, 21, 22, 23}, {1, 3, 2, 2});
  ops::subsample_pad_channels(x, 2, 3).backward(g);
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector<double>({1, 0, 2, 0, 0, 0, 3, 0, 4}, {1, 1, 3, 3}), kExact);
  Tensor z = Tensor::zeros({1, 4}, DType::F64).set_requires_grad(true);
  ops::slice_channels(z, 1, 2).backward(Tensor::from_vector<double>({5, 6}, {1, 2}));
  EXPECT_ALL_CLOSE(z.grad(), Tensor::from_vector<double>({0, 5, 6, 0}, {1, 4}), kExact);
}

TEST_P(ChannelTest, BackwardMatchesCpu) {
  Tensor a = Tensor::randn({3, 4, 7, 6}, gen), b = Tensor::randn({3, 2, 7, 6}, gen);
  Tensor w1 = Tensor::randn({3, 12, 4, 3}, gen), w2 = Tensor::randn({3, 3, 7, 6}, gen);
  auto run = [&](Device d) {
    Tensor x = a.to(d).clone().set_requires_grad(true), y = b.to(d).clone().set_requires_grad(true);
    Tensor c = ops::concat_channels({x, y, x});                                       // [3, 10, 7, 6]
    Tensor l1 = ops::sum(ops::mul(ops::subsample_pad_channels(c, 2, 12), w1.to(d)));  // [3, 12, 4, 3]
    Tensor l2 = ops::sum(ops::mul(ops::slice_channels(c, 3, 3), w2.to(d)));
    ops::add(l1, l2).backward();
    return std::make_pair(x.grad(), y.grad());
  };
  auto ref = run(Device::cpu());
  auto got = run(device());
  // Each gradient element is a sum of at most three products: exact up to float rounding.
  EXPECT_ALL_CLOSE(got.first, ref.first, oodkit::testing::kF32);
  EXPECT_ALL_CLOSE(got.second, ref.second, oodkit::testing::kF32);
}

// ---------------------------------------------------------------- errors

TEST_P(ChannelTest, BadArgumentsThrow) {
  auto r = [&](const Shape& s) { return Tensor::randn(s, gen).to(device()); };
  // concat
  EXPECT_THROW(ops::concat_channels({}), Error);
  EXPECT_THROW(ops::concat_channels({r({2, 3, 4, 4}), r({3, 3, 4, 4})}), Error);  // N
  EXPECT_THROW(ops::concat_channels({r({2, 3, 4, 4}), r({2, 3, 5, 4})}), Error);  // H
  EXPECT_THROW(ops::concat_channels({r({2, 3, 4, 4}), r({2, 3, 4, 5})}), Error);  // W
  EXPECT_THROW(ops::concat_channels({r({2, 3, 4, 4}), r({2, 3})}), Error);        // rank
  EXPECT_THROW(ops::concat_channels({r({2, 3, 4})}), Error);                      // 3-d
  EXPECT_THROW(ops::concat_channels({r({2, 3}), Tensor()}), Error);
  EXPECT_THROW(ops::concat_channels({r({2, 3}), Tensor::zeros({2, 3}, DType::I64, device())}), Error);
  if (on_cuda()) EXPECT_THROW(ops::concat_channels({r({2, 3}), Tensor::randn({2, 3}, gen)}), Error);  // device
  try {
    ops::concat_channels({r({2, 3, 4, 4}), r({2, 1, 4, 4}), r({2, 3, 5, 4})});
    FAIL() << "expected oodkit::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("xs[2]"), std::string::npos) << e.what();
  }
  // subsample_pad
  EXPECT_THROW(ops::subsample_pad_channels(r({2, 4, 4, 4}), 2, 3), Error);  // out_channels < C
  EXPECT_THROW(ops::subsample_pad_channels(r({2, 4, 4, 4}), 0, 8), Error);  // stride < 1
  EXPECT_THROW(ops::subsample_pad_channels(r({2, 4, 4, 4}), -1, 8), Error);
  EXPECT_THROW(ops::subsample_pad_channels(r({2, 4}), 1, 8), Error);  // not 4-d
  // slice
  EXPECT_THROW(ops::slice_channels(r({2, 4, 3, 3}), 3, 2), Error);
  EXPECT_THROW(ops::slice_channels(r({2, 4, 3, 3}), -1, 2), Error);
  EXPECT_THROW(ops::slice_channels(r({2, 4, 3, 3}), 0, -1), Error);
  EXPECT_THROW(ops::slice_channels(r({8}), 0, 1), Error);
}

}  // namespace
