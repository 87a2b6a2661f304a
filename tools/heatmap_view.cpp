// `oodkit heatmap show` (a picture grid) and `oodkit heatmap lighting` (brightness and contrast
// changes of ID test images: how many each detector flags at its 95%-TPR threshold).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/image_folder.h"
#include "data/loader.h"
#include "data/registry.h"
#include "framework/concat.h"
#include "framework/safetensors.h"
#include "ood/detectors.h"
#include "ood/metrics.h"
#include "ood/percentile.h"
#include "ood/protocol.h"
#include "tools/heatmap.h"
#include "tools/heatmap_common.h"
#include "tools/report.h"

namespace oodkit::tools {

namespace {

// A "hot" colour ramp for v in [0, 1]: black -> red -> yellow -> white.
void hot(float v, uint8_t* rgb) {
  v = std::min(1.f, std::max(0.f, v));
  const float c[3] = {3 * v, 3 * v - 1, 3 * v - 2};
  for (int i = 0; i < 3; ++i) rgb[i] = uint8_t(std::lround(255 * std::min(1.f, std::max(0.f, c[i]))));
}

constexpr int kPerRow = 4;  // image triples per grid row
constexpr int kGap = 4;     // pixels between triples and between sets

// Grid of triples (input | max_c |h| / vmax in the hot ramp | 50/50 overlay), `scale`x magnified,
// kPerRow triples per row, one block per set, blocks stacked with a grey band between them.
Tensor render_grid(const std::vector<Tensor>& images, const std::vector<Tensor>& heatmaps, int64_t scale,
                   double vmax) {
  const int64_t s = images.front().size(2), t = s * scale;
  const int64_t triple_w = 3 * t, width = kPerRow * triple_w + (kPerRow + 1) * kGap;
  std::vector<int64_t> block_rows;
  int64_t height = kGap;
  for (const Tensor& im : images) {
    block_rows.push_back((im.size(0) + kPerRow - 1) / kPerRow);
    height += block_rows.back() * (t + kGap) + 2 * kGap;
  }
  Tensor out = Tensor::full({3, height, width}, 255.0, DType::U8);
  uint8_t* o = out.data<uint8_t>();
  const auto put = [&](int64_t y, int64_t x, const uint8_t* rgb) {
    for (int c = 0; c < 3; ++c) o[(c * height + y) * width + x] = rgb[c];
  };
  int64_t y0 = kGap;
  for (size_t b = 0; b < images.size(); ++b) {
    const uint8_t* img = images[b].data<uint8_t>();
    const float* h = heatmaps[b].data<float>();
    for (int64_t i = 0; i < images[b].size(0); ++i) {
      const int64_t ty = y0 + (i / kPerRow) * (t + kGap), tx = kGap + (i % kPerRow) * (triple_w + kGap);
      for (int64_t py = 0; py < t; ++py)
        for (int64_t px = 0; px < t; ++px) {
          const int64_t q = (py / scale) * s + px / scale;
          uint8_t in[3], heat[3], mix[3];
          float m = 0;
          for (int c = 0; c < 3; ++c) {
            in[c] = img[(i * 3 + c) * s * s + q];
            m = std::max(m, std::fabs(h[(i * 3 + c) * s * s + q]));
          }
          hot(float(m / vmax), heat);
          for (int c = 0; c < 3; ++c) mix[c] = uint8_t((int(in[c]) + int(heat[c]) + 1) / 2);
          put(ty + py, tx + px, in);
          put(ty + py, tx + t + px, heat);
          put(ty + py, tx + 2 * t + px, mix);
        }
    }
    y0 += block_rows[b] * (t + kGap) + kGap;
    const uint8_t grey[3] = {160, 160, 160};
    if (b + 1 < images.size())
      for (int64_t y = y0 - kGap / 2; y < y0; ++y)
        for (int64_t x = 0; x < width; ++x) put(y, x, grey);
    y0 += kGap;
  }
  return out;
}

// The score at or above which `tpr` of the ID scores lie (the detection threshold at that TPR).
double threshold_at_tpr(std::vector<double> id, double tpr) {
  std::sort(id.begin(), id.end());
  const size_t k = size_t(std::floor((1.0 - tpr) * double(id.size())));
  return id[std::min(k, id.size() - 1)];
}

// Per-image, per-channel contrast change around the image mean, or a brightness factor.
Tensor transform_images(const Tensor& u8, double brightness, double contrast) {
  Tensor out = Tensor::empty(u8.shape(), DType::U8);
  const int64_t n = u8.size(0) * u8.size(1), hw = u8.size(2) * u8.size(3);
  const uint8_t* p = u8.data<uint8_t>();
  uint8_t* q = out.data<uint8_t>();
  for (int64_t r = 0; r < n; ++r) {
    double mean = 0;
    for (int64_t k = 0; k < hw; ++k) mean += p[r * hw + k];
    mean /= double(hw);
    for (int64_t k = 0; k < hw; ++k) {
      const double x = p[r * hw + k];
      const double v = brightness * (mean + contrast * (x - mean));
      q[r * hw + k] = uint8_t(std::lround(std::min(255.0, std::max(0.0, v))));
    }
  }
  return out;
}

}  // namespace

namespace {

// max over channels of |h|: [N, C, H, W] -> float32 [N, H, W] on the CPU (what heatmap_score
// averages, and what the pictures show).
Tensor channel_max_abs(const Tensor& heatmaps) {
  const Tensor h = heatmaps.cpu().to(DType::F32);
  const int64_t n = h.size(0), c = h.size(1), hw = h.size(2) * h.size(3);
  Tensor out = Tensor::zeros({n, h.size(2), h.size(3)}, DType::F32);
  const float* p = h.data<float>();
  float* q = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < hw; ++k) q[i * hw + k] = std::max(q[i * hw + k], std::fabs(p[(i * c + ch) * hw + k]));
  return out;
}

// The ID reference of a decoder's pictures: its held-out ID training images (the rows `heatmap fit`
// kept out of decoder training, as `oodkit eval --heldout` with the same split seed), or, for a
// decoder trained without any, the first 1000 ID training images (which it saw: flagged in `what`).
struct IdReference {
  double threshold = 0;  // ood::id_threshold of their heatmap scores: 95% of them called ID
  double vmax = 0;       // 99th percentile of their max_c |h| pixels: the top of the colour scale
  std::string what;      // "99th percentile of 1000 held-out cifar10 training images"
};

IdReference id_reference(const HeatmapSetup& hs, Device device) {
  const ood::HeatmapModelInfo& info = hs.model->info();
  data::LoadOptions lo = base_load_options();
  lo.split = "train";
  const data::Dataset train = data::load_dataset(info.id_dataset, "", lo);
  OODKIT_CHECK(train.labels.defined() && info.heldout < train.size(), "heatmap show: the decoder's ID set '",
               info.id_dataset, "' has ", train.size(), " training images, fewer than its --heldout ", info.heldout);
  std::vector<int64_t> rows;
  std::string what;
  if (info.heldout > 0) {
    rows = data::holdout_split(train.labels, double(info.heldout) / double(train.size()), info.heldout_seed,
                               /*stratified=*/true).val;
    what = std::to_string(rows.size()) + " held-out " + info.id_dataset + " training images";
  } else {
    rows = first_rows(train.size(), 1000);
    what = std::to_string(rows.size()) + " " + info.id_dataset + " training images (the decoder saw them)";
    std::fprintf(stderr, "heatmap show: note: the decoder was trained without held-out images; the colour scale and "
                         "the ID/OOD threshold come from %s\n", what.c_str());
  }
  const ClassifierSetup& cs = hs.classifier;
  const ood::Features f =
      run::extract(*cs.lc.model, train, rows, cs.norm, info.id_dataset + ":heldout", {device, 256}).features;
  const Tensor h = hs.model->heatmaps(f.z, f.logits);
  IdReference ref;
  ref.threshold = ood::id_threshold(ood::to_doubles(ood::heatmap_score(h)));
  ref.vmax = ood::percentile(channel_max_abs(h).reshape({-1}), 99.0);
  if (!(ref.vmax > 0)) ref.vmax = 1e-6;  // a decoder that outputs exact zeros on ID: any heat shows
  ref.what = "99th percentile of " + what;
  return ref;
}
}  // namespace

