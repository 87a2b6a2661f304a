#include "data/patches.h"

#include <algorithm>
#include <cmath>

#include "data/image_folder.h"
#include "data/inventory.h"
#include "data/registry.h"
#include "framework/error.h"
#include "framework/random.h"

namespace oodkit::data {

namespace {

void check_images(const Dataset& ds, const char* role) {
  OODKIT_CHECK(ds.images.defined() && ds.size() > 0, "paste_patches: the ", role, " set '", ds.name, "' is empty");
  OODKIT_CHECK(ds.images.dtype() == DType::U8 && ds.images.ndim() == 4 && ds.images.size(1) == 3,
               "paste_patches: the ", role, " set '", ds.name, "' must hold uint8 [N, 3, H, W] images, got ",
               ds.images.describe());
}

// The source images with both sides >= s: resized as the header says when smaller (all rows at once).
Tensor sized_sources(const Tensor& images, int64_t s) {
  const int64_t hs = images.size(2), ws = images.size(3);
  if (std::min(hs, ws) >= s) return images;
  const int64_t shorter = std::min(hs, ws), longer = std::max(hs, ws);
  const int64_t other = std::max(s, int64_t(std::llround(double(longer) * double(s) / double(shorter))));
  return hs <= ws ? resize_images(images, s, other) : resize_images(images, other, s);
}

}  // namespace

int64_t scaled_patch_size(int64_t size_on_32, int64_t image_side) {
  OODKIT_CHECK(size_on_32 > 0, "patch size must be positive, got ", size_on_32);
  return std::max<int64_t>(1, std::llround(double(size_on_32) * double(image_side) / 32.0));
}

PatchedSet paste_patches(const Dataset& id, const Dataset& source, int64_t s, uint64_t seed) {
  check_images(id, "ID");
  check_images(source, "patch source");
  const int64_t n = id.size(), h = id.images.size(2), w = id.images.size(3), m = source.size();
  OODKIT_CHECK(s >= 1 && s < std::min(h, w), "paste_patches: patch side ", s, " px does not fit '", id.name,
               "' (", h, "x", w, "): it must be in [1, ", std::min(h, w) - 1, "]");
  PatchedSet out;
  out.data = id;
  out.data.name = id.name + "+" + source.name + "@" + std::to_string(s) + "px";
  out.data.images = id.images.cpu().clone();
  out.data.files.clear();
  out.masks = Tensor::zeros({n, h, w}, DType::U8);
  uint8_t* img = out.data.images.data<uint8_t>();
  uint8_t* mask = out.masks.data<uint8_t>();
  const Tensor src = sized_sources(source.images.cpu(), s);
  const int64_t hs = src.size(2), ws = src.size(3);
  const uint8_t* sp = src.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    Generator gen(counter_hash(seed, uint64_t(i)));
    PatchRecord rec;
    rec.source = source.name;
    rec.size = s;
    rec.source_row = gen.randint(m);
    rec.source_y = gen.randint(hs - s + 1);
    rec.source_x = gen.randint(ws - s + 1);
    rec.y = gen.randint(h - s + 1);
    rec.x = gen.randint(w - s + 1);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t a = 0; a < s; ++a)
        std::copy_n(sp + ((rec.source_row * 3 + c) * hs + rec.source_y + a) * ws + rec.source_x, s,
                    img + ((i * 3 + c) * h + rec.y + a) * w + rec.x);
    for (int64_t a = 0; a < s; ++a) std::fill_n(mask + (i * h + rec.y + a) * w + rec.x, s, uint8_t(1));
    out.records.push_back(rec);
  }
  return out;
}

Dataset load_patch_source(const std::string& name, int64_t image_size, int64_t limit) {
  LoadOptions o;
  o.image_size = image_size;
  o.limit = limit;
  return load_dataset(name, "", o);
}

std::vector<std::string> default_patch_sources(const std::string& id_name) {
  const std::vector<std::string> ood_sets{"mnist", "fashion-mnist", "isun", "tinyimagenet", "svhn",
                                          "lsun", "lsun-resize", "places365", "textures"};
  std::vector<std::string> out;
  for (const DatasetStatus& st : dataset_inventory(false))
    if (st.state == "installed" && st.name != id_name &&
        std::find(ood_sets.begin(), ood_sets.end(), st.name) != ood_sets.end())
      out.push_back(st.name);
  for (const char* kind : {"unseen-shapes", "strokes", "textures", "noise"})
    if (id_name != std::string("synthetic-ood-") + kind) out.push_back(std::string("synthetic-ood-") + kind);
  return out;
}

}  // namespace oodkit::data
