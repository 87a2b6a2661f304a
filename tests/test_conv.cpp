#include <string>

#include "framework/ops/conv.h"
#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::randn_f64;
using ops::Conv2dOptions;
using ops::ConvTranspose2dOptions;

namespace {

// ------------------------------------------------------------------ naive references (double)

// Direct 7-loop cross-correlation. x [N,C,H,W], w [K,C,kh,kw], b [K] or undefined.
Tensor naive_conv2d(const Tensor& xt, const Tensor& wt, const Tensor& bt, const Conv2dOptions& o) {
  const std::vector<double> x = xt.to(DType::F64).to_vector<double>(), w = wt.to(DType::F64).to_vector<double>();
  const std::vector<double> b = bt.defined() ? bt.to(DType::F64).to_vector<double>() : std::vector<double>();
  const int64_t N = xt.size(0), C = xt.size(1), H = xt.size(2), W = xt.size(3);
  const int64_t K = wt.size(0), kh = wt.size(2), kw = wt.size(3);
  const int64_t Ho = (H + 2 * o.pad_h - o.dilation_h * (kh - 1) - 1) / o.stride_h + 1;
  const int64_t Wo = (W + 2 * o.pad_w - o.dilation_w * (kw - 1) - 1) / o.stride_w + 1;
  std::vector<double> y(size_t(N * K * Ho * Wo));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = b.empty() ? 0.0 : b[size_t(k)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * o.stride_h - o.pad_h + i * o.dilation_h;
                const int64_t iw = ow * o.stride_w - o.pad_w + j * o.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[size_t(((n * C + c) * H + ih) * W + iw)] * w[size_t(((k * C + c) * kh + i) * kw + j)];
              }
          y[size_t(((n * K + k) * Ho + oh) * Wo + ow)] = acc;
        }
  return Tensor::from_vector(y, {N, K, Ho, Wo});
}

// Direct 7-loop transposed convolution (scatter form): every input pixel adds its weighted
// filter into the output. x [N,Cin,H,W], w [Cin,Cout,kh,kw], b [Cout] or undefined.
Tensor naive_conv_transpose2d(const Tensor& xt, const Tensor& wt, const Tensor& bt, const ConvTranspose2dOptions& o) {
  const std::vector<double> x = xt.to(DType::F64).to_vector<double>(), w = wt.to(DType::F64).to_vector<double>();
  const std::vector<double> b = bt.defined() ? bt.to(DType::F64).to_vector<double>() : std::vector<double>();
  const int64_t N = xt.size(0), Ci = xt.size(1), H = xt.size(2), W = xt.size(3);
  const int64_t Co = wt.size(1), kh = wt.size(2), kw = wt.size(3);
  const int64_t Ho = (H - 1) * o.stride_h - 2 * o.pad_h + o.dilation_h * (kh - 1) + o.output_pad_h + 1;
  const int64_t Wo = (W - 1) * o.stride_w - 2 * o.pad_w + o.dilation_w * (kw - 1) + o.output_pad_w + 1;
  std::vector<double> y(size_t(N * Co * Ho * Wo), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t p = 0; p < Ho * Wo; ++p) y[size_t((n * Co + co) * Ho * Wo + p)] = b.empty() ? 0.0 : b[size_t(co)];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t co = 0; co < Co; ++co)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t oh = ih * o.stride_h - o.pad_h + i * o.dilation_h;
                const int64_t ow = iw * o.stride_w - o.pad_w + j * o.dilation_w;
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                y[size_t(((n * Co + co) * Ho + oh) * Wo + ow)] +=
                    x[size_t(((n * Ci + ci) * H + ih) * W + iw)] * w[size_t(((ci * Co + co) * kh + i) * kw + j)];
              }
  return Tensor::from_vector(y, {N, Co, Ho, Wo});
}

Conv2dOptions conv_opts(int sh, int sw, int ph, int pw, int dh, int dw) {
  Conv2dOptions o;
  o.stride_h = sh, o.stride_w = sw, o.pad_h = ph, o.pad_w = pw, o.dilation_h = dh, o.dilation_w = dw;
  return o;
}
ConvTranspose2dOptions tconv_opts(int sh, int sw, int ph, int pw, int oph, int opw, int dh, int dw) {
  ConvTranspose2dOptions o;
  o.stride_h = sh, o.stride_w = sw, o.pad_h = ph, o.pad_w = pw;
  o.output_pad_h = oph, o.output_pad_w = opw, o.dilation_h = dh, o.dilation_w = dw;
  return o;
}

