#include "run/patch_benchmark.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/image_folder.h"
#include "data/patches.h"
#include "framework/concat.h"
#include "framework/error.h"
#include "ood/localisation.h"
#include "ood/metrics.h"
#include "ood/percentile.h"
#include "run/eval_report.h"
#include "run/run_folder.h"

namespace oodkit::run {

namespace {

constexpr int64_t kGap = 4;

// Checks one Explainer's answer for `ds` and returns its maps on the CPU.
Tensor checked_maps(const Explanation& e, const data::Dataset& ds, const std::string& method) {
  const int64_t n = ds.size(), h = ds.images.size(2), w = ds.images.size(3);
  OODKIT_CHECK(int64_t(e.scores.size()) == n, "patch benchmark: method '", method, "' returned ", e.scores.size(),
               " scores for set '", ds.name, "' of ", n, " images");
  for (size_t i = 0; i < e.scores.size(); ++i)
    OODKIT_CHECK(std::isfinite(e.scores[i]), "patch benchmark: method '", method, "' scored image ", i, " of set '",
                 ds.name, "' ", e.scores[i]);
  OODKIT_CHECK(e.maps.defined() && e.maps.dtype() == DType::F32 && e.maps.shape() == (Shape{n, h, w}),
               "patch benchmark: method '", method, "' returned maps ",
               e.maps.defined() ? e.maps.describe() : "(none)", " for set '", ds.name, "'; expected float32 [", n,
               ", ", h, ", ", w, "]");
  return e.maps.cpu();
}

// Rows [0, k) of a tensor's first dimension, copied.
Tensor first_rows(const Tensor& t, int64_t k) { return t.narrow(0, std::min(k, t.size(0))).clone(); }

// A "hot" colour ramp for v in [0, 1]: black -> red -> yellow -> white.
void hot(float v, uint8_t* rgb) {
  v = std::min(1.f, std::max(0.f, v));
  const float c[3] = {3 * v, 3 * v - 1, 3 * v - 2};
  for (int i = 0; i < 3; ++i) rgb[i] = uint8_t(std::lround(255 * std::min(1.f, std::max(0.f, c[i]))));
}

nlohmann::ordered_json row_json(const PatchBenchmarkRow& r) {
  return {{"source", r.source},
          {"size", r.size},
          {"size_px", r.size_px},
          {"method", r.method},
          {"image_auroc", 100 * r.image_auroc},
          {"pointing", 100 * r.pointing},
          {"pointing_chance", 100 * r.pointing_chance},
          {"pointing_shuffled", 100 * r.pointing_shuffled},
          {"mass_share", 100 * r.mass_share},
          {"mass_share_chance", 100 * r.mass_share_chance},
          {"mass_share_shuffled", 100 * r.mass_share_shuffled},
          {"pixel_auroc", 100 * r.pixel_auroc},
          {"pixel_auroc_chance", 100 * r.pixel_auroc_chance},
          {"pixel_auroc_shuffled", 100 * r.pixel_auroc_shuffled},
          {"massless", 100 * r.massless},
          {"n_images", r.n_images}};
}

// The mean over the sources of each (size, method): rows with source "average".
std::vector<PatchBenchmarkRow> source_averages(const std::vector<PatchBenchmarkRow>& rows,
                                               const std::vector<int64_t>& sizes,
                                               const std::vector<std::string>& methods) {
  std::vector<PatchBenchmarkRow> out;
  for (int64_t size : sizes)
    for (const std::string& m : methods) {
      PatchBenchmarkRow a;
      a.source = "average";
      a.method = m;
      a.size = size;
      a.pixel_auroc_chance = 0;
      int64_t k = 0;
      for (const PatchBenchmarkRow& r : rows)
        if (r.size == size && r.method == m) {
          a.size_px = r.size_px;
          a.image_auroc += r.image_auroc;
          a.pointing += r.pointing;
          a.pointing_chance += r.pointing_chance;
          a.mass_share += r.mass_share;
          a.mass_share_chance += r.mass_share_chance;
          a.pixel_auroc += r.pixel_auroc;
          a.pixel_auroc_chance += r.pixel_auroc_chance;
          a.massless += r.massless;
          a.pointing_shuffled += r.pointing_shuffled;
          a.mass_share_shuffled += r.mass_share_shuffled;
          a.pixel_auroc_shuffled += r.pixel_auroc_shuffled;
          a.n_images += r.n_images;
          ++k;
        }
      if (k == 0) continue;
      for (double* v : {&a.image_auroc, &a.pointing, &a.pointing_chance, &a.mass_share, &a.mass_share_chance,
                        &a.pixel_auroc, &a.pixel_auroc_chance, &a.massless,
                        &a.pointing_shuffled, &a.mass_share_shuffled, &a.pixel_auroc_shuffled})
        *v /= double(k);
      out.push_back(a);
    }
  return out;
}

std::vector<std::string> unique_in_order(const std::vector<PatchBenchmarkRow>& rows, bool sources) {
  std::vector<std::string> out;
  for (const PatchBenchmarkRow& r : rows) {
    const std::string& v = sources ? r.source : r.method;
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

void write_png_atomic(const std::string& path, const Tensor& image) {
  const std::string tmp = path + ".tmp.png";
  data::write_png(tmp, image);
  OODKIT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "patch benchmark: cannot write '", path, "'");
}

}  // namespace

std::pair<double, double> grid_range(const Tensor& maps, double percentile) {
  OODKIT_CHECK(percentile >= 50 && percentile <= 100, "patch grid: the colour percentile must be in [50, 100], got ",
               percentile);
  return {ood::percentile(maps, 100 - percentile), ood::percentile(maps, percentile)};
}

Tensor patch_grid(const Tensor& images_in, const Tensor& masks_in, const std::vector<Tensor>& maps_in,
                  int64_t scale, double percentile) {
  const Tensor images = images_in.cpu(), masks = masks_in.cpu();
  const int64_t r_count = images.size(0), h = images.size(2), w = images.size(3);
  const int64_t th = h * scale, tw = w * scale, cols = 1 + int64_t(maps_in.size());
  const int64_t height = kGap + r_count * (th + kGap), width = kGap + cols * (tw + kGap);
  Tensor out = Tensor::full({3, height, width}, 255.0, DType::U8);
  uint8_t* o = out.data<uint8_t>();
  const uint8_t* img = images.data<uint8_t>();
  const uint8_t* mk = masks.data<uint8_t>();
  const auto put = [&](int64_t y, int64_t x, const uint8_t* rgb) {
    for (int c = 0; c < 3; ++c) o[(c * height + y) * width + x] = rgb[c];
  };
  // A magnified pixel is on the outline when it is inside the mask and a 4-neighbour (magnified)
  // pixel is outside it or outside the image.
  const auto in_mask = [&](int64_t i, int64_t py, int64_t px) {
    return py >= 0 && px >= 0 && py < th && px < tw && mk[(i * h + py / scale) * w + px / scale] != 0;
  };
  const auto outline = [&](int64_t i, int64_t py, int64_t px) {
    return in_mask(i, py, px) && !(in_mask(i, py - 1, px) && in_mask(i, py + 1, px) && in_mask(i, py, px - 1) &&
                                   in_mask(i, py, px + 1));
  };
  const uint8_t green[3] = {0, 255, 0};
  std::vector<Tensor> maps;
  std::vector<std::pair<double, double>> range;
  for (const Tensor& m : maps_in) {
    maps.push_back(m.cpu());
    range.push_back(grid_range(maps.back(), percentile));
  }
  for (int64_t i = 0; i < r_count; ++i) {
    const int64_t ty = kGap + i * (th + kGap);
    for (int64_t py = 0; py < th; ++py)
      for (int64_t px = 0; px < tw; ++px) {
        const int64_t q = (py / scale) * w + px / scale;
        const bool edge = outline(i, py, px);
        uint8_t in[3];
        for (int c = 0; c < 3; ++c) in[c] = img[(i * 3 + c) * h * w + q];
        put(ty + py, kGap + px, edge ? green : in);
        for (size_t m = 0; m < maps.size(); ++m) {
          const auto [lo, hi] = range[m];
          const float v = maps[m].data<float>()[i * h * w + q];
          uint8_t heat[3];
          hot(hi > lo ? float(std::min(1.0, std::max(0.0, (double(v) - lo) / (hi - lo)))) : 0.f, heat);
          put(ty + py, kGap + int64_t(m + 1) * (tw + kGap) + px, edge ? green : heat);
        }
      }
  }
  return out;
}

std::string patch_markdown(const PatchBenchmarkConfig& c, const std::vector<PatchBenchmarkRow>& rows) {
  std::ostringstream md;
  const int64_t n = rows.empty() ? 0 : rows.front().n_images;
  md << "# oodkit patch benchmark\n\n" << n << " " << c.id_test.name
     << " test images, each with one OOD patch pasted at a uniformly random position (seed " << c.seed
     << "). Image AUROC: clean images (positive) vs their patched copies, by the method's score (chance 50). "
        "Pointing: the map's maximum inside the patch (ties: the share of maximal pixels inside). Mass: the "
        "share of the map's positive mass inside the patch. Pixel AUROC: pixels inside vs outside the patch "
        "by map value. Beside each its chance level (pointing and mass: the patch's area fraction; pixel "
        "AUROC: 50) and its shuffled baseline (each map scored against other images' patches: what the "
        "method's positional habits alone achieve; a method localises when it beats both). All in %.\n";
  const auto table = [&](const std::string& source) {
    md << "\n## " << (source == "average" ? "average over the sources" : "patches from " + source) << "\n\n"
       << "| method | patch | image AUROC | pointing | chance | shuffled | mass in patch | chance | shuffled | "
          "pixel AUROC | chance | shuffled |\n"
       << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const PatchBenchmarkRow& r : rows)
      if (r.source == source)
        md << "| " << r.method << " | " << r.size_px << " px | " << pct(r.image_auroc) << " | " << pct(r.pointing)
           << " | " << pct(r.pointing_chance) << " | " << pct(r.pointing_shuffled) << " | " << pct(r.mass_share)
           << " | " << pct(r.mass_share_chance) << " | " << pct(r.mass_share_shuffled) << " | " << pct(r.pixel_auroc)
           << " | " << pct(r.pixel_auroc_chance) << " | " << pct(r.pixel_auroc_shuffled) << " |\n";
    // Maps with no positive mass score the area as their mass share: say which, and how many.
    std::string massless;
    for (const PatchBenchmarkRow& r : rows)
      if (r.source == source && r.massless > 0)
        massless += (massless.empty() ? "" : ", ") + r.method + " " + std::to_string(r.size_px) + " px " +
                    pct(r.massless) + "%";
    if (!massless.empty())
      md << "\nMaps with no positive mass (all <= 0; their mass share is the chance level by definition): "
         << massless << ".\n";
  };
  for (const std::string& s : unique_in_order(rows, true)) table(s);
  return md.str();
}

std::string patch_json(const PatchBenchmarkConfig& c, const std::vector<PatchBenchmarkRow>& rows) {
  nlohmann::ordered_json j;
  j["id"] = c.id_test.name;
  j["n_images"] = rows.empty() ? 0 : rows.front().n_images;
  j["seed"] = c.seed;
  j["sizes"] = c.sizes;
  j["sources"] = nlohmann::ordered_json::array();
  for (const data::Dataset& s : c.sources) j["sources"].push_back(s.name);
  j["methods"] = unique_in_order(rows, false);
  j["results"] = nlohmann::ordered_json::array();
  for (const PatchBenchmarkRow& r : rows) j["results"].push_back(row_json(r));
  return j.dump(2) + "\n";
}

std::string patch_csv(const std::vector<PatchBenchmarkRow>& rows) {
  std::ostringstream csv;
  csv << "source,size,size_px,method,image_auroc,pointing,pointing_chance,pointing_shuffled,mass_share,"
         "mass_share_chance,mass_share_shuffled,"
         "pixel_auroc,pixel_auroc_chance,pixel_auroc_shuffled,massless,n_images\n";
  for (const PatchBenchmarkRow& r : rows)
    csv << r.source << "," << r.size << "," << r.size_px << "," << r.method << "," << 100 * r.image_auroc << ","
        << 100 * r.pointing << "," << 100 * r.pointing_chance << "," << 100 * r.pointing_shuffled << ","
        << 100 * r.mass_share << "," << 100 * r.mass_share_chance << "," << 100 * r.mass_share_shuffled << ","
        << 100 * r.pixel_auroc << "," << 100 * r.pixel_auroc_chance << "," << 100 * r.pixel_auroc_shuffled << ","
        << 100 * r.massless << "," << r.n_images << "\n";
  return csv.str();
}

std::vector<PatchBenchmarkRow> run_patch_benchmark(const PatchBenchmarkConfig& c,
                                                   const std::vector<std::pair<std::string, Explainer>>& methods,
                                                   const std::string& out_dir) {
  // Every check before any work.
  const data::Dataset& full = c.id_test;
  OODKIT_CHECK(full.images.defined() && full.size() > 0, "patch benchmark: the ID test set '", full.name,
               "' is empty");
  OODKIT_CHECK(full.images.dtype() == DType::U8 && full.images.ndim() == 4 && full.images.size(1) == 3,
               "patch benchmark: the ID test set '", full.name, "' must hold uint8 [N, 3, H, W] images, got ",
               full.images.describe());
  OODKIT_CHECK(c.limit != 0, "patch benchmark: limit 0 leaves no ID image");
  OODKIT_CHECK(!c.sources.empty(), "patch benchmark: no patch source");
  OODKIT_CHECK(!c.sizes.empty(), "patch benchmark: no patch size");
  OODKIT_CHECK(!methods.empty(), "patch benchmark: no method");
  OODKIT_CHECK(c.grid_images >= 0 && c.grid_scale >= 1, "patch benchmark: grid_images must be >= 0 and grid_scale "
               ">= 1, got ", c.grid_images, " and ", c.grid_scale);
  OODKIT_CHECK(c.grid_percentile >= 50 && c.grid_percentile <= 100, "patch benchmark: grid_percentile must be in "
               "[50, 100], got ", c.grid_percentile);
  std::set<std::string> seen;
  for (const auto& [name, fn] : methods) {
    OODKIT_CHECK(!name.empty() && name != "average", "patch benchmark: invalid method name '", name, "'");
    OODKIT_CHECK(seen.insert(name).second, "patch benchmark: method '", name, "' named twice");
    OODKIT_CHECK(bool(fn), "patch benchmark: method '", name, "' has no explainer");
  }
  seen.clear();
  for (const data::Dataset& s : c.sources) {
    OODKIT_CHECK(s.name != full.name, "patch benchmark: patch source '", s.name, "' is the ID set itself (its "
                 "patches would not be OOD)");
    OODKIT_CHECK(s.name != "average", "patch benchmark: a patch source may not be named 'average'");
    OODKIT_CHECK(seen.insert(s.name).second, "patch benchmark: patch source '", s.name, "' named twice");
    OODKIT_CHECK(s.images.defined() && s.size() > 0, "patch benchmark: patch source '", s.name, "' is empty");
    OODKIT_CHECK(s.images.dtype() == DType::U8 && s.images.ndim() == 4 && s.images.size(1) == 3,
                 "patch benchmark: patch source '", s.name, "' must hold uint8 [N, 3, H, W] images, got ",
                 s.images.describe());
  }
  const int64_t h = full.images.size(2), w = full.images.size(3), side = std::min(h, w);
  std::vector<int64_t> px;
  for (int64_t s : c.sizes) {
    OODKIT_CHECK(s > 0, "patch benchmark: patch sizes must be positive, got ", s);
    px.push_back(data::scaled_patch_size(s, side));
    OODKIT_CHECK(px.back() < side, "patch benchmark: patch size ", s, " (", px.back(), " px at ", h, "x", w,
                 ") does not leave any of the image outside the patch");
  }
  if (!out_dir.empty()) make_output_dir(out_dir, "out_dir");

  data::Dataset id = full;
  if (c.limit > 0 && c.limit < full.size()) {
    id.images = full.images.narrow(0, c.limit).clone();
    if (full.labels.defined()) id.labels = full.labels.narrow(0, c.limit).clone();
    if (!full.files.empty()) id.files.assign(full.files.begin(), full.files.begin() + c.limit);
  }
  std::vector<std::vector<double>> clean_scores;
  for (const auto& [name, fn] : methods) {
    const Explanation e = fn(id);
    checked_maps(e, id, name);
    clean_scores.push_back(e.scores);
  }
  std::vector<PatchBenchmarkRow> rows;
  std::vector<Tensor> grid_images, grid_masks;
  std::vector<std::vector<Tensor>> grid_maps(methods.size());
  std::ostringstream records;
  records << "source,size_px,row,source_row,source_y,source_x,y,x\n";
  for (const data::Dataset& source : c.sources)
    for (size_t k = 0; k < c.sizes.size(); ++k) {
      const data::PatchedSet ps = data::paste_patches(id, source, px[k], c.seed);
      for (size_t i = 0; i < ps.records.size(); ++i) {
        const data::PatchRecord& r = ps.records[i];
        records << r.source << "," << r.size << "," << i << "," << r.source_row << "," << r.source_y << ","
                << r.source_x << "," << r.y << "," << r.x << "\n";
      }
      grid_images.push_back(first_rows(ps.data.images, c.grid_images));
      grid_masks.push_back(first_rows(ps.masks, c.grid_images));
      for (size_t m = 0; m < methods.size(); ++m) {
        const std::string& name = methods[m].first;
        const Explanation e = methods[m].second(ps.data);
        const Tensor maps = checked_maps(e, ps.data, name);
        const ood::LocalisationSummary loc = ood::localise(maps, ps.masks, "method '" + name + "' on " + ps.data.name);
        PatchBenchmarkRow row;
        row.source = source.name;
        row.method = name;
        row.size = c.sizes[k];
        row.size_px = px[k];
        row.image_auroc = ood::compute_ood_metrics(clean_scores[m], e.scores).auroc;
        row.pointing = loc.mean.pointing;
        row.pointing_chance = loc.pointing_chance;
        row.mass_share = loc.mean.mass_share;
        row.mass_share_chance = loc.mass_share_chance;
        row.pixel_auroc = loc.mean.pixel_auroc;
        row.pixel_auroc_chance = loc.pixel_auroc_chance;
        row.massless = loc.mean.massless;
        row.pointing_shuffled = loc.shuffled.pointing;
        row.mass_share_shuffled = loc.shuffled.mass_share;
        row.pixel_auroc_shuffled = loc.shuffled.pixel_auroc;
        row.n_images = loc.n_images;
        rows.push_back(row);
        grid_maps[m].push_back(first_rows(maps, c.grid_images));
      }
    }
  std::vector<std::string> names;
  for (const auto& m : methods) names.push_back(m.first);
  if (c.sources.size() > 1) {
    const std::vector<PatchBenchmarkRow> avg = source_averages(rows, c.sizes, names);
    rows.insert(rows.end(), avg.begin(), avg.end());
  }
  if (out_dir.empty()) return rows;

  write_text_file(out_dir + "/patches.md", patch_markdown(c, rows));
  write_text_file(out_dir + "/patches.json", patch_json(c, rows));
  write_text_file(out_dir + "/patches.csv", patch_csv(rows));
  write_text_file(out_dir + "/patches_records.csv", records.str());
  if (c.grid_images > 0) {
    std::vector<Tensor> maps;
    for (const auto& per_set : grid_maps) maps.push_back(concat_rows(per_set));
    write_png_atomic(out_dir + "/patches.png", patch_grid(concat_rows(grid_images), concat_rows(grid_masks), maps,
                                                          c.grid_scale, c.grid_percentile));
    std::ostringstream g;
    g << "# patches.png\n\nEach row: the patched image (patch outlined in green), then one map per method in the hot "
         "ramp on a robust scale: black = percentile "
      << 100 - c.grid_percentile << " of the method's map values over the grid, white = percentile "
      << c.grid_percentile << " (numpy 'linear'; values beyond are clamped, so one outlier cannot darken a column); one scale "
         "per method across all rows.\n\nColumns: image";
    for (const std::string& m : names) g << " | " << m;
    g << "\n\n| method | black (lo) | white (hi) |\n|---|---|---|\n";
    for (size_t m = 0; m < names.size(); ++m) {
      const auto [lo, hi] = grid_range(maps[m], c.grid_percentile);
      g << "| " << names[m] << " | " << lo << " | " << hi << " |\n";
    }
    g << "\n\n| row | source | patch | image |\n|---|---|---|---|\n";
    int64_t row = 0;
    for (const data::Dataset& source : c.sources)
      for (size_t k = 0; k < c.sizes.size(); ++k)
        for (int64_t i = 0; i < std::min(c.grid_images, id.size()); ++i)
          g << "| " << row++ << " | " << source.name << " | " << px[k] << " px | " << i << " |\n";
    write_text_file(out_dir + "/patches_grid.md", g.str());
  }
  return rows;
}

}  // namespace oodkit::run
