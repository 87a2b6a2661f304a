#include "data/dataset.h"

namespace oodkit::data {

Normalization imagenet_normalization() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

Tensor normalize(const Tensor& images, const Normalization& norm) {
  check_dtype(images, DType::U8, "normalize", "images");
  check_ndim(images, 4, "normalize", "images");
  OODKIT_CHECK(images.size(1) == 3, "normalize: images must have 3 channels, got ", images.describe());
  const Tensor src = images.cpu();
  Tensor out = Tensor::empty(src.shape());
  const int64_t n = src.size(0), hw = src.size(2) * src.size(3);
  const uint8_t* p = src.data<uint8_t>();
  float* q = out.data<float>();
#pragma omp parallel for if (n >= 64)
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) {
      const float scale = 1.0f / (255.0f * norm.std[size_t(c)]), shift = norm.mean[size_t(c)] / norm.std[size_t(c)];
      const int64_t base = (i * 3 + c) * hw;
      for (int64_t k = 0; k < hw; ++k) q[base + k] = float(p[base + k]) * scale - shift;
    }
  return out;
}

}  // namespace oodkit::data