struct ConvCase {
  int64_t n, cin, cout, h, w, kh, kw;
  Conv2dOptions o;
  bool bias;
};
std::vector<ConvCase> conv_cases() {
  return {
      {2, 3, 5, 7, 6, 3, 3, Conv2dOptions::square(1, 1), true},       // "same" 3x3
      {3, 4, 2, 9, 8, 3, 3, Conv2dOptions::square(2, 0), false},      // stride 2, no pad
      {2, 3, 4, 8, 9, 1, 1, Conv2dOptions::square(1, 0), true},       // pointwise 1x1
      {2, 3, 4, 7, 7, 1, 1, Conv2dOptions::square(2, 1), true},       // 1x1 with stride and pad
      {1, 2, 3, 10, 10, 4, 4, Conv2dOptions::square(2, 2), true},     // batch 1, 4x4, pad 2
      {2, 2, 3, 9, 10, 3, 3, Conv2dOptions::square(1, 2, 2), false},  // dilation 2
      {2, 3, 2, 11, 9, 3, 2, conv_opts(2, 1, 1, 2, 2, 1), true},      // non-square everything
      {2, 2, 3, 5, 12, 1, 4, conv_opts(1, 3, 0, 1, 1, 2), true},      // 1x4 filter, stride 3
      {4, 16, 16, 8, 8, 3, 3, Conv2dOptions::square(1, 1), true},     // ResNet-like block
      {9, 3, 4, 4, 4, 3, 3, Conv2dOptions::square(1, 1), true},       // batch 9, small maps: chunked GEMMs
      {9, 5, 3, 2, 3, 1, 1, Conv2dOptions::square(1, 0), false},      // chunked pointwise
  };
}

struct TConvCase {
  int64_t n, cin, cout, h, w, kh, kw;
  ConvTranspose2dOptions o;
  bool bias;
};
std::vector<TConvCase> tconv_cases() {
  return {
      {2, 8, 4, 4, 4, 4, 4, ConvTranspose2dOptions::square(2, 1), true},   // DCGAN: 4x4 -> 8x8
      {2, 16, 8, 1, 1, 4, 4, ConvTranspose2dOptions::square(1, 0), false}, // DCGAN: 1x1 -> 4x4
      {3, 3, 5, 5, 4, 3, 3, ConvTranspose2dOptions::square(2, 1, 1), true},  // output_pad 1
      {2, 4, 3, 6, 6, 1, 1, ConvTranspose2dOptions::square(1, 0), true},     // pointwise
      {2, 3, 2, 4, 5, 3, 3, ConvTranspose2dOptions::square(2, 2, 1, 2), false},  // dilation + output_pad
      {2, 2, 3, 5, 5, 3, 3, ConvTranspose2dOptions::square(1, 1, 1, 2), true},   // output_pad >= stride
      {1, 3, 2, 4, 3, 2, 3, tconv_opts(2, 3, 0, 1, 1, 2, 1, 1), true},          // non-square, batch 1
      {2, 2, 4, 3, 4, 4, 2, tconv_opts(1, 2, 2, 0, 0, 1, 1, 2), false},         // pad 2, dilation w
      {9, 6, 3, 2, 2, 4, 4, ConvTranspose2dOptions::square(2, 1), true},     // batch 9: chunked GEMMs
  };
}

Tensor maybe_to(const Tensor& t, Device d) { return t.defined() ? t.to(d) : Tensor(); }

// ------------------------------------------------------------------ forward

class ConvTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ConvTest);