int run_heatmap_show(const HeatmapShowOptions& o) {
  OODKIT_CHECK(o.limit > 0 && o.scale > 0, "heatmap show: --limit and --scale must be positive");
  HeatmapSetup hs = setup_heatmap(o.heatmap, o.checkpoint, o.device);
  const IdReference ref = id_reference(hs, o.device);
  std::vector<Tensor> images, heatmaps, maps;
  std::vector<double> scores;
  std::vector<int64_t> set_index;
  nlohmann::json set_names = nlohmann::json::array();
  std::ostringstream md;
  md << "# " << o.out << "\n\nDecoder " << hs.decoder_path << ". Each image: input | max over channels of |h| "
     << "(black 0 = looks ID, red, yellow, white " << ref.vmax << " and above: the " << ref.what << ") | overlay. "
     << "An image is called ID when its heatmap score is >= " << ref.threshold << " (95% of the same images).\n\n"
     << "| set | image | heatmap score | decision |\n|---|---|---|---|\n";
  for (const std::string& spec : split_list(o.data)) {
    const data::Dataset ds = load_named(spec, hs.classifier.image_size, o.limit);
    note_skipped("heatmap show", ds, spec);
    const ood::Features f = run::extract(*hs.classifier.lc.model, ds, first_rows(ds.size()), hs.classifier.norm, spec, {o.device, 256}).features;
    const Tensor h = hs.model->heatmaps(f.z, f.logits).cpu();
    const std::vector<double> sc = ood::to_doubles(ood::heatmap_score(h));
    for (size_t i = 0; i < sc.size(); ++i)
      md << "| " << spec << " | " << i << " | " << sc[i] << " | " << (sc[i] >= ref.threshold ? "ID" : "OOD") << " |\n";
    scores.insert(scores.end(), sc.begin(), sc.end());
    set_index.insert(set_index.end(), sc.size(), int64_t(set_names.size()));
    set_names.push_back(spec);
    images.push_back(ds.images);
    heatmaps.push_back(h);
    maps.push_back(channel_max_abs(h));
  }
  OODKIT_CHECK(!images.empty(), "heatmap show: --data names no set");
  // The arrays behind the picture (tools/picture_grid.py's layout), then the labelled picture;
  // without the script's Python, the unlabelled grid of render_grid on the same colour scale.
  const std::string arrays = o.out + ".safetensors";
  save_safetensors(arrays,
                   {{"images", concat_rows(images)},
                    {"map/heatmap", concat_rows(maps)},
                    {"score/heatmap", Tensor::from_vector(scores, {int64_t(scores.size())})},
                    {"set", Tensor::from_vector(set_index, {int64_t(set_index.size())})}},
                   {{"sets", set_names.dump()},
                    {"title", "heatmap show: " + hs.decoder_path},
                    {"vmax/heatmap", nlohmann::json(ref.vmax).dump()},
                    {"scale_note/heatmap", ref.what},
                    {"threshold/heatmap", nlohmann::json(ref.threshold).dump()},
                    {"overlay", "1"}});
  const bool labelled = draw_picture_grid(arrays, o.out);
  if (!labelled) {
    const Tensor grid = render_grid(images, heatmaps, o.scale, ref.vmax);
    const std::string tmp = o.out + ".tmp.png";
    data::write_png(tmp, grid);
    OODKIT_CHECK(std::rename(tmp.c_str(), o.out.c_str()) == 0, "cannot write '", o.out, "'");
    std::fprintf(stderr, "heatmap show: note: %s has no labels (see the warning above); scores are in %s.md\n",
                 o.out.c_str(), o.out.c_str());
  }
  write_text_file(o.out + ".md", md.str());
  std::printf("wrote %s (%s), %s.md (scores, decisions) and %s\n", o.out.c_str(),
              labelled ? "labelled" : "unlabelled", o.out.c_str(), arrays.c_str());
  // Files --skip-unreadable left out: listed in <out>.skipped.txt (an earlier list removed).
  write_skipped_list("heatmap show", o.out + ".skipped.txt");
  return 0;
}

