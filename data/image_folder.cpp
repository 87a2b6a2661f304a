#include "data/image_folder.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <unordered_map>

#include "data/io.h"
#include "data/stb.h"

namespace fs = std::filesystem;

namespace oodkit::data {

namespace {

// ---------------------------------------------------------------- separable resampling
// For each output index o: taps [off[o], off[o+1]) of (source index, weight).
// PilBilinear filters also carry the weights in Pillow's fixed point (`fixed`, one per tap; the
// others leave it empty) and the axis's whole resize in -> out (Pillow's pass order depends on
// both axes' sizes, and a filter sliced for a crop has fewer outputs than `out`).
struct AxisFilter {
  std::vector<int64_t> off, idx;
  std::vector<float> w;
  std::vector<int32_t> fixed;
  int64_t in = 0, out = 0;
};

// Scratch space of one worker: the plane after the first pass.
struct PlaneScratch {
  std::vector<float> f;     // Area / Bilinear: float, rounded once at the end
  std::vector<uint8_t> u8;  // PilBilinear: rounded to uint8 after the first pass, as Pillow
};

AxisFilter area_filter(int64_t in, int64_t out) {
  // Work in units of 1/(in*out): output o covers [o*in, (o+1)*in), source j covers
  // [j*out, (j+1)*out); the weight is the overlap over the footprint length `in`.
  AxisFilter f;
  f.off.push_back(0);
  for (int64_t o = 0; o < out; ++o) {
    const int64_t lo = o * in, hi = (o + 1) * in;
    for (int64_t j = lo / out; j * out < hi; ++j) {
      const int64_t overlap = std::min(hi, (j + 1) * out) - std::max(lo, j * out);
      if (overlap <= 0) continue;
      f.idx.push_back(j);
      f.w.push_back(float(double(overlap) / double(in)));
    }
    f.off.push_back(int64_t(f.idx.size()));
  }
  return f;
}

AxisFilter bilinear_filter(int64_t in, int64_t out) {
  AxisFilter f;
  f.off.push_back(0);
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    const double src = std::max(0.0, (double(o) + 0.5) * scale - 0.5);
    const int64_t i0 = std::min<int64_t>(int64_t(src), in - 1);
    const int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    const double l1 = src - double(i0), l0 = 1.0 - l1;
    if (i1 == i0 || l1 == 0.0) {
      f.idx.push_back(i0);
      f.w.push_back(1.f);
    } else {
      f.idx.push_back(i0);
      f.w.push_back(float(l0));
      f.idx.push_back(i1);
      f.w.push_back(float(l1));
    }
    f.off.push_back(int64_t(f.idx.size()));
  }
  return f;
}

// ---- Pillow's BILINEAR resample (ResizeMode::PilBilinear).
// Written after Pillow's src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc, ImagingResampleInner; checked
// against Pillow 13.0.0, tests/data/pil_resize_reference.py), for Image.resize without a box or
// reducing_gap (so also torchvision's Resize on PIL images). Per axis, with scale = in / out:
//  - the triangle filter of support 1 is widened by max(scale, 1) (antialiasing when shrinking);
//  - output o is centred at (o + 0.5) * scale; its taps are the source pixels
//    [trunc(centre - support + 0.5), trunc(centre + support + 0.5)) clipped to [0, in), tap j
//    weighted triangle((j - centre + 0.5) / max(scale, 1)), the weights divided by their sum, all
//    in double, in that order of operations;
//  - each weight becomes round-half-away(w * 2^22) (PRECISION_BITS = 32 - 8 - 2);
//  - a pass sums pixel * weight in integers from 2^21 (the rounding half), shifts right by 22 and
//    clamps to [0, 255] (clip8): every pass ends in uint8.
// The second pass works on the first one's uint8 result. Pillow 13 runs the vertical pass first
// when the height loses more than twice as many pixels as the width (h - oh > 0 and
// h - oh > 2 * (w - ow): pil_vertical_first), the horizontal pass first otherwise; Pillow 12 and
// older always ran the horizontal pass first (the two agree unless the rule applies). A pass whose
// axis keeps its size is skipped; here such an axis gets one tap of weight 2^22 per output, which
// gives exactly the skipped pass's result ((v * 2^22 + 2^21) >> 22 = v).
constexpr int kPilPrecisionBits = 32 - 8 - 2;

double pil_triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

AxisFilter pil_bilinear_filter(int64_t in, int64_t out) {
  AxisFilter f;
  f.in = in;
  f.out = out;
  f.off.push_back(0);
  if (in == out) {  // Pillow skips this pass; an identity tap gives the same pixels
    for (int64_t o = 0; o < out; ++o) {
      f.idx.push_back(o);
      f.w.push_back(1.f);
      f.fixed.push_back(int32_t(1) << kPilPrecisionBits);
      f.off.push_back(int64_t(f.idx.size()));
    }
    return f;
  }
  // Pillow's box is float (0, in); (in1 - in0) / out in double.
  const double scale = double(float(in) - 0.f) / double(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // BILINEAR's support is 1
  const double inv_filterscale = 1.0 / filterscale;
  std::vector<double> k;
  for (int64_t o = 0; o < out; ++o) {
    const double center = (double(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, int64_t(center - support + 0.5));  // C's (int): truncation
    const int64_t hi = std::min<int64_t>(in, int64_t(center + support + 0.5));
    k.clear();
    double sum = 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      const double wj = pil_triangle((double(j) - center + 0.5) * inv_filterscale);
      k.push_back(wj);
      sum += wj;
    }
    if (sum != 0.0)
      for (double& wj : k) wj /= sum;
    for (size_t t = 0; t < k.size(); ++t) {
      const double scaled = k[t] * double(int32_t(1) << kPilPrecisionBits);
      f.idx.push_back(lo + int64_t(t));
      f.w.push_back(float(k[t]));
      f.fixed.push_back(int32_t(k[t] < 0 ? -0.5 + scaled : 0.5 + scaled));  // truncation toward zero
    }
    f.off.push_back(int64_t(f.idx.size()));
  }
  return f;
}

// Pillow's clip8 on a fixed-point sum (the rounding half already added).
inline uint8_t pil_clip8(int64_t acc) {
  return uint8_t(std::min<int64_t>(255, std::max<int64_t>(0, acc >> kPilPrecisionBits)));
}

// Pillow 13's pass order (ImagingResampleInner): vertical first when the height loses more than
// twice as many pixels as the width.
bool pil_vertical_first(const AxisFilter& fy, const AxisFilter& fx) {
  const int64_t dh = fy.in - fy.out, dw = fx.in - fx.out;
  return dh > 0 && dh > 2 * dw;
}

// One pass over `lines` lines: out[l * out_stride + o * out_step] from the taps of `f` at
// in[l * in_stride + j * in_step], summed in Pillow's fixed point and rounded to uint8.
void pil_pass(const uint8_t* in, int64_t in_stride, int64_t in_step, uint8_t* out, int64_t out_stride,
              int64_t out_step, int64_t lines, const AxisFilter& f) {
  constexpr int64_t half = int64_t(1) << (kPilPrecisionBits - 1);
  const int64_t outs = int64_t(f.off.size()) - 1;
  for (int64_t l = 0; l < lines; ++l)
    for (int64_t o = 0; o < outs; ++o) {
      int64_t acc = half;
      for (int64_t k = f.off[size_t(o)]; k < f.off[size_t(o) + 1]; ++k)
        acc += int64_t(in[l * in_stride + f.idx[size_t(k)] * in_step]) * f.fixed[size_t(k)];
      out[l * out_stride + o * out_step] = pil_clip8(acc);
    }
}

// One channel plane src [h, w] -> dst [oh, ow] through Pillow's two passes, each ending in uint8:
// columns (fx) then rows (fy), or rows then columns where pil_vertical_first says so.
void pil_resample_plane(const uint8_t* src, int64_t h, int64_t w, uint8_t* dst, int64_t oh, int64_t ow,
                        const AxisFilter& fy, const AxisFilter& fx, std::vector<uint8_t>& tmp) {
  if (pil_vertical_first(fy, fx)) {
    tmp.resize(size_t(oh * w));                       // [oh, w]
    pil_pass(src, 1, w, tmp.data(), 1, w, w, fy);     // each column: rows h -> oh
    pil_pass(tmp.data(), w, 1, dst, ow, 1, oh, fx);   // each row: columns w -> ow
  } else {
    tmp.resize(size_t(h * ow));                       // [h, ow]
    pil_pass(src, w, 1, tmp.data(), ow, 1, h, fx);    // each row: columns w -> ow
    pil_pass(tmp.data(), 1, ow, dst, 1, ow, ow, fy);  // each column: rows h -> oh
  }
}

AxisFilter make_filter(int64_t in, int64_t out, ResizeMode mode) {
  if (mode == ResizeMode::PilBilinear) return pil_bilinear_filter(in, out);
  const bool area = mode == ResizeMode::Area || (mode == ResizeMode::Auto && out <= in);
  return area ? area_filter(in, out) : bilinear_filter(in, out);
}

// One channel plane: src [h, w] -> dst [oh, ow] (rows through fy, columns through fx).
// PilBilinear filters (fixed-point weights) go through Pillow's integer passes.
void resample_plane(const uint8_t* src, int64_t h, int64_t w, uint8_t* dst, int64_t oh, int64_t ow,
                    const AxisFilter& fy, const AxisFilter& fx, PlaneScratch& scratch) {
  if (!fx.fixed.empty()) {
    pil_resample_plane(src, h, w, dst, oh, ow, fy, fx, scratch.u8);
    return;
  }
  std::vector<float>& tmp = scratch.f;
  tmp.resize(size_t(h * ow));
  for (int64_t r = 0; r < h; ++r)
    for (int64_t x = 0; x < ow; ++x) {
      float acc = 0.f;
      for (int64_t k = fx.off[size_t(x)]; k < fx.off[size_t(x) + 1]; ++k)
        acc += fx.w[size_t(k)] * float(src[r * w + fx.idx[size_t(k)]]);
      tmp[size_t(r * ow + x)] = acc;
    }
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      float acc = 0.f;
      for (int64_t k = fy.off[size_t(y)]; k < fy.off[size_t(y) + 1]; ++k)
        acc += fy.w[size_t(k)] * tmp[size_t(fy.idx[size_t(k)] * ow + x)];
      dst[y * ow + x] = uint8_t(std::min(255.f, std::max(0.f, std::floor(acc + 0.5f))));
    }
}

// [planes, h, w] -> [planes, oh, ow]; copies when the size is unchanged.
void resample_planes(const uint8_t* src, int64_t planes, int64_t h, int64_t w, uint8_t* dst, int64_t oh, int64_t ow,
                     ResizeMode mode) {
  if (oh == h && ow == w) {
    std::memcpy(dst, src, size_t(planes * h * w));
    return;
  }
  const AxisFilter fy = make_filter(h, oh, mode), fx = make_filter(w, ow, mode);
  PlaneScratch tmp;
  for (int64_t p = 0; p < planes; ++p) resample_plane(src + p * h * w, h, w, dst + p * oh * ow, oh, ow, fy, fx, tmp);
}

// Python's round((a - b) / 2): halves go to even.
int64_t center_offset(int64_t size, int64_t crop) { return int64_t(std::nearbyint(double(size - crop) / 2.0)); }

void crop_planes(const uint8_t* src, int64_t planes, int64_t h, int64_t w, uint8_t* dst, int64_t ch, int64_t cw) {
  const int64_t top = center_offset(h, ch), left = center_offset(w, cw);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < ch; ++y)
      std::memcpy(dst + (p * ch + y) * cw, src + (p * h + top + y) * w + left, size_t(cw));
}

