// Training the heatmap decoder (docs/heatmap.md). The classifier is not involved: its features,
// predictions and the OE images' nearest ID neighbours are computed once (HeatmapTargets), and
// only the decoder trains, on batches drawn from the ID rows and the OE rows together.
//
// Per sample, with images scaled to [-1, 1] (u8 / 127.5 - 1):
//   ID image x:          y = x,   the decoder should output h = 0
//   OE image x_o:        y = x_n  (its nearest ID image), target h* = x_n - x_o
//   loss = (1/B) sum_b sum_{c,h,w} (1 + s |y|) (x + h - y)^2,  s = weight_scale (5)
// which is ops::weighted_mse(h, y - x, 1 + s |y|): the official code's weight (LossWeight::Target).
// The paper's text weights by the defined heatmap instead, 1 + s |y - x| (LossWeight::Heatmap: ID
// pixels get weight 1).
//
// Epoch e visits every sample once in the order permutation(N_id + N_oe, counter_hash(seed, e)),
// in batches of `batch` (the last one smaller); OE:ID is thus N_oe:N_id on average in each
// batch. The order depends only on (seed, epoch), and the decoder and Adam state are the whole
// training state, so a run resumed from an epoch checkpoint is bit-identical on the CPU.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/optim.h"
#include "ood/heatmap.h"
#include "ood/heatmap_targets.h"

namespace oodkit::ood {

struct DecoderTrainSet {
  Tensor id_images;        // uint8 [N_id, 3, S, S] (CPU), row i = targets.id_features row i
  Tensor oe_images;        // uint8 [N_oe, 3, S, S] (CPU)
  HeatmapTargets targets;  // features, predictions, oe_nn_index (into targets.id_rows)
};

// What the loss weight 1 + s |.| reads: the target image y (the official code) or the defined
// heatmap y - x (the paper's text).
enum class LossWeight { Target, Heatmap };
std::string loss_weight_name(LossWeight w);         // "target" | "heatmap"
LossWeight parse_loss_weight(const std::string& name);  // error naming the valid names otherwise

struct DecoderTrainOptions {
  int64_t batch = 200;
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
  double weight_scale = 5.0;  // s in the loss weight 1 + s |y| (or 1 + s |y - x|)
  LossWeight loss_weight = LossWeight::Target;
  uint64_t seed = 0;
  Device device = Device::cpu();
};

struct DecoderEpoch {
  int epoch = 0;            // 1-based, as finished
  double loss = 0;          // mean per-sample loss over the epoch
  double id_loss = 0, oe_loss = 0;  // the same over the ID and over the OE samples
  int64_t samples = 0;
  double seconds = 0;
};

// Progress callback: (step done, steps per epoch, mean loss so far this epoch).
using DecoderProgressFn = std::function<void(int64_t, int64_t, double)>;

class DecoderTrainer {
 public:
  // Checks the set (shapes, that images match the decoder's output size, every neighbour index)
  // and moves the decoder to options.device.
  DecoderTrainer(HeatmapModel& model, const DecoderTrainSet& data, const DecoderTrainOptions& options);
  // Trains one epoch (0-based index `epoch`, which fixes its order). A non-finite loss or
  // gradient is an error naming the epoch, the step and which of the two (checked in groups of
  // steps, so the decoder may already hold the bad update: the caller must not save it).
  DecoderEpoch run_epoch(int epoch, const DecoderProgressFn& progress = {});
  int64_t steps_per_epoch() const;
  NamedTensors optimizer_state() const { return adam_->state(); }
  void load_optimizer_state(const NamedTensors& state) { adam_->load_state(state); }

  // The batch that a training step on the samples `ids` uses (sample id < N_id: ID row id; else OE
  // row id - N_id), in the order given, on options.device: z = the normalised features and pred =
  // the one-hot predicted classes (the decoder's inputs, decoder_inputs), target = y - x and
  // weight = 1 + s |y| (float32 [B, 3, S, S], per element; x and y the images in [-1, 1] of the
  // comment at the top: y = x for an ID sample, its neighbour x_n for an OE one); n_oe = the number
  // of OE samples in ids. run_epoch's loss is ops::weighted_mse(D(z, pred), target, weight) on it.
  // An id outside [0, N_id + N_oe) is an error. Public so that tests can check it against that
  // definition; it changes no state.
  struct Batch {
    Tensor z, pred, target, weight;
    int64_t n_oe = 0;
  };
  Batch make_batch(const std::vector<int64_t>& ids) const;

 private:
  HeatmapModel& model_;
  const DecoderTrainSet& data_;
  DecoderTrainOptions options_;
  std::unique_ptr<optim::Adam> adam_;
  std::vector<int64_t> nn_pos_;  // id_features row of each OE row's neighbour
  int64_t n_id_ = 0, n_oe_ = 0;
};

// A permutation of 0..n-1 (Fisher-Yates driven by counter_hash(seed, i)).
std::vector<int64_t> decoder_epoch_order(int64_t n, uint64_t seed, int epoch);

// Guard shared by the decoder trainer and `oodkit train` (tools/train.cpp); their per-step
// gradient check is ops::all_finite (framework/ops/reduce.h).
// The name of the first floating-point tensor in `tensors` with a NaN or infinite element
// (copied to the host to look), "" when there is none.
std::string first_nonfinite(const NamedTensors& tensors);

}  // namespace oodkit::ood