TEST_P(ConvTest, Conv2dForwardMatchesNaive) {
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.n << "," << c.cin << "," << c.h << "," << c.w << "] w ["
                                      << c.cout << "," << c.cin << "," << c.kh << "," << c.kw << "]");
    Tensor x = Tensor::randn({c.n, c.cin, c.h, c.w}, gen), w = Tensor::randn({c.cout, c.cin, c.kh, c.kw}, gen);
    Tensor b = c.bias ? Tensor::randn({c.cout}, gen) : Tensor();
    const Tensor ref = naive_conv2d(x, w, b, c.o);
    const Tensor y = ops::conv2d(x.to(device()), w.to(device()), maybe_to(b, device()), c.o);
    EXPECT_ALL_CLOSE(y, ref, f32_reduction(c.cin * c.kh * c.kw));
  }
}

TEST_P(ConvTest, ConvTranspose2dForwardMatchesNaive) {
  for (const TConvCase& c : tconv_cases()) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.n << "," << c.cin << "," << c.h << "," << c.w << "] w ["
                                      << c.cin << "," << c.cout << "," << c.kh << "," << c.kw << "]");
    Tensor x = Tensor::randn({c.n, c.cin, c.h, c.w}, gen), w = Tensor::randn({c.cin, c.cout, c.kh, c.kw}, gen);
    Tensor b = c.bias ? Tensor::randn({c.cout}, gen) : Tensor();
    const Tensor ref = naive_conv_transpose2d(x, w, b, c.o);
    const Tensor y = ops::conv_transpose2d(x.to(device()), w.to(device()), maybe_to(b, device()), c.o);
    EXPECT_ALL_CLOSE(y, ref, f32_reduction(c.cin * c.kh * c.kw));
  }
}

TEST_P(ConvTest, DcganDecoderShapes) {
  // k4 s1 p0: 1x1 -> 4x4, then k4 s2 p1: 4x4 -> 8x8.
  Tensor z = Tensor::randn({3, 6, 1, 1}, gen).to(device());
  Tensor w1 = Tensor::randn({6, 5, 4, 4}, gen).to(device()), w2 = Tensor::randn({5, 2, 4, 4}, gen).to(device());
  Tensor h = ops::conv_transpose2d(z, w1, Tensor(), ConvTranspose2dOptions::square(1, 0));
  EXPECT_EQ(h.shape(), Shape({3, 5, 4, 4}));
  Tensor y = ops::conv_transpose2d(h, w2, Tensor(), ConvTranspose2dOptions::square(2, 1));
  EXPECT_EQ(y.shape(), Shape({3, 2, 8, 8}));
  EXPECT_ALL_CLOSE(y, naive_conv_transpose2d(h.cpu(), w2.cpu(), Tensor(), ConvTranspose2dOptions::square(2, 1)),
                   f32_reduction(5 * 16));
  // The matching encoder convolution maps 8x8 back to 4x4 and 4x4 to 1x1.
  EXPECT_EQ(ops::conv2d(y, Tensor::randn({4, 2, 4, 4}, gen).to(device()), Tensor(), Conv2dOptions::square(2, 1))
                .shape(),
            Shape({3, 4, 4, 4}));
  EXPECT_EQ(ops::conv2d(h, Tensor::randn({1, 5, 4, 4}, gen).to(device()), Tensor(), Conv2dOptions::square(1, 0))
                .shape(),
            Shape({3, 1, 1, 1}));
}

// ------------------------------------------------------------------ backward: device vs CPU

// Runs sum(op(x, w, b) * r) backward on `d`; returns {y, dx, dw, db}.
template <class Op>
std::vector<Tensor> run_backward(Op op, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& r, Device d) {
  Tensor xd = x.to(d).clone().set_requires_grad(true), wd = w.to(d).clone().set_requires_grad(true);
  Tensor bd = b.defined() ? b.to(d).clone().set_requires_grad(true) : Tensor();
  Tensor y = op(xd, wd, bd);
  ops::sum(ops::mul(y, r.to(d))).backward();
  return {y, xd.grad(), wd.grad(), bd.defined() ? bd.grad() : Tensor()};
}

