#include <algorithm>
#include <array>
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

// ---------------------------------------------------------------- Pillow's bilinear

TEST(Resize, PilBilinearWidensTheTriangleWhenShrinking) {
  // 1x4 -> 1x2, scale 2: the triangle's support grows from 1 to 2 source pixels. Output 0 is centred
  // at 1.0 and takes pixels [trunc(1 - 2 + .5), trunc(1 + 2 + .5)) = [0, 3) with triangle weights
  // at (j - 1 + .5) / 2 = -.25, .25, .75: .75, .75, .25 -> 3/7, 3/7, 1/7:
  // (0*3 + 100*3 + 200) / 7 = 71.4 -> 71. Output 1 (centre 3.0): pixels 1..3, weights 1/7, 3/7, 3/7:
  // (100 + 200*3 + 255*3) / 7 = 209.3 -> 209. (Area: 50, 228; non-antialiased bilinear: 50, 228.)
  EXPECT_EQ(
      data::resize_images(u8({0, 100, 200, 255}, {1, 1, 4}), 1, 2, data::ResizeMode::PilBilinear).to_vector<uint8_t>(),
      (std::vector<uint8_t>{71, 209}));
  // Growing: no widening, the triangle of support 1 at (o + .5) * 2 / 4 with the border pixel's
  // weight renormalised: 1x2 -> 1x4 gives 0, 25, 75, 100 (as PyTorch's bilinear).
  EXPECT_EQ(
      data::resize_images(u8({0, 100}, {1, 1, 2}), 1, 4, data::ResizeMode::PilBilinear).to_vector<uint8_t>(),
      (std::vector<uint8_t>{0, 25, 75, 100}));
  // Same size is a copy.
  const Tensor img = pattern(3, 5, 7, 2);
  EXPECT_EQ(data::resize_images(img, 5, 7, data::ResizeMode::PilBilinear).to_vector<uint8_t>(), img.to_vector<uint8_t>());
}

namespace {

// The input of tests/data/pil_resize_reference.py: (i*37 + j*11 + c*101 + salt) % 256 at channel c,
// row i, column j; then the top-left bh x bw block set to 255 and the bottom-right one to 0, with
// bh = min(3, H / 2), bw = min(3, W / 2).
Tensor pil_input(int64_t c, int64_t h, int64_t w, int64_t salt) {
  std::vector<uint8_t> v(size_t(c * h * w));
  const int64_t bh = std::min<int64_t>(3, h / 2), bw = std::min<int64_t>(3, w / 2);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        int64_t x = (i * 37 + j * 11 + ch * 101 + salt) % 256;
        if (i < bh && j < bw) x = 255;
        if (i >= h - bh && j >= w - bw) x = 0;
        v[size_t((ch * h + i) * w + j)] = uint8_t(x);
      }
  return Tensor::from_vector<uint8_t>(v, {c, h, w});
}

