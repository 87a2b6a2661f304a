#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/image_folder.h"
#include "data/io.h"
#include "data/registry.h"
#include "data/stb.h"
#include "testing.h"

using namespace oodkit;
namespace fs = std::filesystem;

namespace {

// A fresh, empty folder under the test temp dir.
std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "oodkit_imgf_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// uint8 [c, h, w] with distinct, position-dependent values.
Tensor pattern(int64_t c, int64_t h, int64_t w, int seed) {
  std::vector<uint8_t> v(size_t(c * h * w));
  for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t((i * 37 + size_t(seed) * 11) % 256);
  return Tensor::from_vector<uint8_t>(v, {c, h, w});
}

Tensor u8(const std::vector<uint8_t>& v, const Shape& s) { return Tensor::from_vector<uint8_t>(v, s); }

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needles[0] << "'";
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(ImageDecode, PngRoundTripIsExact) {
  const std::string d = fresh_dir("png");
  const Tensor img = pattern(3, 5, 7, 1);
  data::write_png(d + "/a.png", img);
  const Tensor back = data::decode_image(d + "/a.png");
  ASSERT_EQ(back.shape(), (Shape{3, 5, 7}));
  EXPECT_EQ(back.to_vector<uint8_t>(), img.to_vector<uint8_t>());
  const data::ImageInfo info = data::read_image_info(d + "/a.png");
  EXPECT_EQ(info.height, 5);
  EXPECT_EQ(info.width, 7);
  EXPECT_EQ(info.channels, 3);
}

TEST(ImageDecode, GrayAndAlphaBecomeRgb) {
  const std::string d = fresh_dir("gray");
  const Tensor gray = pattern(1, 4, 6, 2);
  data::write_png(d + "/g.png", gray);
  const std::vector<uint8_t> g = gray.to_vector<uint8_t>();
  std::vector<uint8_t> want;
  for (int c = 0; c < 3; ++c) want.insert(want.end(), g.begin(), g.end());
  EXPECT_EQ(data::decode_image(d + "/g.png").to_vector<uint8_t>(), want);
  EXPECT_EQ(data::read_image_info(d + "/g.png").channels, 1);

  // Gray + alpha and RGBA written directly with stb: alpha is dropped.
  std::vector<uint8_t> ga, rgba;
  for (int k = 0; k < 24; ++k) {
    ga.push_back(g[size_t(k)]);
    ga.push_back(uint8_t(k * 10));
    for (int c = 0; c < 3; ++c) rgba.push_back(uint8_t(k * 3 + c * 50));
    rgba.push_back(uint8_t(255 - k));
  }
  ASSERT_TRUE(stbi_write_png((d + "/ga.png").c_str(), 6, 4, 2, ga.data(), 12));
  ASSERT_TRUE(stbi_write_png((d + "/rgba.png").c_str(), 6, 4, 4, rgba.data(), 24));
  EXPECT_EQ(data::decode_image(d + "/ga.png").to_vector<uint8_t>(), want);
  const std::vector<uint8_t> rgb = data::decode_image(d + "/rgba.png").to_vector<uint8_t>();
  for (int k = 0; k < 24; ++k)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(rgb[size_t(c * 24 + k)], uint8_t(k * 3 + c * 50));
}

TEST(ImageDecode, JpegColorAndGrayscale) {
  const std::string d = fresh_dir("jpeg");
  // A smooth image survives quality-100 JPEG within a few levels.
  std::vector<uint8_t> v;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) v.push_back(uint8_t(40 + c * 60 + 4 * x + 2 * y));
  const Tensor img = u8(v, {3, 16, 16});
  data::write_jpeg(d + "/c.jpg", img, 100);
  const std::vector<uint8_t> back = data::decode_image(d + "/c.jpg").to_vector<uint8_t>();
  ASSERT_EQ(back.size(), v.size());
  double err = 0;
  for (size_t i = 0; i < v.size(); ++i) err += std::abs(double(back[i]) - double(v[i]));
  EXPECT_LT(err / double(v.size()), 2.0);

  // stb writes every JPEG with 3 components (gray as Y with neutral chroma); true 1-component
  // JPEGs are covered by the shared Tiny ImageNet test below.
  data::write_jpeg(d + "/g.jpg", u8(std::vector<uint8_t>(v.begin(), v.begin() + 256), {1, 16, 16}), 90);
  const std::vector<uint8_t> g = data::decode_image(d + "/g.jpg").to_vector<uint8_t>();
  for (int k = 0; k < 256; ++k) {
    ASSERT_EQ(g[size_t(k)], g[size_t(256 + k)]);
    ASSERT_EQ(g[size_t(k)], g[size_t(512 + k)]);
  }
}