// The taps of outputs [first, first + count) of `f`, as a filter with `count` outputs.
AxisFilter slice_filter(const AxisFilter& f, int64_t first, int64_t count) {
  AxisFilter s;
  s.in = f.in;
  s.out = f.out;
  s.off.push_back(0);
  for (int64_t o = first; o < first + count; ++o) {
    for (int64_t k = f.off[size_t(o)]; k < f.off[size_t(o) + 1]; ++k) {
      s.idx.push_back(f.idx[size_t(k)]);
      s.w.push_back(f.w[size_t(k)]);
      if (!f.fixed.empty()) s.fixed.push_back(f.fixed[size_t(k)]);
    }
    s.off.push_back(int64_t(s.idx.size()));
  }
  return s;
}

// resample_planes to [planes, oh, ow] then crop_planes to [planes, ch, cw], the same pixels, but
// only the kept outputs are computed (a thin image's short-side resize can be huge before the crop).
void resample_crop_planes(const uint8_t* src, int64_t planes, int64_t h, int64_t w, uint8_t* dst, int64_t oh,
                          int64_t ow, int64_t ch, int64_t cw, ResizeMode mode) {
  if (oh == h && ow == w) {
    crop_planes(src, planes, h, w, dst, ch, cw);
    return;
  }
  const AxisFilter fy = slice_filter(make_filter(h, oh, mode), center_offset(oh, ch), ch);
  const AxisFilter fx = slice_filter(make_filter(w, ow, mode), center_offset(ow, cw), cw);
  PlaneScratch tmp;
  for (int64_t p = 0; p < planes; ++p) resample_plane(src + p * h * w, h, w, dst + p * ch * cw, ch, cw, fy, fx, tmp);
}

