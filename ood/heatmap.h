// Heatmap-based OOD detection (docs/heatmap.md): a trained decoder, the feature normalisation it
// was trained with, and the classifier it belongs to, as one file; the `heatmap` detector on top.
//
// decoder.safetensors (written atomically):
//   decoder.<name>   the HeatmapDecoder state dict (torch DCGAN names, see models/decoder.h)
//   norm.min, norm.max   float64 [1]: the global min-max of z over the ID training set
//   metadata: format "oodkit-heatmap-decoder-1", config (JSON: feature_dim, num_classes,
//     fc_channels, channels, width), classifier_fingerprint, classifier_arch, id (dataset),
//     image_size, epoch (epochs trained), heldout, heldout_seed, oe, classifier_checkpoint
// A decoder is refused (HeatmapModel::check_classifier) with a classifier of another fingerprint.
#pragma once
#include <memory>
#include <string>

#include "framework/nn/module.h"
#include "models/decoder.h"
#include "ood/detector.h"

namespace oodkit::ood {

// Global min-max normalisation of penultimate vectors: (z - min) / (max - min).
struct FeatureNorm {
  double min = 0, max = 1;
};
// min and max over every entry of z [N, D] (finite, max > min, else an error naming them).
FeatureNorm fit_feature_norm(const Tensor& z);
Tensor normalize_features(const Tensor& z, const FeatureNorm& norm);  // same shape, dtype, device

// "fnv1a64:<16 hex digits>" over the state dict (names, dtypes, shapes and bytes, in order; the
// digest of framework/hash.h, whose start value is not FNV-1a's standard one): two classifiers
// share it only if their weights are bit-identical.
std::string module_fingerprint(const nn::Module& module);

// The decoder channel counts scaled by `width` (> 0; rounded, at least 1); fc_channels unchanged.
models::DecoderConfig scale_decoder_width(models::DecoderConfig config, double width);

struct HeatmapModelInfo {
  models::DecoderConfig config;
  double width = 1.0;              // the multiplier config.channels was scaled by (for the record)
  FeatureNorm norm;
  std::string classifier_fingerprint;
  std::string classifier_arch;
  std::string classifier_checkpoint;  // the file it was trained with (where `heatmap show` finds it)
  std::string id_dataset;
  int64_t image_size = 32;
  int epoch = 0;                   // epochs trained
  int64_t heldout = 0;             // ID training images held out of decoder training (eval's validation)
  uint64_t heldout_seed = 0;       // ... and the seed of that split
  std::string oe;                  // the OE set, e.g. "tinyimagenet:val[1000:]" (for the record)
  // The training options that decide the decoder's trajectory, a JSON object by command-line name
  // (written by `oodkit heatmap fit`, which refuses a --resume with other ones); "" when not
  // recorded (files written before it was): then neither saved nor checked.
  std::string fit_options;
  // What wrote it (run/provenance.h: version, commit, command line, date; a JSON object), set by
  // `oodkit heatmap fit` at every save; "" when not recorded: then not saved.
  std::string provenance;
};

class HeatmapModel {
 public:
  explicit HeatmapModel(const HeatmapModelInfo& info, Generator& gen = default_generator());
  // Reads a decoder.safetensors (or a training checkpoint, whose optim/* entries are returned in
  // *optimizer_state when given, else must be absent). Every error names the file.
  static std::shared_ptr<HeatmapModel> load(const std::string& path, NamedTensors* optimizer_state = nullptr);
  // Writes the file above; `extra` (e.g. "optim/..." entries of a checkpoint) is appended.
  void save(const std::string& path, const NamedTensors& extra = {}) const;

  // Heatmaps of penultimate vectors z [N, D] with logits [N, K] (predicted class = argmax):
  // [N, 3, S, S] in [-1, 1], eval-mode decoder, no grad, in batches of `batch`, on z's device
  // (the decoder is moved there).
  Tensor heatmaps(const Tensor& z, const Tensor& logits, int64_t batch = 500);
  // Throws, naming `what` (e.g. the decoder's file), unless `fingerprint` is the one trained with.
  void check_classifier(const std::string& fingerprint, const std::string& what) const;

  models::HeatmapDecoder& decoder() { return *decoder_; }
  HeatmapModelInfo& info() { return info_; }
  const HeatmapModelInfo& info() const { return info_; }

 private:
  HeatmapModelInfo info_;
  std::shared_ptr<models::HeatmapDecoder> decoder_;
};

// Decoder inputs of a batch: the normalised z and the one-hot predicted class, float32 [N, D] and
// [N, K] on z's device.
struct DecoderInputs {
  Tensor z_normalized, onehot;
};
DecoderInputs decoder_inputs(const Tensor& z, const Tensor& predicted, const FeatureNorm& norm, int64_t num_classes);

// Detector "heatmap": S = heatmap_score(D(norm(z), onehot(argmax logits))) (ood/scores.h). It is
// not fitted by the protocol: it holds a trained HeatmapModel (constructor, or load()). Its saved
// state is <path>.json/.safetensors (kind, no tensors) plus <path>.decoder.safetensors.
class HeatmapDetector : public Detector {
 public:
  HeatmapDetector() = default;
  explicit HeatmapDetector(std::shared_ptr<HeatmapModel> model) : model_(std::move(model)) {}
  std::string name() const override { return "heatmap"; }
  Tensor score(const Features& f) const override;
  const HeatmapModel& model() const;
  // The decoder's HeatmapModel::check_classifier.
  void check_classifier(const std::string& fingerprint, const std::string& what) const override {
    model().check_classifier(fingerprint, what);
  }

 protected:
  void save_fitted(const std::string& path) const override;
  void load_fitted(const std::string& path) override;

 private:
  std::shared_ptr<HeatmapModel> model_;
};

}  // namespace oodkit::ood