int run_heatmap_lighting(const HeatmapLightingOptions& o) {
  HeatmapSetup hs = setup_heatmap(o.heatmap, o.checkpoint, o.device);
  const ClassifierSetup& cs = hs.classifier;
  data::LoadOptions lo = base_load_options();
  lo.limit = o.limit;
  const data::Dataset test = data::load_dataset(hs.model->info().id_dataset, "", lo);
  note_skipped("heatmap lighting", test, hs.model->info().id_dataset);
  struct Change {
    std::string name;
    double brightness, contrast;
  };
  std::vector<Change> changes{{"none", 1.0, 1.0}};
  for (double b : parse_doubles(o.brightness, "--brightness")) {
    OODKIT_CHECK(b > 0, "heatmap lighting: --brightness factors must be positive, got ", b);
    changes.push_back({"brightness x" + std::to_string(b).substr(0, 4), b, 1.0});
  }
  for (double c : parse_doubles(o.contrast, "--contrast")) {
    OODKIT_CHECK(c >= 0, "heatmap lighting: --contrast factors must be >= 0, got ", c);
    changes.push_back({"contrast x" + std::to_string(c).substr(0, 4), 1.0, c});
  }
  // Detectors that need no fitting, beside the heatmap.
  const std::vector<std::string> others{"msp", "maxlogit", "energy", "nap", "fs"};
  std::vector<std::string> names{"heatmap"};
  names.insert(names.end(), others.begin(), others.end());
  const auto scores_of = [&](const ood::Features& f) {
    std::vector<std::vector<double>> s{heatmap_scores(*hs.model, f)};
    for (const std::string& n : others) {
      std::unique_ptr<ood::Detector> d = ood::make_detector(n);
      d->configure(d->defaults());
      s.push_back(ood::to_doubles(d->score(f)));
    }
    return s;
  };
  std::vector<double> thresholds;
  nlohmann::ordered_json j;
  j["decoder"] = hs.decoder_path;
  j["n_images"] = test.size();
  std::ostringstream md;
  md << "# Lighting changes on " << test.size() << " " << hs.model->info().id_dataset
     << " test images\n\nPercentage of images flagged as OOD at each detector's 95%-TPR threshold (set on the "
        "unchanged images). Brightness: x -> min(255, b x); contrast: x -> m + c (x - m), m the image's channel "
        "mean.\n\n| change |";
  for (const std::string& n : names) md << " " << n << " |";
  md << "\n|---|";
  for (size_t i = 0; i < names.size(); ++i) md << "---|";
  md << "\n";
  for (const Change& ch : changes) {
    data::Dataset d = test;
    d.images = transform_images(test.images, ch.brightness, ch.contrast);
    const ood::Features f = run::extract(*cs.lc.model, d, first_rows(d.size()), cs.norm, "(" + ch.name + ")", {o.device, 256}).features;
    const std::vector<std::vector<double>> s = scores_of(f);
    if (thresholds.empty())
      for (const auto& v : s) thresholds.push_back(threshold_at_tpr(v, 0.95));
    md << "| " << ch.name << " |";
    for (size_t m = 0; m < names.size(); ++m) {
      int64_t flagged = 0;
      for (double v : s[m]) flagged += v < thresholds[m];
      const double pct = 100.0 * double(flagged) / double(s[m].size());
      char buf[32];
      std::snprintf(buf, sizeof(buf), " %.2f |", pct);
      md << buf;
      j["flagged_percent"][ch.name][names[m]] = pct;
    }
    md << "\n";
  }
  std::printf("%s", md.str().c_str());
  if (!o.out.empty()) {
    make_output_dir(o.out, "--out");
    write_text_file(o.out + "/lighting.md", md.str());
    write_text_file(o.out + "/lighting.json", j.dump(2) + "\n");
    std::printf("wrote %s/lighting.{md,json}\n", o.out.c_str());
  }
  // Files --skip-unreadable left out: listed in <out>/skipped_images.txt, or on stderr without --out.
  write_skipped_list("heatmap lighting", o.out.empty() ? "" : o.out + "/skipped_images.txt");
  return 0;
}