TEST(ImageDecode, UndecodableFilesNameTheFile) {
  const std::string d = fresh_dir("bad");
  write_text(d + "/junk.png", "this is not an image");
  expect_error([&] { data::decode_image(d + "/junk.png"); }, {d + "/junk.png", "cannot decode"});
  // A truncated PNG.
  data::write_png(d + "/ok.png", pattern(3, 20, 20, 3));
  std::vector<uint8_t> bytes = data::read_file_bytes(d + "/ok.png");
  bytes.resize(bytes.size() / 2);
  std::ofstream(d + "/trunc.png", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                          std::streamsize(bytes.size()));
  expect_error([&] { data::decode_image(d + "/trunc.png"); }, {d + "/trunc.png", "cannot decode"});
  write_text(d + "/empty.jpg", "");
  expect_error([&] { data::decode_image(d + "/empty.jpg"); }, {d + "/empty.jpg", "empty"});
  expect_error([&] { data::decode_image(d + "/missing.png"); }, {d + "/missing.png", "cannot open"});
  // In a folder, the error names the bad file even though decoding is parallel.
  const std::string f = fresh_dir("badfolder");
  for (int i = 0; i < 40; ++i) data::write_png(f + "/img" + std::to_string(100 + i) + ".png", pattern(3, 4, 4, i));
  write_text(f + "/img117.png", "garbage");
  expect_error([&] { data::load_image_folder(f); }, {f + "/img117.png", "cannot decode"});
}

// ---------------------------------------------------------------- resizing by hand

TEST(Resize, AreaIsTheBlockMean) {
  // 2x2 -> 1x1: mean of 10, 20, 30, 41 = 25.25 -> 25; of 1, 2, 3, 4 = 2.5 -> 3 (halves up).
  EXPECT_EQ(data::resize_images(u8({10, 20, 30, 41}, {1, 2, 2}), 1, 1, data::ResizeMode::Area).to_vector<uint8_t>(),
            std::vector<uint8_t>{25});
  EXPECT_EQ(data::resize_images(u8({1, 2, 3, 4}, {1, 2, 2}), 1, 1, data::ResizeMode::Area).to_vector<uint8_t>(),
            std::vector<uint8_t>{3});
  // 4x4 -> 2x2 block means.
  std::vector<uint8_t> v(16);
  for (int i = 0; i < 16; ++i) v[size_t(i)] = uint8_t(i * 8);
  // blocks: (0,8,32,40)->20, (16,24,48,56)->36, (64,72,96,104)->84, (80,88,112,120)->100
  EXPECT_EQ(data::resize_images(u8(v, {1, 4, 4}), 2, 2).to_vector<uint8_t>(), (std::vector<uint8_t>{20, 36, 84, 100}));
  // 1x3 -> 1x2: fractional footprints 1.5 px: (0 + 30/2) / 1.5 = 10, (30/2 + 60) / 1.5 = 50.
  EXPECT_EQ(data::resize_images(u8({0, 30, 60}, {1, 1, 3}), 1, 2, data::ResizeMode::Area).to_vector<uint8_t>(),
            (std::vector<uint8_t>{10, 50}));
}

TEST(Resize, BilinearMatchesPyTorchAlignCornersFalse) {
  // 1x2 -> 1x4: source x = (o + .5) / 2 - .5 -> 0 (clamped), .25, .75, 1.25 (-> last pixel).
  EXPECT_EQ(data::resize_images(u8({0, 100}, {1, 1, 2}), 1, 4, data::ResizeMode::Bilinear).to_vector<uint8_t>(),
            (std::vector<uint8_t>{0, 25, 75, 100}));
  // 2x2 -> 3x3: source coordinates 0 (clamped), .5, 1.1667 (-> last) on both axes.
  EXPECT_EQ(
      data::resize_images(u8({0, 60, 120, 180}, {1, 2, 2}), 3, 3, data::ResizeMode::Bilinear).to_vector<uint8_t>(),
      (std::vector<uint8_t>{0, 30, 60, 60, 90, 120, 120, 150, 180}));
  // Downscaling with bilinear samples two taps: 1x3 -> 1x2 at x = .25 and 1.75:
  // .75*0 + .25*90 = 22.5 -> 23; .25*90 + .75*180 = 157.5 -> 158.
  EXPECT_EQ(data::resize_images(u8({0, 90, 180}, {1, 1, 3}), 1, 2, data::ResizeMode::Bilinear).to_vector<uint8_t>(),
            (std::vector<uint8_t>{23, 158}));
}