std::vector<uint8_t> from_hex(const std::string& s) {
  std::vector<uint8_t> v(s.size() / 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return v;
}

struct PilCase {
  const char* name;
  int64_t c, h, w, oh, ow, salt;
  const char* expected;  // Pillow's output, [C, OH, OW], two hex digits a pixel
};

// Made by tests/data/pil_resize_reference.py with Pillow 13.0.0, NumPy 2.4.6.
// Image.fromarray(..., "L" / "RGB").resize((ow, oh), Image.Resampling.BILINEAR).
const PilCase kPilCases[] = {
  {"Oe64To32Rgb", 3, 64, 64, 32, 32, 0,
   "ff9e4c62788ea4babeb47872363e546a8096acbeb8bc805130465c72889eb4c7c0a38fa5b7b5bb89634543556b8197adbfbd9f79474d4b5d73899fb5bbb5838a"
   "afbfbd9f79474d4b5d73899fb5bbb583814f494f657b91a7b9b7997f6547455479814f494f657b91a7b9b7997f654745576d8399afb5bba17b4943495f758b9e"
   "43576d8399afb5bba17b4943495f758ba1b7bdb7855f454b51677d93a9bbb99e8da1b7bdb7855f454b51677d93a9bbb99b81674947596f859bb1b7bda37d4b44"
   "b79b81674947596f859bb1b7bda37d4b454b61778da3b5b3b98761474d53697c41454b61778da3b5b3b98761474d53697f95abbdbb9d77454b495b71879db3b8"
   "6b7f95abbdbb9d77454b495b71879db3b9b3817f4d474d63798fa5b7b5bb8966b5b9b3817f4d474d63798fa5b7b5bb89634543556b8197adbfbd9f79474d4b5a"
   "7f634543556b8197adbfbd9f79474d4b5d73899fb5bbb583814f494f657b91a4495d73899fb5bbb583814f494f657b91a7b9b7997f654745576d8399afb5bba4"
   "93a7b9b7997f654745576d8399afb5bba17b4943495f758ba1b7bdb7855f454abda17b4943495f758ba1b7bdb7855f454b51677d93a9bbb99b81674947596f82"
   "474b51677d93a9bbb99b81674947596f859bb1b7bda37d4b454b61778da3b5b071859bb1b7bda37d4b454b61778da3b5b3b98761474d53697f95abbdbb9d7743"
   "b6b3b98761474d53697f95abbdbb9d77454b495b71879db3b9b3817f4d474d6077454b495b71879db3b9b3817f4d474d63798fa5b7b5bb89634543556b8197aa"
   "4f63798fa5b7b5bb89634543556b8197adbfbd9f79474d4b5d73899fb5bbb58199adbfbd9f79474d4b5d73899fb5bbb583814f494f657b91a7b9b7997f654742"
   "b583814f494f657b91a7b9b7997f654745576d8399afb5bba17b4943495f75884845576d8399afb5bba17b4943495f758ba1b7bdb7855f454b51677d93a9bbb6"
   "778ba1b7bdb7855f454b51677d93a9bbb99b81674947596f859bb1b7bda37d49bcb99b81674947596f859bb1b7bda37d4b454b61778da3b5b3b98761474d5366"
   "7d4b454b61778da3b5b3b98761474d53697f95abbdbb9d77454b495b71879db055697f95abbdbb9d77454b495b71879db3b9b3817f4d474d63798fa5b7b5bb87"
   "9fb3b9b3817f4d474d63798fa5b7b5bb89634543556b8197adbfbd9f79474d48bb89634543556b8197adbfbd9f79474d4b5d73899fb5bbb583814f494f657b8e"
   "4e4b5d73899fb5bbb583814f494f657b91a7b9b7997f654745576d8399afb5b87d91a7b9b7997f654745576d8399afb5bba17b4943495f758ba1b7bdb7855f42"
   "b4bba17b4943495f758ba1b7bdb7855f454b51677d93a9bbb99b8167494739285c4145495f758ba1b7cdac8b6a453f51677d93a9bfd5b485493f43596f854900"
   "ffd1b1c3bd987756354b61778da3b9bdb37771353d53697f95abbdb7bb7f502ce0c3807e4c464c62788ea4b6b4ba88624442546a8096acbebc9e78464c4a5c6f"
   "5d4442546a8096acbebc9e78464c4a5c72889eb4bab482804e484e647a90a6b95e72889eb4bab482804e484e647a90a6b8b6bc8a644644566c8298aeb4baa083"
   "a8b8b6bc8a644644566c8298aeb4baa07a484e4c5e748aa0b6bcb6845e444a4d9b7a484e4c5e748aa0b6bcb6845e444a50667c92a8bab89a80664846586e8497"
   "4950667c92a8bab89a80664846586e849ab0b6bca27c4a444a60768ca2b8bec1869ab0b6bca27c4a444a60768ca2b8beb88660464c52687e94aabcba9c82684b"
   "bdb88660464c52687e94aabcba9c82684a485a70869cb2b8b2807e4c464c6275634a485a70869cb2b8b2807e4c464c62788ea4b6b4ba88624442546a8096acbf"
   "64788ea4b6b4ba88624442546a8096acbebc9e78464c4a5c72889eb4bab48289aebebc9e78464c4a5c72889eb4bab482804e484e647a90a6b8b6bc8a64464453"
   "78804e484e647a90a6b8b6bc8a644644566c8298aeb4baa07a484e4c5e748a9d42566c8298aeb4baa07a484e4c5e748aa0b6bcb6845e444a50667c92a8bab89d"
   "8ca0b6bcb6845e444a50667c92a8bab89a80664846586e849ab0b6bca27c4a43b69a80664846586e849ab0b6bca27c4a444a60768ca2b8beb88660464c52687b"
   "40444a60768ca2b8beb88660464c52687e94aabcba9c82684a485a70869cb2b76a7e94aabcba9c82684a485a70869cb2b8b2807e4c464c62788ea4b6b4ba8865"
   "b4b8b2807e4c464c62788ea4b6b4ba88624442546a8096acbebc9e78464c4a597e624442546a8096acbebc9e78464c4a5c72889eb4bab482804e484e647a90a3"
   "485c72889eb4bab482804e484e647a90a6b8b6bc8a644644566c8298aeb4baa392a6b8b6bc8a644644566c8298aeb4baa07a484e4c5e748aa0b6bcb6845e4449"
   "bca07a484e4c5e748aa0b6bcb6845e444a50667c92a8bab89a80664846586e81464a50667c92a8bab89a80664846586e849ab0b6bca27c4a444a60768ca2b8bd"
   "70849ab0b6bca27c4a444a60768ca2b8beb88660464c52687e94aabcba9c826bbabeb88660464c52687e94aabcba9c82684a485a70869cb2b8b2807e4c464c5f"
   "84684a485a70869cb2b8b2807e4c464c62788ea4b6b4ba88624442546a8096a94e62788ea4b6b4ba88624442546a8096acbebc9e78464c4a5c72889eb4bab480"
   "98acbebc9e78464c4a5c72889eb4bab482804e484e647a90a6b8b6bc8a644641b482804e484e647a90a6b8b6bc8a644644566c8298aeb4baa07a484e4c5e7487"
   "4744566c8298aeb4baa07a484e4c5e748aa0b6bcb6845e444a50667c92a8855a6e8298aec4cc90614044485e748aa0b6ccab8a69443e50667c92a8bed4b34500"
   "ffba4d2c42586e849ab0c2bc977655344a60768ca2b8bcc09f70343c52687e91a57a596f859bb1b7bda37d4b454b61778da3b5b3b98761474d53697f95abbdb8"
   "798da3b5b3b98761474d53697f95abbdbb9d77454b495b71879db3b9b3817f4bbebb9d77454b495b71879db3b9b3817f4d474d63798fa5b7b5bb896345435568"
   "7f4d474d63798fa5b7b5bb89634543556b8197adbfbd9f79474d4b5d73899fb2576b8197adbfbd9f79474d4b5d73899fb5bbb583814f494f657b91a7b9b7997c"
   "a1b5bbb583814f494f657b91a7b9b7997f654745576d8399afb5bba17b494346947f654745576d8399afb5bba17b4943495f758ba1b7bdb7855f454b51677d90"
   "42495f758ba1b7bdb7855f454b51677d93a9bbb99b81674947596f859bb1b7ba7f93a9bbb99b81674947596f859bb1b7bda37d4b454b61778da3b5b3b9876144"
   "b6bda37d4b454b61778da3b5b3b98761474d53697f95abbdbb9d77454b495b6e5c474d53697f95abbdbb9d77454b495b71879db3b9b3817f4d474d63798fa5b8"
   "5d71879db3b9b3817f4d474d63798fa5b7b5bb89634543556b8197adbfbd9f82a7b7b5bb89634543556b8197adbfbd9f79474d4b5d73899fb5bbb583814f494c"
   "9a79474d4b5d73899fb5bbb583814f494f657b91a7b9b7997f654745576d8396484f657b91a7b9b7997f654745576d8399afb5bba17b4943495f758ba1b7bdc0"
   "8599afb5bba17b4943495f758ba1b7bdb7855f454b51677d93a9bbb99b81674abcb7855f454b51677d93a9bbb99b81674947596f859bb1b7bda37d4b454b6174"
   "624947596f859bb1b7bda37d4b454b61778da3b5b3b98761474d53697f95abbe63778da3b5b3b98761474d53697f95abbdbb9d77454b495b71879db3b9b38188"
   "adbdbb9d77454b495b71879db3b9b3817f4d474d63798fa5b7b5bb8963454352777f4d474d63798fa5b7b5bb89634543556b8197adbfbd9f79474d4b5d73899c"
   "41556b8197adbfbd9f79474d4b5d73899fb5bbb583814f494f657b91a7b9b79c8b9fb5bbb583814f494f657b91a7b9b7997f654745576d8399afb5bba17b4942"
   "b5997f654745576d8399afb5bba17b4943495f758ba1b7bdb7855f454b51677a3f43495f758ba1b7bdb7855f454b51677d93a9bbb99b81674947596f859bb1b6"
   "697d93a9bbb99b81674947596f859bb1b7bda37d4b454b61778da3b5b3b98764b3b7bda37d4b454b61778da3b5b3b98761474d53697f95abbdbb9d77454b4958"
   "7d61474d53697f95abbdbb9d77454b495b71879db3b9b3817f4d474d63798fa2475b71879db3b9b3817f4d474d63798fa5b7b5bb89634543556b8197adbfbda2"
   "91a5b7b5bb89634543556b8197adbfbd9f79474d4b5d73899fb5bbb583813d1fd3b081454943556b8197adc3cb8f894d43475d73899fb5cbaa8968433d4f2e00"
  },
  {"Rgb8To4", 3, 8, 8, 4, 4, 5,
   "ffa15164c2a794a7b4b88d6a88651e00ffd3b6bae2c6856262492d1d5b6f3e00ffbd522ea77e5e717e92754fc0d47100"
  },
  {"Gray7x5To3x4", 1, 7, 5, 3, 4, 9,
   "ffaf4552afa57365cad75c00"
  },
  {"Rgb5x7To4x3", 3, 5, 7, 4, 3, 17,
   "ff7953be857e7a743ea58200ffc0b8e8d9bddf8a414a2700ffa11da859484447276f5c00"
  },
  {"Rgb3x3To7x5", 3, 3, 3, 7, 5, 23,
   "ffa722292de398272e32906c373e423c40474e524c50573f2f5c6067300c61656c2b00ffcf878e92f2c98c9397c9b79ca3a7a1a5acb3b7b1b5bc8a69c1c5cc62"
   "1ac6cad15400fff7ecf3f7dbd5cdd4d871706f767a060a11181c161a211710262a3116042b2f361600"
  },
  {"Gray6x4To6x2", 1, 6, 4, 6, 2, 31,
   "e257e776ed967e169e1bbe20"
  },
  {"Rgb6x4To3x4", 3, 6, 4, 3, 4, 41,
   "ffff5964d0d64045c8d30000ffffbec9e388727851380000ffff232eb5bb252a929d0000"
  },
  {"Gray9x2To4x5", 1, 9, 2, 4, 5, 53,
   "ffefaf6f5fcdcabcadaa9c9c9b9a9a3e381f0600"
  },
  {"Rgb12x6To3x4", 3, 12, 6, 3, 4, 61,
   "e9dfa79b7b676f649292342bbbb783897a838988896a482edbd37e80949c7a8165681f19"
  },
  {"Rgb10x7To4x4", 3, 10, 7, 4, 4, 71,
   "fcdd97a8c1c8989441523a3675862b04f5e1a1636a69576087988583b39a3409facd6172b6baaea8aa765d304a521a02"
  },
};

}  // namespace

