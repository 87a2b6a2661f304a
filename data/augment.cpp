#include "data/augment.h"

#include <cstring>
#include <utility>

#include "framework/random.h"

namespace oodkit::data {

CropFlip draw_crop_flip(uint64_t seed, uint64_t key, int pad, bool crop, bool flip) {
  OODKIT_CHECK(pad >= 0, "draw_crop_flip: pad must be >= 0, got ", pad);
  const uint64_t h = counter_hash(seed, key);
  CropFlip p;
  const uint64_t range = uint64_t(2 * pad + 1);
  p.dy = crop ? int((h & 0xFFFFF) % range) : pad;
  p.dx = crop ? int(((h >> 20) & 0xFFFFF) % range) : pad;
  p.flip = flip && ((h >> 63) & 1u);
  return p;
}

void crop_flip(const uint8_t* src, int64_t c, int64_t h, int64_t w, int pad, const CropFlip& p, uint8_t* dst) {
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y) {
      uint8_t* out = dst + (ch * h + y) * w;
      const int64_t sy = y + p.dy - pad;
      if (sy < 0 || sy >= h) {
        std::memset(out, 0, size_t(w));
        continue;
      }
      const uint8_t* row = src + (ch * h + sy) * w;
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sx = (p.flip ? w - 1 - x : x) + p.dx - pad;
        out[x] = (sx >= 0 && sx < w) ? row[sx] : uint8_t(0);
      }
    }
}

Tensor random_crop_flip(const Tensor& images, int pad, bool flip, uint64_t seed, const std::vector<int64_t>& keys) {
  check_dtype(images, DType::U8, "random_crop_flip", "images");
  check_ndim(images, 4, "random_crop_flip", "images");
  OODKIT_CHECK(pad >= 0, "random_crop_flip: pad must be >= 0, got ", pad);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  OODKIT_CHECK(keys.empty() || int64_t(keys.size()) == n, "random_crop_flip: ", keys.size(), " keys for ", n,
               " images");
  const Tensor src = images.cpu();
  Tensor out = Tensor::empty(src.shape(), DType::U8);
  const uint8_t* p = src.data<uint8_t>();
  uint8_t* q = out.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const CropFlip cf = draw_crop_flip(seed, uint64_t(keys.empty() ? i : keys[size_t(i)]), pad, true, flip);
    crop_flip(p + i * c * h * w, c, h, w, pad, cf, q + i * c * h * w);
  }
  return out;
}

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed) {
  OODKIT_CHECK(n >= 0, "shuffled_indices: n must be >= 0, got ", n);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    // Multiply-shift to [0, i] (Lemire): unbiased enough for any realistic n.
    const uint64_t r = counter_hash(seed, uint64_t(i)) >> 32;
    const int64_t j = int64_t((r * uint64_t(i + 1)) >> 32);
    std::swap(idx[size_t(i)], idx[size_t(j)]);
  }
  return idx;
}

void normalize_into(const uint8_t* src, int64_t n, int64_t hw, const Normalization& norm, float* dst) {
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) {
      // Same expression as data::normalize, so the two agree bit for bit.
      const float scale = 1.0f / (255.0f * norm.std[size_t(c)]), shift = norm.mean[size_t(c)] / norm.std[size_t(c)];
      const int64_t base = (i * 3 + c) * hw;
      for (int64_t k = 0; k < hw; ++k) dst[base + k] = float(src[base + k]) * scale - shift;
    }
}

}  // namespace oodkit::data