TEST(Resize, AutoPicksAreaDownAndBilinearUpPerAxis) {
  const Tensor img = pattern(3, 28, 28, 5);
  EXPECT_EQ(data::resize_images(img, 32, 32).to_vector<uint8_t>(),
            data::resize_images(img, 32, 32, data::ResizeMode::Bilinear).to_vector<uint8_t>());
  const Tensor big = pattern(3, 64, 64, 6);
  EXPECT_EQ(data::resize_images(big, 32, 32).to_vector<uint8_t>(),
            data::resize_images(big, 32, 32, data::ResizeMode::Area).to_vector<uint8_t>());
  // Mixed: rows shrink 2 -> 1 (area: mean), columns grow 2 -> 4 (bilinear).
  EXPECT_EQ(data::resize_images(u8({0, 100, 100, 200}, {1, 2, 2}), 1, 4).to_vector<uint8_t>(),
            (std::vector<uint8_t>{50, 75, 125, 150}));
  // Same size is a copy; batches resize each image independently.
  EXPECT_EQ(data::resize_images(img, 28, 28).to_vector<uint8_t>(), img.to_vector<uint8_t>());
  Tensor batch = Tensor::empty({2, 3, 28, 28}, DType::U8);
  const Tensor other = pattern(3, 28, 28, 9);
  std::memcpy(batch.data<uint8_t>(), img.data<uint8_t>(), 3 * 28 * 28);
  std::memcpy(batch.data<uint8_t>() + 3 * 28 * 28, other.data<uint8_t>(), 3 * 28 * 28);
  const std::vector<uint8_t> r = data::resize_images(batch, 17, 40).to_vector<uint8_t>();
  const std::vector<uint8_t> r1 = data::resize_images(other, 17, 40).to_vector<uint8_t>();
  EXPECT_EQ(std::vector<uint8_t>(r.begin() + 3 * 17 * 40, r.end()), r1);
  EXPECT_THROW(data::resize_images(img, 0, 4), Error);
  EXPECT_THROW(data::resize_images(Tensor::zeros({3, 4, 4}), 2, 2), Error);
}

TEST(Resize, CenterCropRoundsLikeTorchvision) {
  // 5 -> 2: offset round(1.5) = 2; 9 -> 4: round(2.5) = 2 (halves to even); 6 -> 2: 2.
  std::vector<uint8_t> v(81);
  for (int i = 0; i < 81; ++i) v[size_t(i)] = uint8_t(i);
  EXPECT_EQ(data::center_crop(u8(std::vector<uint8_t>(v.begin(), v.begin() + 25), {1, 5, 5}), 2, 2).to_vector<uint8_t>(),
            (std::vector<uint8_t>{12, 13, 17, 18}));
  const std::vector<uint8_t> c = data::center_crop(u8(v, {1, 9, 9}), 4, 4).to_vector<uint8_t>();
  EXPECT_EQ(c[0], 2 * 9 + 2);
  EXPECT_EQ(c[15], 5 * 9 + 5);
  EXPECT_THROW(data::center_crop(u8(v, {1, 9, 9}), 10, 2), Error);
}

// ---------------------------------------------------------------- folders

TEST(ImageFolder, SortedFilesResizeAndCrop) {
  const std::string d = fresh_dir("flat");
  const Tensor a = pattern(3, 8, 8, 1), b = pattern(3, 8, 8, 2), c = pattern(3, 8, 8, 3);
  data::write_png(d + "/b.png", b);
  data::write_png(d + "/a.PNG", a);  // extension case does not matter
  data::write_png(d + "/c10.png", c);
  data::write_png(d + "/c9.png", a);  // byte-wise order: c10 before c9
  write_text(d + "/notes.txt", "not an image");
  fs::create_directories(d + "/sub");
  data::write_png(d + "/sub/x.png", a);  // sub-folders are not read without labels

  const std::vector<std::string> files = data::list_image_files(d);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], d + "/a.PNG");
  EXPECT_EQ(files[2], d + "/c10.png");
  EXPECT_EQ(files[3], d + "/c9.png");

  const data::Dataset ds = data::load_image_folder(d);
  EXPECT_EQ(ds.name, "oodkit_imgf_flat");
  EXPECT_FALSE(ds.labels.defined());
  ASSERT_EQ(ds.images.shape(), (Shape{4, 3, 8, 8}));
  const std::vector<uint8_t> all = ds.images.to_vector<uint8_t>();
  EXPECT_EQ(std::vector<uint8_t>(all.begin() + 192, all.begin() + 384), b.to_vector<uint8_t>());
  EXPECT_EQ(std::vector<uint8_t>(all.begin() + 384, all.begin() + 576), c.to_vector<uint8_t>());

  data::ImageFolderOptions o;
  o.height = 4;
  o.width = 4;
  o.limit = 2;
  const data::Dataset small = data::load_image_folder(d, o, "named");
  EXPECT_EQ(small.name, "named");
  ASSERT_EQ(small.images.shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(small.images.narrow(1, 1).reshape({3, 4, 4}).to_vector<uint8_t>(),
            data::resize_images(b, 4, 4).to_vector<uint8_t>());

  o = {};
  o.height = 6;
  o.width = 6;
  o.crop_height = 4;
  o.crop_width = 4;
  const data::Dataset cropped = data::load_image_folder(d, o);
  EXPECT_EQ(cropped.images.narrow(0, 1).reshape({3, 4, 4}).to_vector<uint8_t>(),
            data::center_crop(data::resize_images(a, 6, 6), 4, 4).to_vector<uint8_t>());

  o = {};
  o.resize_short = 4;  // 8x8 -> 4x4
  EXPECT_EQ(data::load_image_folder(d, o).images.shape(), (Shape{4, 3, 4, 4}));
}

