// The patch benchmark runner (run/patch_benchmark.h) on explainers whose answer is known: an oracle
// that sees the pasted pixels (pointing, mass share, pixel AUROC and image AUROC all 1), a constant
// one (every figure at its chance level), one that points away from the patch (0); the files it
// writes, the picture grid, and its refusals. MinimalExample shows a caller's use.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/image_folder.h"
#include "data/patches.h"
#include "data/registry.h"
#include "framework/error.h"
#include "framework/random.h"
#include "run/patch_benchmark.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::error_of;
namespace fs = std::filesystem;

namespace {

constexpr double kExact = 1e-12;

// ID images with channel 2 = 255 everywhere; sources with channel 2 < 255, so a patch pixel is
// recognisable from the image alone.
data::Dataset marked_id(int64_t n, int64_t side, uint64_t seed) {
  Generator gen(seed);
  data::Dataset ds;
  ds.name = "marked-id";
  ds.images = Tensor::empty({n, 3, side, side}, DType::U8);
  uint8_t* p = ds.images.data<uint8_t>();
  for (int64_t i = 0; i < n * 3 * side * side; ++i) p[i] = (i / (side * side)) % 3 == 2 ? 255 : uint8_t(gen.randint(256));
  return ds;
}
data::Dataset marked_source(const std::string& name, int64_t m, int64_t side, uint64_t seed) {
  Generator gen(seed);
  data::Dataset ds;
  ds.name = name;
  ds.images = Tensor::empty({m, 3, side, side}, DType::U8);
  uint8_t* p = ds.images.data<uint8_t>();
  for (int64_t i = 0; i < m * 3 * side * side; ++i) p[i] = uint8_t(gen.randint(255));
  return ds;
}

// Map = 1 where channel 2 is not 255 (the patch), else 0; score = -(patch pixels).
run::Explanation oracle(const data::Dataset& ds) {
  const int64_t n = ds.size(), h = ds.images.size(2), w = ds.images.size(3);
  run::Explanation e;
  e.maps = Tensor::zeros({n, h, w});
  const uint8_t* p = ds.images.data<uint8_t>();
  float* m = e.maps.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double count = 0;
    for (int64_t q = 0; q < h * w; ++q) {
      m[i * h * w + q] = p[(i * 3 + 2) * h * w + q] != 255 ? 1.f : 0.f;
      count += m[i * h * w + q];
    }
    e.scores.push_back(-count);
  }
  return e;
}
run::Explanation constant(const data::Dataset& ds) {
  return {std::vector<double>(size_t(ds.size()), 1.0), Tensor::full({ds.size(), ds.images.size(2), ds.images.size(3)}, 0.25)};
}
run::Explanation away(const data::Dataset& ds) {  // the oracle's map inverted
  run::Explanation e = oracle(ds);
  float* m = e.maps.data<float>();
  for (int64_t k = 0; k < e.maps.numel(); ++k) m[k] = 1.f - m[k];
  return e;
}

