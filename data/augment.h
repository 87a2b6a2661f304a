// Training-time augmentation, shuffling and normalisation on raw uint8 images. Every random
// choice is a pure function of (seed, key) through counter_hash, so a sample's augmentation
// does not depend on batch size, thread timing or which other samples were drawn.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

// The standard CIFAR augmentation (torchvision RandomCrop(size, padding=pad) then
// RandomHorizontalFlip()): the image is zero-padded by `pad` on every side, a window of the
// original size is taken at offset (dy, dx) in [0, 2*pad] of the padded image, then mirrored
// left-right when `flip`.
struct CropFlip {
  int dy = 0, dx = 0;
  bool flip = false;
};

// The parameters for sample `key` under `seed` (offsets uniform in [0, 2*pad], flip with
// probability 1/2; pad = 0 or crop = false gives offsets (pad, pad), i.e. no shift).
CropFlip draw_crop_flip(uint64_t seed, uint64_t key, int pad, bool crop, bool flip);

// One image [c, h, w] -> dst [c, h, w]: dst[ch][y][x] = padded[ch][y + dy][x' + dx] with
// x' = (flip ? w - 1 - x : x) and padded[ch][py][px] = src[ch][py - pad][px - pad] inside the
// image, 0 outside.
void crop_flip(const uint8_t* src, int64_t c, int64_t h, int64_t w, int pad, const CropFlip& p, uint8_t* dst);

// Batch version on uint8 [N, C, H, W]: row i uses draw_crop_flip(seed, keys[i] (or i when
// keys is empty), pad, true, flip).
Tensor random_crop_flip(const Tensor& images, int pad, bool flip, uint64_t seed,
                        const std::vector<int64_t>& keys = {});

// A permutation of 0..n-1 (Fisher-Yates driven by counter_hash(seed, step); the same on every
// platform, unlike std::shuffle).
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed);

// Single-threaded normalisation of `n` images of `hw` pixels per channel (3 channels) with
// exactly the arithmetic of data::normalize (bit-identical results), for loader threads.
void normalize_into(const uint8_t* src, int64_t n, int64_t hw, const Normalization& norm, float* dst);

}  // namespace oodkit::data