void check_image_tensor(const Tensor& t, const char* op) {
  check_dtype(t, DType::U8, op, "images");
  OODKIT_CHECK(t.ndim() == 3 || t.ndim() == 4, op, ": images must be [C, H, W] or [N, C, H, W], got ",
               t.describe());
}

// The most pixels an image may have (8192 x 8192): a few header bytes can declare gigabytes, so
// sizes are checked before anything is allocated. A zero width or height is refused too.
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

void check_image_size(const std::string& path, int64_t w, int64_t h) {
  OODKIT_CHECK(w > 0 && h > 0, "cannot decode '", path, "': empty image (", w, "x", h, " pixels)");
  OODKIT_CHECK(w <= kMaxImagePixels / h, "cannot decode '", path, "': ", w, "x", h,
               " pixels exceed the limit of ", kMaxImagePixels, " pixels");
}

// stb_image 2.27 (Debian 12's libstb) writes past its 257-entry table when a JPEG Huffman table
// (DHT) declares more than 256 codes (fixed in stb 2.28). Such files are refused before stb sees
// them: every place stb could read a DHT marker (0xFF, more 0xFF fill, 0xC4) is checked the way
// stb reads it (16 counts, then that many values, while the segment length lasts; bytes past
// the end read as 0), which covers markers stb finds after re-synchronising or between scans.
// stb 2.27 copies a zero-length IDAT chunk that comes before any data into its not yet
// allocated buffer (memcpy to NULL, undefined behaviour; found by fuzz_image). An empty IDAT
// holds no data, so a PNG's zero-length IDAT chunks (12 bytes each: length, type, CRC) are
// dropped before decoding; other files, and PNGs without one, are returned unchanged.
std::vector<uint8_t> without_empty_png_idat(std::vector<uint8_t> b) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (b.size() < 8 || !std::equal(sig, sig + 8, b.begin())) return b;
  std::vector<uint8_t> out(b.begin(), b.begin() + 8);
  size_t at = 8;
  while (at + 12 <= b.size()) {
    const uint64_t len = (uint64_t(b[at]) << 24) | (uint64_t(b[at + 1]) << 16) | (uint64_t(b[at + 2]) << 8) | b[at + 3];
    const bool empty_idat = len == 0 && std::equal(b.begin() + at + 4, b.begin() + at + 8, "IDAT");
    const size_t end = len > b.size() - at - 12 ? b.size() : at + 12 + size_t(len);
    if (!empty_idat) out.insert(out.end(), b.begin() + at, b.begin() + end);
    at = end;
  }
  out.insert(out.end(), b.begin() + at, b.end());
  return out;
}

