// Pseudo-OOD transforms (data/pseudo_ood.h) against hand-worked pixels.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "data/augment.h"
#include "data/pseudo_ood.h"
#include "framework/error.h"
#include "framework/random.h"

namespace oodkit {
namespace {

std::vector<uint8_t> pixels(const Tensor& t) { return t.to_vector<uint8_t>(); }

TEST(PseudoOod, JigsawMovesPatchesByHand) {
  std::vector<uint8_t> v(16);
  for (int i = 0; i < 16; ++i) v[size_t(i)] = uint8_t(i);  // 4x4, value = row * 4 + col
  const Tensor x = Tensor::from_vector(v, {1, 1, 4, 4});
  // Output patch 0 (top-left) = input patch 3 (bottom-right), 1 = 0, 2 = 2, 3 = 1.
  const std::vector<uint8_t> expect = {10, 11, 0, 1,   //
                                       14, 15, 4, 5,   //
                                       8,  9,  2, 3,   //
                                       12, 13, 6, 7};
  EXPECT_EQ(pixels(data::jigsaw(x, 2, {3, 0, 2, 1})), expect);
  EXPECT_EQ(pixels(data::jigsaw(x, 2, {0, 1, 2, 3})), v);
  EXPECT_THROW(data::jigsaw(x, 2, {0, 1, 1, 3}), Error);  // not a permutation
  EXPECT_THROW(data::jigsaw(x, 3, {0, 1, 2, 3, 4, 5, 6, 7, 8}), Error);  // 4 not divisible by 3
}

TEST(PseudoOod, BoxBlurByHand) {
  // 3x3 with 90 in the corner, radius 1, one pass, edges clamped:
  // rows: [60, 30, 0] in row 0; columns: row 0 = 2/3 of it, row 1 = 1/3, row 2 = 0.
  std::vector<uint8_t> v(9, 0);
  v[0] = 90;
  EXPECT_EQ(pixels(data::box_blur(Tensor::from_vector(v, {1, 1, 3, 3}), 1, 1)),
            (std::vector<uint8_t>{40, 20, 0, 20, 10, 0, 0, 0, 0}));
  // [0, 1] -> [1/3, 2/3] -> rounded half up: [0, 1].
  EXPECT_EQ(pixels(data::box_blur(Tensor::from_vector(std::vector<uint8_t>{0, 1}, {1, 1, 1, 2}), 1, 1)),
            (std::vector<uint8_t>{0, 1}));
  // A constant image stays constant; radius 0 is the identity.
  EXPECT_EQ(pixels(data::box_blur(Tensor::from_vector(std::vector<uint8_t>(12, 77), {1, 3, 2, 2}), 2, 3)),
            std::vector<uint8_t>(12, 77));
  EXPECT_EQ(pixels(data::box_blur(Tensor::from_vector(v, {1, 1, 3, 3}), 0, 2)), v);
}

TEST(PseudoOod, MixedSetUsesTransformIModThree) {
  const int64_t n = 4, s = 8;
  std::vector<uint8_t> v(size_t(n * 3 * s * s));
  for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t((i * 37 + i / 5) % 251);
  const Tensor x = Tensor::from_vector(v, {n, 3, s, s});
  const data::Dataset d = data::pseudo_ood(x, 9);
  EXPECT_EQ(d.name, "pseudo");
  EXPECT_FALSE(d.labels.defined());
  ASSERT_EQ(d.images.shape(), x.shape());
  const std::vector<uint8_t> out = pixels(d.images);
  const size_t chw = size_t(3 * s * s);
  auto image = [&](const std::vector<uint8_t>& a, size_t i) {
    return std::vector<uint8_t>(a.begin() + long(i * chw), a.begin() + long((i + 1) * chw));
  };
  auto one = [&](size_t i) { return Tensor::from_vector(image(v, i), {1, 3, s, s}); };
  // 0: jigsaw of 2x2-pixel patches: same pixels, another arrangement; 3 likewise with its own draw.
  for (size_t i : {size_t(0), size_t(3)}) {
    std::vector<uint8_t> a = image(out, i), b = image(v, i);
    EXPECT_NE(a, b) << i;
    EXPECT_EQ(a, pixels(data::jigsaw(one(i), 4, data::shuffled_indices(16, counter_hash(9, i))))) << i;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b) << i;
  }
  EXPECT_NE(image(out, 0), pixels(data::jigsaw(one(0), 4, data::shuffled_indices(16, counter_hash(10, 0)))));
  // 1: blur of radius 8 / 8 = 1, twice; 2: 255 - x.
  EXPECT_EQ(image(out, 1), pixels(data::box_blur(one(1), 1, 2)));
  const std::vector<uint8_t> inv = image(out, 2), src = image(v, 2);
  for (size_t k = 0; k < chw; ++k) ASSERT_EQ(int(inv[k]), 255 - int(src[k])) << k;
  EXPECT_THROW(data::pseudo_ood(Tensor::zeros({1, 3, 6, 6}, DType::U8), 1), Error);  // 6 not divisible by 4
}

}  // namespace
}  // namespace oodkit
