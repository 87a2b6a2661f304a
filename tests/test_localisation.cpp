// Localisation metrics (ood/localisation.h): hand-worked cases (ties included), the chance level of
// constant and massless maps, perfect and inverted maps, means over images, a brute-force
// cross-check on random tied maps, and refusals.
#include <cmath>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/random.h"
#include "ood/localisation.h"
#include "testing.h"

using namespace oodkit;
using ood::Localisation;

namespace {

constexpr double kExact = 1e-12;

Localisation on(const std::vector<float>& map, const std::vector<uint8_t>& mask, int64_t h, int64_t w) {
  return ood::localise_image(map.data(), mask.data(), h, w);
}

}  // namespace

// 2x3 map, patch = the top-left two pixels (area 1/3), unique maximum inside.
//   map  5  1  0     mask 1 1 0
//        2 -4  1          0 0 0
// pointing 1; mass (5 + 1) / (5 + 1 + 0 + 2 + 0 + 1) = 6/9; pixel AUROC: 5 beats all 4 outside,
// 1 beats 0 and -4, ties 1, loses to 2: (4 + 2.5) / 8.
TEST(Localisation, HandWorkedUniqueMaximum) {
  const Localisation r = on({5, 1, 0, 2, -4, 1}, {1, 1, 0, 0, 0, 0}, 2, 3);
  EXPECT_NEAR(r.pointing, 1.0, kExact);
  EXPECT_NEAR(r.mass_share, 6.0 / 9.0, kExact);
  EXPECT_NEAR(r.pixel_auroc, 6.5 / 8.0, kExact);
  EXPECT_NEAR(r.area, 1.0 / 3.0, kExact);
  EXPECT_EQ(r.massless, 0.0);
}

// The maximum 3 is tied by two pixels inside and one outside: pointing 2/3 (not 1, as "any maximal
// pixel inside" would give; not 1 or 0 as "the first maximal pixel" would).
//   map  3  3  0     mask 1 1 0
//        3  1  1          0 0 0
// mass 6/11; pixel AUROC: each inside 3 beats 0, 1, 1 and ties 3: 2 * 3.5 / 8.
TEST(Localisation, HandWorkedTiedMaximum) {
  const Localisation r = on({3, 3, 0, 3, 1, 1}, {1, 1, 0, 0, 0, 0}, 2, 3);
  EXPECT_NEAR(r.pointing, 2.0 / 3.0, kExact);
  EXPECT_NEAR(r.mass_share, 6.0 / 11.0, kExact);
  EXPECT_NEAR(r.pixel_auroc, 7.0 / 8.0, kExact);
  // The same maximum tie with the patch at the end of the image (a "last maximal pixel" rule would
  // score 1 here, a "first" one 0).
  const Localisation s = on({3, 0, 0, 0, 1, 3}, {0, 0, 0, 0, 0, 1}, 2, 3);
  EXPECT_NEAR(s.pointing, 0.5, kExact);
}

// A map that knows nothing scores chance: pointing and mass = area fraction, pixel AUROC 0.5,
// wherever the patch is (first pixel, last pixel, middle), whatever the constant (positive, zero,
// negative); and a massless non-constant map's mass share is the area too.
TEST(Localisation, ConstantMapsScoreChance) {
  const int64_t h = 4, w = 5;
  for (float value : {2.5f, 0.f, -1.f})
    for (int where = 0; where < 3; ++where) {
      std::vector<uint8_t> mask(h * w, 0);
      const int64_t start = where == 0 ? 0 : where == 1 ? h * w - 3 : 7;
      for (int64_t k = start; k < start + 3; ++k) mask[k] = 1;
      const Localisation r = on(std::vector<float>(h * w, value), mask, h, w);
      EXPECT_NEAR(r.pointing, 3.0 / 20.0, kExact) << value << " " << where;
      EXPECT_NEAR(r.mass_share, 3.0 / 20.0, kExact) << value << " " << where;
      EXPECT_NEAR(r.pixel_auroc, 0.5, kExact) << value << " " << where;
      EXPECT_EQ(r.massless, value > 0 ? 0.0 : 1.0) << value << " " << where;
    }
  // All values <= 0: no mass anywhere, share = area; the maximum -1 is inside.
  const Localisation r = on({-1, -2, -3, -4, -5, -6}, {1, 0, 0, 0, 0, 0}, 2, 3);
  EXPECT_NEAR(r.mass_share, 1.0 / 6.0, kExact);
  EXPECT_EQ(r.massless, 1.0);
  EXPECT_NEAR(r.pointing, 1.0, kExact);
  EXPECT_NEAR(r.pixel_auroc, 1.0, kExact);
}

