#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "framework/error.h"
#include "framework/random.h"

namespace oodkit::data {

namespace {

constexpr int kSide = int(kSyntheticSide);
constexpr int kPixels = kSide * kSide;
constexpr float kPi = 3.14159265358979f;
constexpr float kBig = 1e9f;

// splitmix64 stream: cheap to seed per image (a full mt19937 per image would dominate).
struct Rng {
  uint64_t s;
  uint64_t next() {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  float range(float a, float b) { return a + (b - a) * uniform(); }
  int randint(int n) { return int((next() >> 33) % uint64_t(n)); }
  // Irwin-Hall sum of four 16-bit uniforms, standardised: close to N(0, 1), one draw per call.
  float normal() {
    const uint64_t v = next();
    const float sum = float(v & 0xFFFF) + float((v >> 16) & 0xFFFF) + float((v >> 32) & 0xFFFF) + float(v >> 48);
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
  }
};

struct V2 {
  float x, y;
};
V2 operator+(V2 a, V2 b) { return {a.x + b.x, a.y + b.y}; }
V2 operator-(V2 a, V2 b) { return {a.x - b.x, a.y - b.y}; }
V2 operator*(float s, V2 a) { return {s * a.x, s * a.y}; }
float dot(V2 a, V2 b) { return a.x * b.x + a.y * b.y; }

struct Color {
  float c[3];
};

// Similarity transform from a shape's unit frame to pixels.
struct Frame {
  V2 centre;
  float scale, cos_t, sin_t;
  V2 operator()(V2 u) const {
    return {centre.x + scale * (cos_t * u.x - sin_t * u.y), centre.y + scale * (sin_t * u.x + cos_t * u.y)};
  }
};

struct Circle {
  V2 c;
  float r;
};
struct Segment {
  V2 a, b;
  float half_width;
};
using Poly = std::vector<V2>;

// A region: union of `polys`, `circles`, `segments`, minus the union of the holes.
struct Region {
  std::vector<Poly> polys, hole_polys;
  std::vector<Circle> circles, hole_circles;
  std::vector<Segment> segments;

