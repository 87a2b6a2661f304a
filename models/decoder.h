// The heatmap decoder of "Heatmap-based OOD detection" (docs/methods.md, "Decoder (DCGAN generator)"):
// a DCGAN generator fed with the normalised penultimate vector and the one-hot predicted class.
//   x = concat(z_normalised [N, D], onehot [N, K])          [N, D + K]
//   x = fc(x) (Linear D + K -> C0, with bias), reshaped      [N, C0, 1, 1]
//   ConvT(C0 -> c[0], k4 s1 p0) + BN + ReLU                  [N, c[0], 4, 4]
//   ConvT(c[i-1] -> c[i], k4 s2 p1) + BN + ReLU, i = 1..m-1  [N, c[i], 4*2^i, 4*2^i]
//   ConvT(c[m-1] -> 3, k1) + tanh                            [N, 3, S, S], S = 4 * 2^(m-1), in [-1, 1]
// Every ConvT is without bias. Presets (DecoderConfig::for_classifier, as the official code):
//   32x32, ResNet-style classifiers: c = 512/256/128/64, C0 = 100 for K <= 10 (CIFAR-10), else 512
//   32x32, WRN-40-2:                 c = 256/128/64/32,  C0 = 128
//   64x64 (Tiny ImageNet, ResNet-50): c = 2048/1024/512/256/128, C0 = 512 (five up-samplings)
// State-dict names follow a torch.nn.Sequential `main` after a Linear `fc` (DCGAN's naming, with
// parameter-free layers keeping their index): fc.{weight,bias}; for stage i = 0..m-1
// main.{3i} = ConvT (weight only), main.{3i+1} = BN (weight, bias, running_mean, running_var,
// num_batches_tracked), main.{3i+2} = ReLU (no entries); main.{3m} = the final 1x1 ConvT,
// main.{3m+1} = Tanh (no entries). The official code's conv_block{j}.0 / .1 (j = 1..m+1) and
// fc1 map to main.{3(j-1)} / main.{3(j-1)+1} and fc.
// Initialisation: PyTorch's defaults (the official code sets none): ConvT and Linear weights
// U(+-1/sqrt(fan_in)) with torch's fan_in of each layout, fc bias likewise, BN 1 / 0.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "framework/nn/layers.h"

namespace oodkit::models {

struct DecoderConfig {
  int64_t feature_dim = 0;        // D = dim(z)
  int64_t num_classes = 0;        // K
  int64_t fc_channels = 0;        // C0
  std::vector<int64_t> channels;  // c[0..m-1], m >= 1; output size 4 * 2^(m-1)

  // The paper's decoder for a classifier `arch` (registry names) with penultimate dimension
  // feature_dim, K classes and input_size 32 or 64 (see the table above).
  static DecoderConfig for_classifier(const std::string& arch, int64_t feature_dim, int64_t num_classes,
                                      int input_size);
  int output_size() const { return channels.empty() ? 0 : 4 << (channels.size() - 1); }
};

class HeatmapDecoder : public nn::Module {
 public:
  explicit HeatmapDecoder(const DecoderConfig& config, Generator& gen = default_generator());
  // z_normalised [N, D], onehot [N, K] (float, same dtype and device) -> heatmap
  // [N, 3, S, S] in [-1, 1]. Differentiable in both inputs and every parameter.
  Tensor forward(const Tensor& z_normalised, const Tensor& onehot);
  const DecoderConfig& config() const { return config_; }
  // The layers, in forward order: fc, convs()[i] + bns()[i] + ReLU for i < m, convs()[m] + tanh.
  nn::Linear& fc() { return *fc_; }
  const std::vector<std::shared_ptr<nn::ConvTranspose2d>>& convs() { return convs_; }
  const std::vector<std::shared_ptr<nn::BatchNorm>>& bns() { return bns_; }

 private:
  DecoderConfig config_;
  std::shared_ptr<nn::Linear> fc_;
  std::vector<std::shared_ptr<nn::ConvTranspose2d>> convs_;  // m + 1 (the last is the 1x1 output conv)
  std::vector<std::shared_ptr<nn::BatchNorm>> bns_;          // m
};

}  // namespace oodkit::models