void check_jpeg_huffman_tables(const std::string& path, const std::vector<uint8_t>& b) {
  // A JPEG to stb: 0xFF, any further 0xFF fill bytes, then 0xD8 (SOI).
  size_t soi = 1;
  while (soi < b.size() && b[soi] == 0xFF) ++soi;
  if (b.empty() || b[0] != 0xFF || soi >= b.size() || b[soi] != 0xD8) return;  // not a JPEG
  auto at = [&](size_t i) -> int { return i < b.size() ? b[i] : 0; };
  for (size_t p = 0; p + 1 < b.size(); ++p) {
    if (b[p] != 0xFF) continue;
    size_t m = p + 1;
    while (m < b.size() && b[m] == 0xFF) ++m;
    if (m >= b.size() || b[m] != 0xC4) continue;
    int64_t left = int64_t(at(m + 1) << 8 | at(m + 2)) - 2;  // the segment length, less its own 2 bytes
    size_t q = m + 3;
    while (left > 0 && q < b.size()) {
      int64_t n = 0;
      for (size_t i = 1; i <= 16; ++i) n += at(q + i);
      OODKIT_CHECK(n <= 256, "cannot decode '", path, "': corrupt JPEG: a Huffman table declares ", n,
                   " codes (at most 256)");
      q += 17 + size_t(n);
      left -= 17 + n;
    }
  }
}

// The spatial size an image of (h, w) has after the options' resize and crop.
std::pair<int64_t, int64_t> resized_size(int64_t h, int64_t w, const ImageFolderOptions& o) {
  if (o.height > 0 && o.width > 0) return {o.height, o.width};
  if (o.resize_short > 0) {
    if (h <= w) return {o.resize_short, int64_t(double(o.resize_short) * double(w) / double(h))};
    return {int64_t(double(o.resize_short) * double(h) / double(w)), o.resize_short};
  }
  return {h, w};
}

std::pair<int64_t, int64_t> final_size(int64_t h, int64_t w, const ImageFolderOptions& o) {
  if (o.crop_height > 0 && o.crop_width > 0) return {o.crop_height, o.crop_width};
  return resized_size(h, w, o);
}

// Decodes, resizes and crops one file into `out` (3 * fh * fw bytes).
// A file that cannot be read or decoded throws UnreadableImageError; running out of memory and a
// size that differs from the first image's stay plain errors (skip_unreadable does not skip them).
void load_one(const std::string& path, const ImageFolderOptions& o, int64_t fh, int64_t fw, uint8_t* out) {
  Tensor img;
  try {
    img = decode_image(path);
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    throw UnreadableImageError(e.what(), e.where());
  }
  const int64_t h = img.size(1), w = img.size(2);
  const auto [rh, rw] = resized_size(h, w, o);
  // A very thin image resized by its short side would need gigabytes (1 x 2^26 -> 32 x 2^31).
  OODKIT_CHECK(double(rh) * double(rw) <= double(kMaxImagePixels), "'", path, "': resizing the ", h, "x", w,
               " image to ", rh, "x", rw, " exceeds the limit of ", kMaxImagePixels, " pixels");
  const bool crop = o.crop_height > 0 && o.crop_width > 0;
  OODKIT_CHECK(!crop || (o.crop_height <= rh && o.crop_width <= rw), "'", path, "': center crop ", o.crop_height,
               "x", o.crop_width, " does not fit the ", rh, "x", rw, " (resized) image");
  const auto [eh, ew] = crop ? std::pair<int64_t, int64_t>{o.crop_height, o.crop_width} : std::pair{rh, rw};
  OODKIT_CHECK(eh == fh && ew == fw, "'", path, "' gives a ", eh, "x", ew, " image (decoded ", h, "x", w,
               ") but the first image gives ", fh, "x", fw, "; set a resize target to mix sizes");
  if (!crop) {
    resample_planes(img.data<uint8_t>(), 3, h, w, out, rh, rw, o.resize);
    return;
  }
  resample_crop_planes(img.data<uint8_t>(), 3, h, w, out, rh, rw, fh, fw, o.resize);
}