TEST_P(ConvTest, Conv2dBackwardMatchesCpu) {
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.n << "," << c.cin << "," << c.h << "," << c.w << "] w ["
                                      << c.cout << "," << c.cin << "," << c.kh << "," << c.kw << "]");
    Tensor x = Tensor::randn({c.n, c.cin, c.h, c.w}, gen), w = Tensor::randn({c.cout, c.cin, c.kh, c.kw}, gen);
    Tensor b = c.bias ? Tensor::randn({c.cout}, gen) : Tensor();
    const Shape ys = naive_conv2d(x, w, b, c.o).shape();
    Tensor r = Tensor::randn(ys, gen);
    auto op = [&](const Tensor& a, const Tensor& k, const Tensor& bb) { return ops::conv2d(a, k, bb, c.o); };
    const auto ref = run_backward(op, x, w, b, r, Device::cpu());
    const auto got = run_backward(op, x, w, b, r, device());
    const int64_t spatial = ys[0] * ys[2] * ys[3];
    EXPECT_ALL_CLOSE(got[0], ref[0], f32_reduction(c.cin * c.kh * c.kw));
    EXPECT_ALL_CLOSE(got[1], ref[1], f32_reduction(c.cout * c.kh * c.kw));
    EXPECT_ALL_CLOSE(got[2], ref[2], f32_reduction(spatial));
    if (c.bias) EXPECT_ALL_CLOSE(got[3], ref[3], f32_reduction(spatial));
  }
}

TEST_P(ConvTest, ConvTranspose2dBackwardMatchesCpu) {
  for (const TConvCase& c : tconv_cases()) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.n << "," << c.cin << "," << c.h << "," << c.w << "] w ["
                                      << c.cin << "," << c.cout << "," << c.kh << "," << c.kw << "]");
    Tensor x = Tensor::randn({c.n, c.cin, c.h, c.w}, gen), w = Tensor::randn({c.cin, c.cout, c.kh, c.kw}, gen);
    Tensor b = c.bias ? Tensor::randn({c.cout}, gen) : Tensor();
    const Shape ys = naive_conv_transpose2d(x, w, b, c.o).shape();
    Tensor r = Tensor::randn(ys, gen);
    auto op = [&](const Tensor& a, const Tensor& k, const Tensor& bb) { return ops::conv_transpose2d(a, k, bb, c.o); };
    const auto ref = run_backward(op, x, w, b, r, Device::cpu());
    const auto got = run_backward(op, x, w, b, r, device());
    EXPECT_ALL_CLOSE(got[0], ref[0], f32_reduction(c.cin * c.kh * c.kw));
    EXPECT_ALL_CLOSE(got[1], ref[1], f32_reduction(c.cout * c.kh * c.kw));
    EXPECT_ALL_CLOSE(got[2], ref[2], f32_reduction(c.n * c.h * c.w));
    if (c.bias) EXPECT_ALL_CLOSE(got[3], ref[3], f32_reduction(ys[0] * ys[2] * ys[3]));
  }
}

TEST_P(ConvTest, OnlyRequestedGradientsAreComputed) {
  Tensor x = Tensor::randn({2, 3, 6, 6}, gen).to(device());
  Tensor w = Tensor::randn({4, 3, 3, 3}, gen).to(device()).set_requires_grad(true);
  Tensor b = Tensor::randn({4}, gen).to(device());
  Tensor y = ops::conv2d(x, w, b, Conv2dOptions::square(1, 1));
  ops::sum(y).backward();
  EXPECT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  // No input requires grad: no graph.
  Tensor y2 = ops::conv_transpose2d(x, w.detach().reshape({3, 4, 3, 3}), Tensor(), ConvTranspose2dOptions::square(1, 1));
  EXPECT_FALSE(y2.requires_grad());
}

TEST_P(ConvTest, Tf32ModeStaysClose) {
  if (!on_cuda()) GTEST_SKIP() << "math mode only affects CUDA";
  Tensor x = Tensor::randn({4, 16, 12, 12}, gen).to(device()), w = Tensor::randn({8, 16, 3, 3}, gen).to(device());
  const Tensor ref = naive_conv2d(x.cpu(), w.cpu(), Tensor(), Conv2dOptions::square(1, 1));
  Tensor y, yt;
  {
    MathModeGuard tf32(MathMode::TF32);
    y = ops::conv2d(x, w, Tensor(), Conv2dOptions::square(1, 1));
    yt = ops::conv_transpose2d(y, w, Tensor(), ConvTranspose2dOptions::square(1, 1));
  }
  EXPECT_LT(oodkit::testing::nmse(y, ref), 1e-5);
  EXPECT_LT(oodkit::testing::nmse(yt, naive_conv_transpose2d(y.cpu(), w.cpu(), Tensor(),
                                                             ConvTranspose2dOptions::square(1, 1))),
            1e-5);
  // Back in FP32 mode the result is float32-exact again.
  EXPECT_ALL_CLOSE(ops::conv2d(x, w, Tensor(), Conv2dOptions::square(1, 1)), ref, f32_reduction(16 * 9));
}

