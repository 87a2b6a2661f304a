// Pseudo-OOD images made from ID images, for choosing hyper-parameters without any real OOD data
// (the NAP paper's "ID vs pseudo-OOD made by transforming ID images"; `oodkit eval --val-ood
// pseudo`). Image i of the result is image i of the input under transform (i mod 3):
//   0 jigsaw: the image cut into a 4 x 4 grid of patches (H and W divisible by 4), patches
//     permuted by shuffled_indices(16, counter_hash(seed, i)) (output patch p = input patch perm[p])
//     -- local statistics kept, global layout destroyed;
//   1 blur: a box blur of radius max(1, H / 8) applied twice per axis (rows, then columns), edges
//     clamped -- global layout kept, local detail destroyed;
//   2 invert: 255 - x -- edges kept, colours and brightness reversed.
// Labels are dropped (OOD sets are unlabelled). All functions take and return uint8 [N, 3, H, W].
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

// The mixed pseudo-OOD set described above; name "pseudo".
Dataset pseudo_ood(const Tensor& images, uint64_t seed);

// The single transforms, on every image of `images`.
// perm: grid*grid entries, a permutation of [0, grid*grid): output patch p (row-major over the
// grid) is input patch perm[p]. H and W must be divisible by grid.
Tensor jigsaw(const Tensor& images, int64_t grid, const std::vector<int64_t>& perm);
// Box blur of the given radius (mean over the (2r+1) window, indices clamped to the image),
// rows then columns, `passes` times; results rounded half up to uint8.
Tensor box_blur(const Tensor& images, int64_t radius, int passes);
Tensor invert(const Tensor& images);

}  // namespace oodkit::data
