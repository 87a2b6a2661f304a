// `oodkit score`: scores new images with detectors fitted and saved by `oodkit eval --out`,
// without refitting: loads the classifier and each detector's state, extracts the same
// features (protocol.json), writes per image its file (or row), the predicted class, one score
// column per method (higher = more ID) and each method's ID/OOD decision at the threshold eval
// chose on held-out ID images (95% kept; protocol.json "thresholds").
#include "tools/score.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/registry.h"
#include "framework/cuda_api.h"
#include "framework/safetensors.h"
#include "ood/detectors.h"
#include "ood/heatmap.h"  // module_fingerprint
#include "ood/method_scores.h"
#include "ood/metrics.h"
#include "ood/multi_fusion.h"
#include "ood/scores.h"
#include "ood/state_io.h"
#include "tools/command.h"
#include "tools/common.h"
#include "run/extract.h"
#include "run/features_file.h"
#include "run/plan.h"
#include "tools/protocol_file.h"

namespace oodkit::tools {

namespace {
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& x : v) out += (out.empty() ? "" : ", ") + x;
  return out;
}

// A CSV field: as is, or in double quotes (inner quotes doubled) when it holds a comma, a quote or
// a line break (RFC 4180).
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

using Loaded = std::map<std::string, std::unique_ptr<ood::Detector>>;

// Every saved method of `methods`, fusion or not, through load_detector; a composite's components
// too. `check` sees each detector loaded (with its path) and may refuse it.
Loaded load_saved(const std::string& dir, const std::vector<std::string>& methods, const SavedProtocol& proto,
                  const std::function<void(const ood::Detector&, const std::string&)>& check) {
  Loaded loaded;
  std::function<void(const std::string&)> load = [&](const std::string& m) {
    if (loaded.count(m)) return;
    const std::string path = dir + "/" + m;
    OODKIT_CHECK(std::ifstream(ood::state_json_path(path)).good(), "--methods: no saved detector or fusion '", m,
                 "' in '", dir, "' (saved: ", join(proto.methods), ")");
    std::unique_ptr<ood::Detector> d = ood::load_detector(path);
    check(*d, path);
    const std::vector<std::string> parts = d->components();
    loaded.emplace(m, std::move(d));
    for (const std::string& c : parts) load(c);
  };
  for (const std::string& m : methods) load(m);
  return loaded;
}

// One row per image: its index, where it came from (`source`), the predicted class, every score,
// then each method's decision at its saved threshold (ID: score >= t).
std::string score_csv(const std::vector<std::string>& methods, std::map<std::string, std::vector<double>>& columns,
                      const std::vector<int64_t>& predicted, const std::map<std::string, double>& thresholds, int64_t n,
                      const std::function<std::string(int64_t)>& source) {
  std::vector<std::string> decided;
  for (const std::string& m : methods)
    if (thresholds.count(m)) decided.push_back(m);
  std::ostringstream csv;
  csv << "index,source,predicted_class";
  for (const std::string& m : methods) csv << "," << m;
  for (const std::string& m : decided) csv << "," << m << ":decision";
  csv << "\n";
  csv.precision(9);
  for (int64_t i = 0; i < n; ++i) {
    csv << i << "," << csv_field(source(i)) << "," << predicted[size_t(i)];
    for (const std::string& m : methods) csv << "," << columns[m][size_t(i)];
    for (const std::string& m : decided) csv << "," << (columns[m][size_t(i)] >= thresholds.at(m) ? "id" : "ood");
    csv << "\n";
  }
  return csv.str();
}

// Every method of `methods` on `set` through the one path the protocol uses (ood::score_method),
// each scored once: a fusion's components are scored first and shared. Returns the scores by
// method name (host, one per row of `set`), components included.
std::map<std::string, std::vector<double>> score_all(const std::vector<std::string>& methods, const Loaded& loaded,
                                                     const ood::ScoredSet& set, const ood::ScoreContext& ctx) {
  std::map<std::string, std::vector<double>> columns;
  std::function<const std::vector<double>&(const std::string&)> score_of = [&](const std::string& m)
      -> const std::vector<double>& {
    if (auto it = columns.find(m); it != columns.end()) return it->second;
    std::vector<double> s = ood::score_method(*loaded.at(m), set, ctx, score_of);
    return columns.emplace(m, std::move(s)).first->second;
  };
  for (const std::string& m : methods) score_of(m);
  return columns;
}