bool has_image_extension(const std::string& path) {
  static const std::set<std::string> exts = {".png", ".jpg", ".jpeg", ".bmp", ".tga",
                                             ".ppm", ".pgm", ".pnm", ".gif"};
  return exts.count(lower_extension(path)) > 0;
}

std::vector<std::string> sorted_subfolders(const std::string& dir) {
  std::vector<std::string> subs;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && it->is_directory(ec)) subs.push_back(name);
  }
  OODKIT_CHECK(!ec, "cannot list folder '", dir, "': ", ec.message());
  std::sort(subs.begin(), subs.end());
  return subs;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

}  // namespace

// ---------------------------------------------------------------- single images

Tensor decode_image(const std::string& path) {
  const std::vector<uint8_t> bytes = without_empty_png_idat(read_file_bytes(path));
  OODKIT_CHECK(!bytes.empty(), "cannot decode '", path, "': the file is empty");
  OODKIT_CHECK(bytes.size() <= size_t(std::numeric_limits<int>::max()), "cannot decode '", path, "': too large");
  check_jpeg_huffman_tables(path, bytes);
  int w = 0, h = 0, stored = 0;
  if (stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &stored)) check_image_size(path, w, h);
  // stb 2.27 (Debian 12's libstb) overruns its buffer converting a 16-bit PNM to another channel
  // count (fixed in stb 2.28): 16-bit images are decoded at their stored channel count and made
  // RGB below, as stb does (gray replicated, alpha dropped).
  const bool wide = stbi_is_16_bit_from_memory(bytes.data(), int(bytes.size())) != 0;
  uint8_t* pixels = stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &stored, wide ? 0 : 3);
  if (pixels == nullptr) {
    // A failed allocation is not a bad file, but stb does not always say so (its zlib buffer
    // sets no reason, and the reason is global, possibly left over from another format's probe):
    // when the header reads and a buffer of the decoded size cannot be allocated now either,
    // memory is what ran out.
    int iw = 0, ih = 0, ic = 0;
    if (stbi_info_from_memory(bytes.data(), int(bytes.size()), &iw, &ih, &ic)) {
      void* volatile probe = std::malloc(size_t(iw) * size_t(ih) * 4);  // volatile: not elided
      std::free(probe);
      if (probe == nullptr)
        throw OutOfMemoryError(detail::str_cat("out of host memory decoding '", path, "' (", iw, "x", ih, " pixels)"));
    }
    const char* why = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
    OODKIT_FAIL("cannot decode '", path, "': ", why, " (not a supported JPEG/PNG/BMP/TGA/PNM/GIF image?)");
  }
  const std::unique_ptr<uint8_t, void (*)(void*)> owned(pixels, stbi_image_free);
  check_image_size(path, w, h);  // the header check above, for a format stbi_info does not read
  Tensor out;
  try {
    out = Tensor::empty({3, h, w}, DType::U8);
  } catch (const OutOfMemoryError&) {
    throw OutOfMemoryError(detail::str_cat("out of host memory decoding '", path, "' (", w, "x", h, " pixels)"));
  }
  uint8_t* q = out.data<uint8_t>();
  const int64_t hw = int64_t(h) * w;
  const int step = wide ? stored : 3;  // channels per pixel in `pixels`
  for (int64_t k = 0; k < hw; ++k)
    for (int c = 0; c < 3; ++c) q[c * hw + k] = pixels[k * step + (step >= 3 ? c : 0)];
  return out;
}

ImageInfo read_image_info(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  check_jpeg_huffman_tables(path, bytes);
  int w = 0, h = 0, c = 0;
  OODKIT_CHECK(!bytes.empty() && bytes.size() <= size_t(std::numeric_limits<int>::max()) &&
                   stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &c),
               "cannot decode '", path, "': ", bytes.empty() ? "the file is empty" : "unrecognised image header");
  check_image_size(path, w, h);
  return {h, w, c};
}