  void clear() {
    polys.clear();
    hole_polys.clear();
    circles.clear();
    hole_circles.clear();
    segments.clear();
  }
};

// Exact signed distance to a simple polygon (negative inside; any winding, non-convex ok).
float sd_poly(const Poly& v, V2 p) {
  float d = dot(p - v[0], p - v[0]);
  float s = 1.f;
  const size_t n = v.size();
  for (size_t i = 0, j = n - 1; i < n; j = i, ++i) {
    const V2 e = v[j] - v[i], w = p - v[i];
    const float t = std::clamp(dot(w, e) / dot(e, e), 0.f, 1.f);
    const V2 b = w - t * e;
    d = std::min(d, dot(b, b));
    const bool c1 = p.y >= v[i].y, c2 = p.y < v[j].y, c3 = e.x * w.y > e.y * w.x;
    if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
  }
  return s * std::sqrt(d);
}

float sd_circle(const Circle& c, V2 p) { return std::sqrt(dot(p - c.c, p - c.c)) - c.r; }

float sd_segment(const Segment& s, V2 p) {
  const V2 e = s.b - s.a, w = p - s.a;
  const float t = std::clamp(dot(w, e) / std::max(dot(e, e), 1e-12f), 0.f, 1.f);
  const V2 b = w - t * e;
  return std::sqrt(dot(b, b)) - s.half_width;
}

float sd_region(const Region& r, V2 p) {
  float d = kBig;
  for (const Poly& q : r.polys) d = std::min(d, sd_poly(q, p));
  for (const Circle& c : r.circles) d = std::min(d, sd_circle(c, p));
  for (const Segment& s : r.segments) d = std::min(d, sd_segment(s, p));
  float h = kBig;
  for (const Poly& q : r.hole_polys) h = std::min(h, sd_poly(q, p));
  for (const Circle& c : r.hole_circles) h = std::min(h, sd_circle(c, p));
  return std::max(d, -h);
}

// Pixel bounding box [x0, x1) x [y0, y1) of the filled parts, one pixel of margin for AA.
void region_bbox(const Region& r, int* x0, int* y0, int* x1, int* y1) {
  float lx = kBig, ly = kBig, hx = -kBig, hy = -kBig;
  auto add = [&](V2 p, float pad) {
    lx = std::min(lx, p.x - pad);
    ly = std::min(ly, p.y - pad);
    hx = std::max(hx, p.x + pad);
    hy = std::max(hy, p.y + pad);
  };
  for (const Poly& q : r.polys)
    for (V2 v : q) add(v, 0.f);
  for (const Circle& c : r.circles) add(c.c, c.r);
  for (const Segment& s : r.segments) {
    add(s.a, s.half_width);
    add(s.b, s.half_width);
  }
  *x0 = std::max(0, int(std::floor(lx)) - 1);
  *y0 = std::max(0, int(std::floor(ly)) - 1);
  *x1 = std::min(kSide, int(std::ceil(hx)) + 2);
  *y1 = std::min(kSide, int(std::ceil(hy)) + 2);
}

Poly transform(const Frame& f, std::initializer_list<V2> unit) {
  Poly p;
  p.reserve(unit.size());
  for (V2 u : unit) p.push_back(f(u));
  return p;
}
Poly box(const Frame& f, float hx, float hy) { return transform(f, {{-hx, -hy}, {hx, -hy}, {hx, hy}, {-hx, hy}}); }

float deg(float d) { return d * kPi / 180.f; }

// Float canvas [3][32][32] in 0..255 units.
struct Canvas {
  float px[3][kPixels];
  void composite(const Region& r, const Color& col, float shade, V2 shade_dir) {
    int x0, y0, x1, y1;
    region_bbox(r, &x0, &y0, &x1, &y1);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        const V2 p{float(x) + 0.5f, float(y) + 0.5f};
        const float a = std::clamp(0.5f - sd_region(r, p), 0.f, 1.f);
        if (a <= 0.f) continue;
        const float s = shade * ((p.x - 16.f) * shade_dir.x + (p.y - 16.f) * shade_dir.y) / 16.f;
        for (int c = 0; c < 3; ++c) {
          float& v = px[c][y * kSide + x];
          v = v * (1.f - a) + (col.c[c] + s) * a;
        }
      }
  }
  void add_noise(Rng& rng, float sigma) {
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < kPixels; ++k) px[c][k] += sigma * rng.normal();
  }
  void store(uint8_t* out) const {
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < kPixels; ++k) out[c * kPixels + k] = uint8_t(std::clamp(px[c][k], 0.f, 255.f) + 0.5f);
  }
};

Color random_color(Rng& rng) { return {{rng.range(0, 255), rng.range(0, 255), rng.range(0, 255)}}; }

float color_distance(const Color& a, const Color& b) {
  float s = 0;
  for (int c = 0; c < 3; ++c) s += (a.c[c] - b.c[c]) * (a.c[c] - b.c[c]);
  return std::sqrt(s);
}

// A colour at least `min_dist` from `bg` (rejection sampling, then the complement).
Color contrasting_color(Rng& rng, const Color& bg, float min_dist) {
  for (int t = 0; t < 16; ++t) {
    const Color c = random_color(rng);
    if (color_distance(c, bg) >= min_dist) return c;
  }
  return {{255.f - bg.c[0], 255.f - bg.c[1], 255.f - bg.c[2]}};
}

V2 random_dir(Rng& rng) {
  const float a = rng.range(0.f, 2.f * kPi);
  return {std::cos(a), std::sin(a)};
}

// Random colour with a linear gradient; returns its mean colour.
Color draw_background(Canvas& cv, Rng& rng) {
  const Color base = random_color(rng);
  const float g[3] = {rng.range(-40, 40), rng.range(-40, 40), rng.range(-40, 40)};
  const V2 d = random_dir(rng);
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) {
      const float t = ((float(x) + 0.5f - 16.f) * d.x + (float(y) + 0.5f - 16.f) * d.y) / 16.f;
      for (int c = 0; c < 3; ++c) cv.px[c][y * kSide + x] = base.c[c] + g[c] * t;
    }
  return base;
}

