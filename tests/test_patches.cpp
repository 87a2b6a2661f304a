// The pasted-patch generator (data/patches.h): pixels and masks against a naive loop, a source
// whose pixels spell their own coordinates (so a transposed or shifted copy shows), the positions'
// full range, determinism by seed, resizing of small sources, and refusals.
#include <algorithm>
#include <set>

#include "data/image_folder.h"
#include "data/patches.h"
#include "data/registry.h"
#include "framework/error.h"
#include "framework/random.h"
#include "testing.h"

using namespace oodkit;

namespace {

// ID images: random pixels in [0, 254] on channels 0 and 1, 255 on channel 2 (a value no source
// pixel of coordinate_source() has there), labels 0..n-1.
data::Dataset random_id(int64_t n, int64_t side, uint64_t seed) {
  Generator gen(seed);
  data::Dataset ds;
  ds.name = "id";
  ds.images = Tensor::empty({n, 3, side, side}, DType::U8);
  uint8_t* p = ds.images.data<uint8_t>();
  for (int64_t i = 0; i < n * 3 * side * side; ++i)
    p[i] = (i / (side * side)) % 3 == 2 ? 255 : uint8_t(gen.randint(255));
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = i;
  ds.labels = Tensor::from_vector(labels, {n});
  return ds;
}

// Source row r: channel 0 = y, channel 1 = x, channel 2 = r (< 255).
data::Dataset coordinate_source(int64_t m, int64_t hs, int64_t ws) {
  data::Dataset ds;
  ds.name = "coords";
  ds.images = Tensor::empty({m, 3, hs, ws}, DType::U8);
  uint8_t* p = ds.images.data<uint8_t>();
  for (int64_t r = 0; r < m; ++r)
    for (int64_t y = 0; y < hs; ++y)
      for (int64_t x = 0; x < ws; ++x) {
        p[((r * 3 + 0) * hs + y) * ws + x] = uint8_t(y);
        p[((r * 3 + 1) * hs + y) * ws + x] = uint8_t(x);
        p[((r * 3 + 2) * hs + y) * ws + x] = uint8_t(r);
      }
  return ds;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<uint8_t>() == b.to_vector<uint8_t>();
}

}  // namespace

// Every pixel and mask value against a plain per-pixel loop over the records.
TEST(Patches, PixelsAndMaskMatchNaiveLoop) {
  const data::Dataset id = random_id(40, 32, 1), src = random_id(7, 40, 2);
  for (int64_t s : {8, 12, 16}) {
    const data::PatchedSet ps = data::paste_patches(id, src, s, 99);
    ASSERT_EQ(ps.data.images.shape(), id.images.shape());
    ASSERT_EQ(ps.masks.shape(), (Shape{40, 32, 32}));
    ASSERT_EQ(ps.records.size(), 40u);
    EXPECT_EQ(ps.data.labels.to_vector<int64_t>(), id.labels.to_vector<int64_t>());
    const uint8_t* got = ps.data.images.data<uint8_t>();
    const uint8_t* mask = ps.masks.data<uint8_t>();
    const uint8_t* in = id.images.data<uint8_t>();
    const uint8_t* sp = src.images.data<uint8_t>();
    int64_t bad = 0;
    for (int64_t i = 0; i < 40; ++i) {
      const data::PatchRecord& r = ps.records[size_t(i)];
      EXPECT_EQ(r.size, s);
      EXPECT_EQ(r.source, src.name);
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x) {
          const bool inside = y >= r.y && y < r.y + s && x >= r.x && x < r.x + s;
          bad += mask[(i * 32 + y) * 32 + x] != (inside ? 1 : 0);
          for (int64_t c = 0; c < 3; ++c) {
            const uint8_t want = inside ? sp[((r.source_row * 3 + c) * 40 + r.source_y + y - r.y) * 40 + r.source_x + x - r.x]
                                        : in[((i * 3 + c) * 32 + y) * 32 + x];
            bad += got[((i * 3 + c) * 32 + y) * 32 + x] != want;
          }
        }
    }
    EXPECT_EQ(bad, 0) << "size " << s;
  }
}