namespace {
std::vector<uint8_t> to_interleaved(const Tensor& image, const char* op, int* channels) {
  check_dtype(image, DType::U8, op, "image");
  check_ndim(image, 3, op, "image");
  const int64_t c = image.size(0), hw = image.size(1) * image.size(2);
  OODKIT_CHECK(c == 1 || c == 3, op, ": image must have 1 or 3 channels, got ", image.describe());
  const Tensor src = image.cpu();
  const uint8_t* p = src.data<uint8_t>();
  std::vector<uint8_t> hwc(size_t(c * hw));
  for (int64_t k = 0; k < hw; ++k)
    for (int64_t ch = 0; ch < c; ++ch) hwc[size_t(k * c + ch)] = p[ch * hw + k];
  *channels = int(c);
  return hwc;
}
}  // namespace

void write_png(const std::string& path, const Tensor& image) {
  int c = 0;
  const std::vector<uint8_t> hwc = to_interleaved(image, "write_png", &c);
  const int h = int(image.size(1)), w = int(image.size(2));
  OODKIT_CHECK(stbi_write_png(path.c_str(), w, h, c, hwc.data(), w * c) != 0, "cannot write '", path, "'");
}

void write_jpeg(const std::string& path, const Tensor& image, int quality) {
  OODKIT_CHECK(quality >= 1 && quality <= 100, "write_jpeg: quality must be in [1, 100], got ", quality);
  int c = 0;
  const std::vector<uint8_t> hwc = to_interleaved(image, "write_jpeg", &c);
  const int h = int(image.size(1)), w = int(image.size(2));
  OODKIT_CHECK(stbi_write_jpg(path.c_str(), w, h, c, hwc.data(), quality) != 0, "cannot write '", path, "'");
}

// ---------------------------------------------------------------- resizing

Tensor resize_images(const Tensor& images, int64_t height, int64_t width, ResizeMode mode) {
  check_image_tensor(images, "resize_images");
  OODKIT_CHECK(height > 0 && width > 0, "resize_images: target size must be positive, got ", height, "x", width);
  const Tensor src = images.cpu();
  const int nd = src.ndim();
  const int64_t h = src.size(-2), w = src.size(-1), planes = src.numel() / (h * w);
  OODKIT_CHECK(h > 0 && w > 0, "resize_images: empty image ", src.describe());
  Shape shape = src.shape();
  shape[size_t(nd - 2)] = height;
  shape[size_t(nd - 1)] = width;
  Tensor out = Tensor::empty(shape, DType::U8);
  if (out.numel() == 0) return out;
  const uint8_t* p = src.data<uint8_t>();
  uint8_t* q = out.data<uint8_t>();
  if (height == h && width == w) {
    std::memcpy(q, p, size_t(src.numel()));
    return out;
  }
  const AxisFilter fy = make_filter(h, height, mode), fx = make_filter(w, width, mode);
#pragma omp parallel
  {
    PlaneScratch tmp;
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl)
      resample_plane(p + pl * h * w, h, w, q + pl * height * width, height, width, fy, fx, tmp);
  }
  return out;
}

Tensor center_crop(const Tensor& images, int64_t height, int64_t width) {
  check_image_tensor(images, "center_crop");
  const Tensor src = images.cpu();
  const int nd = src.ndim();
  const int64_t h = src.size(-2), w = src.size(-1), planes = src.numel() / std::max<int64_t>(1, h * w);
  OODKIT_CHECK(height > 0 && width > 0 && height <= h && width <= w, "center_crop: crop ", height, "x", width,
               " does not fit images ", src.describe());
  Shape shape = src.shape();
  shape[size_t(nd - 2)] = height;
  shape[size_t(nd - 1)] = width;
  Tensor out = Tensor::empty(shape, DType::U8);
  if (out.numel() > 0) crop_planes(src.data<uint8_t>(), planes, h, w, out.data<uint8_t>(), height, width);
  return out;
}

ImageFit parse_image_fit(const std::string& name) {
  if (name == "short-crop") return ImageFit::ShortSideCrop;
  if (name == "squash") return ImageFit::Squash;
  OODKIT_FAIL("unknown image fit '", name, "' (short-crop, squash)");
}

std::string image_fit_name(ImageFit fit) { return fit == ImageFit::Squash ? "squash" : "short-crop"; }

// ---------------------------------------------------------------- folders

void set_square_size(ImageFolderOptions& o, int64_t size, ImageFit fit) {
  const int64_t s = std::max<int64_t>(size, 0);
  const bool squash = fit == ImageFit::Squash;
  o.height = o.width = squash ? s : 0;
  o.resize_short = squash ? 0 : s;
  o.crop_height = o.crop_width = squash ? 0 : s;
}