// --features-out: the scored rows as a features file (run/features_file.h) with the classifier's
// head, so that `oodkit score --features FILE --data SET` (and Python) read them back. Rows of the
// ID dataset the detectors were fitted on (--data names protocol.json's "id", any split) are the
// set "id_test", with their labels (the head's classes); any other --data is "ood.<--data>",
// without labels (an OOD set's classes are not the head's).
void write_scored_features(const std::string& path, const std::string& data, const SavedProtocol& proto,
                           const std::string& checkpoint, models::Classifier& model, const ood::ScoredSet& set,
                           const Tensor& labels) {
  const auto dataset = [](const std::string& spec) {
    return spec.rfind("folder:", 0) == 0 ? spec : spec.substr(0, spec.find(':'));
  };
  const bool id_rows = dataset(data) == dataset(proto.id);
  run::FeatureSet rows;
  rows.features.z = set.features.z.cpu();
  rows.features.logits = set.features.logits.cpu();
  if (id_rows && labels.defined()) rows.labels = labels.cpu();
  const nn::Linear& head = model.head();
  run::write_features_file(path, head.weight.cpu(), head.bias.defined() ? head.bias.cpu() : Tensor(),
                           {{id_rows ? "id_test" : "ood." + data, &rows}},
                           {{"id", proto.id}, {"model", proto.arch}, {"checkpoint", checkpoint}});
}

// --fuse: fusions of saved methods made here, their scales fitted on the components' held-out ID
// scores (eval's detectors/heldout_scores.safetensors); equal weights (score has no validation
// pair). Each is appended to `methods` and `loaded` (its components loaded as load_saved does,
// seen by `check`), with a decision threshold keeping 95% of the same held-out ID images, as
// eval's thresholds do.
void add_fusions(const ScoreOptions& o, const SavedProtocol& proto,
                 const std::function<void(const ood::Detector&, const std::string&)>& check,
                 std::vector<std::string>& methods, Loaded& loaded, std::map<std::string, double>& thresholds) {
  NamedTensors heldout;
  for (const std::string& f : o.fuse) {
    const ood::FuseSpec spec = ood::parse_fuse_spec(f, "--fuse");
    OODKIT_CHECK(!spec.tune_weights, "score: --fuse '", f, "': weights are chosen on a validation pair, which score "
                 "does not have; use ", ood::combination_name(spec.combination), ": (equal weights), or fuse with "
                 "`oodkit eval --fuse` and score its saved row");
    const std::string name = spec.name();
    OODKIT_CHECK(std::find(methods.begin(), methods.end(), name) == methods.end() &&
                     !std::ifstream(ood::state_json_path(o.detectors + "/" + name)).good(),
                 "score: --fuse '", f, "': ", name, " is already saved in '", o.detectors, "'; score it with --methods");
    const std::string hs = o.detectors + "/heldout_scores.safetensors";
    if (heldout.empty()) {
      OODKIT_CHECK(std::ifstream(hs).good(), "score: --fuse needs the held-out ID scores '", hs,
                   "' (written by `oodkit eval --out`)");
      heldout = load_safetensors(hs);
    }
    ood::Detector::ScoreList parts;
    std::vector<std::vector<double>> kept;
    kept.reserve(spec.components.size());
    for (const std::string& c : spec.components) {
      const auto it = std::find_if(heldout.begin(), heldout.end(), [&](const auto& t) { return t.first == c; });
      OODKIT_CHECK(it != heldout.end(), "score: --fuse '", f, "': '", hs, "' holds no held-out ID scores of '", c,
                   "' (eval reports: ", join(proto.methods), ")");
      kept.push_back(it->second.to(DType::F64).cpu().to_vector<double>());
      parts.push_back(&kept.back());
      for (auto& [n, d] : load_saved(o.detectors, {c}, proto, check)) loaded.emplace(n, std::move(d));
    }
    auto d = std::make_unique<ood::MultiFusion>(spec);
    d->fit_components(parts);
    d->configure(d->grid().front());
    thresholds[name] = ood::id_threshold(d->combine(parts));
    loaded.emplace(name, std::move(d));
    methods.push_back(name);
  }
}
}  // namespace