std::string temp_dir(const std::string& tag) {
  const fs::path d = fs::temp_directory_path() / ("oodkit_patch_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST(PatchBenchmark, KnownExplainersScoreOneChanceAndZero) {
  run::PatchBenchmarkConfig c;
  c.id_test = marked_id(30, 32, 1);
  c.sources = {marked_source("src-a", 6, 32, 2), marked_source("src-b", 4, 20, 3)};
  c.seed = 5;
  const std::vector<std::pair<std::string, run::Explainer>> methods{{"oracle", oracle}, {"constant", constant},
                                                                     {"away", away}};
  const std::vector<run::PatchBenchmarkRow> rows = run::run_patch_benchmark(c, methods, "");
  ASSERT_EQ(rows.size(), 2u * 3 * 3 + 3 * 3);  // sources x sizes x methods, then the averages
  size_t k = 0;
  for (const std::string source : {"src-a", "src-b", "average"})
    for (int64_t size : {8, 12, 16})
      for (const std::string method : {"oracle", "constant", "away"}) {
        const run::PatchBenchmarkRow& r = rows[k++];
        SCOPED_TRACE(source + " " + std::to_string(size) + " " + method);
        EXPECT_EQ(r.source, source);
        EXPECT_EQ(r.size, size);
        EXPECT_EQ(r.size_px, size);
        EXPECT_EQ(r.method, method);
        EXPECT_EQ(r.n_images, source == std::string("average") ? 60 : 30);
        const double area = double(size * size) / 1024.0;
        EXPECT_NEAR(r.pointing_chance, area, kExact);
        EXPECT_NEAR(r.mass_share_chance, area, kExact);
        EXPECT_NEAR(r.pixel_auroc_chance, 0.5, kExact);
        const double want_loc = method == std::string("oracle") ? 1.0 : 0.0;
        if (method == std::string("constant")) {
          EXPECT_NEAR(r.pointing_shuffled, area, kExact);
          EXPECT_NEAR(r.mass_share_shuffled, area, kExact);
          EXPECT_NEAR(r.pixel_auroc_shuffled, 0.5, kExact);
          EXPECT_NEAR(r.image_auroc, 0.5, kExact);
          EXPECT_NEAR(r.pointing, area, kExact);
          EXPECT_NEAR(r.mass_share, area, kExact);
          EXPECT_NEAR(r.pixel_auroc, 0.5, kExact);
        } else {
          EXPECT_NEAR(r.image_auroc, 1.0, kExact);  // clean score 0 > patched -s^2
          EXPECT_NEAR(r.pointing, want_loc, kExact);
          EXPECT_NEAR(r.mass_share, want_loc, kExact);
          EXPECT_NEAR(r.pixel_auroc, want_loc, kExact);
        }
      }
}

// Sizes scale with the image (64 px: 16, 24, 32) and limit takes the first rows.
TEST(PatchBenchmark, ScalesSizesAndLimitsRows) {
  run::PatchBenchmarkConfig c;
  c.id_test = marked_id(12, 64, 4);
  c.sources = {marked_source("src", 3, 64, 5)};
  c.limit = 7;
  const auto rows = run::run_patch_benchmark(c, {{"oracle", oracle}}, "");
  ASSERT_EQ(rows.size(), 3u);  // one source: no average rows
  EXPECT_EQ(rows[0].size_px, 16);
  EXPECT_EQ(rows[1].size_px, 24);
  EXPECT_EQ(rows[2].size_px, 32);
  EXPECT_NEAR(rows[2].pointing_chance, 32.0 * 32 / (64 * 64), kExact);
  for (const auto& r : rows) {
    EXPECT_EQ(r.n_images, 7);
    EXPECT_NEAR(r.pointing, 1.0, kExact);
  }
}

// A map <= 0 everywhere (0 on the patch, -1 elsewhere) localises perfectly by pointing and pixel
// AUROC but has no positive mass: its mass share is the chance level and it is reported massless.
TEST(PatchBenchmark, NegativeMapsAreMassless) {
  run::PatchBenchmarkConfig c;
  c.id_test = marked_id(10, 32, 8);
  c.sources = {marked_source("src", 3, 32, 9)};
  c.sizes = {12};
  const run::Explainer negative = [](const data::Dataset& ds) {
    run::Explanation e = oracle(ds);
    float* m = e.maps.data<float>();
    for (int64_t k = 0; k < e.maps.numel(); ++k) m[k] -= 1.f;
    return e;
  };
  const auto rows = run::run_patch_benchmark(c, {{"oracle", oracle}, {"negative", negative}}, "");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].massless, 0.0);
  EXPECT_EQ(rows[1].massless, 1.0);
  EXPECT_NEAR(rows[1].pointing, 1.0, kExact);
  EXPECT_NEAR(rows[1].pixel_auroc, 1.0, kExact);
  EXPECT_NEAR(rows[1].mass_share, 144.0 / 1024, kExact);
  const std::string md = run::patch_markdown(c, rows);
  EXPECT_NE(md.find("Maps with no positive mass (all <= 0; their mass share is the chance level by definition): "
                    "negative 12 px 100.00%."),
            std::string::npos)
      << md;
  EXPECT_NE(run::patch_csv(rows).find("\nsrc,12,12,negative,100,100,14.0625,"),
            std::string::npos)
      << run::patch_csv(rows);
}