TEST(ImageFolder, MixedSizesNeedAResizeTarget) {
  const std::string d = fresh_dir("mixed");
  data::write_png(d + "/a.png", pattern(3, 8, 8, 1));
  data::write_png(d + "/b.png", pattern(3, 6, 8, 2));
  expect_error([&] { data::load_image_folder(d); }, {d + "/b.png", "6x8", "8x8"});
  data::ImageFolderOptions o;
  o.height = o.width = 5;
  EXPECT_EQ(data::load_image_folder(d, o).images.shape(), (Shape{2, 3, 5, 5}));
  o = {};
  o.height = 5;  // width missing
  EXPECT_THROW(data::load_image_folder(d, o), Error);
}

TEST(ImageFolder, EmptyOrMissingFolderIsAnError) {
  const std::string d = fresh_dir("empty");
  write_text(d + "/readme.txt", "no images here");
  expect_error([&] { data::load_image_folder(d); }, {d, "no image files"});
  expect_error([&] { data::load_image_folder(d + "/nope"); }, {d + "/nope", "does not exist"});
  data::ImageFolderOptions o;
  o.labels = data::FolderLabels::FromSubfolders;
  expect_error([&] { data::load_image_folder(d, o); }, {d, "no class sub-folders"});
}

TEST(ImageFolder, LabelsFromSubfolders) {
  const std::string d = fresh_dir("classes");
  fs::create_directories(d + "/dog");
  fs::create_directories(d + "/cat");
  fs::create_directories(d + "/.hidden");
  data::write_png(d + "/dog/1.png", pattern(3, 4, 4, 1));
  data::write_png(d + "/cat/2.png", pattern(3, 4, 4, 2));
  data::write_png(d + "/cat/1.png", pattern(3, 4, 4, 3));
  data::write_png(d + "/.hidden/1.png", pattern(3, 4, 4, 4));
  data::write_png(d + "/loose.png", pattern(3, 4, 4, 5));  // ignored, as torchvision does
  for (data::FolderLabels mode : {data::FolderLabels::FromSubfolders, data::FolderLabels::Auto}) {
    data::ImageFolderOptions o;
    o.labels = mode;
    const data::Dataset ds = data::load_image_folder(d, o);
    EXPECT_EQ(ds.class_names, (std::vector<std::string>{"cat", "dog"}));
    EXPECT_EQ(ds.num_classes, 2);
    EXPECT_EQ(ds.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1}));
    EXPECT_EQ(ds.images.narrow(0, 1).reshape({3, 4, 4}).to_vector<uint8_t>(), pattern(3, 4, 4, 3).to_vector<uint8_t>());
  }
  fs::create_directories(d + "/emu");
  data::ImageFolderOptions o;
  o.labels = data::FolderLabels::FromSubfolders;
  expect_error([&] { data::load_image_folder(d, o); }, {d + "/emu", "no image files"});
  // Auto skips sub-folders without images; None reads only the loose file.
  o.labels = data::FolderLabels::Auto;
  EXPECT_EQ(data::load_image_folder(d, o).num_classes, 2);
  EXPECT_EQ(data::load_image_folder(d).size(), 1);
}

TEST(TinyImageNet, ValLabelsFollowWnidsOrder) {
  const std::string d = fresh_dir("tin");
  fs::create_directories(d + "/val");
  write_text(d + "/wnids.txt", "n003\nn001\n\nn002\n");
  for (int i = 0; i < 4; ++i) data::write_png(d + "/val/val_" + std::to_string(i) + ".png", pattern(3, 8, 8, i));
  write_text(d + "/val_annotations.txt",
             "val_0.png\tn001\t0\t0\t5\t5\nval_1.png\tn003\t1\t1\t2\t2\nval_2.png\tn002\t0\t0\t1\t1\r\n"
             "val_3.png\tn001\t0\t0\t1\t1\n");
  data::ImageFolderOptions o;
  o.height = o.width = 4;
  const data::Dataset ds = data::load_tiny_imagenet_val(d, o);
  EXPECT_EQ(ds.labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 2, 1}));
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"n003", "n001", "n002"}));
  EXPECT_EQ(ds.num_classes, 3);
  EXPECT_EQ(ds.images.shape(), (Shape{4, 3, 4, 4}));

  const std::vector<std::string> wnids = data::read_wnids(d + "/wnids.txt");
  write_text(d + "/bad1.txt", "val_0.png\tn009\n");
  expect_error([&] { data::read_tiny_imagenet_val_labels(d + "/bad1.txt", wnids, {"x/val_0.png"}); },
               {d + "/bad1.txt", "line 1", "n009"});
  write_text(d + "/bad2.txt", "val_0.png\tn001\n");
  expect_error([&] { data::read_tiny_imagenet_val_labels(d + "/bad2.txt", wnids, {"x/val_1.png"}); },
               {d + "/bad2.txt", "val_1.png"});
  write_text(d + "/bad3.txt", "val_0.png n001\n");
  expect_error([&] { data::read_tiny_imagenet_val_labels(d + "/bad3.txt", wnids, {}); }, {d + "/bad3.txt", "line 1"});
  write_text(d + "/dup.txt", "n1\nn2\nn1\n");
  expect_error([&] { data::read_wnids(d + "/dup.txt"); }, {d + "/dup.txt", "twice"});
}

