// bench_train_step: one training step of a CIFAR classifier (forward in train mode,
// cross-entropy, backward, SGD with momentum 0.9, Nesterov off, weight decay 5e-4) and
// inference (eval mode, no grad), in images/s, for each math mode (fp32, tf32).
// Inputs are random normal images [N, 3, 32, 32] and random labels, already on the device
// (the data pipeline is not timed).
//
// --arch picks the network through bench::make_model (resnet20/32/44/56, resnet18/34/50,
// wrn40_2, densenet100).
//
// --decoder-width W1,W2 also times a heatmap decoder training step per width (the 32x32 preset
// of --decoder-arch, ConvT channels scaled by W as `heatmap fit --width`): Adam(2e-4, (0.5, 0.999)),
// loss ops::weighted_mse(h, y, 1 + 5|y|) on unit-norm z [N, D] (D = --decoder-dim), one-hot
// classes and targets y in [-1, 1), batch --decoder-batch (200 as DecoderTrainer). Same work as
// `tools/torch_reference.py speed --decoder-width`.
//
// Usage: bench_train_step [--device cuda|cpu] [--arch resnet20,resnet18] [--batch 128]
//                         [--infer-batch 1024] [--precision fp32,tf32] [--json FILE] ...
// CPU defaults are small (batch 16) so the program smoke-tests here.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/common/bench.h"
#include "bench/common/models.h"
#include "framework/autograd.h"
#include "framework/ops/loss.h"
#include "framework/optim.h"
#include "framework/random.h"
#include "framework/tensor.h"
#include "models/decoder.h"
#include "ood/heatmap.h"

using namespace oodkit;

int main(int argc, char** argv) {
  try {
    bench::Args args(argc, argv);
    bench::TimeOptions defaults;
    defaults.warmup = 5;
    defaults.repeats = 10;
    const bench::CommonOptions common = bench::read_common(args, defaults);
    const bool cuda = common.device.is_cuda();
    const auto archs = args.get_list("arch", "resnet20", "architectures (comma-separated)");
    const int64_t n = args.get_int("batch", cuda ? 128 : 16, "training batch size");
    const int64_t ni = args.get_int("infer-batch", cuda ? 1024 : 64, "inference batch size (0: skip inference)");
    const auto precisions = args.get_list("precision", "fp32,tf32", "math modes");
    const int64_t classes = args.get_int("classes", 10, "number of classes");
    const auto widths = args.get_list("decoder-width", "", "heatmap decoder widths to time ('' skips)");
    const std::string dec_arch = args.get("decoder-arch", "resnet20", "classifier of the decoder preset");
    const int64_t dec_dim = args.get_int("decoder-dim", 64, "decoder feature dimension D");
    const int64_t dec_n = args.get_int("decoder-batch", 200, "decoder training batch size");
    bench::Reporter rep(args, "bench_train_step", common.device);
    if (args.finish()) return 0;

    for (const auto& arch : archs) {
      Generator gen(7);
      auto net = bench::make_model(arch, classes, gen);
      net->to(common.device);
      const int64_t params = net->num_parameters();
      // 32x32 inputs for all networks here (CIFAR).
      Tensor x = Tensor::randn({n, 3, 32, 32}, gen, DType::F32, common.device);
      std::vector<int64_t> lab(static_cast<size_t>(n));
      for (auto& l : lab) l = gen.randint(classes);
      Tensor y = Tensor::from_vector(lab, {n}).to(common.device);
      optim::SGDOptions so;
      so.lr = 0.01;
      so.momentum = 0.9;
      so.weight_decay = 5e-4;
      optim::SGD opt(net->parameters(), so);

      for (const auto& p : precisions) {
        const std::string prec = bench::set_precision(p);
        net->train();
        bench::Record r;
        r.name = "train_step/" + arch;
        r.precision = prec;
        r.batch = n;
        r.items = double(n);
        r.extra_numbers["parameters"] = double(params);
        r.timing = bench::time_fn(
            common.device,
            [&] {
              opt.zero_grad();
              Tensor logits = net->forward(x);
              Tensor loss = ops::cross_entropy(logits, y);
              loss.backward();
              opt.step();
            },
            common.time);
        rep.add(r);

        if (ni > 0) {
          net->eval();
          Tensor xi = Tensor::randn({ni, 3, 32, 32}, gen, DType::F32, common.device);
          bench::Record ri;
          ri.name = "inference/" + arch;
          ri.precision = prec;
          ri.batch = ni;
          ri.items = double(ni);
          ri.extra_numbers["parameters"] = double(params);
          ri.timing = bench::time_fn(
              common.device,
              [&] {
                autograd::NoGradGuard ng;
                (void)net->forward(xi);
              },
              common.time);
          rep.add(ri);
        }
      }
    }
    for (const auto& w : widths) {
      Generator gen(11);
      const double width = std::stod(w);
      models::HeatmapDecoder dec(
          ood::scale_decoder_width(models::DecoderConfig::for_classifier(dec_arch, dec_dim, classes, 32), width), gen);
      dec.to(common.device);
      dec.train();
      Tensor z = Tensor::randn({dec_n, dec_dim}, gen, DType::F32);
      {
        float* p = z.data<float>();
        for (int64_t i = 0; i < dec_n; ++i) {
          double s = 0;
          for (int64_t j = 0; j < dec_dim; ++j) s += double(p[i * dec_dim + j]) * p[i * dec_dim + j];
          for (int64_t j = 0; j < dec_dim; ++j) p[i * dec_dim + j] = float(p[i * dec_dim + j] / std::sqrt(s));
        }
      }
      Tensor onehot = Tensor::zeros({dec_n, classes}, DType::F32);
      for (int64_t i = 0; i < dec_n; ++i) onehot.data<float>()[i * classes + gen.randint(classes)] = 1.0f;
      Tensor y = Tensor::uniform({dec_n, 3, 32, 32}, -1.0, 1.0, gen, DType::F32);
      Tensor weight = Tensor::zeros({dec_n, 3, 32, 32}, DType::F32);
      for (int64_t i = 0; i < y.numel(); ++i) {
        weight.data<float>()[i] = 1 + 5 * std::fabs(y.data<float>()[i]);
      }
      z = z.to(common.device);
      onehot = onehot.to(common.device);
      y = y.to(common.device);
      weight = weight.to(common.device);
      optim::AdamOptions ao;
      ao.lr = 2e-4;
      ao.beta1 = 0.5;
      ao.beta2 = 0.999;
      optim::Adam opt(dec.parameters(), ao);
      for (const auto& p : precisions) {
        bench::Record r;
        r.name = "decoder_step/" + dec_arch + "/w" + w;
        r.precision = bench::set_precision(p);
        r.batch = dec_n;
        r.items = double(dec_n);
        r.extra_numbers["parameters"] = double(dec.num_parameters());
        r.timing = bench::time_fn(
            common.device,
            [&] {
              opt.zero_grad();
              Tensor loss = ops::weighted_mse(dec.forward(z, onehot), y, weight);
              loss.backward();
              opt.step();
            },
            common.time);
        rep.add(r);
      }
    }
    bench::set_precision("fp32");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: error: %s\n", e.what());
    return 1;
  }
}
