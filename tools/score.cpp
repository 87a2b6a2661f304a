// `oodkit score`: scores new images with detectors fitted and saved by `oodkit eval --out`,
// without refitting: loads the classifier and each detector's state, extracts the same
// features (protocol.json), writes one score column per method (higher = more ID).
#include "tools/score.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/registry.h"
#include "framework/cuda_api.h"
#include "ood/detectors.h"
#include "ood/fusion.h"
#include "ood/heatmap.h"
#include "ood/protocol.h"
#include "ood/state_io.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/progress.h"
#include "tools/protocol_file.h"

namespace oodkit::tools {

int run_score(const ScoreOptions& o) {
  const MathModeGuard math(o.tf32 ? MathMode::TF32 : MathMode::FP32);
  const SavedProtocol proto = read_saved_protocol(o.detectors + "/protocol.json");
  const std::string checkpoint = o.checkpoint.empty() ? proto.checkpoint : o.checkpoint;
  const int64_t size = proto.image_size;
  LoadedClassifier lc = load_classifier(checkpoint, proto.arch, proto.num_classes, int(size));
  lc.model->to(o.device);
  lc.model->eval();
  const data::Normalization norm = data::normalization_for(proto.id);
  ood::FeatureOptions fo;
  fo.ta_thresholds = proto.ta_thresholds;
  fo.nap_eps = proto.nap_eps;
  std::vector<std::string> methods = o.methods.empty() ? proto.methods : split_list(o.methods);

  data::LoadOptions lo = base_load_options();
  std::string name = o.data;
  if (const size_t c = name.find(':'); c != std::string::npos && name.rfind("folder:", 0) != 0) {
    lo.split = name.substr(c + 1);
    name = name.substr(0, c);
  }
  lo.image_size = size;
  lo.limit = o.limit;
  if (!proto.image_fit.empty() && proto.image_fit != data::image_fit_name(lo.fit))
    std::fprintf(stderr, "oodkit score: note: the detectors were evaluated with --resize %s, scoring uses %s\n",
                 proto.image_fit.c_str(), data::image_fit_name(lo.fit).c_str());
  const data::Dataset ds = data::load_dataset(name, "", lo);
  note_skipped("score", ds, o.data);
  OODKIT_CHECK(ds.size() > 0, "score: --data '", o.data, "' gives no images (--limit ", o.limit, ")");

  // Every saved method, fusion or not, through load_detector; a fusion's components too.
  std::map<std::string, std::unique_ptr<ood::Detector>> loaded;
  std::function<void(const std::string&)> load = [&](const std::string& m) {
    if (loaded.count(m)) return;
    const std::string path = o.detectors + "/" + m;
    OODKIT_CHECK(std::ifstream(ood::state_json_path(path)).good(), "no saved detector or fusion '", m, "' in '",
                 o.detectors, "'");
    std::unique_ptr<ood::Detector> d = ood::load_detector(path);
    if (const auto* hm = dynamic_cast<const ood::HeatmapDetector*>(d.get()))
      hm->model().check_classifier(ood::module_fingerprint(*lc.model), "the heatmap decoder saved in '" + path + "'");
    const std::vector<std::string> parts = d->components();
    loaded.emplace(m, std::move(d));
    for (const std::string& c : parts) load(c);
  };
  for (const std::string& m : methods) load(m);
  // Only the feature columns the loaded detectors read; images only for input perturbation.
  bool keep_images = false;
  fo.needs = {};
  for (const auto& [m, d] : loaded) {
    keep_images |= d->uses_images();
    if (d->components().empty()) fo.needs |= ood::detector_info(d->name()).needs;
  }

  // Features for every image, and the images themselves when an input-perturbation method is used.
  std::vector<ood::Features> parts;
  std::vector<Tensor> images;
  Progress progress("features " + o.data, ds.size());  // on stderr: stdout may be the CSV
  for (int64_t b = 0; b < ds.size(); b += o.batch) {
    const int64_t len = std::min(o.batch, ds.size() - b);
    const Tensor x = normalized_rows(ds, b, len, norm).to(o.device);
    parts.push_back(ood::extract_features(*lc.model, x, fo));
    if (keep_images) images.push_back(x);
    progress.update(b + len);
  }
  progress.finish();
  const ood::Features f = ood::concat_features(parts);

  std::map<std::string, std::vector<double>> columns;
  std::function<const std::vector<double>&(const std::string&)> score_of = [&](const std::string& m)
      -> const std::vector<double>& {
    if (auto it = columns.find(m); it != columns.end()) return it->second;
    const ood::Detector& d = *loaded.at(m);
    std::vector<double> s;
    if (const auto* fusion = dynamic_cast<const ood::Fusion*>(&d)) {
      const std::vector<std::string> c = fusion->components();
      s = fusion->combine(score_of(c[0]), score_of(c[1]));
    } else if (d.uses_images()) {
      ood::ImageContext ctx{lc.model.get(), norm.std};
      for (const Tensor& x : images) {
        const std::vector<double> part = ood::to_doubles(d.score_images(ctx, x));
        s.insert(s.end(), part.begin(), part.end());
      }
    } else {
      s = ood::to_doubles(d.score(f));
    }
    return columns.emplace(m, std::move(s)).first->second;
  };
  for (const std::string& m : methods) score_of(m);

  std::ostringstream csv;
  csv << "index";
  for (const std::string& m : methods) csv << "," << m;
  csv << "\n";
  csv.precision(9);
  for (int64_t i = 0; i < ds.size(); ++i) {
    csv << i;
    for (const std::string& m : methods) csv << "," << columns[m][size_t(i)];
    csv << "\n";
  }
  // Files --skip-unreadable left out: listed in <out>.skipped.txt, or on stderr without --out. The
  // index column counts the images read.
  write_skipped_list("score", o.out.empty() ? "" : o.out + ".skipped.txt");
  if (o.out.empty()) std::printf("%s", csv.str().c_str());
  else {
    write_text_file(o.out, csv.str());
    std::printf("scored %lld images of %s with %zu methods -> %s\n", (long long)ds.size(), o.data.c_str(),
                methods.size(), o.out.c_str());
  }
  return 0;
}

void add_score_command(CLI::App& app, CommandList& commands) {
  const auto opts = std::make_shared<ScoreOptions>();
  ScoreOptions& sc = *opts;
  Command c;
  auto* score_cmd = c.app = app.add_subcommand("score", "Score new images with detectors saved by `oodkit eval --out` (no refit)");
  score_cmd->add_option("--detectors", sc.detectors, "the detectors/ folder of an eval run")->required();
  score_cmd->add_option("--data", sc.data, "dataset name[:split] or folder:<path>")->required();
  score_cmd->add_option("--limit", sc.limit, "first N images (-1: all)")->capture_default_str();
  score_cmd->add_option("--methods", sc.methods, "comma-separated (default: all saved)");
  score_cmd->add_option("--checkpoint", sc.checkpoint, "classifier (default: the one the detectors were fitted with)");
  add_image_fit_option(score_cmd);
  add_skip_unreadable_option(score_cmd);
  score_cmd->add_option("--batch", sc.batch)->capture_default_str()->check(positive_count());
  add_device_option(score_cmd, c);
  score_cmd->add_option("--out", sc.out, "CSV file (default: stdout)");
  score_cmd->add_flag("--tf32", sc.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");
  c.run = [opts](Device device) {
    opts->device = device;
    return run_score(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
