#include "run/explain_picture.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "framework/error.h"
#include "ood/percentile.h"
#include "run/bitmap_font.h"

namespace oodkit::run {

namespace {
constexpr int kFont = 2;                       // font magnification
constexpr int64_t kLine = kGlyphH * kFont + 4;  // text line height
constexpr int64_t kGap = 8;
const uint8_t kInk[3] = {0, 0, 0};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}
}  // namespace

ColourScale colour_scale(const Tensor& maps, double percentile) {
  OODKIT_CHECK(percentile >= 50 && percentile <= 100, "colour scale: the percentile must be in [50, 100], got ",
               percentile);
  std::vector<float> v = maps.to(DType::F32).cpu().to_vector<float>();
  v.erase(std::remove_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); }), v.end());
  ColourScale s;
  s.percentile = percentile;
  if (v.empty()) return s;
  const Tensor finite = Tensor::from_vector(v, {int64_t(v.size())});
  s.lo = ood::percentile(finite, 100 - percentile);
  s.hi = ood::percentile(finite, percentile);
  return s;
}

void hot_colour(double v, const ColourScale& scale, uint8_t rgb[3]) {
  if (std::isnan(v)) {
    rgb[0] = 0, rgb[1] = 0, rgb[2] = 255;
    return;
  }
  double t = scale.hi > scale.lo ? (v - scale.lo) / (scale.hi - scale.lo) : 0.0;
  t = std::min(1.0, std::max(0.0, t));
  const double c[3] = {3 * t, 3 * t - 1, 3 * t - 2};
  for (int i = 0; i < 3; ++i) rgb[i] = uint8_t(std::lround(255 * std::min(1.0, std::max(0.0, c[i]))));
}

Tensor render_explain_grid(const ExplainGrid& g, int zoom) {
  OODKIT_CHECK(zoom >= 1, "render_explain_grid: zoom must be at least 1");
  OODKIT_CHECK(g.images.defined() && g.images.ndim() == 4 && g.images.dtype() == DType::U8 && g.images.size(1) == 3,
               "render_explain_grid: images must be uint8 [N, 3, H, W]");
  const int64_t n = g.images.size(0), h = g.images.size(2), w = g.images.size(3);
  OODKIT_CHECK(g.maps.size() == g.methods.size() && g.scores.size() == g.methods.size() &&
                   g.row_labels.size() == size_t(n),
               "render_explain_grid: one map and score list per method, one label per image");
  std::vector<ColourScale> scales;
  for (size_t m = 0; m < g.maps.size(); ++m) {
    OODKIT_CHECK(g.maps[m].ndim() == 3 && g.maps[m].size(0) == n && g.maps[m].size(1) == h && g.maps[m].size(2) == w &&
                     g.scores[m].size() == size_t(n),
                 "render_explain_grid: method ", g.methods[m], ": maps must be [N, H, W] of the images, scores [N]");
    scales.push_back(colour_scale(g.maps[m], g.percentile));
  }
  const int64_t th = h * zoom, tw = w * zoom;
  int64_t label_w = text_width("input", kFont);
  for (const std::string& l : g.row_labels) label_w = std::max(label_w, text_width(l, kFont));
  int64_t col_w = tw;
  for (size_t m = 0; m < g.methods.size(); ++m) {
    col_w = std::max(col_w, text_width(g.methods[m], kFont));
    col_w = std::max({col_w, text_width("lo " + number(scales[m].lo), kFont), text_width("hi " + number(scales[m].hi), kFont)});
    for (double s : g.scores[m]) col_w = std::max(col_w, text_width("s " + number(s), kFont));
  }
  const int64_t cols = 1 + int64_t(g.methods.size());
  const int64_t row_h = th + kLine + kGap;
  const int64_t top = kGap + 2 * kLine + kLine;  // title (2 lines), column names
  const std::string legend =
      g.percentile >= 100 ? std::string("maps: high = looks OOD, one colour scale per method (black = its lowest value)")
                          : "maps: high = looks OOD, one colour scale per method (black <= its percentile " +
                                number(100 - g.percentile) + ", white >= " + number(g.percentile) + ")";
  const int64_t width = std::max({kGap + label_w + kGap + cols * (col_w + kGap), kGap + text_width(g.title, kFont) + kGap,
                                  kGap + text_width(legend, kFont) + kGap});
  const int64_t height = top + n * row_h + 10 + 3 * kLine + kGap;
  Tensor out = Tensor::full({3, height, width}, 255.0, DType::U8);
  uint8_t* o = out.data<uint8_t>();
  const auto put = [&](int64_t y, int64_t x, const uint8_t* rgb) {
    for (int c = 0; c < 3; ++c) o[(c * height + y) * width + x] = rgb[c];
  };
  draw_text(out, kGap, kGap, g.title, kFont, kInk);
  draw_text(out, kGap + kLine, kGap, legend, kFont, kInk);
  const auto col_x = [&](int64_t c) { return kGap + label_w + kGap + c * (col_w + kGap); };
  draw_text(out, kGap + 2 * kLine, col_x(0), "input", kFont, kInk);
  for (size_t m = 0; m < g.methods.size(); ++m) draw_text(out, kGap + 2 * kLine, col_x(int64_t(m) + 1), g.methods[m], kFont, kInk);
  const uint8_t* img = g.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y0 = top + i * row_h;
    draw_text(out, y0 + th / 2 - kLine / 2, kGap, g.row_labels[size_t(i)], kFont, kInk);
    for (int64_t py = 0; py < th; ++py)
      for (int64_t px = 0; px < tw; ++px) {
        const int64_t q = (py / zoom) * w + px / zoom;
        uint8_t rgb[3];
        for (int c = 0; c < 3; ++c) rgb[c] = img[(i * 3 + c) * h * w + q];
        put(y0 + py, col_x(0) + px, rgb);
        for (size_t m = 0; m < g.maps.size(); ++m) {
          hot_colour(g.maps[m].data<float>()[i * h * w + q], scales[m], rgb);
          put(y0 + py, col_x(int64_t(m) + 1) + px, rgb);
        }
      }
    for (size_t m = 0; m < g.methods.size(); ++m)
      draw_text(out, y0 + th + 2, col_x(int64_t(m) + 1), "s " + number(g.scores[m][size_t(i)]), kFont, kInk);
  }
  // Colour bars: the ramp from lo (left) to hi (right), with the values.
  const int64_t yb = top + n * row_h;
  draw_text(out, yb, kGap, "scale", kFont, kInk);
  for (size_t m = 0; m < g.methods.size(); ++m) {
    const ColourScale& s = scales[m];
    for (int64_t px = 0; px < tw; ++px) {
      uint8_t rgb[3];
      hot_colour(s.lo + (s.hi - s.lo) * double(px) / double(std::max<int64_t>(1, tw - 1)), s, rgb);
      for (int64_t py = 0; py < 10; ++py) put(yb + py, col_x(int64_t(m) + 1) + px, rgb);
    }
    draw_text(out, yb + 12, col_x(int64_t(m) + 1), "lo " + number(s.lo), kFont, kInk);
    draw_text(out, yb + 12 + kLine, col_x(int64_t(m) + 1), "hi " + number(s.hi), kFont, kInk);
  }
  return out;
}

}  // namespace oodkit::run