TEST(Resize, PilBilinearMatchesPillowBitForBit) {
  for (const PilCase& k : kPilCases) {
    SCOPED_TRACE(std::string(k.name) + ": " + std::to_string(k.c) + "x" + std::to_string(k.h) + "x" +
                 std::to_string(k.w) + " -> " + std::to_string(k.oh) + "x" + std::to_string(k.ow));
    const std::vector<uint8_t> want = from_hex(k.expected);
    ASSERT_EQ(want.size(), size_t(k.c * k.oh * k.ow));
    const Tensor out = data::resize_images(pil_input(k.c, k.h, k.w, k.salt), k.oh, k.ow, data::ResizeMode::PilBilinear);
    ASSERT_EQ(out.shape(), (Shape{k.c, k.oh, k.ow}));
    const std::vector<uint8_t> got = out.to_vector<uint8_t>();
    // Every pixel must match; the first few differences are named (channel, row, column).
    int64_t wrong = 0;
    std::string first;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] == want[i]) continue;
      if (++wrong <= 5) {
        const int64_t ch = int64_t(i) / (k.oh * k.ow), y = int64_t(i) / k.ow % k.oh, x = int64_t(i) % k.ow;
        first += " (" + std::to_string(ch) + "," + std::to_string(y) + "," + std::to_string(x) +
                 "): " + std::to_string(got[i]) + " vs Pillow " + std::to_string(want[i]) + ";";
      }
    }
    EXPECT_EQ(wrong, 0) << "pixels differing from Pillow:" << first;
  }
}