// TF32 backward (data and filter gradients, conv and its transpose) against the CPU's float32
// gradients: within TF32's rounding (normalised squared error ~1e-6), far from a wrong gradient (~1).
TEST_P(ConvTest, Tf32BackwardStaysClose) {
  if (!on_cuda()) GTEST_SKIP() << "math mode only affects CUDA";
  Tensor x = Tensor::randn({4, 16, 12, 12}, gen), w = Tensor::randn({8, 16, 3, 3}, gen), b = Tensor::randn({8}, gen);
  Tensor r = Tensor::randn({4, 8, 12, 12}, gen), rt = Tensor::randn({4, 16, 12, 12}, gen);
  auto conv = [](const Tensor& a, const Tensor& k, const Tensor& bb) {
    return ops::conv2d(a, k, bb, Conv2dOptions::square(1, 1));
  };
  auto tconv = [](const Tensor& a, const Tensor& k, const Tensor& bb) {
    return ops::conv_transpose2d(a, k, bb, ConvTranspose2dOptions::square(1, 1));
  };
  const auto ref = run_backward(conv, x, w, b, r, Device::cpu());
  const auto ref_t = run_backward(tconv, r, w, Tensor(), rt, Device::cpu());
  std::vector<Tensor> got, got_t;
  {
    MathModeGuard tf32(MathMode::TF32);
    got = run_backward(conv, x, w, b, r, device());
    got_t = run_backward(tconv, r, w, Tensor(), rt, device());
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_LT(oodkit::testing::nmse(got[i], ref[i]), 1e-5) << "conv2d output/dx/dw #" << i;
    EXPECT_LT(oodkit::testing::nmse(got_t[i], ref_t[i]), 1e-5) << "conv_transpose2d output/dx/dw #" << i;
  }
  EXPECT_ALL_CLOSE(got[3], ref[3], f32_reduction(4 * 12 * 12));  // bias gradient: own kernel, no TF32
}