// ---------------------------------------------------------------- square targets by hand

// uint8 [3, h, w] with pixel (c, y, x) = col(x) + row(y) + 20 c: separable, so an area resize
// resizes the columns and the rows independently and adds the two.
Tensor separable(int64_t h, int64_t w, const std::function<int(int64_t)>& row,
                 const std::function<int(int64_t)>& col) {
  std::vector<uint8_t> v;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) v.push_back(uint8_t(col(x) + row(y) + 20 * c));
  return u8(v, {3, h, w});
}

// [3, 2, 2] with the given channel-0 values (row-major) and +20 per channel.
std::vector<int> rgb2x2(std::vector<int> v) {
  std::vector<int> out;
  for (int c = 0; c < 3; ++c)
    for (int x : v) out.push_back(x + 20 * c);
  return out;
}

// Four non-square images to 2x2, worked by hand. In every case the axes shrink, so Auto = area.
//  a_wide (4 rows x 10 columns): row(y) = 0, 2, 100, 104; col(x) = 10 x.
//   short-crop: rows 4 -> 2 (pair means 1, 102); the long side int(2 * 10 / 4) = 5, columns
//     10 -> 5 (pair means 5, 25, 45, 65, 85); crop left round((5 - 2) / 2) = round(1.5) = 2
//     keeps 45, 65. -> [1+45, 1+65; 102+45, 102+65] = [46, 66; 147, 167].
//   squash: columns 10 -> 2 (means of 5: 20, 70). -> [21, 71; 122, 172].
//  b_tall: a_wide transposed (10 rows x 4 columns): the outputs transposed.
//  c_trunc (8 rows x 15 columns): row(y) = 10 y; col(x) = 2 x.
//   short-crop: rows 8 -> 2 (means of 4: 15, 55); the long side int(2 * 15 / 8) = int(3.75) = 3
//     (truncated, not rounded to 4), columns 15 -> 3 (means of 5: 4, 14, 24); crop left
//     round((3 - 2) / 2) = round(0.5) = 0 (halves to even) keeps 4, 14. -> [19, 29; 59, 69].
//   squash: columns 15 -> 2, footprint 7.5: (2 (0 + ... + 6) + 14 / 2) / 7.5 = 49 / 7.5 = 6.53 -> 7
//     and (14 / 2 + 2 (8 + ... + 14)) / 7.5 = 161 / 7.5 = 21.47 -> 21. -> [22, 36; 62, 76].
//  d_trunc_tall: c_trunc transposed (15 rows x 8 columns): the outputs transposed.
struct FitCase {
  std::string file;
  Tensor image;
  std::vector<int> short_crop, squash;
};

std::vector<FitCase> fit_cases() {
  const auto r4 = [](int64_t y) { return std::vector<int>{0, 2, 100, 104}[size_t(y)]; };
  const auto ten = [](int64_t x) { return int(10 * x); };
  const auto two = [](int64_t x) { return int(2 * x); };
  return {{"a_wide.png", separable(4, 10, r4, ten), rgb2x2({46, 66, 147, 167}), rgb2x2({21, 71, 122, 172})},
          {"b_tall.png", separable(10, 4, ten, r4), rgb2x2({46, 147, 66, 167}), rgb2x2({21, 122, 71, 172})},
          {"c_trunc.png", separable(8, 15, ten, two), rgb2x2({19, 29, 59, 69}), rgb2x2({22, 36, 62, 76})},
          {"d_trunc_tall.png", separable(15, 8, two, ten), rgb2x2({19, 59, 29, 69}), rgb2x2({22, 62, 36, 76})}};
}