Frame random_frame(Rng& rng, float rot_lo_deg, float rot_hi_deg) {
  Frame f;
  f.centre = {16.f + rng.range(-4.5f, 4.5f), 16.f + rng.range(-4.5f, 4.5f)};
  f.scale = rng.range(6.5f, 11.5f);
  const float t = deg(rng.range(rot_lo_deg, rot_hi_deg));
  f.cos_t = std::cos(t);
  f.sin_t = std::sin(t);
  return f;
}

// The ten in-distribution classes.
void id_shape(int cls, Rng& rng, Region& r) {
  switch (cls) {
    case 0: {  // circle
      const Frame f = random_frame(rng, 0, 0);
      r.circles.push_back({f.centre, f.scale});
      break;
    }
    case 1: {  // square
      r.polys.push_back(box(random_frame(rng, -15, 15), 0.8f, 0.8f));
      break;
    }
    case 2: {  // equilateral triangle
      const Frame f = random_frame(rng, 0, 120);
      Poly p;
      for (int k = 0; k < 3; ++k) {
        const float a = deg(90.f + 120.f * float(k));
        p.push_back(f({1.1f * std::cos(a), 1.1f * std::sin(a)}));
      }
      r.polys.push_back(p);
      break;
    }
    case 3: {  // cross (plus)
      const Frame f = random_frame(rng, -15, 15);
      const float w = rng.range(0.25f, 0.35f);
      r.polys.push_back(box(f, 1.0f, w));
      r.polys.push_back(box(f, w, 1.0f));
      break;
    }
    case 4: {  // ring
      const Frame f = random_frame(rng, 0, 0);
      r.circles.push_back({f.centre, f.scale});
      r.hole_circles.push_back({f.centre, f.scale * rng.range(0.45f, 0.65f)});
      break;
    }
    case 5:    // horizontal bar
    case 6: {  // vertical bar
      const Frame f = random_frame(rng, -15, 15);
      const float w = rng.range(0.25f, 0.35f);
      r.polys.push_back(cls == 5 ? box(f, 1.1f, w) : box(f, w, 1.1f));
      break;
    }
    case 7: {  // diamond: a square at 45 +- 15 degrees
      r.polys.push_back(box(random_frame(rng, 30, 60), 0.8f, 0.8f));
      break;
    }
    case 8: {  // five-point star
      const Frame f = random_frame(rng, 0, 72);
      Poly p;
      for (int k = 0; k < 10; ++k) {
        const float a = deg(-90.f + 36.f * float(k)), rad = k % 2 == 0 ? 1.1f : 0.45f;
        p.push_back(f({rad * std::cos(a), rad * std::sin(a)}));
      }
      r.polys.push_back(p);
      break;
    }
    default: {  // 9: ellipse (24-gon)
      const Frame f = random_frame(rng, 0, 180);
      const float b = rng.range(0.45f, 0.6f);
      Poly p;
      for (int k = 0; k < 24; ++k) {
        const float a = 2.f * kPi * float(k) / 24.f;
        p.push_back(f({1.05f * std::cos(a), b * std::sin(a)}));
      }
      r.polys.push_back(p);
      break;
    }
  }
}

constexpr int kUnseenShapes = 5;