// `score --features FILE --data SET`: the rows of one set of a features file (run/features_file.h)
// through detectors saved by `eval --features`, checked against their head before anything is scored.
int run_score_features(const ScoreOptions& o, const SavedProtocol& proto) {
  OODKIT_CHECK(!o.features.empty(), "score: the detectors in '", o.detectors, "' were fitted on the features file '",
               proto.features, "' (`oodkit eval --features`): score the rows of a features file with --features FILE "
               "--data SET");
  OODKIT_CHECK(!proto.features.empty(), "score: --features needs detectors saved by `oodkit eval --features`; those in '",
               o.detectors, "' were fitted on ", proto.arch, " images (score images with --data alone)");
  const std::string out_parent = o.out.empty() ? "" : std::filesystem::path(o.out).parent_path().string();
  if (!o.out.empty()) run::check_output_dir(out_parent.empty() ? "." : out_parent, "--out");
  std::pair<run::FeaturesFile, run::FeatureSet> read;
  try {
    read = run::read_features_set(o.features, o.data);
  } catch (const Error& e) {
    throw Error(std::string("--features: ") + e.what(), e.where());
  }
  const run::FeaturesFile& f = read.first;
  OODKIT_CHECK(f.feature_dim() == proto.feature_dim && f.num_classes() == proto.num_classes, "score: --features '",
               o.features, "' has a head of ", f.num_classes(), " classes and ", f.feature_dim(),
               " features, but the detectors in '", o.detectors, "' were fitted with ", proto.num_classes,
               " classes and ", proto.feature_dim, " features ('", proto.features, "')");
  OODKIT_CHECK(run::head_fingerprint(f.weight, f.bias) == proto.head_fingerprint, "score: --features '", o.features,
               "' has another head (head.weight, head.bias) than the one the detectors in '", o.detectors,
               "' were fitted with ('", proto.features, "'): the rows must come from the same network");
  std::vector<std::string> methods = o.methods.empty() ? proto.methods : split_list(o.methods);
  OODKIT_CHECK(!methods.empty(), "score: --methods '", o.methods, "' names no method");
  const auto check = [](const ood::Detector&, const std::string&) {};
  Loaded loaded = load_saved(o.detectors, methods, proto, check);
  std::map<std::string, double> thresholds = proto.thresholds;
  add_fusions(o, proto, check, methods, loaded, thresholds);

  if (!out_parent.empty()) make_output_dir(out_parent, "--out");
  ood::ScoredSet set{o.data, read.second.features, Tensor()};
  set.features.z = set.features.z.to(o.device);
  set.features.logits = set.features.logits.to(o.device);
  const ood::ScoreContext ctx{nullptr, {1.f, 1.f, 1.f}, o.device, 256};
  std::map<std::string, std::vector<double>> columns = score_all(methods, loaded, set, ctx);
  const std::vector<int64_t> predicted = ood::predicted_classes(set.features.logits).cpu().to_vector<int64_t>();
  const int64_t n = set.features.size();
  const std::string csv =
      score_csv(methods, columns, predicted, thresholds, n, [&](int64_t i) { return o.data + ":" + std::to_string(i); });
  if (o.out.empty()) std::printf("%s", csv.c_str());
  else {
    write_text_file(o.out, csv);
    std::printf("scored %lld rows of %s in %s with %zu methods -> %s\n", (long long)n, o.data.c_str(),
                o.features.c_str(), methods.size(), o.out.c_str());
  }
  return 0;
}