TEST_P(ConvTest, BadArgumentsThrow) {
  const Device d = device();
  Tensor x = Tensor::randn({2, 3, 5, 5}, gen).to(d), w = Tensor::randn({4, 3, 3, 3}, gen).to(d);
  const Conv2dOptions o = Conv2dOptions::square(1, 0);
  EXPECT_THROW(ops::conv2d(x.reshape({6, 5, 5}), w, Tensor(), o), Error);                 // x not 4-d
  EXPECT_THROW(ops::conv2d(x, w.reshape({4, 27}), Tensor(), o), Error);                   // weight not 4-d
  EXPECT_THROW(ops::conv2d(x, Tensor::randn({4, 2, 3, 3}, gen).to(d), Tensor(), o), Error);  // channels
  EXPECT_THROW(ops::conv2d(x, w, Tensor::randn({3}, gen).to(d), o), Error);               // bias size
  EXPECT_THROW(ops::conv2d(x, w, Tensor::randn({2, 2}, gen).to(d), o), Error);            // bias not 1-d
  EXPECT_THROW(ops::conv2d(x, Tensor::randn({4, 3, 6, 6}, gen).to(d), Tensor(), o), Error);  // empty output
  EXPECT_THROW(ops::conv2d(x, w, Tensor(), Conv2dOptions::square(0, 0)), Error);          // stride 0
  EXPECT_THROW(ops::conv2d(x, w, Tensor(), Conv2dOptions::square(1, -1)), Error);         // negative pad
  EXPECT_THROW(ops::conv2d(x, w, Tensor(), Conv2dOptions::square(1, 0, 0)), Error);       // dilation 0
  EXPECT_THROW(ops::conv2d(x, w, Tensor(), Conv2dOptions::square(1, 0, 3)), Error);       // dilated too big
  EXPECT_THROW(ops::conv2d(Tensor(), w, Tensor(), o), Error);                             // undefined x
  EXPECT_THROW(ops::conv2d(x, Tensor::randn({4, 3, 0, 3}, gen).to(d), Tensor(), o), Error);  // empty kernel

  Tensor tw = Tensor::randn({3, 4, 3, 3}, gen).to(d);
  EXPECT_NO_THROW(ops::conv_transpose2d(x, tw, Tensor(), ConvTranspose2dOptions::square(2, 1, 1)));
  EXPECT_THROW(ops::conv_transpose2d(x, w, Tensor(), ConvTranspose2dOptions::square(1, 0)), Error);  // Cin
  EXPECT_THROW(ops::conv_transpose2d(x, tw, Tensor::randn({3}, gen).to(d), ConvTranspose2dOptions::square(1, 0)),
               Error);  // bias must match Cout = 4
  EXPECT_THROW(ops::conv_transpose2d(x, tw, Tensor(), ConvTranspose2dOptions::square(2, 1, 2)), Error);  // op >= s, d
  EXPECT_THROW(ops::conv_transpose2d(x, tw, Tensor(), ConvTranspose2dOptions::square(1, 0, 1)), Error);  // op >= s, d
  EXPECT_THROW(ops::conv_transpose2d(x, tw, Tensor(), ConvTranspose2dOptions::square(1, 0, -1)), Error);  // op < 0
  EXPECT_NO_THROW(ops::conv_transpose2d(x, tw, Tensor(), ConvTranspose2dOptions::square(1, 0, 1, 2)));  // op < d
  EXPECT_THROW(ops::conv_transpose2d(Tensor::randn({1, 3, 1, 1}, gen).to(d),
                                     Tensor::randn({3, 2, 1, 1}, gen).to(d), Tensor(),
                                     ConvTranspose2dOptions::square(1, 1)),
               Error);  // output size -1

  if (on_cuda()) {
    EXPECT_THROW(ops::conv2d(x, w.cpu(), Tensor(), o), Error);                       // device mismatch
    EXPECT_THROW(ops::conv2d(x, w, Tensor::randn({4}, gen), o), Error);              // bias on CPU
    EXPECT_THROW(ops::conv2d(x.cpu().to(DType::F64).to(d), w.cpu().to(DType::F64).to(d), Tensor(), o), Error);  // float64 on CUDA
  } else {
    EXPECT_THROW(ops::conv2d(x, w.to(DType::F64), Tensor(), o), Error);  // dtype mismatch
  }
}

TEST(ConvErrors, MessagesNameOpArgumentAndShapes) {
  Generator gen(3);
  Tensor x = Tensor::randn({2, 3, 5, 5}, gen), w = Tensor::randn({4, 2, 3, 3}, gen);
  try {
    ops::conv2d(x, w, Tensor(), Conv2dOptions::square(1, 0));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conv2d"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3, 5, 5]"), std::string::npos) << m;
    EXPECT_NE(m.find("[4, 2, 3, 3]"), std::string::npos) << m;
  }
  try {
    ops::conv_transpose2d(x, Tensor::randn({3, 2, 3, 3}, gen), Tensor(), ConvTranspose2dOptions::square(2, 0, 2));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conv_transpose2d"), std::string::npos) << m;
    EXPECT_NE(m.find("output_pad"), std::string::npos) << m;
  }
}

// ------------------------------------------------------------------ finite differences (float64)