std::vector<std::string> list_image_files(const std::string& dir) {
  std::error_code ec;
  OODKIT_CHECK(fs::is_directory(dir, ec), "image folder '", dir, "' does not exist or is not a folder");
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && has_image_extension(name)) names.push_back(name);
  }
  OODKIT_CHECK(!ec, "cannot list folder '", dir, "': ", ec.message());
  std::sort(names.begin(), names.end());
  std::vector<std::string> files;
  files.reserve(names.size());
  const std::string base = (!dir.empty() && dir.back() == '/') ? dir : dir + "/";
  for (const std::string& n : names) files.push_back(base + n);
  return files;
}

Dataset load_image_files(const std::vector<std::string>& files_in, const ImageFolderOptions& o,
                         const std::string& name, const std::vector<int64_t>& labels, int64_t num_classes) {
  OODKIT_CHECK(!files_in.empty(), "load_image_files: no image files given", name.empty() ? "" : " for '", name,
               name.empty() ? "" : "'");
  OODKIT_CHECK(labels.empty() || labels.size() == files_in.size(), "load_image_files: ", labels.size(),
               " labels for ", files_in.size(), " files");
  OODKIT_CHECK((o.height > 0) == (o.width > 0), "image loading: give both height and width (got ", o.height, "x",
               o.width, ")");
  OODKIT_CHECK((o.crop_height > 0) == (o.crop_width > 0), "image loading: give both crop_height and crop_width");
  const size_t n = o.limit >= 0 ? std::min(files_in.size(), size_t(o.limit)) : files_in.size();
  const std::vector<std::string> files(files_in.begin(), files_in.begin() + std::ptrdiff_t(n));

  // The first image whose header reads fixes the output size (the first file, unless skipping).
  std::vector<std::exception_ptr> errors(n);
  int64_t fh = 0, fw = 0;
  for (size_t i = 0; i < n; ++i) {
    try {
      const ImageInfo info = read_image_info(files[i]);
      std::tie(fh, fw) = final_size(info.height, info.width, o);
      break;
    } catch (const OutOfMemoryError&) {
      throw;
    } catch (const Error& e) {
      if (!o.skip_unreadable) throw UnreadableImageError(e.what(), e.where());
      errors[i] = std::make_exception_ptr(UnreadableImageError(e.what(), e.where()));
    }
  }
  Dataset ds;
  ds.name = name;
  ds.images = Tensor::empty({int64_t(n), 3, fh, fw}, DType::U8);
  uint8_t* out = ds.images.data<uint8_t>();
  const int64_t per = 3 * fh * fw;

  // Every failure is kept (by file index) so that the outcome does not depend on thread timing.
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < int64_t(n); ++i) {
    if (errors[size_t(i)]) continue;
    try {
      load_one(files[size_t(i)], o, fh, fw, out + i * per);
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  }
  // The first failure in file order is thrown, unless it is an unreadable file being skipped.
  std::vector<int64_t> rows;
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i]) {
      rows.push_back(int64_t(i));
      continue;
    }
    try {
      std::rethrow_exception(errors[i]);
    } catch (const UnreadableImageError& e) {
      if (!o.skip_unreadable) throw;
      ds.skipped.push_back({files[i], e.what()});
    }
  }
  for (int64_t i : rows) ds.files.push_back(files[size_t(i)]);
  OODKIT_CHECK(n == 0 || !rows.empty(), "all ", n, " image files", name.empty() ? "" : " of '", name, name.empty() ? "" : "'",
               " are unreadable (the first: ", ds.skipped.empty() ? "" : ds.skipped[0].reason, ")");
  if (!ds.skipped.empty()) {
    Tensor kept = Tensor::empty({int64_t(rows.size()), 3, fh, fw}, DType::U8);
    for (size_t k = 0; k < rows.size(); ++k)
      std::memcpy(kept.data<uint8_t>() + int64_t(k) * per, out + rows[k] * per, size_t(per));
    ds.images = kept;
  }

  if (!labels.empty()) {
    std::vector<int64_t> kept;
    for (int64_t i : rows) {
      const int64_t y = labels[size_t(i)];
      OODKIT_CHECK(y >= 0 && (num_classes <= 0 || y < num_classes), "load_image_files: label ", y, " of '",
                   files[size_t(i)], "' out of range [0, ", num_classes, ")");
      kept.push_back(y);
    }
    ds.labels = Tensor::from_vector<int64_t>(kept, {int64_t(kept.size())});
    ds.num_classes = num_classes;
  }
  return ds;
}

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o, const std::string& name) {
  std::error_code ec;
  OODKIT_CHECK(fs::is_directory(dir, ec), "image folder '", dir, "' does not exist or is not a folder");
  FolderLabels mode = o.labels;
  std::vector<std::string> classes;
  if (mode != FolderLabels::None) {
    for (const std::string& sub : sorted_subfolders(dir))
      if (mode == FolderLabels::FromSubfolders || !list_image_files(dir + "/" + sub).empty()) classes.push_back(sub);
    if (mode == FolderLabels::Auto) mode = classes.empty() ? FolderLabels::None : FolderLabels::FromSubfolders;
  }
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  if (mode == FolderLabels::None) {
    files = list_image_files(dir);
    OODKIT_CHECK(!files.empty(), "image folder '", dir, "' holds no image files (.png/.jpg/.jpeg/...)");
  } else {
    OODKIT_CHECK(!classes.empty(), "image folder '", dir, "' has no class sub-folders");
    for (size_t c = 0; c < classes.size(); ++c) {
      const std::vector<std::string> f = list_image_files(dir + "/" + classes[c]);
      OODKIT_CHECK(!f.empty(), "class folder '", dir, "/", classes[c], "' holds no image files");
      files.insert(files.end(), f.begin(), f.end());
      labels.insert(labels.end(), f.size(), int64_t(c));
    }
  }
  Dataset ds = load_image_files(files, o, name.empty() ? fs::path(dir).filename().string() : name, labels,
                                int64_t(classes.size()));
  if (mode == FolderLabels::FromSubfolders) ds.class_names = classes;
  return ds;
}