// Shapes that are not among the classes (near-OOD).
void unseen_shape(int kind, Rng& rng, Region& r) {
  switch (kind) {
    case 0: {  // heart: two lobes and a point
      const Frame f = random_frame(rng, -30, 30);
      r.circles.push_back({f({-0.45f, -0.3f}), 0.52f * f.scale});
      r.circles.push_back({f({0.45f, -0.3f}), 0.52f * f.scale});
      r.polys.push_back(transform(f, {{-0.93f, -0.1f}, {0.93f, -0.1f}, {0.f, 1.0f}}));
      break;
    }
    case 1: {  // crescent
      const Frame f = random_frame(rng, 0, 360);
      r.circles.push_back({f.centre, f.scale});
      r.hole_circles.push_back({f({0.45f, 0.f}), 0.85f * f.scale});
      break;
    }
    case 2: {  // arrow
      r.polys.push_back(transform(random_frame(rng, 0, 360), {{-1.f, -0.2f},
                                                               {0.15f, -0.2f},
                                                               {0.15f, -0.6f},
                                                               {1.05f, 0.f},
                                                               {0.15f, 0.6f},
                                                               {0.15f, 0.2f},
                                                               {-1.f, 0.2f}}));
      break;
    }
    case 3: {  // L-shape
      r.polys.push_back(transform(random_frame(rng, 0, 360), {{-0.7f, -1.f},
                                                               {-0.2f, -1.f},
                                                               {-0.2f, 0.5f},
                                                               {0.8f, 0.5f},
                                                               {0.8f, 1.f},
                                                               {-0.7f, 1.f}}));
      break;
    }
    default: {  // 4: hourglass / bow-tie
      r.polys.push_back(transform(random_frame(rng, 0, 180),
                                  {{-0.8f, -1.f}, {0.8f, -1.f}, {0.12f, 0.f}, {0.8f, 1.f}, {-0.8f, 1.f}, {-0.12f, 0.f}}));
      break;
    }
  }
}

// Background, one filled region (ID or unseen), shading and noise.
int64_t render_shape(bool unseen, int64_t index, Rng& rng, Canvas& cv) {
  const Color bg = draw_background(cv, rng);
  Region r;
  const int64_t label = unseen ? int64_t(rng.randint(kUnseenShapes)) : index % kSyntheticClasses;
  if (unseen) unseen_shape(int(label), rng, r);
  else id_shape(int(label), rng, r);
  const Color fg = contrasting_color(rng, bg, 90.f);
  const float shade = rng.range(-25.f, 25.f);
  cv.composite(r, fg, shade, random_dir(rng));
  cv.add_noise(rng, rng.range(3.f, 18.f));
  return label;
}

int64_t render_strokes(Rng& rng, Canvas& cv) {
  const Color bg = draw_background(cv, rng);
  const int strokes = 2 + rng.randint(4);
  Region r;
  for (int s = 0; s < strokes; ++s) {
    r.clear();
    const float hw = rng.range(0.5f, 1.25f);
    V2 p{rng.range(4.f, 28.f), rng.range(4.f, 28.f)};
    float heading = rng.range(0.f, 2.f * kPi);
    const int points = 2 + rng.randint(4);
    for (int k = 1; k < points; ++k) {
      heading += rng.range(-1.6f, 1.6f);
      const float len = rng.range(4.f, 10.f);
      const V2 q{std::clamp(p.x + len * std::cos(heading), 1.f, 31.f), std::clamp(p.y + len * std::sin(heading), 1.f, 31.f)};
      r.segments.push_back({p, q, hw});
      p = q;
    }
    cv.composite(r, contrasting_color(rng, bg, 90.f), 0.f, {1.f, 0.f});
  }
  cv.add_noise(rng, rng.range(3.f, 18.f));
  return strokes;
}

// Smooth value noise on a lattice of `cell` pixels (hash of the lattice point per seed).
float value_noise(uint64_t seed, float x, float y, float cell) {
  const float gx = x / cell, gy = y / cell;
  const int ix = int(std::floor(gx)), iy = int(std::floor(gy));
  const float fx = gx - float(ix), fy = gy - float(iy);
  auto lattice = [&](int a, int b) {
    return counter_uniform(seed, (uint64_t(uint32_t(a + 64)) << 32) | uint64_t(uint32_t(b + 64)));
  };
  const float sx = fx * fx * (3.f - 2.f * fx), sy = fy * fy * (3.f - 2.f * fy);
  const float top = lattice(ix, iy) * (1 - sx) + lattice(ix + 1, iy) * sx;
  const float bot = lattice(ix, iy + 1) * (1 - sx) + lattice(ix + 1, iy + 1) * sx;
  return top * (1 - sy) + bot * sy;
}