int run_score(const ScoreOptions& o) {
  // ---- the plan: the saved protocol, the classifier, every saved method and the images, checked
  // before any feature is extracted or anything written.
  const MathModeGuard math(o.tf32 ? MathMode::TF32 : MathMode::FP32);
  const SavedProtocol proto = read_saved_protocol(o.detectors + "/protocol.json");
  if (!o.features.empty() || !proto.features.empty()) return run_score_features(o, proto);
  const std::string out_parent = o.out.empty() ? "" : std::filesystem::path(o.out).parent_path().string();
  if (!o.out.empty()) run::check_output_dir(out_parent.empty() ? "." : out_parent, "--out");
  const std::string feat_parent =
      o.features_out.empty() ? "" : std::filesystem::path(o.features_out).parent_path().string();
  if (!o.features_out.empty()) run::check_output_dir(feat_parent.empty() ? "." : feat_parent, "--features-out");
  const std::string checkpoint = o.checkpoint.empty() ? proto.checkpoint : o.checkpoint;
  const int64_t size = proto.image_size;
  LoadedClassifier lc = load_classifier(checkpoint, proto.arch, proto.num_classes, int(size));
  lc.model->to(o.device);
  lc.model->eval();
  // The normalisation eval used (protocol.json), else (older files) the ID set's default.
  const data::Normalization norm =
      proto.has_normalization ? data::Normalization{proto.input_mean, proto.input_std} : data::normalization_for(proto.id);
  std::vector<std::string> methods = o.methods.empty() ? proto.methods : split_list(o.methods);
  OODKIT_CHECK(!methods.empty(), "score: --methods '", o.methods, "' names no method");

  const auto check = [&](const ood::Detector& d, const std::string& path) {
    d.check_classifier(ood::module_fingerprint(*lc.model), "the detector saved in '" + path + "'");
  };
  Loaded loaded = load_saved(o.detectors, methods, proto, check);
  std::map<std::string, double> thresholds = proto.thresholds;
  add_fusions(o, proto, check, methods, loaded, thresholds);
  // Only the feature columns the loaded detectors read; images only for input perturbation.
  run::ExtractOptions xo;
  xo.device = o.device;
  xo.batch = o.batch;
  xo.features.ta_thresholds = proto.ta_thresholds;
  xo.features.nap_eps = proto.nap_eps;
  xo.features.needs = {};
  for (const auto& [m, d] : loaded) {
    xo.keep_images |= d->uses_images();
    if (d->components().empty()) xo.features.needs |= ood::detector_info(d->name()).needs;
  }

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
  const data::Dataset ds = run::load_for("--data", o.data, [&] { return data::load_dataset(name, "", lo); });
  note_skipped("score", ds, o.data);
  OODKIT_CHECK(ds.size() > 0, "score: --data '", o.data, "' gives no images (--limit ", o.limit, ")");
  if (proto.thresholds.empty())
    std::fprintf(stderr, "oodkit score: note: '%s/protocol.json' records no decision thresholds (an older eval): "
                 "scores only, no decision columns\n", o.detectors.c_str());

  // ---- the run: features (on stderr the progress: stdout may be the CSV), then every method on
  // the one path the protocol uses (ood::score_method), each scored once.
  if (!out_parent.empty()) make_output_dir(out_parent, "--out");  // its missing parents, as mkdir -p
  const ood::ScoredSet set = run::extract(*lc.model, ds, first_rows(ds.size()), norm, o.data, xo);
  const ood::ScoreContext ctx{lc.model.get(), norm.std, o.device, o.batch};
  if (!o.features_out.empty()) {
    if (!feat_parent.empty()) make_output_dir(feat_parent, "--features-out");
    write_scored_features(o.features_out, o.data, proto, checkpoint, *lc.model, set, ds.labels);
  }
  std::map<std::string, std::vector<double>> columns = score_all(methods, loaded, set, ctx);
  const std::vector<int64_t> predicted = ood::predicted_classes(set.features.logits).cpu().to_vector<int64_t>();

  const std::string csv = score_csv(methods, columns, predicted, thresholds, ds.size(), [&](int64_t i) {
    return ds.files.empty() ? o.data + ":" + std::to_string(i) : ds.files[size_t(i)];
  });
  // Files --skip-unreadable left out: listed in <out>.skipped.txt, or on stderr without --out. The
  // index column counts the images read.
  write_skipped_list("score", o.out.empty() ? "" : o.out + ".skipped.txt");
  if (o.out.empty()) std::printf("%s", csv.c_str());
  else {
    write_text_file(o.out, csv);
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
  score_cmd->add_option("--data", sc.data, "dataset name[:split] or folder:<path> (with --features: a set of the file)")
      ->required();
  score_cmd->add_option("--limit", sc.limit, "first N images (-1: all)")->capture_default_str();
  score_cmd->add_option("--methods", sc.methods, "comma-separated (default: all saved)");
  score_cmd->add_option("--fuse", sc.fuse,
                        "[z|p|pmean:]A+B[+C...]: also a column fusing saved methods with equal weights, each on the "
                        "scale of its held-out ID scores from eval (see `oodkit eval --fuse`); repeatable");
  score_cmd->add_option("--checkpoint", sc.checkpoint, "classifier (default: the one the detectors were fitted with)");
  add_image_fit_option(score_cmd);
  add_skip_unreadable_option(score_cmd);
  score_cmd->add_option("--batch", sc.batch)->capture_default_str()->check(positive_count());
  add_device_option(score_cmd, c);
  score_cmd->add_option("--out", sc.out, "CSV file (default: stdout)");
  score_cmd->add_option("--features-out", sc.features_out,
                        "also write the scored rows and the classifier head as a features file (docs/data.md): the set "
                        "id_test with labels for the ID dataset's images, else ood.<--data>");
  score_cmd->add_flag("--tf32", sc.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");
  score_cmd->add_option("--features", sc.features,
                        "a features file (docs/data.md): score its set --data (fit, id_val, id_test, val_ood.<name> "
                        "or ood.<name>) with detectors saved by `oodkit eval --features`");
  c.run = [opts, score_cmd](Device device) {
    opts->device = device;
    if (!opts->features.empty())  // the file holds the rows: image and classifier options name nothing
      for (const CLI::Option* opt : score_cmd->get_options()) {
        const std::string name = opt->get_name();
        const bool applies = name == "--features" || name == "--detectors" || name == "--data" ||
                             name == "--methods" || name == "--device" || name == "--out" || name == "--help";
        OODKIT_CHECK(applies || opt->count() == 0, "score: ", name,
                     " does not apply with --features (the file holds the rows: docs/data.md)");
      }
    return run_score(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