void add_heatmap_show_command(CLI::App& heatmap, CommandList& commands) {
  const auto opts = std::make_shared<HeatmapShowOptions>();
  HeatmapShowOptions& hs = *opts;
  Command c;
  auto* hshow_cmd = c.app = heatmap.add_subcommand("show", "Picture grid: input, |heatmap|, overlay (PNG)");
  hshow_cmd->add_option("--heatmap", hs.heatmap, "folder of `oodkit heatmap fit` (or its decoder file)")->required();
  hshow_cmd->add_option("--checkpoint", hs.checkpoint, "classifier (default: the one the decoder records)");
  hshow_cmd->add_option("--data", hs.data, "comma-separated sets, one block each")->capture_default_str();
  hshow_cmd->add_option("--limit", hs.limit, "images per set")->capture_default_str()->check(positive_count());
  add_image_fit_option(hshow_cmd);
  add_skip_unreadable_option(hshow_cmd);
  hshow_cmd->add_option("--scale", hs.scale, "tile magnification")->capture_default_str()->check(positive_count());
  add_device_option(hshow_cmd, c);
  hshow_cmd->add_option("--out", hs.out, "PNG file (scores go to <out>.md)")->capture_default_str();
  c.run = [opts](Device device) {
    opts->device = device;
    return run_heatmap_show(*opts);
  };
  commands.push_back(std::move(c));
}

void add_heatmap_lighting_command(CLI::App& heatmap, CommandList& commands) {
  const auto opts = std::make_shared<HeatmapLightingOptions>();
  HeatmapLightingOptions& hl = *opts;
  Command c;
  auto* hlight_cmd = c.app = heatmap.add_subcommand(
      "lighting", "Brightness/contrast changes of ID test images: % flagged at the 95%-TPR threshold");
  hlight_cmd->add_option("--heatmap", hl.heatmap, "folder of `oodkit heatmap fit`")->required();
  hlight_cmd->add_option("--checkpoint", hl.checkpoint, "classifier (default: the one the decoder records)");
  hlight_cmd->add_option("--limit", hl.limit, "ID test images (-1: all)")->capture_default_str();
  hlight_cmd->add_option("--brightness", hl.brightness, "brightness factors")->capture_default_str();
  hlight_cmd->add_option("--contrast", hl.contrast, "contrast factors")->capture_default_str();
  add_skip_unreadable_option(hlight_cmd);
  add_device_option(hlight_cmd, c);
  hlight_cmd->add_option("--out", hl.out, "folder for lighting.{md,json}");
  c.run = [opts](Device device) {
    opts->device = device;
    return run_heatmap_lighting(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
