#include "data/pseudo_ood.h"

#include <algorithm>

#include "data/augment.h"
#include "framework/error.h"
#include "framework/random.h"

namespace oodkit::data {

namespace {

constexpr int64_t kGrid = 4;

void check_images(const Tensor& images, const char* op) {
  OODKIT_CHECK(images.defined() && images.ndim() == 4 && images.dtype() == DType::U8 && !images.is_cuda(), op,
               ": images must be uint8 [N, C, H, W] on the CPU, got ",
               images.defined() ? images.describe() : std::string("an undefined tensor"));
}

// One image plane set: x [C, H, W] -> y [C, H, W] jigsaw.
void jigsaw_one(const uint8_t* x, uint8_t* y, int64_t c, int64_t h, int64_t w, int64_t grid,
                const std::vector<int64_t>& perm) {
  const int64_t ph = h / grid, pw = w / grid;
  for (int64_t p = 0; p < grid * grid; ++p) {
    const int64_t q = perm[size_t(p)];
    const int64_t oy = (p / grid) * ph, ox = (p % grid) * pw, iy = (q / grid) * ph, ix = (q % grid) * pw;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t r = 0; r < ph; ++r)
        std::copy_n(x + (ch * h + iy + r) * w + ix, pw, y + (ch * h + oy + r) * w + ox);
  }
}

// Box blur of one plane [h, w] in double, rows then columns, `passes` times.
void blur_plane(std::vector<double>& v, int64_t h, int64_t w, int64_t radius, int passes) {
  std::vector<double> t(v.size());
  const double inv = 1.0 / double(2 * radius + 1);
  for (int pass = 0; pass < passes; ++pass) {
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        double s = 0;
        for (int64_t d = -radius; d <= radius; ++d) s += v[size_t(i * w + std::clamp<int64_t>(j + d, 0, w - 1))];
        t[size_t(i * w + j)] = s * inv;
      }
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        double s = 0;
        for (int64_t d = -radius; d <= radius; ++d) s += t[size_t(std::clamp<int64_t>(i + d, 0, h - 1) * w + j)];
        v[size_t(i * w + j)] = s * inv;
      }
  }
}

}  // namespace

Tensor jigsaw(const Tensor& images, int64_t grid, const std::vector<int64_t>& perm) {
  check_images(images, "jigsaw");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  OODKIT_CHECK(grid >= 1 && h % grid == 0 && w % grid == 0, "jigsaw: image size ", h, "x", w,
               " is not divisible by the grid ", grid);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  bool is_perm = int64_t(perm.size()) == grid * grid;
  for (size_t i = 0; is_perm && i < sorted.size(); ++i) is_perm = sorted[i] == int64_t(i);
  OODKIT_CHECK(is_perm, "jigsaw: perm must be a permutation of 0..", grid * grid - 1);
  Tensor out = Tensor::empty(images.shape(), DType::U8);
  for (int64_t i = 0; i < n; ++i)
    jigsaw_one(images.data<uint8_t>() + i * c * h * w, out.data<uint8_t>() + i * c * h * w, c, h, w, grid, perm);
  return out;
}

Tensor box_blur(const Tensor& images, int64_t radius, int passes) {
  check_images(images, "box_blur");
  OODKIT_CHECK(radius >= 0 && passes >= 0, "box_blur: radius and passes must be >= 0, got ", radius, ", ", passes);
  const int64_t planes = images.size(0) * images.size(1), h = images.size(2), w = images.size(3);
  Tensor out = Tensor::empty(images.shape(), DType::U8);
  std::vector<double> v(size_t(h * w));
  for (int64_t p = 0; p < planes; ++p) {
    const uint8_t* x = images.data<uint8_t>() + p * h * w;
    for (int64_t k = 0; k < h * w; ++k) v[size_t(k)] = x[k];
    blur_plane(v, h, w, radius, passes);
    uint8_t* y = out.data<uint8_t>() + p * h * w;
    for (int64_t k = 0; k < h * w; ++k) y[k] = uint8_t(std::clamp(v[size_t(k)] + 0.5, 0.0, 255.0));
  }
  return out;
}

Tensor invert(const Tensor& images) {
  check_images(images, "invert");
  Tensor out = Tensor::empty(images.shape(), DType::U8);
  const uint8_t* x = images.data<uint8_t>();
  uint8_t* y = out.data<uint8_t>();
  for (int64_t k = 0, n = images.numel(); k < n; ++k) y[k] = uint8_t(255 - x[k]);
  return out;
}

Dataset pseudo_ood(const Tensor& images, uint64_t seed) {
  check_images(images, "pseudo_ood");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  OODKIT_CHECK(h % kGrid == 0 && w % kGrid == 0, "pseudo_ood: image size ", h, "x", w, " is not divisible by ",
               kGrid, " (the jigsaw grid)");
  Dataset d;
  d.name = "pseudo";
  d.images = Tensor::empty(images.shape(), DType::U8);
  const int64_t chw = c * h * w;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor one = Tensor::from_vector(
        std::vector<uint8_t>(images.data<uint8_t>() + i * chw, images.data<uint8_t>() + (i + 1) * chw), {1, c, h, w});
    Tensor t;
    switch (i % 3) {
      case 0: t = jigsaw(one, kGrid, shuffled_indices(kGrid * kGrid, counter_hash(seed, uint64_t(i)))); break;
      case 1: t = box_blur(one, std::max<int64_t>(1, h / 8), 2); break;
      default: t = invert(one); break;
    }
    std::copy_n(t.data<uint8_t>(), chw, d.images.data<uint8_t>() + i * chw);
  }
  return d;
}

}  // namespace oodkit::data