// Image i of a dataset as ints (readable failure messages).
std::vector<int> image_of(const data::Dataset& ds, int64_t i) {
  const std::vector<uint8_t> v =
      ds.images.narrow(i, 1).reshape({3, ds.images.size(2), ds.images.size(3)}).to_vector<uint8_t>();
  return std::vector<int>(v.begin(), v.end());
}
std::vector<int> ints(const Tensor& t) {
  const std::vector<uint8_t> v = t.to_vector<uint8_t>();
  return std::vector<int>(v.begin(), v.end());
}

TEST(ImageFit, NonSquareImagesByHand) {
  const std::string d = fresh_dir("fit");
  const std::vector<FitCase> cases = fit_cases();
  for (const FitCase& c : cases) data::write_png(d + "/" + c.file, c.image);

  // The registry (what --ood folder:<path> loads) defaults to short-crop.
  data::LoadOptions lo;
  lo.image_size = 2;
  const data::Dataset dflt = data::load_dataset("folder:" + d, "", lo);
  ASSERT_EQ(dflt.images.shape(), (Shape{4, 3, 2, 2}));
  lo.fit = data::ImageFit::Squash;
  const data::Dataset squashed = data::load_dataset("folder:" + d, "", lo);
  ASSERT_EQ(squashed.images.shape(), (Shape{4, 3, 2, 2}));
  // The folder loader itself, with set_square_size.
  data::ImageFolderOptions fo;
  data::set_square_size(fo, 2, data::ImageFit::ShortSideCrop);
  const data::Dataset folder_crop = data::load_image_folder(d, fo);
  data::set_square_size(fo, 2, data::ImageFit::Squash);
  const data::Dataset folder_squash = data::load_image_folder(d, fo);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(image_of(dflt, int64_t(i)), cases[i].short_crop) << cases[i].file << " (default: short-crop)";
    EXPECT_EQ(image_of(squashed, int64_t(i)), cases[i].squash) << cases[i].file << " (squash)";
    EXPECT_EQ(image_of(folder_crop, int64_t(i)), cases[i].short_crop) << cases[i].file << " (folder, short-crop)";
    EXPECT_EQ(image_of(folder_squash, int64_t(i)), cases[i].squash) << cases[i].file << " (folder, squash)";
  }
}

TEST(ImageFit, SquareImagesAreTheSameEitherWay) {
  // Square images (every shared set) keep the pixels they had before the fit existed:
  // resize_images(image, S, S), for shrinking (8 -> 4), keeping (4) and growing (3 -> 4).
  const std::string d = fresh_dir("fitsq");
  const Tensor a = pattern(3, 8, 8, 1), b = pattern(3, 4, 4, 2), c = pattern(3, 3, 3, 3);
  data::write_png(d + "/a.png", a);
  data::write_png(d + "/b.png", b);
  data::write_png(d + "/c.png", c);
  for (data::ImageFit fit : {data::ImageFit::ShortSideCrop, data::ImageFit::Squash}) {
    data::LoadOptions lo;
    lo.image_size = 4;
    lo.fit = fit;
    const data::Dataset ds = data::load_dataset("folder:" + d, "", lo);
    const std::string name = data::image_fit_name(fit);
    EXPECT_EQ(image_of(ds, 0), ints(data::resize_images(a, 4, 4))) << name;
    EXPECT_EQ(image_of(ds, 1), ints(b)) << name;
    EXPECT_EQ(image_of(ds, 2), ints(data::resize_images(c, 4, 4))) << name;
  }
  // No size requested: stored sizes with either fit (set_square_size(0) clears the targets).
  data::ImageFolderOptions fo;
  fo.crop_height = fo.crop_width = 3;
  data::set_square_size(fo, 0, data::ImageFit::ShortSideCrop);
  EXPECT_EQ(fo.height + fo.width + fo.resize_short + fo.crop_height + fo.crop_width, 0);
  EXPECT_THROW(data::load_image_folder(d, fo), Error);  // mixed stored sizes and no target

  EXPECT_EQ(data::parse_image_fit("short-crop"), data::ImageFit::ShortSideCrop);
  EXPECT_EQ(data::parse_image_fit("squash"), data::ImageFit::Squash);
  expect_error([] { data::parse_image_fit("crop"); }, {"'crop'", "short-crop", "squash"});
}

// ---------------------------------------------------------------- Tiny ImageNet 64 -> 32 by hand

// 64x64: pixel (c, y, x) = 8 ((x/2 + 2 (y/2) + 5 c) mod 30) + d, with d = 0, 1 (top row of each
// 2x2 block) and 2, 4 (bottom row). Every block mean is base + 7/4 = base + 1.75, rounded to
// base + 2: output (c, Y, X) = 8 ((X + 2 Y + 5 c) mod 30) + 2. (Nearest/top-left sampling would
// give base, truncation base + 1, a misaligned block a mix of two bases.)
int tin_base(int64_t c, int64_t y2, int64_t x2) { return int(8 * ((x2 + 2 * y2 + 5 * c) % 30)); }