// A map that always peaks at the image centre, whatever the image: the uniformly placed patches cover
// the centre more often than their area fraction says (a 16 px patch covers pixel (15, 15) with
// probability (16/17)^2 = 0.886), so it beats the chance level, but it equals its shuffled baseline
// exactly (the same map against every mask either way).
TEST(PatchBenchmark, ShuffledBaselineExposesAPositionalPrior) {
  run::PatchBenchmarkConfig c;
  c.id_test = marked_id(200, 32, 10);
  c.sources = {marked_source("src", 3, 32, 11)};
  c.sizes = {16};
  const run::Explainer centre = [](const data::Dataset& ds) {
    run::Explanation e{std::vector<double>(size_t(ds.size()), 0.0), Tensor::zeros({ds.size(), 32, 32})};
    float* m = e.maps.data<float>();
    for (int64_t i = 0; i < ds.size(); ++i)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x)
          m[(i * 32 + y) * 32 + x] = float(-((y - 15) * (y - 15) + (x - 15) * (x - 15)));  // peak at (15, 15)
    return e;
  };
  const auto rows = run::run_patch_benchmark(c, {{"centre", centre}, {"oracle", oracle}}, "");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_GT(rows[0].pointing, 0.8);  // far above the chance level 0.25
  EXPECT_NEAR(rows[0].pointing, rows[0].pointing_shuffled, kExact);
  EXPECT_NEAR(rows[0].pixel_auroc, rows[0].pixel_auroc_shuffled, kExact);
  EXPECT_NEAR(rows[0].mass_share, rows[0].mass_share_shuffled, kExact);
  EXPECT_LT(rows[1].pointing_shuffled, 0.5);  // the oracle is far above its shuffled baseline
  EXPECT_NEAR(rows[1].pointing, 1.0, kExact);
}