TEST(ConvGrad, Conv2dFiniteDifferences) {
  Generator gen(11);
  struct G {
    Shape x, w;
    Conv2dOptions o;
  };
  const std::vector<G> cases = {
      {{2, 2, 5, 6}, {3, 2, 3, 3}, Conv2dOptions::square(1, 1)},
      {{3, 2, 7, 6}, {2, 2, 3, 2}, conv_opts(2, 1, 1, 0, 2, 2)},  // stride 2 + dilation, non-square
      {{2, 3, 4, 4}, {2, 3, 1, 1}, Conv2dOptions::square(1, 0)},  // pointwise path
      {{1, 2, 6, 5}, {2, 2, 4, 4}, Conv2dOptions::square(2, 2)},  // batch 1
      // Batches of 9 small maps: several images per GEMM (a chunk), whatever the thread count.
      {{9, 2, 3, 3}, {3, 2, 2, 2}, Conv2dOptions::square(1, 1)},
      {{9, 3, 2, 2}, {2, 3, 1, 1}, Conv2dOptions::square(1, 0)},  // chunked pointwise
  };
  for (const G& c : cases) {
    SCOPED_TRACE(::testing::Message() << "x " << shape_str(c.x) << " w " << shape_str(c.w));
    const Conv2dOptions o = c.o;
    auto f = [o](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], o); };
    EXPECT_GRADCHECK(f, {randn_f64(c.x, gen), randn_f64(c.w, gen), randn_f64({c.w[0]}, gen)});
    auto g = [o](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], Tensor(), o); };
    EXPECT_GRADCHECK(g, {randn_f64(c.x, gen, false), randn_f64(c.w, gen)});  // weight only
    EXPECT_GRADCHECK(g, {randn_f64(c.x, gen), randn_f64(c.w, gen, false)});  // input only
  }
}

TEST(ConvGrad, ConvTranspose2dFiniteDifferences) {
  Generator gen(12);
  struct G {
    Shape x, w;
    ConvTranspose2dOptions o;
  };
  const std::vector<G> cases = {
      {{2, 3, 3, 3}, {3, 2, 4, 4}, ConvTranspose2dOptions::square(2, 1)},        // DCGAN-style
      {{2, 2, 3, 4}, {2, 3, 3, 3}, ConvTranspose2dOptions::square(2, 1, 1, 2)},  // stride 2 + dilation + op
      {{2, 2, 4, 3}, {2, 2, 3, 2}, ConvTranspose2dOptions::square(1, 1, 1, 2)},  // output_pad >= stride
      {{1, 2, 3, 3}, {2, 3, 2, 3}, tconv_opts(2, 3, 0, 1, 1, 2, 1, 1)},          // non-square, batch 1
      {{2, 3, 3, 3}, {3, 2, 1, 1}, ConvTranspose2dOptions::square(1, 0)},        // pointwise
      {{9, 3, 2, 2}, {3, 2, 4, 4}, ConvTranspose2dOptions::square(2, 1)},        // batch 9: chunked
  };
  for (const G& c : cases) {
    SCOPED_TRACE(::testing::Message() << "x " << shape_str(c.x) << " w " << shape_str(c.w));
    const ConvTranspose2dOptions o = c.o;
    auto f = [o](const std::vector<Tensor>& in) { return ops::conv_transpose2d(in[0], in[1], in[2], o); };
    EXPECT_GRADCHECK(f, {randn_f64(c.x, gen), randn_f64(c.w, gen), randn_f64({c.w[1]}, gen)});
    auto g = [o](const std::vector<Tensor>& in) { return ops::conv_transpose2d(in[0], in[1], Tensor(), o); };
    EXPECT_GRADCHECK(g, {randn_f64(c.x, gen, false), randn_f64(c.w, gen)});
    EXPECT_GRADCHECK(g, {randn_f64(c.x, gen), randn_f64(c.w, gen, false)});
  }
}

TEST(ConvGrad, TransposeIsTheAdjointOfConv) {
  // <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for matching options (float64).
  Generator gen(13);
  const Conv2dOptions o = conv_opts(2, 2, 1, 0, 1, 2);
  Tensor x = Tensor::randn({2, 3, 9, 10}, gen, DType::F64), w = Tensor::randn({4, 3, 3, 3}, gen, DType::F64);
  Tensor cx = ops::conv2d(x, w, Tensor(), o);  // [2, 4, 5, 3]
  ASSERT_EQ(cx.shape(), Shape({2, 4, 5, 3}));
  Tensor y = Tensor::randn(cx.shape(), gen, DType::F64);
  // Ho = (5-1)*2 - 2 + 2 + op + 1 = 9 -> op_h 0; Wo = (3-1)*2 - 0 + 4 + op + 1 = 10 -> op_w 1.
  Tensor ty = ops::conv_transpose2d(y, w, Tensor(), tconv_opts(2, 2, 1, 0, 0, 1, 1, 2));
  ASSERT_EQ(ty.shape(), x.shape());
  EXPECT_NEAR(ops::sum(ops::mul(cx, y)).item(), ops::sum(ops::mul(x, ty)).item(), 1e-9);
}

}  // namespace

