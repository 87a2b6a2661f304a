#include "models/decoder.h"

#include <string>

#include "framework/ops/activation.h"
#include "framework/ops/channel.h"
#include "models/model_util.h"

namespace oodkit::models {

DecoderConfig DecoderConfig::for_classifier(const std::string& arch, int64_t feature_dim, int64_t num_classes,
                                            int input_size) {
  OODKIT_CHECK(input_size == 32 || input_size == 64, "DecoderConfig::for_classifier: input_size must be 32 or 64, got ",
               input_size);
  DecoderConfig c;
  c.feature_dim = feature_dim;
  c.num_classes = num_classes;
  if (input_size == 64) {
    c.fc_channels = 512;
    c.channels = {2048, 1024, 512, 256, 128};
  } else if (arch.rfind("wrn", 0) == 0) {
    c.fc_channels = 128;
    c.channels = {256, 128, 64, 32};
  } else {
    c.fc_channels = num_classes <= 10 ? 100 : 512;
    c.channels = {512, 256, 128, 64};
  }
  return c;
}

HeatmapDecoder::HeatmapDecoder(const DecoderConfig& config, Generator& gen) : config_(config) {
  OODKIT_CHECK(config.feature_dim > 0 && config.num_classes > 0 && config.fc_channels > 0,
               "HeatmapDecoder: feature_dim, num_classes and fc_channels must be positive, got ", config.feature_dim,
               ", ", config.num_classes, ", ", config.fc_channels);
  OODKIT_CHECK(!config.channels.empty() && config.channels.size() <= 12,
               "HeatmapDecoder: needs 1 to 12 ConvT stages, got ", config.channels.size());
  for (int64_t c : config.channels) OODKIT_CHECK(c > 0, "HeatmapDecoder: channel counts must be positive, got ", c);

  fc_ = register_module("fc", std::make_shared<nn::Linear>(config.feature_dim + config.num_classes,
                                                           config.fc_channels, true, gen));
  auto main = std::make_shared<ModuleList>();
  int64_t in = config.fc_channels;
  for (size_t i = 0; i < config.channels.size(); ++i) {
    const int64_t out = config.channels[i];
    const bool first = i == 0;
    convs_.push_back(main->add(std::to_string(3 * i), std::make_shared<nn::ConvTranspose2d>(
                                                          in, out, 4, first ? 1 : 2, first ? 0 : 1, false, 0, gen)));
    bns_.push_back(main->add(std::to_string(3 * i + 1), std::make_shared<nn::BatchNorm>(out)));
    in = out;
  }
  convs_.push_back(main->add(std::to_string(3 * config.channels.size()),
                             std::make_shared<nn::ConvTranspose2d>(in, 3, 1, 1, 0, false, 0, gen)));
  register_module("main", main);
}

Tensor HeatmapDecoder::forward(const Tensor& z_normalised, const Tensor& onehot) {
  check_defined(z_normalised, "HeatmapDecoder", "z_normalised");
  check_defined(onehot, "HeatmapDecoder", "onehot");
  check_ndim(z_normalised, 2, "HeatmapDecoder", "z_normalised");
  check_ndim(onehot, 2, "HeatmapDecoder", "onehot");
  OODKIT_CHECK(z_normalised.size(1) == config_.feature_dim, "HeatmapDecoder: z_normalised must be [N, ",
               config_.feature_dim, "], got ", z_normalised.describe());
  OODKIT_CHECK(onehot.size(1) == config_.num_classes, "HeatmapDecoder: onehot must be [N, ", config_.num_classes,
               "], got ", onehot.describe());
  OODKIT_CHECK(onehot.size(0) == z_normalised.size(0), "HeatmapDecoder: batch sizes differ: z_normalised ",
               z_normalised.describe(), ", onehot ", onehot.describe());
  Tensor h = fc_->forward(ops::concat_channels({z_normalised, onehot}));
  h = h.reshape({h.size(0), config_.fc_channels, 1, 1});
  for (size_t i = 0; i < bns_.size(); ++i) h = ops::relu(bns_[i]->forward(convs_[i]->forward(h)));
  return ops::tanh(convs_.back()->forward(h));
}

}  // namespace oodkit::models