TEST(Resize, PilBilinearBatchesAndFolderLoadsMatchSingleImages) {
  const Tensor a = pil_input(3, 8, 8, 5), b = pil_input(3, 8, 8, 77);
  Tensor batch = Tensor::empty({2, 3, 8, 8}, DType::U8);
  std::memcpy(batch.data<uint8_t>(), a.data<uint8_t>(), 3 * 64);
  std::memcpy(batch.data<uint8_t>() + 3 * 64, b.data<uint8_t>(), 3 * 64);
  const std::vector<uint8_t> r = data::resize_images(batch, 4, 4, data::ResizeMode::PilBilinear).to_vector<uint8_t>();
  std::vector<uint8_t> want = from_hex(kPilCases[1].expected);  // Rgb8To4 is `a`
  const std::vector<uint8_t> rb = data::resize_images(b, 4, 4, data::ResizeMode::PilBilinear).to_vector<uint8_t>();
  want.insert(want.end(), rb.begin(), rb.end());
  EXPECT_EQ(r, want);
  // Image folders: resize (then crop) with the mode gives the same pixels as resize_images; the
  // crop computes only the kept outputs, in the pass order of the whole resize (8x8 -> 3x7 runs
  // the vertical pass first, and here that changes kept pixels).
  const std::string d = fresh_dir("pilbilinear");
  data::write_png(d + "/a.png", a);
  data::ImageFolderOptions o;
  o.resize = data::ResizeMode::PilBilinear;
  for (const auto& [rh, rw, ch, cw] : {std::array<int64_t, 4>{6, 5, 4, 3}, std::array<int64_t, 4>{3, 7, 2, 5}}) {
    o.height = rh;
    o.width = rw;
    o.crop_height = ch;
    o.crop_width = cw;
    EXPECT_EQ(
        data::load_image_folder(d, o).images.reshape({3, ch, cw}).to_vector<uint8_t>(),
        data::center_crop(data::resize_images(a, rh, rw, data::ResizeMode::PilBilinear), ch, cw).to_vector<uint8_t>())
        << rh << "x" << rw << " cropped to " << ch << "x" << cw;
  }
  o.crop_height = o.crop_width = 0;
  o.height = o.width = 4;
  EXPECT_EQ(data::load_image_folder(d, o).images.reshape({3, 4, 4}).to_vector<uint8_t>(),
            from_hex(kPilCases[1].expected));
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

namespace {
// The resize mode of LoadOptions reaches image-folder loads (heatmap fit --oe-resize): Tiny
// ImageNet val at 32 px equals the stored 64 px images resized by that mode, and the two modes differ.
TEST(ImageFolderLayout, LoadOptionsResizeModeReachesTheFolderLoader) {
  data::LoadOptions lo;
  lo.split = "val";
  lo.limit = 6;
  const std::string root = oodkit::testing::shared_path("datasets/tinyimagenet");
  const data::Dataset full = data::load_dataset("tinyimagenet", root, lo);
  ASSERT_EQ(full.images.size(2), 64);
  lo.image_size = 32;
  for (data::ResizeMode mode : {data::ResizeMode::Auto, data::ResizeMode::PilBilinear}) {
    lo.resize = mode;
    const data::Dataset small = data::load_dataset("tinyimagenet", root, lo);
    EXPECT_EQ(small.images.to_vector<uint8_t>(), data::resize_images(full.images, 32, 32, mode).to_vector<uint8_t>());
  }
  EXPECT_NE(data::resize_images(full.images, 32, 32, data::ResizeMode::Auto).to_vector<uint8_t>(),
            data::resize_images(full.images, 32, 32, data::ResizeMode::PilBilinear).to_vector<uint8_t>());
}
}  // namespace
