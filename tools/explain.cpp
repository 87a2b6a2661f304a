// `oodkit explain`: where each detector finds an image OOD. Loads the classifier and the detectors
// saved by `oodkit eval --out` (no refit, as `oodkit score`), then for the first --limit images of
// --data writes to --out:
//   maps.safetensors  "maps/<method>" float32 [N, H, W] (input resolution, higher = looks OOD),
//                     "scores/<method>" float64 [N] (the detector's score, higher = more ID, equal
//                     to `oodkit score`'s), "labels" int64 [N] (when the set has labels),
//                     "predictions" int64 [N], "images" uint8 [N, 3, H, W]
//   explain.png       the labelled grid (run/explain_picture.h)
//   explain.json      provenance, the inputs, and per method its map kind and colour scale
// With --benchmark patches, the pasted-OOD-patch localisation benchmark (run/patch_benchmark.h) on
// the first --limit images of --data instead: its patches.md/json/csv/png, and explain.json.
// The maps are defined in docs/methods.md ("Explanations"); run/explain.h makes them.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "data/image_folder.h"
#include "framework/safetensors.h"
#include "ood/heatmap.h"
#include "ood/scores.h"
#include "run/explain.h"
#include "data/patches.h"
#include "run/explain_picture.h"
#include "run/patch_benchmark.h"
#include "run/extract.h"
#include "run/plan.h"
#include "run/provenance.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/protocol_file.h"

namespace oodkit::tools {

namespace {

struct ExplainOptions {
  std::string detectors;  // the detectors/ folder written by `oodkit eval --out`
  std::string checkpoint; // "" = the one recorded in protocol.json
  std::string data;       // dataset name[:split] or folder:<path>
  std::string methods;    // "" = every saved method that has a map
  int64_t limit = 8;
  int64_t batch = 256;
  int zoom = 3;
  Device device = Device::cpu();
  std::string out;        // a folder
  // --benchmark patches (run/patch_benchmark.h): --data is the clean ID test set, --limit its rows.
  std::string benchmark;  // "" or "patches"
  std::string sources;    // "" = data::default_patch_sources(the ID set)
  std::string sizes = "8,12,16";
  uint64_t seed = 0;
  int64_t grid_images = 2;
  double colour_percentile = 99;  // explain.png's / patches.png's colour scale per method
};

// "8,12,16" -> the sizes (each a whole number >= 1; an Error naming --sizes otherwise).
std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> sizes;
  for (const std::string& item : split_list(text)) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    OODKIT_CHECK(used == item.size() && v >= 1, "--sizes '", text, "': '", item, "' is not a whole number >= 1");
    sizes.push_back(v);
  }
  OODKIT_CHECK(!sizes.empty(), "--sizes '", text, "' names no size");
  return sizes;
}

// --benchmark patches: every source loaded (and checked) before the benchmark runs; the benchmark's
// own checks (sizes that fit, source names) also come before any method runs.
int run_patches(const ExplainOptions& o, const SavedProtocol& proto, const data::Dataset& id,
                const std::vector<int64_t>& sizes, const std::vector<std::pair<std::string, run::Explainer>>& methods,
                const std::string& checkpoint) {
  run::PatchBenchmarkConfig config;
  config.id_test = id;
  config.sizes = sizes;
  config.seed = o.seed;
  config.grid_images = o.grid_images;
  config.grid_scale = o.zoom;
  config.grid_percentile = o.colour_percentile;
  const std::string id_name = proto.id;
  const std::vector<std::string> names =
      o.sources.empty() ? data::default_patch_sources(id_name) : split_list(o.sources);
  OODKIT_CHECK(!names.empty(), "--sources '", o.sources, "' names no set");
  for (const std::string& s : names)
    config.sources.push_back(
        run::load_for("--sources", s, [&] { return data::load_patch_source(s, proto.image_size, -1); }));
  // run_patch_benchmark creates --out itself, after its own checks (a refusal leaves nothing).
  const std::vector<run::PatchBenchmarkRow> rows = run::run_patch_benchmark(config, methods, o.out);
  nlohmann::ordered_json j;
  j["provenance"] = run::provenance();
  j["benchmark"] = "patches";
  j["detectors"] = o.detectors;
  j["checkpoint"] = checkpoint;
  j["data"] = o.data;
  j["images"] = id.size();
  j["sources"] = names;
  j["sizes"] = sizes;
  j["seed"] = o.seed;
  nlohmann::ordered_json ms = nlohmann::ordered_json::array();
  for (const auto& [m, e] : methods) ms.push_back(m);
  j["methods"] = ms;
  write_text_file(o.out + "/explain.json", j.dump(2) + "\n");
  std::printf("patch benchmark: %lld ID images of %s, %zu sources x %zu sizes, %zu methods (%zu rows) -> "
              "%s/{patches.md, patches.json, patches.csv, patches.png, explain.json}\n",
              (long long)id.size(), o.data.c_str(), names.size(), sizes.size(), methods.size(), rows.size(),
              o.out.c_str());
  return 0;
}

