#include "ood/heatmap.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "framework/autograd.h"
#include "framework/concat.h"
#include "framework/hash.h"
#include "framework/ops/channel.h"
#include "framework/ops/elementwise.h"
#include "framework/safetensors.h"
#include "ood/features.h"
#include "ood/scores.h"
#include "ood/state_io.h"

namespace oodkit::ood {

FeatureNorm fit_feature_norm(const Tensor& z) {
  check_defined(z, "fit_feature_norm", "z");
  check_ndim(z, 2, "fit_feature_norm", "z");
  OODKIT_CHECK(z.numel() > 0, "fit_feature_norm: z is empty");
  const std::vector<double> v = z.detach().to(DType::F64).cpu().to_vector<double>();
  FeatureNorm n{v[0], v[0]};
  for (double x : v) {
    OODKIT_CHECK(std::isfinite(x), "fit_feature_norm: z holds a non-finite value (", x, ")");
    n.min = std::min(n.min, x);
    n.max = std::max(n.max, x);
  }
  OODKIT_CHECK(n.max > n.min, "fit_feature_norm: every entry of z is ", n.min, " (max must exceed min)");
  return n;
}

Tensor normalize_features(const Tensor& z, const FeatureNorm& norm) {
  OODKIT_CHECK(std::isfinite(norm.min) && std::isfinite(norm.max) && norm.max > norm.min,
               "normalize_features: needs finite min < max, got min ", norm.min, ", max ", norm.max);
  return ops::add_scalar(ops::scale(z, 1.0 / (norm.max - norm.min)), -norm.min / (norm.max - norm.min));
}

std::string module_fingerprint(const nn::Module& module) {
  uint64_t h = kDigestStart;
  const auto mix = [&h](const void* data, size_t n) { h = fnv1a(h, data, n); };
  for (const auto& [name, t] : module.state_dict()) {
    mix(name.data(), name.size() + 1);
    const std::string dt = dtype_name(t.dtype());
    mix(dt.data(), dt.size() + 1);
    for (int64_t s : t.shape()) mix(&s, sizeof(s));
    const Tensor c = t.detach().cpu();
    mix(c.raw_data(), c.nbytes());
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + buf;
}

models::DecoderConfig scale_decoder_width(models::DecoderConfig config, double width) {
  OODKIT_CHECK(std::isfinite(width) && width > 0, "decoder width multiplier must be positive, got ", width);
  for (int64_t& c : config.channels) c = std::max<int64_t>(1, int64_t(std::lround(double(c) * width)));
  return config;
}

namespace {

constexpr const char* kFormat = "oodkit-heatmap-decoder-1";

nlohmann::json config_json(const HeatmapModelInfo& i) {
  return {{"feature_dim", i.config.feature_dim},
          {"num_classes", i.config.num_classes},
          {"fc_channels", i.config.fc_channels},
          {"channels", i.config.channels},
          {"width", i.width}};
}

}  // namespace

HeatmapModel::HeatmapModel(const HeatmapModelInfo& info, Generator& gen)
    : info_(info), decoder_(std::make_shared<models::HeatmapDecoder>(info.config, gen)) {}

void HeatmapModel::save(const std::string& path, const NamedTensors& extra) const {
  NamedTensors all;
  for (const auto& [n, t] : decoder_->state_dict()) all.emplace_back("decoder." + n, t);
  all.emplace_back("norm.min", Tensor::from_vector<double>({info_.norm.min}, {1}));
  all.emplace_back("norm.max", Tensor::from_vector<double>({info_.norm.max}, {1}));
  all.insert(all.end(), extra.begin(), extra.end());
  std::map<std::string, std::string> meta{{"format", kFormat},
                                          {"config", config_json(info_).dump()},
                                          {"classifier_fingerprint", info_.classifier_fingerprint},
                                          {"classifier_arch", info_.classifier_arch},
                                          {"id", info_.id_dataset},
                                          {"image_size", std::to_string(info_.image_size)},
                                          {"epoch", std::to_string(info_.epoch)},
                                          {"heldout", std::to_string(info_.heldout)},
                                          {"heldout_seed", std::to_string(info_.heldout_seed)},
                                          {"oe", info_.oe},
                                          {"classifier_checkpoint", info_.classifier_checkpoint}};
  if (!info_.fit_options.empty()) meta["options"] = info_.fit_options;
  if (!info_.provenance.empty()) meta["provenance"] = info_.provenance;
  save_safetensors(path, all, meta);
}

std::shared_ptr<HeatmapModel> HeatmapModel::load(const std::string& path, NamedTensors* optimizer_state) {
  std::map<std::string, std::string> meta;
  const NamedTensors all = load_safetensors(path, &meta);
  OODKIT_CHECK(meta["format"] == kFormat, "'", path, "' is not an oodkit heatmap decoder (format '", meta["format"],
               "', expected '", kFormat, "')");
  HeatmapModelInfo info;
  try {
    const nlohmann::json c = nlohmann::json::parse(meta.at("config"));
    info.config.feature_dim = c.at("feature_dim").get<int64_t>();
    info.config.num_classes = c.at("num_classes").get<int64_t>();
    info.config.fc_channels = c.at("fc_channels").get<int64_t>();
    info.config.channels = c.at("channels").get<std::vector<int64_t>>();
    info.width = c.at("width").get<double>();
    info.image_size = std::stoll(meta.at("image_size"));
    info.epoch = std::stoi(meta.at("epoch"));
    info.classifier_fingerprint = meta.at("classifier_fingerprint");
    info.classifier_arch = meta.at("classifier_arch");
    info.id_dataset = meta.at("id");
    info.heldout = std::stoll(meta.at("heldout"));
    info.heldout_seed = std::stoull(meta.at("heldout_seed"));
    info.oe = meta.at("oe");
    info.classifier_checkpoint = meta.at("classifier_checkpoint");
    if (meta.count("options")) info.fit_options = meta.at("options");
    if (meta.count("provenance")) info.provenance = meta.at("provenance");
  } catch (const std::exception& e) {
    OODKIT_FAIL("'", path, "': bad or missing decoder metadata (", e.what(), ")");
  }
  NamedTensors state;
  Tensor nmin, nmax;
  for (const auto& [n, t] : all) {
    if (n.rfind("decoder.", 0) == 0) state.emplace_back(n.substr(8), t);
    else if (n == "norm.min") nmin = t;
    else if (n == "norm.max") nmax = t;
    else if (n.rfind("optim/", 0) == 0 && optimizer_state) optimizer_state->emplace_back(n.substr(6), t);
    else OODKIT_FAIL("'", path, "': unexpected tensor '", n, "' in a heatmap decoder file");
  }
  OODKIT_CHECK(nmin.defined() && nmax.defined() && nmin.numel() == 1 && nmax.numel() == 1, "'", path,
               "': norm.min / norm.max missing or not one value each");
  info.norm = {nmin.to(DType::F64).item(), nmax.to(DType::F64).item()};
  auto model = std::make_shared<HeatmapModel>(info);
  try {
    model->decoder_->load_state_dict(state);
  } catch (const Error& e) {
    OODKIT_FAIL("'", path, "': decoder weights do not fit its config: ", e.what());
  }
  return model;
}

DecoderInputs decoder_inputs(const Tensor& z, const Tensor& predicted, const FeatureNorm& norm, int64_t num_classes) {
  return {normalize_features(z, norm).to(DType::F32), ops::one_hot(predicted.to(z.device()), num_classes)};
}

Tensor HeatmapModel::heatmaps(const Tensor& z, const Tensor& logits, int64_t batch) {
  check_defined(z, "HeatmapModel::heatmaps", "z");
  check_defined(logits, "HeatmapModel::heatmaps", "logits");
  OODKIT_CHECK(batch > 0, "HeatmapModel::heatmaps: batch must be positive");
  OODKIT_CHECK(logits.ndim() == 2 && logits.size(1) == info_.config.num_classes && z.ndim() == 2 &&
                   z.size(1) == info_.config.feature_dim && z.size(0) == logits.size(0),
               "heatmap decoder: expects z [N, ", info_.config.feature_dim, "] and logits [N, ",
               info_.config.num_classes, "], got z ", z.describe(), " and logits ", logits.describe(),
               " (a decoder trained for another classifier?)");
  decoder_->to(z.device());
  decoder_->eval();
  autograd::NoGradGuard ng;
  const Tensor pred = predicted_classes(logits);
  std::vector<Tensor> parts;
  for (int64_t b = 0; b < z.size(0); b += batch) {
    const int64_t len = std::min(batch, z.size(0) - b);
    const DecoderInputs in = decoder_inputs(z.narrow(b, len), pred.narrow(b, len), info_.norm,
                                            info_.config.num_classes);
    parts.push_back(decoder_->forward(in.z_normalized, in.onehot));
  }
  if (parts.empty()) {
    const int64_t s = info_.config.output_size();
    return Tensor::empty({0, 3, s, s}, DType::F32, z.device());
  }
  return parts.size() == 1 ? parts[0] : concat_rows(parts);
}

void HeatmapModel::check_classifier(const std::string& fingerprint, const std::string& what) const {
  OODKIT_CHECK(fingerprint == info_.classifier_fingerprint, what, " was trained for another classifier (",
               info_.classifier_arch, " with fingerprint ", info_.classifier_fingerprint, "); this one is ",
               fingerprint, ". Train a decoder for it with `oodkit heatmap fit`.");
}

Tensor HeatmapDetector::score(const Features& f) const {
  model();  // checks that there is one
  return heatmap_score(model_->heatmaps(f.z, f.logits));  // the model moves to f's device: not const
}

const HeatmapModel& HeatmapDetector::model() const {
  OODKIT_CHECK(model_, "heatmap detector: no decoder (construct with a HeatmapModel or load a saved one)");
  return *model_;
}

void HeatmapDetector::save_fitted(const std::string& path) const { model().save(path + ".decoder.safetensors"); }

void HeatmapDetector::load_fitted(const std::string& path) {
  model_ = HeatmapModel::load(path + ".decoder.safetensors");
}

}  // namespace oodkit::ood