TEST(TinyImageNet, Resize64To32IsTheBlockMeanByHand) {
  std::vector<uint8_t> v;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 64; ++y)
      for (int64_t x = 0; x < 64; ++x)
        v.push_back(uint8_t(tin_base(c, y / 2, x / 2) + (y % 2 ? (x % 2 ? 4 : 2) : x % 2)));
  const Tensor img = u8(v, {3, 64, 64});
  // A Tiny ImageNet root in the official layout, one image per split (PNG: lossless).
  const std::string d = fresh_dir("tin64");
  fs::create_directories(d + "/test");
  fs::create_directories(d + "/val/images");
  data::write_png(d + "/test/test_0.png", img);
  data::write_png(d + "/val/images/val_0.png", img);
  write_text(d + "/wnids.txt", "n001\n");
  write_text(d + "/val/val_annotations.txt", "val_0.png\tn001\t0\t0\t63\t63\n");

  // The registry path `oodkit eval` uses: image_size = the ID size, the default fit.
  for (const char* split : {"test", "val"}) {
    data::LoadOptions lo;
    lo.split = split;
    lo.image_size = 32;
    const data::Dataset ds = data::load_dataset("tinyimagenet", d, lo);
    ASSERT_EQ(ds.images.shape(), (Shape{1, 3, 32, 32})) << split;
    const std::vector<uint8_t> out = ds.images.to_vector<uint8_t>();
    const auto at = [&](int64_t c, int64_t y, int64_t x) { return int(out[size_t((c * 32 + y) * 32 + x)]); };
    // A few by hand: (0, 0, 0): 8 * 0 + 2; (1, 3, 4): 8 * (4 + 6 + 5) + 2 = 122;
    // (0, 16, 1): 8 * ((1 + 32) mod 30) + 2 = 26; (2, 31, 31): 8 * ((31 + 62 + 10) mod 30) + 2 = 106.
    EXPECT_EQ(at(0, 0, 0), 2) << split;
    EXPECT_EQ(at(1, 3, 4), 122) << split;
    EXPECT_EQ(at(0, 16, 1), 26) << split;
    EXPECT_EQ(at(2, 31, 31), 106) << split;
    int bad = 0;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x) bad += at(c, y, x) != tin_base(c, y, x) + 2;
    EXPECT_EQ(bad, 0) << split;
  }
}

// ---------------------------------------------------------------- the shared real data
// Listing is instant; decoding is limited to a few hundred files to keep each test fast
// (the full iSUN folder takes ~0.8 s and Tiny ImageNet ~1.8 s on 2 cores).

TEST(SharedImages, IsunHas8925Patches) {
  const std::string dir = oodkit::testing::shared_path("datasets/isun");
  EXPECT_EQ(data::list_image_files(dir).size(), 8925u);
  data::ImageFolderOptions o;
  o.limit = 300;
  const data::Dataset ds = data::load_image_folder(dir, o, "isun");
  EXPECT_EQ(ds.images.shape(), (Shape{300, 3, 32, 32}));
  EXPECT_FALSE(ds.labels.defined());
}

TEST(SharedImages, TinyImageNetTestAndVal) {
  const std::string root = oodkit::testing::shared_path("datasets/tinyimagenet");
  EXPECT_EQ(data::list_image_files(root + "/test").size(), 10000u);
  data::ImageFolderOptions o;
  o.height = o.width = 32;
  o.limit = 200;
  EXPECT_EQ(data::load_image_folder(root + "/test", o).images.shape(), (Shape{200, 3, 32, 32}));

  // A grayscale JPEG of the set decodes to three equal channels.
  EXPECT_EQ(data::read_image_info(root + "/test/test_1086.JPEG").channels, 1);
  const std::vector<uint8_t> g = data::decode_image(root + "/test/test_1086.JPEG").to_vector<uint8_t>();
  ASSERT_EQ(g.size(), 3u * 64 * 64);
  for (int k = 0; k < 64 * 64; ++k) ASSERT_TRUE(g[size_t(k)] == g[size_t(4096 + k)] && g[size_t(k)] == g[size_t(8192 + k)]);

  // Every val label (annotations only, no decoding): 50 images for each of the 200 classes used.
  // The shared wnids.txt lists 202 wnids; the last two have no val images.
  const std::vector<std::string> wnids = data::read_wnids(root + "/wnids.txt");
  ASSERT_EQ(wnids.size(), 202u);
  const std::vector<std::string> files = data::list_image_files(root + "/val");
  ASSERT_EQ(files.size(), 10000u);
  const std::vector<int64_t> y = data::read_tiny_imagenet_val_labels(root + "/val_annotations.txt", wnids, files);
  std::vector<int> counts(wnids.size(), 0);
  for (int64_t v : y) ++counts[size_t(v)];
  EXPECT_EQ(std::count(counts.begin(), counts.end(), 50), 200);
  EXPECT_EQ(counts[200] + counts[201], 0);
  // val_0.JPEG is annotated n03444034.
  const size_t i0 = size_t(std::find(files.begin(), files.end(), root + "/val/val_0.JPEG") - files.begin());
  ASSERT_LT(i0, files.size());
  EXPECT_EQ(wnids[size_t(y[i0])], "n03444034");

  o.limit = 100;
  const data::Dataset val = data::load_tiny_imagenet_val(root, o);
  EXPECT_EQ(val.images.shape(), (Shape{100, 3, 32, 32}));
  EXPECT_EQ(val.num_classes, 202);
  EXPECT_EQ(val.labels.to_vector<int64_t>(), std::vector<int64_t>(y.begin(), y.begin() + 100));
}

}  // namespace