// A caller's use: an ID test set and sources by name, two explainers, the files in a folder.
TEST(PatchBenchmark, MinimalExample) {
  data::LoadOptions lo;
  lo.limit = 16;
  run::PatchBenchmarkConfig c;
  c.id_test = data::load_dataset("synthetic-id", "", lo);
  c.sources = {data::load_patch_source("synthetic-ood-noise", 32, 50),
               data::load_patch_source("synthetic-ood-textures", 32, 50)};
  c.sizes = {8, 16};
  // An explainer that holds the clean images: map = 1 where a pixel differs from its clean copy.
  const Tensor clean = c.id_test.images.clone();
  const run::Explainer diff = [clean](const data::Dataset& ds) {
    const int64_t n = ds.size(), hw = 32 * 32;
    run::Explanation e{std::vector<double>(size_t(n), 0.0), Tensor::zeros({n, 32, 32})};
    const uint8_t *a = ds.images.data<uint8_t>(), *b = clean.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t q = 0; q < hw; ++q)
        for (int64_t ch = 0; ch < 3; ++ch)
          if (a[(i * 3 + ch) * hw + q] != b[(i * 3 + ch) * hw + q]) e.maps.data<float>()[i * hw + q] = 1.f;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t q = 0; q < hw; ++q) e.scores[size_t(i)] -= e.maps.data<float>()[i * hw + q];
    return e;
  };
  const std::string out = temp_dir("example");
  const auto rows = run::run_patch_benchmark(c, {{"diff", diff}, {"constant", constant}}, out);
  ASSERT_EQ(rows.size(), 2u * 2 * 2 + 2 * 2);
  for (const auto& r : rows)
    if (r.method == "diff") {
      EXPECT_NEAR(r.pointing, 1.0, kExact);
      EXPECT_NEAR(r.mass_share, 1.0, kExact);
      EXPECT_GT(r.pixel_auroc, 0.98);  // a pasted pixel may equal the clean one by chance
      EXPECT_NEAR(r.image_auroc, 1.0, kExact);
    }
  for (const char* f : {"patches.md", "patches.json", "patches.csv", "patches_records.csv", "patches.png",
                        "patches_grid.md"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  const nlohmann::json j = nlohmann::json::parse(read_file(out + "/patches.json"));
  EXPECT_EQ(j["id"], "synthetic-id");
  EXPECT_EQ(j["n_images"], 16);
  EXPECT_EQ(j["sources"], (std::vector<std::string>{"synthetic-ood-noise", "synthetic-ood-textures"}));
  EXPECT_EQ(j["methods"], (std::vector<std::string>{"diff", "constant"}));
  ASSERT_EQ(j["results"].size(), rows.size());
  EXPECT_EQ(j["results"][1]["method"], "constant");
  EXPECT_DOUBLE_EQ(j["results"][1]["pointing_chance"].get<double>(), 100.0 * 64 / 1024);
  const std::string csv = read_file(out + "/patches.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), int64_t(rows.size()) + 1);
  EXPECT_NE(csv.find("\naverage,16,16,constant,50,25,25,25,25,25,25,50,50,50,0,32\n"), std::string::npos) << csv;
  const std::string records = read_file(out + "/patches_records.csv");
  EXPECT_EQ(std::count(records.begin(), records.end(), '\n'), 1 + 2 * 2 * 16);
  const std::string md = read_file(out + "/patches.md");
  EXPECT_NE(md.find("## patches from synthetic-ood-noise"), std::string::npos);
  EXPECT_NE(md.find("| constant | 16 px | 50.00 | 25.00 | 25.00 | 25.00 | 25.00 | 25.00 | 25.00 | 50.00 | 50.00 | 50.00 |"), std::string::npos)
      << md;
  // The grid: 2 sources x 2 sizes x 2 images = 8 rows of 3 tiles, 3x magnified, 4 px gaps.
  const data::ImageInfo info = data::read_image_info(out + "/patches.png");
  EXPECT_EQ(info.height, 4 + 8 * (96 + 4));
  EXPECT_EQ(info.width, 4 + 3 * (96 + 4));
  fs::remove_all(out);
}

// The grid's pixels: the image tile is the image magnified with the patch outline in green; a map
// tile is the hot ramp of the method's range over all rows (max white, min black).
TEST(PatchBenchmark, GridPixels) {
  const int64_t h = 4, w = 5, scale = 2;
  Tensor images = Tensor::zeros({1, 3, h, w}, DType::U8);
  for (int64_t k = 0; k < images.numel(); ++k) images.data<uint8_t>()[k] = uint8_t(10 + k);
  Tensor masks = Tensor::zeros({1, h, w}, DType::U8);
  masks.data<uint8_t>()[1 * w + 2] = 1;  // one pixel at (y 1, x 2)
  Tensor map = Tensor::zeros({1, h, w});
  map.data<float>()[3 * w + 4] = 2.f;   // max at (3, 4)
  map.data<float>()[0] = -2.f;          // min at (0, 0)
  Tensor ramp = Tensor::zeros({1, h, w});  // ramp[y, x] = y * w + x: a transposed reading shows
  for (int64_t q = 0; q < h * w; ++q) ramp.data<float>()[q] = float(q);
  const Tensor g = run::patch_grid(images, masks, {map, ramp}, scale, /*percentile=*/100);  // min..max
  const int64_t gh = 4 + (h * scale + 4), gw = 4 + 3 * (w * scale + 4);
  ASSERT_EQ(g.shape(), (Shape{3, gh, gw}));
  const auto px = [&](int64_t c, int64_t y, int64_t x) { return int(g.data<uint8_t>()[(c * gh + y) * gw + x]); };
  for (int64_t y = 0; y < h * scale; ++y)
    for (int64_t x = 0; x < w * scale; ++x) {
      const bool edge = y / scale == 1 && x / scale == 2;  // a one-pixel patch is all outline
      for (int64_t c = 0; c < 3; ++c) {
        const int want = edge ? (c == 1 ? 255 : 0) : 10 + int((c * h + y / scale) * w + x / scale);
        ASSERT_EQ(px(c, 4 + y, 4 + x), want) << c << " " << y << " " << x;
      }
    }
  const int64_t x0 = 4 + w * scale + 4;
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_EQ(px(c, 4 + 3 * scale + 1, x0 + 4 * scale + 1), 255);  // the maximum: white
    EXPECT_EQ(px(c, 4, x0), 0);                                    // the minimum: black
  }
  EXPECT_EQ(px(0, 4, x0 + 2), 255);  // value 0 = the middle of [-2, 2]: 3 * 0.5 -> red saturated
  EXPECT_EQ(px(1, 4, x0 + 2), 128);
  EXPECT_EQ(px(1, 4 + 1 * scale, x0 + 2 * scale), 255);  // the outline is repeated on the map
  EXPECT_EQ(px(0, 4 + 1 * scale, x0 + 2 * scale), 0);
  // The ramp's tile: (y 1, x 3) is 8/19 of the range -> (255, round(255 (3 * 8/19 - 1)) = 67, 0);
  // (y 2, x 0) is 10/19 -> (255, 148, 0).
  const int64_t x1 = x0 + w * scale + 4;
  EXPECT_EQ(px(0, 4 + 1 * scale, x1 + 3 * scale), 255);
  EXPECT_EQ(px(1, 4 + 1 * scale, x1 + 3 * scale), 67);
  EXPECT_EQ(px(2, 4 + 1 * scale, x1 + 3 * scale), 0);
  EXPECT_EQ(px(1, 4 + 2 * scale + 1, x1 + 1), 148);
  // A 2x2-pixel patch magnified 3x: only its border pixels are outlined.
  Tensor big_mask = Tensor::zeros({1, h, w}, DType::U8);
  for (int64_t q : {0, 1, 5, 6}) big_mask.data<uint8_t>()[q] = 1;
  const Tensor g3 = run::patch_grid(images, big_mask, {}, 3, 100);
  const int64_t w3 = 4 + (w * 3 + 4), h3 = 4 + h * 3 + 4;
  ASSERT_EQ(g3.shape(), (Shape{3, h3, w3}));
  const auto px3 = [&](int64_t c, int64_t y, int64_t x) { return int(g3.data<uint8_t>()[(c * h3 + 4 + y) * w3 + 4 + x]); };
  EXPECT_EQ(px3(1, 0, 0), 255);
  EXPECT_EQ(px3(1, 5, 3), 255);   // bottom row of the 6x6 magnified patch
  EXPECT_EQ(px3(1, 2, 5), 255);   // right column
  EXPECT_EQ(px3(1, 2, 2), 10 + h * w);  // interior: channel 1 of image pixel (0, 0)
  EXPECT_EQ(px3(1, 2, 6), 10 + h * w + 2);                 // outside: image pixel (0, 2), channel 1
}

TEST(PatchBenchmark, Refusals) {
  run::PatchBenchmarkConfig c;
  c.id_test = marked_id(5, 32, 6);
  c.sources = {marked_source("src", 3, 32, 7)};
  const std::vector<std::pair<std::string, run::Explainer>> ok{{"oracle", oracle}};
  const auto run = [&](const run::PatchBenchmarkConfig& cc, const std::vector<std::pair<std::string, run::Explainer>>& m,
                       const std::string& out = "") { return error_of([&] { run::run_patch_benchmark(cc, m, out); }); };
  EXPECT_NE(run(c, {}).find("no method"), std::string::npos);
  EXPECT_NE(run(c, {{"oracle", oracle}, {"oracle", constant}}).find("method 'oracle' named twice"), std::string::npos);
  run::PatchBenchmarkConfig bad = c;
  bad.sources = {marked_source("marked-id", 3, 32, 7)};
  EXPECT_NE(run(bad, ok).find("patch source 'marked-id' is the ID set itself"), std::string::npos);
  bad = c;
  bad.sources.push_back(c.sources[0]);
  EXPECT_NE(run(bad, ok).find("patch source 'src' named twice"), std::string::npos);
  bad = c;
  bad.sizes = {8, 32};
  EXPECT_NE(run(bad, ok).find("patch size 32 (32 px at 32x32) does not leave"), std::string::npos);
  bad = c;
  bad.sources.clear();
  EXPECT_NE(run(bad, ok).find("no patch source"), std::string::npos);
  bad = c;
  bad.id_test = data::Dataset{};
  bad.id_test.name = "empty";
  EXPECT_NE(run(bad, ok).find("the ID test set 'empty' is empty"), std::string::npos);
  // Wrong answers from an explainer name the method and the set.
  const run::Explainer short_scores = [](const data::Dataset& ds) {
    run::Explanation e = oracle(ds);
    e.scores.pop_back();
    return e;
  };
  EXPECT_NE(run(c, {{"short", short_scores}}).find("method 'short' returned 4 scores for set 'marked-id' of 5 images"),
            std::string::npos);
  const run::Explainer transposed = [](const data::Dataset& ds) {
    return run::Explanation{std::vector<double>(size_t(ds.size()), 0.0), Tensor::zeros({ds.size(), 32, 31})};
  };
  EXPECT_NE(run(c, {{"t", transposed}}).find("method 't' returned maps float32[5, 32, 31]"), std::string::npos);
  const run::Explainer nan_score = [](const data::Dataset& ds) {
    run::Explanation e = oracle(ds);
    e.scores[2] = NAN;
    return e;
  };
  EXPECT_NE(run(c, {{"n", nan_score}}).find("method 'n' scored image 2 of set 'marked-id' nan"), std::string::npos);
  // Patched sets only (the clean set passes): the error names the patched set; nothing is written.
  const run::Explainer nan_map = [](const data::Dataset& ds) {
    run::Explanation e = oracle(ds);
    if (ds.name != "marked-id") e.maps.data<float>()[3] = NAN;
    return e;
  };
  const std::string out = temp_dir("refusal");
  EXPECT_NE(run(c, {{"oracle", oracle}, {"m", nan_map}}, out).find("method 'm' on marked-id+src@8px, image 0: map value nan"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out + "/patches.md"));
  EXPECT_FALSE(fs::exists(out + "/patches.png"));
  fs::remove_all(out);
}

// The grid's robust colour scale: one outlier must not darken a method's column. A map of 200 pixels
// holding 0..198 and one outlier 1e6: numpy.percentile(v, 1) = 1.99 and percentile(v, 99) = 197.01
// (sorted v, h = 199 * 0.99 = 197.01 -> v[197] + 0.01 (v[198] - v[197])), by hand. Pixel value 99 sits at
// t = (99 - 1.99) / 195.02 = 0.49744 -> hot (255, round(255 (3t - 1)) = 126, 0); under min..max it is
// t = 9.9e-5 -> black, the darkened column this scale prevents.
TEST(PatchBenchmark, GridRobustScale) {
  const int64_t h = 10, w = 20, scale = 1;
  Tensor map = Tensor::zeros({1, h, w});
  for (int64_t q = 0; q < h * w; ++q) map.data<float>()[q] = float(q);
  map.data<float>()[h * w - 1] = 1e6f;  // the outlier replaces 199
  const auto [lo, hi] = run::grid_range(map, 99);
  EXPECT_NEAR(lo, 1.99, 1e-9);
  EXPECT_NEAR(hi, 197.01, 1e-9);
  const auto [lo100, hi100] = run::grid_range(map, 100);
  EXPECT_EQ(lo100, 0.0);
  EXPECT_EQ(hi100, 1e6);
  EXPECT_THROW(run::grid_range(map, 49), Error);
  const Tensor images = Tensor::zeros({1, 3, h, w}, DType::U8), masks = Tensor::zeros({1, h, w}, DType::U8);
  const int64_t gw = 4 + 2 * (w * scale + 4), gh = 4 + h * scale + 4, x0 = 4 + w * scale + 4;
  for (double pct : {99.0, 100.0}) {
    const Tensor g = run::patch_grid(images, masks, {map}, scale, pct);
    ASSERT_EQ(g.shape(), (Shape{3, gh, gw}));
    const auto px = [&](int64_t c, int64_t q) { return int(g.data<uint8_t>()[(c * gh + 4 + q / w) * gw + x0 + q % w]); };
    for (int64_t c = 0; c < 3; ++c) {
      EXPECT_EQ(px(c, h * w - 1), 255) << pct;  // the outlier: white
      EXPECT_EQ(px(c, 0), 0) << pct;            // 0: black (below lo = 1.99 on the robust scale: clamped)
    }
    if (pct == 99.0) {
      EXPECT_EQ(px(0, 99), 255);
      EXPECT_EQ(px(1, 99), 126);
      EXPECT_EQ(px(2, 99), 0);
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(px(c, 198), 255);  // above hi = 197.01: clamped white
    } else {
      EXPECT_EQ(px(0, 99), 0);  // min..max: the outlier darkens the column
    }
  }
}