// Independent of the records: the patch pixels spell the source coordinates they came from, so the
// mask is where channel 2 is not 255, the region is one s x s square, and the copy is a pure
// translation of a crop inside the source (no transpose, flip or shift).
TEST(Patches, PatchIsATranslatedSourceCrop) {
  const int64_t hs = 40, ws = 36, s = 12;
  const data::Dataset id = random_id(60, 32, 3), src = coordinate_source(5, hs, ws);
  const data::PatchedSet ps = data::paste_patches(id, src, s, 7);
  const uint8_t* got = ps.data.images.data<uint8_t>();
  const uint8_t* mask = ps.masks.data<uint8_t>();
  for (int64_t i = 0; i < 60; ++i) {
    int64_t y0 = 99, x0 = 99, y1 = -1, x1 = -1, count = 0;
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x = 0; x < 32; ++x) {
        const bool from_source = got[((i * 3 + 2) * 32 + y) * 32 + x] != 255;
        ASSERT_EQ(mask[(i * 32 + y) * 32 + x], from_source ? 1 : 0) << "image " << i << " (" << y << ", " << x << ")";
        if (!from_source) continue;
        ++count;
        y0 = std::min(y0, y), x0 = std::min(x0, x), y1 = std::max(y1, y), x1 = std::max(x1, x);
      }
    ASSERT_EQ(count, s * s) << "image " << i;
    ASSERT_EQ(y1 - y0 + 1, s);
    ASSERT_EQ(x1 - x0 + 1, s);
    const int64_t sy = got[((i * 3 + 0) * 32 + y0) * 32 + x0], sx = got[((i * 3 + 1) * 32 + y0) * 32 + x0];
    const int64_t row = got[((i * 3 + 2) * 32 + y0) * 32 + x0];
    EXPECT_LE(sy + s, hs);
    EXPECT_LE(sx + s, ws);
    for (int64_t a = 0; a < s; ++a)
      for (int64_t b = 0; b < s; ++b) {
        ASSERT_EQ(got[((i * 3 + 0) * 32 + y0 + a) * 32 + x0 + b], sy + a) << "image " << i;
        ASSERT_EQ(got[((i * 3 + 1) * 32 + y0 + a) * 32 + x0 + b], sx + b) << "image " << i;
        ASSERT_EQ(got[((i * 3 + 2) * 32 + y0 + a) * 32 + x0 + b], row) << "image " << i;
      }
    const data::PatchRecord& r = ps.records[size_t(i)];
    EXPECT_EQ(r.y, y0);
    EXPECT_EQ(r.x, x0);
    EXPECT_EQ(r.source_y, sy);
    EXPECT_EQ(r.source_x, sx);
    EXPECT_EQ(r.source_row, row);
  }
}

// Positions and source rows are uniform over their whole ranges: with 3000 rows every value of
// [0, H - s], [0, Hs - s] and [0, M) appears, and none outside.
TEST(Patches, PositionsCoverTheirWholeRange) {
  const int64_t s = 8;
  const data::Dataset id = random_id(3000, 32, 4), src = coordinate_source(6, 20, 24);
  const data::PatchedSet ps = data::paste_patches(id, src, s, 11);
  std::set<int64_t> ys, xs, sys, sxs, rows;
  for (const data::PatchRecord& r : ps.records) {
    ys.insert(r.y), xs.insert(r.x), sys.insert(r.source_y), sxs.insert(r.source_x), rows.insert(r.source_row);
  }
  const auto range = [](int64_t n) {
    std::set<int64_t> out;
    for (int64_t v = 0; v < n; ++v) out.insert(v);
    return out;
  };
  EXPECT_EQ(ys, range(32 - s + 1));
  EXPECT_EQ(xs, range(32 - s + 1));
  EXPECT_EQ(sys, range(20 - s + 1));
  EXPECT_EQ(sxs, range(24 - s + 1));
  EXPECT_EQ(rows, range(6));
}

// The draws follow the documented order from Generator(counter_hash(seed, i)).
TEST(Patches, DrawsFollowTheDocumentedStream) {
  const data::Dataset id = random_id(20, 32, 5), src = coordinate_source(9, 30, 34);
  const data::PatchedSet ps = data::paste_patches(id, src, 16, 1234);
  for (int64_t i = 0; i < 20; ++i) {
    Generator g(counter_hash(1234, uint64_t(i)));
    const data::PatchRecord& r = ps.records[size_t(i)];
    EXPECT_EQ(r.source_row, g.randint(9));
    EXPECT_EQ(r.source_y, g.randint(30 - 16 + 1));
    EXPECT_EQ(r.source_x, g.randint(34 - 16 + 1));
    EXPECT_EQ(r.y, g.randint(32 - 16 + 1));
    EXPECT_EQ(r.x, g.randint(32 - 16 + 1));
  }
}