int64_t render_texture(Rng& rng, Canvas& cv) {
  const int type = rng.randint(4);
  float t[kPixels];
  switch (type) {
    case 0: {  // 1-2 sine gratings
      const int comps = 1 + rng.randint(2);
      V2 dir[2];
      float period[2], phase[2];
      for (int k = 0; k < comps; ++k) {
        dir[k] = random_dir(rng);
        period[k] = rng.range(3.f, 10.f);
        phase[k] = rng.range(0.f, 2.f * kPi);
      }
      for (int k = 0; k < kPixels; ++k) {
        const V2 p{float(k % kSide), float(k / kSide)};
        float s = 0;
        for (int j = 0; j < comps; ++j) s += std::sin(2.f * kPi * dot(p, dir[j]) / period[j] + phase[j]);
        t[k] = 0.5f + 0.5f * s / float(comps);
      }
      break;
    }
    case 1: {  // rotated checkerboard, softened edges
      const V2 u = random_dir(rng), v{-u.y, u.x};
      const float period = rng.range(3.f, 8.f);
      const V2 off{rng.range(0.f, 10.f), rng.range(0.f, 10.f)};
      for (int k = 0; k < kPixels; ++k) {
        const V2 p = V2{float(k % kSide), float(k / kSide)} + off;
        const float s = std::sin(kPi * dot(p, u) / period) * std::sin(kPi * dot(p, v) / period);
        t[k] = 0.5f + 0.5f * std::clamp(3.f * s, -1.f, 1.f);
      }
      break;
    }
    case 2: {  // value-noise fBm (Perlin-like), stretched to [0, 1]
      const uint64_t s = rng.next();
      const float cell = rng.range(5.f, 10.f);
      float lo = kBig, hi = -kBig;
      for (int k = 0; k < kPixels; ++k) {
        const float x = float(k % kSide), y = float(k / kSide);
        t[k] = value_noise(s, x, y, cell) + 0.5f * value_noise(s + 1, x, y, cell / 2) +
               0.25f * value_noise(s + 2, x, y, cell / 4);
        lo = std::min(lo, t[k]);
        hi = std::max(hi, t[k]);
      }
      for (int k = 0; k < kPixels; ++k) t[k] = (t[k] - lo) / std::max(hi - lo, 1e-3f);
      break;
    }
    default: {  // dot lattice
      const V2 u = random_dir(rng), v{-u.y, u.x};
      const float period = rng.range(4.f, 8.f), radius = period * rng.range(0.22f, 0.38f);
      const V2 off{rng.range(0.f, 10.f), rng.range(0.f, 10.f)};
      for (int k = 0; k < kPixels; ++k) {
        const V2 p = V2{float(k % kSide), float(k / kSide)} + off;
        const float a = dot(p, u) / period, b = dot(p, v) / period;
        const float da = (a - std::round(a)) * period, db = (b - std::round(b)) * period;
        t[k] = std::clamp(radius - std::sqrt(da * da + db * db) + 0.5f, 0.f, 1.f);
      }
      break;
    }
  }
  const Color a = random_color(rng), b = contrasting_color(rng, a, 60.f);
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < kPixels; ++k) cv.px[c][k] = a.c[c] + (b.c[c] - a.c[c]) * t[k];
  cv.add_noise(rng, rng.range(3.f, 18.f));
  return type;
}

