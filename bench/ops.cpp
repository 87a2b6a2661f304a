// bench_ops: per-op throughput at the shapes of a CIFAR ResNet-18 / ResNet-20 training step.
//   conv2d forward / backward (dx + dweight) at every distinct ResNet-18 CIFAR layer shape and
//   the ResNet-20 ones (TFLOP/s, fp32 and TF32), a large GEMM (the matrix ceiling), linear,
//   batch_norm forward / backward (training mode), softmax, cross-entropy forward + backward,
//   global_avg_pool, and elementwise add / relu / scale (GB/s and % of the measured
//   device-to-device copy bandwidth); oodkit's exact k-NN (10k queries x 50k bank x 512, k = 50
//   and 1 on CUDA: compare its median ms with tools/torch_reference.py's knn_cdist_topk) and the
//   post-hoc score kernels (one read of F for z/NAP/FS; MSP, Energy) against the copy bandwidth.
// Backward is timed by calling the op's autograd node directly (under no-grad), so only the
// backward kernels are in the timed region. Inputs are random normal (never zeros).
//
// Usage: bench_ops [--device cuda|cpu] [--batch N] [--precision fp32,tf32] [--filter a,b]
//                  [--elems N] [--gemm N] [--knn-q Q --knn-m M --knn-d D --knn-k 50,1]
//                  [--score-batch N] [--json FILE] [--repeats R] [--flush-l2] ...
// CPU defaults are small (batch 8, 4M elements, GEMM 512) so that the program smoke-tests here.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/common/bench.h"
#include "framework/autograd.h"
#include "framework/ops/activation.h"
#include "framework/ops/batch_norm.h"
#include "framework/ops/conv.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/ops/loss.h"
#include "framework/ops/pool.h"
#include "framework/ops/reduce.h"
#include "framework/ops/softmax.h"
#include "framework/random.h"
#include "framework/tensor.h"
#include "models/registry.h"
#include "ood/input_ops.h"
#include "ood/knn.h"
#include "ood/scores.h"

using namespace oodkit;
using bench::Record;

namespace {

struct ConvShape {
  const char* name;
  int64_t cin, cout, hw;  // input is [N, cin, hw, hw]
  int k, stride, pad;
};

// Distinct convolutions of the kuangliu ResNet-18 for 32x32 CIFAR (conv1, layer1..4 incl. the
// stride-2 first convs and the 1x1 projection shortcuts) and the CIFAR ResNet-20 ones.
const ConvShape kConvShapes[] = {
    {"r18_conv1_3x64x32", 3, 64, 32, 3, 1, 1},
    {"r18_l1_64x64x32", 64, 64, 32, 3, 1, 1},
    {"r18_l2a_64x128x32s2", 64, 128, 32, 3, 2, 1},
    {"r18_l2_128x128x16", 128, 128, 16, 3, 1, 1},
    {"r18_l2sc_64x128x32s2_1x1", 64, 128, 32, 1, 2, 0},
    {"r18_l3a_128x256x16s2", 128, 256, 16, 3, 2, 1},
    {"r18_l3_256x256x8", 256, 256, 8, 3, 1, 1},
    {"r18_l3sc_128x256x16s2_1x1", 128, 256, 16, 1, 2, 0},
    {"r18_l4a_256x512x8s2", 256, 512, 8, 3, 2, 1},
    {"r18_l4_512x512x4", 512, 512, 4, 3, 1, 1},
    {"r18_l4sc_256x512x8s2_1x1", 256, 512, 8, 1, 2, 0},
    {"r20_l1_16x16x32", 16, 16, 32, 3, 1, 1},
    {"r20_l2_32x32x16", 32, 32, 16, 3, 1, 1},
    {"r20_l3_64x64x8", 64, 64, 8, 3, 1, 1},
};

struct Ctx {
  bench::Reporter* rep;
  bench::TimeOptions time;
  Device device;
  std::vector<std::string> filters;
  Generator gen{2024};

  bool selected(const std::string& name) const {
    if (filters.empty()) return true;
    for (const auto& f : filters)
      if (name.find(f) != std::string::npos) return true;
    return false;
  }
  Tensor randn(const Shape& s) { return Tensor::randn(s, gen, DType::F32, device); }