TEST(Localisation, PerfectAndInvertedMaps) {
  const std::vector<uint8_t> mask{0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0};  // 3x4, an irregular region
  std::vector<float> same(mask.begin(), mask.end()), inverted;
  for (uint8_t m : mask) inverted.push_back(1.f - m);
  const Localisation p = on(same, mask, 3, 4), q = on(inverted, mask, 3, 4);
  EXPECT_NEAR(p.pointing, 1, kExact);
  EXPECT_NEAR(p.mass_share, 1, kExact);
  EXPECT_NEAR(p.pixel_auroc, 1, kExact);
  EXPECT_NEAR(q.pointing, 0, kExact);
  EXPECT_NEAR(q.mass_share, 0, kExact);
  EXPECT_NEAR(q.pixel_auroc, 0, kExact);
}

// Non-square images: the mask is read at [i, y, x] like the map (a transposed reading fails).
// Image 0 (2x3) is the unique-maximum case above; image 1 has its patch at the right column.
//   map  0  0  9     mask 0 0 1
//        0  0  1          0 0 1     pointing 1, mass 10/10, pixel AUROC (4 + 4) / 8 = 1
TEST(Localisation, MeansOverImagesAndChance) {
  const Tensor maps = Tensor::from_vector<float>({5, 1, 0, 2, -4, 1, 0, 0, 9, 0, 0, 1}, {2, 2, 3});
  const Tensor masks = Tensor::from_vector<uint8_t>({1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1}, {2, 2, 3});
  const ood::LocalisationSummary s = ood::localise(maps, masks);
  EXPECT_EQ(s.n_images, 2);
  ASSERT_EQ(s.per_image.size(), 2u);
  EXPECT_NEAR(s.mean.pointing, 1.0, kExact);
  EXPECT_NEAR(s.mean.mass_share, (6.0 / 9.0 + 1.0) / 2, kExact);
  EXPECT_NEAR(s.mean.pixel_auroc, (6.5 / 8.0 + 1.0) / 2, kExact);
  EXPECT_NEAR(s.pointing_chance, 1.0 / 3.0, kExact);
  EXPECT_NEAR(s.mass_share_chance, 1.0 / 3.0, kExact);
  EXPECT_EQ(s.pixel_auroc_chance, 0.5);
  EXPECT_EQ(s.mean.massless, 0.0);
  // A third image whose map is <= 0: massless, and its mass share is its area (1/6).
  const Tensor maps3 = Tensor::from_vector<float>({5, 1, 0, 2, -4, 1, 0, 0, 9, 0, 0, 1, 0, -1, -1, -1, -1, -1}, {3, 2, 3});
  const Tensor masks3 =
      Tensor::from_vector<uint8_t>({1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0}, {3, 2, 3});
  const ood::LocalisationSummary s3 = ood::localise(maps3, masks3);
  EXPECT_NEAR(s3.mean.massless, 1.0 / 3.0, kExact);
  EXPECT_NEAR(s3.mean.mass_share, (6.0 / 9.0 + 1.0 + 1.0 / 6.0) / 3, kExact);
  EXPECT_NEAR(s3.pointing_chance, (1.0 / 3 + 1.0 / 3 + 1.0 / 6) / 3, kExact);
}

// The shuffled baseline on the two images above (N = 2: one shift, map 0 vs mask 1, map 1 vs mask 0):
//   map 0 (5 1 0 / 2 -4 1) vs mask 1 (0 0 1 / 0 0 1): pointing 0 (5 is outside); mass (0 + 1) / 9;
//     pixel AUROC: inside {0, 1} vs outside {5, 1, 2, -4}: 0 wins 1, 1 wins 1 and ties 1: 2.5 / 8
//   map 1 (0 0 9 / 0 0 1) vs mask 0 (1 1 0 / 0 0 0): pointing 0; mass 0 / 10; pixel AUROC: each
//     inside 0 ties two 0s and loses to 9 and 1: 2 * 1 / 8
TEST(Localisation, ShuffledBaselineHandWorked) {
  const Tensor maps = Tensor::from_vector<float>({5, 1, 0, 2, -4, 1, 0, 0, 9, 0, 0, 1}, {2, 2, 3});
  const Tensor masks = Tensor::from_vector<uint8_t>({1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1}, {2, 2, 3});
  const ood::LocalisationSummary s = ood::localise(maps, masks);
  EXPECT_NEAR(s.shuffled.pointing, 0.0, kExact);
  EXPECT_NEAR(s.shuffled.mass_share, (1.0 / 9.0 + 0.0) / 2, kExact);
  EXPECT_NEAR(s.shuffled.pixel_auroc, (2.5 / 8 + 2.0 / 8) / 2, kExact);
  EXPECT_NEAR(s.shuffled.area, 1.0 / 3.0, kExact);
  // One image: no other mask; the baseline is the figure itself.
  const ood::LocalisationSummary one = ood::localise(maps.narrow(0, 1), masks.narrow(0, 1));
  EXPECT_NEAR(one.shuffled.pointing, one.mean.pointing, kExact);
  // Six images: shifts 1..4, each map against the four masks after it (cyclically): brute force.
  Generator gen(5);
  const Tensor m6 = Tensor::uniform({6, 3, 4}, -1, 1, gen);
  Tensor k6 = Tensor::zeros({6, 3, 4}, DType::U8);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t q = 0; q < 12; ++q) k6.data<uint8_t>()[i * 12 + q] = uint8_t(q == i || q == 11 - i || q == (i + 5) % 12);
  const ood::LocalisationSummary s6 = ood::localise(m6, k6);
  double p = 0, ms = 0, au = 0;
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t k = 1; k <= 4; ++k) {
      const Localisation r = ood::localise_image(m6.data<float>() + i * 12, k6.data<uint8_t>() + ((i + k) % 6) * 12, 3, 4);
      p += r.pointing / 24, ms += r.mass_share / 24, au += r.pixel_auroc / 24;
    }
  EXPECT_NEAR(s6.shuffled.pointing, p, 1e-12);
  EXPECT_NEAR(s6.shuffled.mass_share, ms, 1e-12);
  EXPECT_NEAR(s6.shuffled.pixel_auroc, au, 1e-12);
}