// ---------------------------------------------------------------- Tiny ImageNet

std::vector<std::string> read_wnids(const std::string& path) {
  std::ifstream f(path);
  OODKIT_CHECK(f.good(), "cannot open '", path, "'");
  std::vector<std::string> wnids;
  std::set<std::string> seen;
  for (std::string line; std::getline(f, line);) {
    line = trim(line);
    if (line.empty()) continue;
    OODKIT_CHECK(seen.insert(line).second, "'", path, "' lists wnid '", line, "' twice");
    wnids.push_back(line);
  }
  OODKIT_CHECK(!wnids.empty(), "'", path, "' lists no wnids");
  return wnids;
}

std::vector<int64_t> read_tiny_imagenet_val_labels(const std::string& annotations_path,
                                                   const std::vector<std::string>& wnids,
                                                   const std::vector<std::string>& files) {
  std::unordered_map<std::string, int64_t> wnid_index;
  for (size_t i = 0; i < wnids.size(); ++i) wnid_index[wnids[i]] = int64_t(i);
  std::ifstream f(annotations_path);
  OODKIT_CHECK(f.good(), "cannot open '", annotations_path, "'");
  std::unordered_map<std::string, int64_t> label_of;
  int64_t line_no = 0;
  for (std::string line; std::getline(f, line);) {
    ++line_no;
    if (trim(line).empty()) continue;
    const size_t t1 = line.find('\t');
    OODKIT_CHECK(t1 != std::string::npos, "'", annotations_path, "' line ", line_no,
                 ": expected '<file>\\t<wnid>...', got '", line, "'");
    const size_t t2 = line.find('\t', t1 + 1);
    const std::string file = line.substr(0, t1);
    const std::string wnid = trim(line.substr(t1 + 1, t2 == std::string::npos ? std::string::npos : t2 - t1 - 1));
    const auto it = wnid_index.find(wnid);
    OODKIT_CHECK(it != wnid_index.end(), "'", annotations_path, "' line ", line_no, ": wnid '", wnid,
                 "' is not in wnids.txt");
    OODKIT_CHECK(label_of.emplace(file, it->second).second, "'", annotations_path, "' line ", line_no, ": '", file,
                 "' is annotated twice");
  }
  std::vector<int64_t> labels;
  labels.reserve(files.size());
  for (const std::string& path : files) {
    const std::string base = fs::path(path).filename().string();
    const auto it = label_of.find(base);
    OODKIT_CHECK(it != label_of.end(), "'", annotations_path, "' has no line for '", path, "'");
    labels.push_back(it->second);
  }
  return labels;
}

Dataset load_tiny_imagenet_val(const std::string& root, const ImageFolderOptions& o) {
  std::error_code ec;
  const std::string images_dir = fs::is_directory(root + "/val/images", ec) ? root + "/val/images" : root + "/val";
  const std::string annotations = fs::exists(root + "/val/val_annotations.txt", ec)
                                      ? root + "/val/val_annotations.txt"
                                      : root + "/val_annotations.txt";
  const std::vector<std::string> wnids = read_wnids(root + "/wnids.txt");
  std::vector<std::string> files = list_image_files(images_dir);
  OODKIT_CHECK(!files.empty(), "image folder '", images_dir, "' holds no image files");
  if (o.limit >= 0 && size_t(o.limit) < files.size()) files.resize(size_t(o.limit));
  const std::vector<int64_t> labels = read_tiny_imagenet_val_labels(annotations, wnids, files);
  Dataset ds = load_image_files(files, o, "tinyimagenet-val", labels, int64_t(wnids.size()));
  ds.class_names = wnids;
  return ds;
}

}  // namespace oodkit::data
