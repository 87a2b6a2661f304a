// The classifier interface the OOD detectors read from. One forward pass exposes the
// logits, the penultimate vector z (after global average pooling), the feature map F
// before that pooling, and every stage's output; forward_from() re-runs the stages after a
// given stage on a (modified) copy of its output (Threshold Activation) without touching
// the module's state.
#pragma once
#include <vector>

#include "framework/nn/layers.h"

namespace oodkit::models {

struct ClassifierOutput {
  Tensor logits;               // [N, K]
  Tensor penultimate;          // z: [N, D]
  Tensor features;             // F: [N, D, h, w], after the last ReLU, before global pooling
  std::vector<Tensor> stages;  // outputs of the stages that ran, in order (the last is F)
};

class Classifier : public nn::Module {
 public:
  // Stage 0 is the stem; stages 1..num_stages()-1 are the residual/dense stages.
  int num_stages() const { return int(stage_channels_.size()); }
  // Runs the stages after `after_stage` on `input` (the output of stage `after_stage`, or the
  // image when after_stage = -1), then global average pooling and the head. `stages` holds
  // only the stages run. Checks the stage index and the input's channels.
  ClassifierOutput forward_from(int after_stage, const Tensor& input);
  virtual nn::Linear& head() = 0;

  ClassifierOutput forward_all(const Tensor& image) { return forward_from(-1, image); }
  Tensor forward(const Tensor& image) { return forward_all(image).logits; }
  // Reseeds the model's own randomness used in training mode (dropout) for one epoch, so that
  // a resumed run draws what an uninterrupted one would. A model without such randomness
  // ignores it (the default).
  virtual void reseed(uint64_t seed) {}
  int64_t num_classes() { return head().weight.size(0); }
  int64_t feature_dim() { return head().weight.size(1); }

 protected:
  explicit Classifier(const char* name) : name_(name) {}
  // Stage `stage` on its input (the image for stage 0); the last stage ends with its ReLU.
  virtual Tensor run_stage(int stage, const Tensor& x) = 0;
  std::vector<int64_t> stage_channels_;  // output channels of each stage, set by the constructor

 private:
  const char* name_;
};

}  // namespace oodkit::models