TEST(Patches, DeterministicBySeedAndIndependentOfRowCount) {
  const data::Dataset id = random_id(50, 32, 6), src = random_id(8, 32, 7);
  const data::PatchedSet a = data::paste_patches(id, src, 12, 5), b = data::paste_patches(id, src, 12, 5);
  const data::PatchedSet c = data::paste_patches(id, src, 12, 6);
  EXPECT_TRUE(same_bytes(a.data.images, b.data.images));
  EXPECT_TRUE(same_bytes(a.masks, b.masks));
  EXPECT_FALSE(same_bytes(a.masks, c.masks));
  EXPECT_FALSE(same_bytes(a.data.images, c.data.images));
  data::Dataset head = id;
  head.images = id.images.narrow(0, 10).clone();
  head.labels = id.labels.narrow(0, 10).clone();
  const data::PatchedSet h = data::paste_patches(head, src, 12, 5);
  EXPECT_TRUE(same_bytes(h.data.images, a.data.images.narrow(0, 10)));
  EXPECT_TRUE(same_bytes(h.masks, a.masks.narrow(0, 10)));
  EXPECT_EQ(a.data.name, "id+id@12px");
  // The ID set itself is left untouched.
  EXPECT_TRUE(same_bytes(id.images, random_id(50, 32, 6).images));
}

// A source smaller than the patch is resized so that its shorter side is s (data/image_folder.h's
// Auto resize), then cropped.
TEST(Patches, SmallSourcesAreResizedFirst) {
  const data::Dataset id = random_id(30, 32, 8);
  data::Dataset src = random_id(3, 6, 9);  // 6x6 -> 8x8
  src.images = data::resize_images(random_id(3, 12, 9).images, 6, 10);  // 6x10 -> 8x13
  src.name = "small";
  const int64_t s = 8;
  const data::PatchedSet ps = data::paste_patches(id, src, s, 3);
  const Tensor big = data::resize_images(src.images, 8, 13);
  const uint8_t* got = ps.data.images.data<uint8_t>();
  const uint8_t* bp = big.data<uint8_t>();
  for (int64_t i = 0; i < 30; ++i) {
    const data::PatchRecord& r = ps.records[size_t(i)];
    EXPECT_EQ(r.source_y, 0);
    EXPECT_LE(r.source_x, 13 - s);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t a = 0; a < s; ++a)
        for (int64_t b = 0; b < s; ++b)
          ASSERT_EQ(got[((i * 3 + c) * 32 + r.y + a) * 32 + r.x + b],
                    bp[((r.source_row * 3 + c) * 8 + a) * 13 + r.source_x + b]);
  }
}

TEST(Patches, ScaledSizes) {
  EXPECT_EQ(data::scaled_patch_size(8, 32), 8);
  EXPECT_EQ(data::scaled_patch_size(12, 64), 24);
  EXPECT_EQ(data::scaled_patch_size(16, 64), 32);
  EXPECT_EQ(data::scaled_patch_size(12, 28), 11);  // 10.5 rounds away from zero
  EXPECT_EQ(data::scaled_patch_size(1, 8), 1);     // never below 1
  EXPECT_THROW(data::scaled_patch_size(0, 32), Error);
}

TEST(Patches, Refusals) {
  const data::Dataset id = random_id(4, 32, 10), src = random_id(2, 32, 11);
  const auto message = [&](const data::Dataset& a, const data::Dataset& b, int64_t s) {
    try {
      data::paste_patches(a, b, s, 0);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(id, src, 32).find("does not fit 'id'"), std::string::npos);
  EXPECT_NE(message(id, src, 0).find("does not fit"), std::string::npos);
  data::Dataset empty;
  empty.name = "nothing";
  EXPECT_NE(message(id, empty, 8).find("patch source set 'nothing' is empty"), std::string::npos);
  data::Dataset floats = src;
  floats.name = "floats";
  floats.images = src.images.to(DType::F32);
  EXPECT_NE(message(floats, src, 8).find("'floats' must hold uint8"), std::string::npos);
}

TEST(Patches, SourcesByName) {
  const data::Dataset noise = data::load_patch_source("synthetic-ood-noise", 32, 12);
  EXPECT_EQ(noise.images.shape(), (Shape{12, 3, 32, 32}));
  EXPECT_EQ(noise.name, "synthetic-ood-noise");
  const std::vector<std::string> d = data::default_patch_sources("cifar10");
  ASSERT_GE(d.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(d.end() - 4, d.end()),
            (std::vector<std::string>{"synthetic-ood-unseen-shapes", "synthetic-ood-strokes",
                                      "synthetic-ood-textures", "synthetic-ood-noise"}));
  EXPECT_EQ(std::count(d.begin(), d.end(), "cifar10"), 0);
  const std::vector<std::string> s = data::default_patch_sources("synthetic-ood-noise");
  EXPECT_EQ(std::count(s.begin(), s.end(), "synthetic-ood-noise"), 0);
  EXPECT_THROW(data::load_patch_source("no-such-set", 32, 1), Error);
}