// Random quantised maps (many ties) against plain pair counting and argmax enumeration.
TEST(Localisation, MatchesBruteForceOnTiedMaps) {
  Generator gen(77);
  for (int t = 0; t < 50; ++t) {
    const int64_t h = 3 + gen.randint(6), w = 3 + gen.randint(6), n = h * w;
    std::vector<float> map(n);
    std::vector<uint8_t> mask(n);
    for (int64_t p = 0; p < n; ++p) {
      map[p] = float(gen.randint(5)) - 2.f;
      mask[p] = uint8_t(gen.randint(3) == 0);
    }
    mask[0] = 1, mask[n - 1] = 0;
    double wins = 0, pairs = 0, top = -1e9, in_mass = 0, all_mass = 0, ties = 0, ties_in = 0, area = 0;
    for (int64_t a = 0; a < n; ++a) {
      top = std::max(top, double(map[a]));
      area += mask[a];
      all_mass += std::max(0.f, map[a]);
      if (mask[a]) in_mass += std::max(0.f, map[a]);
      if (!mask[a]) continue;
      for (int64_t b = 0; b < n; ++b)
        if (!mask[b]) {
          pairs += 1;
          wins += map[a] > map[b] ? 1.0 : map[a] == map[b] ? 0.5 : 0.0;
        }
    }
    for (int64_t a = 0; a < n; ++a)
      if (map[a] == top) ties += 1, ties_in += mask[a];
    const Localisation r = on(map, mask, h, w);
    EXPECT_NEAR(r.pixel_auroc, wins / pairs, kExact);
    EXPECT_NEAR(r.pointing, ties_in / ties, kExact);
    EXPECT_NEAR(r.mass_share, all_mass > 0 ? in_mass / all_mass : area / double(n), kExact);
    EXPECT_NEAR(r.area, area / double(n), kExact);
    EXPECT_EQ(r.massless, all_mass > 0 ? 0.0 : 1.0);
  }
}

TEST(Localisation, Refusals) {
  const auto message = [](const Tensor& maps, const Tensor& masks) {
    try {
      ood::localise(maps, masks, "method 'm'");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const Tensor masks = Tensor::from_vector<uint8_t>({1, 0, 0, 0}, {1, 2, 2});
  EXPECT_NE(message(Tensor::from_vector<float>({1, NAN, 0, 0}, {1, 2, 2}), masks)
                .find("method 'm', image 0: map value nan at pixel (0, 1) is not finite"),
            std::string::npos);
  EXPECT_NE(message(Tensor::from_vector<float>({1, 2, 3, 4}, {1, 2, 2}), Tensor::ones({1, 2, 2}, DType::U8))
                .find("both inside and outside"),
            std::string::npos);
  EXPECT_NE(message(Tensor::zeros({1, 2, 2}), Tensor::zeros({1, 2, 2}, DType::U8)).find("both inside and outside"),
            std::string::npos);
  EXPECT_NE(message(Tensor::zeros({1, 2, 3}), masks).find("masks must be uint8 of the maps' shape"), std::string::npos);
  EXPECT_NE(message(Tensor::zeros({1, 2, 2}, DType::F64), masks).find("maps must be float32 [N, H, W]"),
            std::string::npos);
}