int64_t render_noise(Rng& rng, Canvas& cv) {
  const bool gaussian = rng.uniform() < 0.5f, gray = rng.uniform() < 0.5f;
  float mean[3], spread[3];
  for (int c = 0; c < 3; ++c) {
    mean[c] = rng.range(60.f, 190.f);
    spread[c] = rng.range(25.f, 70.f);
  }
  for (int k = 0; k < kPixels; ++k) {
    float z[3];
    for (int c = 0; c < 3; ++c) z[c] = gaussian ? rng.normal() : 1.7320508f * (2.f * rng.uniform() - 1.f);
    for (int c = 0; c < 3; ++c) cv.px[c][k] = mean[gray ? 0 : c] + spread[gray ? 0 : c] * z[gray ? 0 : c];
  }
  return (gaussian ? 1 : 0) + (gray ? 2 : 0);
}

uint64_t kind_salt(SyntheticKind kind) {
  switch (kind) {
    case SyntheticKind::Shapes: return 0x5A17E5ull;
    case SyntheticKind::UnseenShapes: return 0x0B5E7Eull;
    case SyntheticKind::Strokes: return 0x57120Eull;
    case SyntheticKind::Textures: return 0x7E77E5ull;
    case SyntheticKind::Noise: return 0x9015Eull;
  }
  return 0;
}

}  // namespace

std::vector<std::string> synthetic_class_names() {
  return {"circle", "square", "triangle", "cross", "ring", "horizontal-bar", "vertical-bar", "diamond", "star",
          "ellipse"};
}

std::string synthetic_kind_name(SyntheticKind kind) {
  switch (kind) {
    case SyntheticKind::Shapes: return "shapes";
    case SyntheticKind::UnseenShapes: return "unseen-shapes";
    case SyntheticKind::Strokes: return "strokes";
    case SyntheticKind::Textures: return "textures";
    case SyntheticKind::Noise: return "noise";
  }
  return "?";
}

SyntheticKind parse_synthetic_kind(const std::string& name) {
  if (name == "id") return SyntheticKind::Shapes;
  for (SyntheticKind k : {SyntheticKind::Shapes, SyntheticKind::UnseenShapes, SyntheticKind::Strokes,
                          SyntheticKind::Textures, SyntheticKind::Noise})
    if (synthetic_kind_name(k) == name) return k;
  OODKIT_FAIL("unknown synthetic kind '", name, "' (known: shapes, unseen-shapes, strokes, textures, noise)");
}

int64_t render_synthetic(SyntheticKind kind, uint64_t seed, int64_t index, uint8_t* out) {
  OODKIT_CHECK(index >= 0, "render_synthetic: index must be >= 0, got ", index);
  Rng rng{counter_hash(seed ^ kind_salt(kind), uint64_t(index))};
  Canvas cv;
  int64_t label = 0;
  switch (kind) {
    case SyntheticKind::Shapes: label = render_shape(false, index, rng, cv); break;
    case SyntheticKind::UnseenShapes: label = render_shape(true, index, rng, cv); break;
    case SyntheticKind::Strokes: label = render_strokes(rng, cv); break;
    case SyntheticKind::Textures: label = render_texture(rng, cv); break;
    case SyntheticKind::Noise: label = render_noise(rng, cv); break;
  }
  cv.store(out);
  return label;
}

Dataset make_synthetic(SyntheticKind kind, int64_t count, uint64_t seed, int64_t first_index) {
  OODKIT_CHECK(count >= 0 && first_index >= 0, "make_synthetic: count and first_index must be >= 0, got ", count,
               " and ", first_index);
  Dataset ds;
  ds.name = kind == SyntheticKind::Shapes ? "synthetic-id" : "synthetic-ood-" + synthetic_kind_name(kind);
  ds.images = Tensor::empty({count, 3, kSide, kSide}, DType::U8);
  uint8_t* img = ds.images.data<uint8_t>();
  std::vector<int64_t> labels(static_cast<size_t>(count));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i)
    labels[size_t(i)] = render_synthetic(kind, seed, first_index + i, img + i * 3 * kPixels);
  if (kind == SyntheticKind::Shapes) {
    ds.labels = Tensor::from_vector<int64_t>(labels, {count});
    ds.num_classes = kSyntheticClasses;
    ds.class_names = synthetic_class_names();
  }
  return ds;
}

}  // namespace oodkit::data