int run_explain(const ExplainOptions& o, const CLI::App& cmd) {
  // ---- the plan: options, the saved protocol, the methods, the output folder, the classifier,
  // every method's saved state and the images, all checked before any image is explained.
  OODKIT_CHECK(o.limit >= 1, "--limit: must be at least 1, got ", o.limit);
  const bool bench = !o.benchmark.empty();
  OODKIT_CHECK(!bench || o.benchmark == "patches", "--benchmark '", o.benchmark, "': unknown benchmark (known: patches)");
  for (const char* opt : {"--sources", "--sizes", "--seed", "--grid-images"})
    OODKIT_CHECK(bench || cmd.get_option(opt)->count() == 0, opt, " applies only with --benchmark patches");
  OODKIT_CHECK(std::isfinite(o.colour_percentile) && o.colour_percentile >= 50 && o.colour_percentile <= 100,
               "--colour-percentile ", o.colour_percentile, " must lie in [50, 100] (the scale spans [100 - P, P])");
  const std::vector<int64_t> sizes = bench ? parse_sizes(o.sizes) : std::vector<int64_t>{};
  const SavedProtocol proto = read_saved_protocol(o.detectors + "/protocol.json");
  OODKIT_CHECK(proto.features.empty(), "explain: the detectors in '", o.detectors,
               "' were fitted on a features file (`oodkit eval --features`): maps need the images and the network");
  std::vector<std::string> methods;
  if (o.methods.empty()) {
    for (const auto& [m, kind] : run::explainable_methods())
      if (std::find(proto.methods.begin(), proto.methods.end(), m) != proto.methods.end()) methods.push_back(m);
    OODKIT_CHECK(!methods.empty(), "explain: none of the methods saved in '", o.detectors,
                 "' has a map; methods with a map: ", run::explainable_list());
  } else {
    methods = split_list(o.methods);
    OODKIT_CHECK(!methods.empty(), "--methods '", o.methods, "' names no method");
    for (const std::string& m : methods) run::map_kind(m, "--methods");
    for (size_t i = 0; i < methods.size(); ++i)
      OODKIT_CHECK(std::find(methods.begin(), methods.begin() + i, methods[i]) == methods.begin() + i, "--methods: '",
                   methods[i], "' is named twice");
  }
  run::check_output_dir(o.out, "--out");
  const std::string checkpoint = o.checkpoint.empty() ? proto.checkpoint : o.checkpoint;
  LoadedClassifier lc = load_classifier(checkpoint, proto.arch, proto.num_classes, int(proto.image_size));
  lc.model->to(o.device);
  lc.model->eval();
  const data::Normalization norm =
      proto.has_normalization ? data::Normalization{proto.input_mean, proto.input_std} : data::normalization_for(proto.id);
  run::ExplainSetup setup;
  setup.model = lc.model.get();
  setup.norm = norm;
  setup.detectors = o.detectors;
  setup.fingerprint = ood::module_fingerprint(*lc.model);
  setup.nap_eps = proto.nap_eps;
  setup.ta_thresholds = proto.ta_thresholds;
  setup.thresholds = proto.thresholds;
  setup.device = o.device;
  setup.batch = o.batch;
  const auto explainers = run::make_explainers(setup, methods);
  const data::Dataset ds =
      run::load_for("--data", o.data, [&] { return load_named(o.data, proto.image_size, o.limit); });
  OODKIT_CHECK(ds.size() > 0, "explain: --data '", o.data, "' gives no images");
  if (bench) return run_patches(o, proto, ds, sizes, explainers, checkpoint);

  // ---- the run: predictions, then each method's scores and maps.
  run::ExtractOptions xo;
  xo.device = o.device;
  xo.batch = o.batch;
  xo.features.needs = {};
  const ood::ScoredSet plain = run::extract(*lc.model, ds, first_rows(ds.size()), norm, o.data, xo);
  const Tensor predictions = ood::predicted_classes(plain.features.logits).cpu();
  run::ExplainGrid grid;
  grid.title = "oodkit explain  " + o.data + "  (" + proto.arch + ", " + proto.id + ")";
  grid.images = ds.images;
  grid.methods = methods;
  grid.percentile = o.colour_percentile;
  const std::vector<int64_t> pred = predictions.to_vector<int64_t>();
  const std::vector<int64_t> labels = ds.labels.defined() ? ds.labels.cpu().to_vector<int64_t>() : std::vector<int64_t>{};
  for (int64_t i = 0; i < ds.size(); ++i)
    grid.row_labels.push_back("#" + std::to_string(i) +
                              (labels.empty() ? "" : " y" + std::to_string(labels[size_t(i)])) + " p" +
                              std::to_string(pred[size_t(i)]));
  NamedTensors arrays;
  nlohmann::ordered_json methods_json = nlohmann::ordered_json::object();
  for (const auto& [m, explain] : explainers) {
    const run::Explanation e = explain(ds);
    grid.maps.push_back(e.maps);
    grid.scores.push_back(e.scores);
    arrays.emplace_back("maps/" + m, e.maps);
    arrays.emplace_back("scores/" + m, Tensor::from_vector(e.scores, {int64_t(e.scores.size())}));
    const run::ColourScale s = run::colour_scale(e.maps, o.colour_percentile);
    methods_json[m] = {{"map", run::map_kind_name(run::map_kind(m, "--methods"))}, {"colour_lo", s.lo},
                       {"colour_hi", s.hi}, {"colour_percentile", s.percentile}};
    if (const auto it = proto.thresholds.find(m); it != proto.thresholds.end()) methods_json[m]["threshold"] = it->second;
  }
  if (ds.labels.defined()) arrays.emplace_back("labels", ds.labels.cpu());
  arrays.emplace_back("predictions", predictions);
  arrays.emplace_back("images", ds.images);

  make_output_dir(o.out, "--out");
  save_safetensors(o.out + "/maps.safetensors", arrays, {{"format", "oodkit-explain-1"}});
  const Tensor picture = run::render_explain_grid(grid, o.zoom);
  const std::string png = o.out + "/explain.png", tmp = png + ".tmp.png";
  data::write_png(tmp, picture);
  OODKIT_CHECK(std::rename(tmp.c_str(), png.c_str()) == 0, "cannot write '", png, "'");
  nlohmann::ordered_json j;
  j["provenance"] = run::provenance();
  j["detectors"] = o.detectors;
  j["checkpoint"] = checkpoint;
  j["data"] = o.data;
  j["images"] = ds.size();
  j["image_size"] = {ds.images.size(2), ds.images.size(3)};
  j["upsampling"] = "bilinear, align_corners=false";
  j["methods"] = methods_json;
  write_text_file(o.out + "/explain.json", j.dump(2) + "\n");
  std::printf("explained %lld images of %s with %zu methods -> %s/{maps.safetensors, explain.png, explain.json}\n",
              (long long)ds.size(), o.data.c_str(), methods.size(), o.out.c_str());
  return 0;
}

}  // namespace

