// Targets of the heatmap method (docs/heatmap.md): for every
// outlier-exposure (OE) image x_o, the ID training image x_n of the same *predicted* class whose
// penultimate vector z is nearest to z(x_o) (Euclidean); the decoder's target is x_n - x_o for OE
// images and 0 for ID images (images normalised to [-1, 1]). Neighbours are found once, before
// decoder training, over all ID training images, with the class-restricted exact k-NN.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::ood {

struct HeatmapTargets {
  Tensor id_features;     // [N_id, D] float32: z of the ID training images, in the order they load
  Tensor id_pred;         // [N_id] int64: their predicted classes
  Tensor id_rows;         // [N_id] int64, strictly increasing: the ID training-set row (load order) of
                          // each id_features row (rows left out, e.g. `oodkit eval`'s held-out
                          // validation images, are neither neighbours nor decoder training images)
  Tensor oe_features;     // [N_oe, D] float32: z of the OE images
  Tensor oe_pred;         // [N_oe] int64
  Tensor oe_nn_index;     // [N_oe] int64: the ID training-set row (load order, one of id_rows) nearest
                          // to each OE image
  Tensor oe_nn_distance;  // [N_oe] float32: its squared Euclidean distance in z
  std::vector<std::string> oe_images;  // what each OE row is (e.g. "tinyimagenet:val/123"), for audits
};

// Fills oe_nn_index / oe_nn_distance from the four input tensors (CPU or CUDA; the k-NN runs on
// the features' device; the result is on the CPU). An OE image whose predicted class no ID training
// image has is an error naming the class. oe_images may be empty or have N_oe entries. id_rows
// (int64 [N_id], strictly increasing, >= 0) names the dataset row of each ID row; undefined = 0..N_id-1.
HeatmapTargets nearest_id_targets(const Tensor& id_features, const Tensor& id_pred, const Tensor& oe_features,
                                  const Tensor& oe_pred, std::vector<std::string> oe_images = {},
                                  const Tensor& id_rows = Tensor());
// The id_features row of each oe_nn_index entry (its position in id_rows); errors if one is missing.
std::vector<int64_t> oe_nn_positions(const HeatmapTargets& t);

// The decoder targets of a batch of OE images: id_images[nn_index[i]] - oe_images[i], [B, C, H, W]
// float32 on the CPU. id_images [N_id, C, H, W] and oe_images [B, C, H, W] (CPU, same C, H, W);
// nn_index int64 [B], each in [0, N_id).
Tensor oe_heatmap_targets(const Tensor& id_images, const Tensor& oe_images, const Tensor& nn_index);

// <path> (safetensors, written atomically): the seven tensors under their field names, the OE
// image list as JSON in the metadata key "oe_images", and `meta` (extra metadata, e.g. the
// classifier's fingerprint). load_heatmap_targets checks every shape, dtype and index range (every
// neighbour one of id_rows, of its OE row's class), names the file and the entry on error, and
// returns the metadata in *meta when given. A file without id_rows means rows 0..N_id-1.
void save_heatmap_targets(const std::string& path, const HeatmapTargets& t,
                          const std::map<std::string, std::string>& meta = {});
HeatmapTargets load_heatmap_targets(const std::string& path, std::map<std::string, std::string>* meta = nullptr);

}  // namespace oodkit::ood