// CPU convolutions are batch invariant: an image's output and input gradient are bit-identical
// whether it is computed alone or inside any batch (ODIN, Mahalanobis and heatmap scores must not
// depend on the batching; the CPU kernels multiply chunks of images in one GEMM). Batches of 40
// images with 4x4 to 8x8 maps (chunks of up to 32 images), single images and a sub-batch of 7.
namespace {

struct ConvRun {
  Tensor out, input_grad;
};

ConvRun conv_run(bool transposed, const Tensor& x, const Tensor& w, const Tensor& r, int stride, int pad) {
  Tensor xg = x.clone();
  xg.set_requires_grad(true);
  const Tensor y = transposed ? ops::conv_transpose2d(xg, w, Tensor(), ConvTranspose2dOptions::square(stride, pad))
                              : ops::conv2d(xg, w, Tensor(), Conv2dOptions::square(stride, pad));
  ops::sum(ops::mul(y, r)).backward();
  return {y.detach(), xg.grad()};
}

template <class T>
bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<T>() == b.to_vector<T>();
}

}  // namespace

TEST(ConvBatchInvariance, CpuResultsDoNotDependOnTheBatch) {
  struct Shape {
    bool transposed;
    int64_t c, k, h, kernel;
    int stride, pad;
  };
  // Maps of at most 16 positions are computed in padded chunks of images, larger ones one
  // product per image (framework/ops/conv.cpp); both paths must be batch invariant.
  const std::vector<Shape> shapes = {{false, 5, 7, 4, 3, 1, 1},  // 4x4 maps, 3x3: chunks
                                     {false, 6, 4, 4, 1, 1, 0},  // pointwise, 4x4: chunks
                                     {false, 6, 4, 8, 1, 1, 0},  // pointwise, 8x8: one product per image
                                     {true, 6, 3, 4, 4, 2, 1},   // DCGAN step 4x4 -> 8x8: chunks
                                     {true, 9, 5, 1, 4, 1, 0},   // DCGAN first step 1x1 -> 4x4: chunks
                                     {false, 3, 4, 16, 3, 1, 1}};  // 16x16: one product per image
  Generator gen(21);
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(::testing::Message() << (dt == DType::F32 ? "f32 " : "f64 ") << (s.transposed ? "convT" : "conv")
                                        << " c" << s.c << " k" << s.k << " h" << s.h);
      const int64_t n = 40;
      const Tensor x = Tensor::randn({n, s.c, s.h, s.h}, gen, dt);
      const Tensor w = s.transposed ? Tensor::randn({s.c, s.k, s.kernel, s.kernel}, gen, dt)
                                    : Tensor::randn({s.k, s.c, s.kernel, s.kernel}, gen, dt);
      const Tensor y0 = s.transposed ? ops::conv_transpose2d(x, w, Tensor(), ConvTranspose2dOptions::square(s.stride, s.pad))
                                     : ops::conv2d(x, w, Tensor(), Conv2dOptions::square(s.stride, s.pad));
      const Tensor r = Tensor::randn(y0.shape(), gen, dt);
      const ConvRun full = conv_run(s.transposed, x, w, r, s.stride, s.pad);
      for (const auto& [start, len] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {13, 1}, {39, 1}, {11, 7}}) {
        const ConvRun part = conv_run(s.transposed, x.narrow(start, len), w, r.narrow(start, len), s.stride, s.pad);
        const bool out_same = dt == DType::F32 ? same_bits<float>(part.out, full.out.narrow(start, len))
                                               : same_bits<double>(part.out, full.out.narrow(start, len));
        const bool grad_same = dt == DType::F32
                                   ? same_bits<float>(part.input_grad, full.input_grad.narrow(start, len))
                                   : same_bits<double>(part.input_grad, full.input_grad.narrow(start, len));
        EXPECT_TRUE(out_same) << "output of images [" << start << ", " << start + len << ")";
        EXPECT_TRUE(grad_same) << "input gradient of images [" << start << ", " << start + len << ")";
      }
    }
  }
}