void add_explain_command(CLI::App& app, CommandList& commands) {
  const auto opts = std::make_shared<ExplainOptions>();
  ExplainOptions& e = *opts;
  Command c;
  auto* cmd = c.app = app.add_subcommand(
      "explain", "Per-method maps of where images look OOD, from detectors saved by `oodkit eval --out`");
  cmd->add_option("--detectors", e.detectors, "the detectors/ folder of an eval run")->required();
  cmd->add_option("--data", e.data, "dataset name[:split] or folder:<path>")->required();
  cmd->add_option("--methods", e.methods,
                  "comma-separated (default: every saved method with a map: " + run::explainable_list() + ")");
  cmd->add_option("--limit", e.limit, "first N images")->capture_default_str();
  cmd->add_option("--checkpoint", e.checkpoint, "classifier (default: the one the detectors were fitted with)");
  add_image_fit_option(cmd);
  cmd->add_option("--batch", e.batch)->capture_default_str()->check(positive_count());
  cmd->add_option("--zoom", e.zoom, "picture magnification")->capture_default_str()->check(positive_count());
  cmd->add_option("--colour-percentile", e.colour_percentile,
                  "each method's colour scale in the picture spans its map values' percentiles [100 - P, P] "
                  "(clamped beyond; 100 = minimum to maximum)")
      ->capture_default_str();
  add_device_option(cmd, c);
  cmd->add_option("--out", e.out, "output folder (maps.safetensors, explain.png, explain.json)")->required();
  cmd->add_option("--benchmark", e.benchmark,
                  "patches: the pasted-OOD-patch localisation benchmark on the --limit first images of --data "
                  "(docs/methods.md, \"Localisation benchmark\"): patches.md/json/csv/png in --out");
  cmd->add_option("--sources", e.sources,
                  "--benchmark: patch sources, comma-separated (default: every installed OOD test set and the "
                  "synthetic-ood-* kinds)");
  cmd->add_option("--sizes", e.sizes, "--benchmark: patch sides in pixels on 32x32 images")->capture_default_str();
  cmd->add_option("--seed", e.seed, "--benchmark: the patches' seed")->capture_default_str();
  cmd->add_option("--grid-images", e.grid_images, "--benchmark: patched images per source and size in patches.png")
      ->capture_default_str()
      ->check(positive_count());
  c.run = [opts, cmd](Device device) {
    opts->device = device;
    return run_explain(*opts, *cmd);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