namespace {
// One layout for train, eval and score (data/registry.cpp): a folder of class folders has a fixed
// per-class 80/20 train/test partition; a folder with train/ and test/ reads them; the files
// of every row are recorded (Dataset::files).
TEST(ImageFolderLayout, ClassFoldersSplitEightyTwentyPerClassTheSameForEveryLoad) {
  const std::string d = fresh_dir("layout_flat");
  for (const char* c : {"a", "b"}) {
    fs::create_directories(d + "/" + c);
    for (int i = 0; i < 10; ++i)
      data::write_png(d + "/" + c + "/" + std::to_string(i) + ".png", pattern(3, 4, 4, i + (c[0] == 'b') * 50));
  }
  data::LoadOptions lo;
  lo.split = "train";
  const data::Dataset train = data::load_dataset("folder:" + d, "", lo), train2 = data::load_dataset("folder:" + d, "", lo);
  lo.split = "test";
  const data::Dataset test = data::load_dataset("folder:" + d, "", lo);
  const data::Dataset all = data::load_dataset("folder:" + d, "", {});  // no split: everything
  ASSERT_EQ(all.size(), 20);
  ASSERT_EQ(train.size(), 16);
  ASSERT_EQ(test.size(), 4);
  EXPECT_EQ(train.files, train2.files);  // deterministic
  ASSERT_EQ(train.files.size(), 16u);
  ASSERT_EQ(test.files.size(), 4u);
  // A partition of the files, 8 + 2 of each class, with labels and pixels following their files.
  std::vector<std::string> both = train.files;
  both.insert(both.end(), test.files.begin(), test.files.end());
  std::sort(both.begin(), both.end());
  std::vector<std::string> every = all.files;
  std::sort(every.begin(), every.end());
  EXPECT_EQ(both, every);
  const std::vector<int64_t> ty = test.labels.to_vector<int64_t>();
  EXPECT_EQ(std::count(ty.begin(), ty.end(), 0), 2);
  EXPECT_EQ(std::count(ty.begin(), ty.end(), 1), 2);
  for (int64_t i = 0; i < test.size(); ++i) {
    const std::string& f = test.files[size_t(i)];
    EXPECT_EQ(ty[size_t(i)], f.find("/b/") != std::string::npos ? 1 : 0) << f;
    const size_t k = size_t(std::find(all.files.begin(), all.files.end(), f) - all.files.begin());
    EXPECT_EQ(test.images.narrow(i, 1).to_vector<uint8_t>(), all.images.narrow(int64_t(k), 1).to_vector<uint8_t>()) << f;
  }
  // Splits other than train and test do not exist there.
  lo.split = "val";
  expect_error([&] { data::load_dataset("folder:" + d, "", lo); }, {"split folder", "80/20"});
}

TEST(ImageFolderLayout, SplitSubfoldersAreReadAsTheyAre) {
  const std::string d = fresh_dir("layout_split");
  for (const char* s : {"train", "test"})
    for (const char* c : {"x", "y"}) {
      fs::create_directories(d + "/" + s + "/" + c);
      data::write_png(d + "/" + s + "/" + c + "/1.png", pattern(3, 4, 4, 7));
    }
  data::write_png(d + "/test/y/2.png", pattern(3, 4, 4, 8));
  data::LoadOptions lo;
  lo.split = "train";
  EXPECT_EQ(data::load_dataset("folder:" + d, "", lo).size(), 2);
  lo.split = "test";
  const data::Dataset test = data::load_dataset("folder:" + d, "", lo);
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(test.class_names, (std::vector<std::string>{"x", "y"}));
  // No split: the default one, test/ (as CIFAR-10's), not "train" and "test" read as classes.
  const data::Dataset dflt = data::load_dataset("folder:" + d, "", {});
  EXPECT_EQ(dflt.size(), 3);
  EXPECT_EQ(dflt.class_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(dflt.files, test.files);
  lo.split = "val";
  expect_error([&] { data::load_dataset("folder:" + d, "", lo); }, {"split folder", "train/ and test/"});
}
}  // namespace