  // Times fn and reports it (fn must only enqueue work for CUDA).
  void run(Record r, const std::function<void()>& fn) {
    r.timing = bench::time_fn(device, fn, time);
    rep->add(r);
  }
};

// Calls the autograd node of `out` with grad_output `g` (the backward kernels only).
std::function<void()> backward_of(const Tensor& out, const Tensor& g) {
  std::shared_ptr<autograd::Node> node = out.grad_fn();
  OODKIT_CHECK(node != nullptr, "bench_ops: output has no autograd node");
  return [node, g] {
    autograd::NoGradGuard ng;
    (void)node->backward(g);
  };
}

void bench_convs(Ctx& c, int64_t n, const std::string& prec) {
  for (const ConvShape& s : kConvShapes) {
    const std::string fwd = std::string("conv2d_fwd/") + s.name, bwd = std::string("conv2d_bwd/") + s.name;
    if (!c.selected(fwd) && !c.selected(bwd)) continue;
    Tensor x = c.randn({n, s.cin, s.hw, s.hw});
    Tensor w = c.randn({s.cout, s.cin, s.k, s.k});
    const auto opt = ops::Conv2dOptions::square(s.stride, s.pad);
    const int64_t ho = (s.hw + 2 * s.pad - s.k) / s.stride + 1;
    const double flops = 2.0 * double(n) * double(s.cout) * double(ho * ho) * double(s.cin) * s.k * s.k;
    if (c.selected(fwd)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = fwd;
      r.precision = prec;
      r.batch = n;
      r.flops = flops;
      c.run(r, [&] { (void)ops::conv2d(x, w, Tensor(), opt); });
    }
    if (c.selected(bwd)) {
      Tensor xg = x.detach();
      xg.set_requires_grad(true);
      Tensor wg = w.detach();
      wg.set_requires_grad(true);
      Tensor y = ops::conv2d(xg, wg, Tensor(), opt);
      Tensor g = c.randn(y.shape());
      Record r;
      r.name = bwd;
      r.precision = prec;
      r.batch = n;
      r.flops = 2 * flops;  // dx and dweight
      c.run(r, backward_of(y, g));
    }
  }
}

void bench_matmuls(Ctx& c, int64_t n, int64_t gemm, const std::string& prec) {
  if (c.selected("matmul_square")) {
    autograd::NoGradGuard ng;
    Tensor a = c.randn({gemm, gemm}), b = c.randn({gemm, gemm});
    Record r;
    r.name = "matmul_square/" + std::to_string(gemm);
    r.precision = prec;
    r.batch = gemm;
    r.flops = 2.0 * double(gemm) * double(gemm) * double(gemm);
    c.run(r, [&] { (void)ops::matmul(a, b); });
  }
  // The classifier heads: ResNet-18 (512 -> 10) and ResNet-20 (64 -> 10); also a wide one.
  const int64_t shapes[][2] = {{512, 10}, {64, 10}, {512, 1000}};
  for (const auto& sh : shapes) {
    const std::string suffix = std::to_string(sh[0]) + "x" + std::to_string(sh[1]);
    Tensor x = c.randn({n, sh[0]}), w = c.randn({sh[1], sh[0]}), b = c.randn({sh[1]});
    const double flops = 2.0 * double(n) * double(sh[0]) * double(sh[1]);
    if (c.selected("linear_fwd/" + suffix)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = "linear_fwd/" + suffix;
      r.precision = prec;
      r.batch = n;
      r.flops = flops;
      c.run(r, [&] { (void)ops::linear(x, w, b); });
    }
    if (c.selected("linear_bwd/" + suffix)) {
      Tensor xg = x.detach(), wg = w.detach(), bg = b.detach();
      xg.set_requires_grad(true);
      wg.set_requires_grad(true);
      bg.set_requires_grad(true);
      Tensor y = ops::linear(xg, wg, bg);
      Record r;
      r.name = "linear_bwd/" + suffix;
      r.precision = prec;
      r.batch = n;
      r.flops = 2 * flops;
      c.run(r, backward_of(y, c.randn(y.shape())));
    }
  }
}

void bench_batch_norm(Ctx& c, int64_t n) {
  struct S {
    const char* name;
    int64_t ch, hw;
  };
  const S shapes[] = {{"r18_l1_64x32", 64, 32}, {"r18_l4_512x4", 512, 4}, {"r20_l1_16x32", 16, 32}};
  for (const S& s : shapes) {
    Tensor x = c.randn({n, s.ch, s.hw, s.hw});
    Tensor weight = c.randn({s.ch}), bias = c.randn({s.ch});
    Tensor rm = Tensor::zeros({s.ch}, DType::F32, c.device), rv = Tensor::ones({s.ch}, DType::F32, c.device);
    const double elem_bytes = double(x.nbytes());
    const std::string fwd = std::string("batch_norm_train_fwd/") + s.name;
    if (c.selected(fwd)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = fwd;
      r.batch = n;
      r.bytes = 2 * elem_bytes;  // read x, write y (the minimum; two-pass kernels read x twice)
      c.run(r, [&] { (void)ops::batch_norm(x, weight, bias, rm, rv, true); });
    }
    const std::string evalf = std::string("batch_norm_eval_fwd/") + s.name;
    if (c.selected(evalf)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = evalf;
      r.batch = n;
      r.bytes = 2 * elem_bytes;
      c.run(r, [&] { (void)ops::batch_norm(x, weight, bias, rm, rv, false); });
    }
    const std::string bwd = std::string("batch_norm_train_bwd/") + s.name;
    if (c.selected(bwd)) {
      Tensor xg = x.detach(), wg = weight.detach(), bg = bias.detach();
      xg.set_requires_grad(true);
      wg.set_requires_grad(true);
      bg.set_requires_grad(true);
      Tensor y = ops::batch_norm(xg, wg, bg, rm, rv, true);
      Record r;
      r.name = bwd;
      r.batch = n;
      r.bytes = 3 * elem_bytes;  // read x and dy, write dx
      c.run(r, backward_of(y, c.randn(y.shape())));
    }
  }
}

void bench_softmax_loss(Ctx& c, int64_t n, int64_t rows) {
  // Classifier-sized (latency-bound) and a large one (bandwidth-bound).
  const int64_t shapes[][2] = {{n, 10}, {rows, 1000}};
  for (const auto& sh : shapes) {
    const std::string suffix = std::to_string(sh[0]) + "x" + std::to_string(sh[1]);
    Tensor logits = c.randn({sh[0], sh[1]});
    const double bytes = 2.0 * double(logits.nbytes());
    if (c.selected("softmax_fwd/" + suffix)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = "softmax_fwd/" + suffix;
      r.batch = sh[0];
      r.bytes = bytes;
      c.run(r, [&] { (void)ops::softmax(logits); });
    }
    std::vector<int64_t> lab(static_cast<size_t>(sh[0]));
    for (auto& l : lab) l = c.gen.randint(sh[1]);
    Tensor labels = Tensor::from_vector(lab, {sh[0]}).to(c.device);
    if (c.selected("cross_entropy_fwd/" + suffix)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = "cross_entropy_fwd/" + suffix;
      r.batch = sh[0];
      r.bytes = double(logits.nbytes());
      c.run(r, [&] { (void)ops::cross_entropy(logits, labels); });
    }
    if (c.selected("cross_entropy_bwd/" + suffix)) {
      Tensor lg = logits.detach();
      lg.set_requires_grad(true);
      Tensor loss = ops::cross_entropy(lg, labels);
      Record r;
      r.name = "cross_entropy_bwd/" + suffix;
      r.batch = sh[0];
      r.bytes = bytes;  // read logits, write the gradient
      c.run(r, backward_of(loss, Tensor::ones({}, DType::F32, c.device)));
    }
  }
}

void bench_pool(Ctx& c, int64_t n) {
  struct S {
    const char* name;
    int64_t ch, hw;
  };
  const S shapes[] = {{"r18_512x4", 512, 4}, {"r20_64x8", 64, 8}, {"big_64x32", 64, 32}};
  for (const S& s : shapes) {
    Tensor x = c.randn({n, s.ch, s.hw, s.hw});
    const double bytes = double(x.nbytes()) + double(n * s.ch * 4);
    const std::string fwd = std::string("global_avg_pool_fwd/") + s.name;
    if (c.selected(fwd)) {
      autograd::NoGradGuard ng;
      Record r;
      r.name = fwd;
      r.batch = n;
      r.bytes = bytes;
      c.run(r, [&] { (void)ops::global_avg_pool(x); });
    }
    const std::string bwd = std::string("global_avg_pool_bwd/") + s.name;
    if (c.selected(bwd)) {
      Tensor xg = x.detach();
      xg.set_requires_grad(true);
      Tensor y = ops::global_avg_pool(xg);
      Record r;
      r.name = bwd;
      r.batch = n;
      r.bytes = bytes;
      c.run(r, backward_of(y, c.randn(y.shape())));
    }
  }
}

void bench_elementwise(Ctx& c, int64_t elems) {
  Tensor a = c.randn({elems}), b = c.randn({elems});
  const double e4 = double(elems) * 4;
  autograd::NoGradGuard ng;
  auto one = [&](const char* name, double bytes, const std::function<void()>& fn) {
    const std::string full = std::string(name) + "/" + std::to_string(elems);
    if (!c.selected(full)) return;
    Record r;
    r.name = full;
    r.batch = 0;
    r.bytes = bytes;
    c.run(r, fn);
  };
  one("add", 3 * e4, [&] { (void)ops::add(a, b); });
  one("mul", 3 * e4, [&] { (void)ops::mul(a, b); });
  one("scale", 2 * e4, [&] { (void)ops::scale(a, 0.5); });
  one("relu", 2 * e4, [&] { (void)ops::relu(a); });
  one("sum", e4, [&] { (void)ops::sum(a); });
  one("copy", 2 * e4, [&] { b.copy_(a); });
}

// The trainers' per-step non-finite check over one gradient per ResNet-20 parameter (random
// normals: all finite, so every element is read). bytes = the gradients' total size.
void bench_all_finite(Ctx& c) {
  const bool any = c.selected("all_finite/resnet20_grads") || c.selected("nonfinite_sum0/resnet20_grads");
  if (!any) return;
  autograd::NoGradGuard ng;
  std::vector<Tensor> grads;
  double bytes = 0;
  for (const Tensor& w : models::make_classifier("resnet20", 10, 32, c.gen)->parameters()) {
    grads.push_back(c.randn(w.shape()));
    bytes += double(w.nbytes());
  }
  auto one = [&](const char* name, const std::function<void()>& fn) {
    if (!c.selected(name)) return;
    Record r;
    r.name = name;
    r.batch = int64_t(grads.size());  // tensors in the list
    r.bytes = bytes;
    c.run(r, fn);
  };
  one("all_finite/resnet20_grads", [&] { (void)ops::all_finite(grads); });
  // The replaced ood::nonfinite_flag: sum(0 * g) per tensor, added up (NaN when any is non-finite).
  one("nonfinite_sum0/resnet20_grads", [&] {
    Tensor flag;
    for (const Tensor& g : grads) {
      const Tensor s = ops::sum(ops::scale(g, 0.0));
      flag = flag.defined() ? ops::add(flag, s) : s;
    }
  });
}

// oodkit's exact k-NN (strict FP32 cuBLAS tiles + fused select on CUDA) on unit-norm rows, the
// shape tools/torch_reference.py times for torch.cdist + topk ("knn_cdist_topk/...").
void bench_knn(Ctx& c, int64_t q, int64_t m, int64_t d, const std::vector<std::string>& ks) {
  autograd::NoGradGuard ng;
  const std::string shape = "Q" + std::to_string(q) + "xM" + std::to_string(m) + "xD" + std::to_string(d);
  Tensor queries, bank;
  for (const std::string& ks_one : ks) {
    const int64_t k = std::stoll(ks_one);
    const std::string name = "knn/k" + ks_one + "/" + shape;
    if (!c.selected(name)) continue;
    if (!queries.defined()) {
      queries = ood::normalize_rows(c.randn({q, d}));
      bank = ood::normalize_rows(c.randn({m, d}));
    }
    Record r;
    r.name = name;
    r.precision = "fp32";
    r.batch = q;
    r.flops = 2.0 * double(q) * double(m) * double(d);  // the q.c products; compare median ms with PyTorch's
    c.run(r, [&] { (void)ood::knn_search(queries, bank, k); });
  }
}

// The post-hoc scores on a ResNet-18-shaped batch: one read of F [n, 512, 4, 4] (z, NAP, FS) and
// the logit scores on [n, 10]; bytes = inputs read once + outputs written once.
void bench_scores(Ctx& c, int64_t n) {
  autograd::NoGradGuard ng;
  const int64_t ch = 512, hw = 16, k = 10;
  if (c.selected("feature_map_scores/r18")) {
    Tensor f = ops::relu(c.randn({n, ch, 4, 4}));
    Record r;
    r.name = "feature_map_scores/r18_512x4x4";
    r.precision = "fp32";
    r.batch = n;
    r.bytes = 4.0 * double(n) * double(ch * hw) + 4.0 * double(n) * double(ch + 3);
    c.run(r, [&] { (void)ood::feature_map_scores(f); });
  }
  Tensor logits = c.randn({n, k});
  const auto logit_score = [&](const char* name, const std::function<void()>& fn) {
    const std::string full = std::string(name) + "/" + std::to_string(n) + "x10";
    if (!c.selected(full)) return;
    Record r;
    r.name = full;
    r.precision = "fp32";
    r.batch = n;
    r.bytes = 4.0 * double(n) * double(k + 1);
    c.run(r, fn);
  };
  logit_score("msp", [&] { (void)ood::msp_score(logits); });
  logit_score("energy", [&] { (void)ood::energy_score(logits); });
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::Args args(argc, argv);
    const bench::CommonOptions common = bench::read_common(args);
    const bool cuda = common.device.is_cuda();
    const int64_t n = args.get_int("batch", cuda ? 128 : 8, "batch size of the network-shaped ops");
    const int64_t elems = args.get_int("elems", cuda ? (int64_t(64) << 20) : (int64_t(4) << 20),
                                       "elements of the elementwise ops");
    const int64_t gemm = args.get_int("gemm", cuda ? 4096 : 512, "size of the square GEMM");
    const int64_t rows = args.get_int("rows", cuda ? 16384 : 2048, "rows of the large softmax / cross-entropy");
    const auto precisions = args.get_list("precision", "fp32,tf32", "math modes for conv and matmul");
    const int64_t knn_q = args.get_int("knn-q", cuda ? 10000 : 256, "k-NN queries");
    const int64_t knn_m = args.get_int("knn-m", cuda ? 50000 : 4096, "k-NN bank rows");
    const int64_t knn_d = args.get_int("knn-d", cuda ? 512 : 64, "k-NN feature dimension");
    const auto knn_k = args.get_list("knn-k", "50,1", "k values of the k-NN benchmark");
    const int64_t score_n = args.get_int("score-batch", cuda ? 65536 : 256, "rows of the score benchmarks");
    Ctx c;
    c.filters = args.get_list("filter", "", "run only benchmarks whose name contains one of these");
    bench::Reporter rep(args, "bench_ops", common.device);
    if (args.finish()) return 0;
    c.rep = &rep;
    c.time = common.time;
    c.device = common.device;

    for (const auto& p : precisions) {
      const std::string prec = bench::set_precision(p);
      bench_convs(c, n, prec);
      bench_matmuls(c, n, gemm, prec);
    }
    bench::set_precision("fp32");
    bench_batch_norm(c, n);
    bench_softmax_loss(c, n, rows);
    bench_pool(c, n);
    bench_elementwise(c, elems);
    bench_all_finite(c);
    bench_knn(c, knn_q, knn_m, knn_d, knn_k);
    bench_scores(c, score_n);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ops: error: %s\n", e.what());
    return 1;
  }
}
