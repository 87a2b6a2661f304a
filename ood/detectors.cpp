#include "ood/detectors.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/autograd.h"
#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/ops/loss.h"
#include "ood/dice.h"
#include "ood/fusion.h"
#include "ood/heatmap.h"
#include "ood/input_ops.h"
#include "ood/knn.h"
#include "ood/mahalanobis.h"
#include "ood/multi_fusion.h"
#include "ood/react.h"
#include "ood/scores.h"
#include "ood/state_io.h"
#include "ood/vim.h"

namespace oodkit::ood {

std::string params_str(const Params& p) {
  if (p.empty()) return "-";
  std::ostringstream os;
  bool first = true;
  for (const auto& [k, v] : p) {
    os << (first ? "" : ", ") << k << "=" << v;
    first = false;
  }
  return os.str();
}

Tensor Detector::score(const Features&) const { OODKIT_FAIL(name(), " scores images, not features"); }

void Detector::fit_components(const ScoreList&) {
  OODKIT_FAIL(name(), " has no components to fit on (it scores ", uses_images() ? "images" : "features", ")");
}

std::vector<double> Detector::combine(const ScoreList&) const {
  OODKIT_FAIL(name(), " has no components to combine (it scores ", uses_images() ? "images" : "features", ")");
}

Tensor Detector::score_images(const ImageContext&, const Tensor&) const {
  OODKIT_FAIL(name(), " scores features, not images");
}

void Detector::save(const std::string& path) const {
  StateWriter w(name());
  std::string keys;
  for (const auto& [k, v] : params_) {
    w.number("param." + k, v);
    keys += (keys.empty() ? "" : ",") + k;
  }
  w.text("param_keys", keys);
  save_fitted(path);  // the fitted part first: the base pair is what load_detector looks for
  w.save(path);
}

void Detector::load(const std::string& path) {
  StateReader r(path, name());
  Params p;
  std::stringstream ss(r.text("param_keys"));
  for (std::string k; std::getline(ss, k, ',');)
    if (!k.empty()) p[k] = r.number("param." + k);
  r.expect_no_other_tensors();
  load_fitted(path);
  params_ = p;
}

std::unique_ptr<Detector> load_detector(const std::string& path) {
  std::ifstream f(state_json_path(path));
  OODKIT_CHECK(f.good(), "cannot open detector state '", state_json_path(path), "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    OODKIT_FAIL("'", state_json_path(path), "' is not valid JSON: ", e.what());
  }
  OODKIT_CHECK(j.contains("kind") && j["kind"].is_string(), "'", state_json_path(path), "' names no detector kind");
  const std::string kind = j["kind"].get<std::string>();
  if (kind == "fusion") return Fusion::load_state(path);
  if (kind == "multi_fusion") return MultiFusion::load_state(path);
  std::unique_ptr<Detector> d = make_detector(kind);
  d->load(path);
  return d;
}

double Detector::param(const char* key) const {
  auto it = params_.find(key);
  OODKIT_CHECK(it != params_.end(), name(), ": hyper-parameter '", key, "' is not set (configure first)");
  return it->second;
}

namespace {

std::vector<Params> one_axis(const char* key, const std::vector<double>& values) {
  std::vector<Params> g;
  for (double v : values) g.push_back({{key, v}});
  return g;
}

// Energy (T = 1) of the head applied to a modified penultimate vector.
Tensor head_energy(const Tensor& z, const Tensor& w, const Tensor& b) {
  return energy_score(ops::linear(z, w, b));
}

struct HeadHolder {
  mutable Tensor weight, bias;  // moved to the scoring device on first use (mutable: scoring is const)
  void keep(const FitContext& ctx) {
    OODKIT_CHECK(ctx.weight.defined(), "detector fit: the classifier head is missing from the fit context");
    weight = ctx.weight;
    bias = ctx.bias;
  }
  // The head on `device`: a loaded head (on the CPU) is uploaded once, not once per batch.
  std::pair<Tensor, Tensor> on(Device device) const {
    if (weight.device() != device) weight = weight.to(device);
    if (bias.defined() && bias.device() != device) bias = bias.to(device);
    return {weight, bias};
  }
  void save(const std::string& path) const {
    StateWriter w("classifier-head");
    w.tensor("weight", weight);
    if (bias.defined()) w.tensor("bias", bias);
    w.integer("has_bias", bias.defined());
    w.save(path + ".head");
  }
  void load(const std::string& path) {
    StateReader r(path + ".head", "classifier-head");
    const NamedTensors all = load_safetensors(r.tensors_path());
    for (const auto& [n, t] : all) {
      if (n == "weight") weight = t;
      if (n == "bias") bias = t;
    }
    OODKIT_CHECK(weight.defined() && weight.ndim() == 2, "'", r.tensors_path(), "' holds no [K, D] weight");
    if (r.integer("has_bias")) {
      OODKIT_CHECK(bias.defined() && bias.ndim() == 1 && bias.size(0) == weight.size(0), "'", r.tensors_path(),
                   "' holds no bias matching the weight");
    } else {
      bias = Tensor();
    }
  }
};

// A detector that is one formula of the logits [N, K] -> scores [N], with no settings and nothing
// fitted (MSP, MaxLogit, Energy): its registration row is its whole definition
// (Registration::logit_formula).
class LogitFormula : public Detector {
 public:
  LogitFormula(std::string name, std::function<Tensor(const Tensor&)> formula)
      : name_(std::move(name)), formula_(std::move(formula)) {}
  std::string name() const override { return name_; }
  Tensor score(const Features& f) const override { return formula_(f.logits); }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> formula_;
};

// Grad mode on for a scope (the callers may be under a NoGradGuard), restored after.
struct GradModeOn {
  bool prev = autograd::grad_enabled();
  GradModeOn() { autograd::set_grad_enabled(true); }
  ~GradModeOn() { autograd::set_grad_enabled(prev); }
};

}  // namespace

Tensor odin_input(const ImageContext& ctx, const Tensor& images, double t, double eps) {
  OODKIT_CHECK(ctx.model, "odin_input: no classifier");
  Tensor x = images.detach();
  if (eps > 0) {
    const GradModeOn on;
    models::Classifier& model = *ctx.model;
    Tensor leaf = images.clone().set_requires_grad(true);
    const Tensor logits = model.forward(leaf);
    Tensor pred;
    {
      autograd::NoGradGuard ng;
      pred = predicted_classes(logits);
    }
    const Tensor loss = ops::cross_entropy(ops::scale(logits, 1.0 / t), pred);
    const Tensor g = autograd::grad(loss, {leaf})[0];
    x = perturb_against_gradient(x, g, eps, ctx.input_std);
  }
  return x;
}

Tensor mahalanobis_noise_input(const ImageContext& ctx, const Mahalanobis& m, const Tensor& images, double eps) {
  OODKIT_CHECK(ctx.model, "mahalanobis_noise_input: no classifier");
  Tensor x = images.detach();
  if (eps > 0) {
    const GradModeOn on;
    Tensor leaf = images.clone().set_requires_grad(true);
    const Tensor s = m.score(ctx.model->forward_all(leaf).penultimate);  // -d_min
    const Tensor g = autograd::grad(ops::scale(ops::sum(s), -1.0), {leaf})[0];
    x = perturb_against_gradient(x, g, eps, ctx.input_std);
  }
  return x;
}

namespace {

// ODIN (Liang et al. 2018): x' = x - eps * sign(grad_x CE(f(x)/T, argmax)) / std, score = MSP(f(x')/T).
class Odin : public Detector {
 public:
  std::string name() const override { return "odin"; }
  bool uses_images() const override { return true; }
  Tensor score_images(const ImageContext& ctx, const Tensor& images) const override {
    const double t = param("T");
    const Tensor x = odin_input(ctx, images, t, param("eps"));
    autograd::NoGradGuard ng;
    return msp_score(ctx.model->forward(x), t);
  }

};

class MahalanobisDetector : public Detector {
 public:
  std::string name() const override { return "mahalanobis"; }
  void fit(const FitContext& ctx) override {
    OODKIT_CHECK(ctx.train && ctx.train_labels.defined(), "mahalanobis: needs ID training features and labels");
    model_.fit(ctx.train->z, ctx.train_labels, ctx.train->logits.size(1));
  }
  Tensor score(const Features& f) const override { return model_.score(f.z); }

 protected:
  void save_fitted(const std::string& path) const override { model_.save(path + ".mahalanobis"); }
  void load_fitted(const std::string& path) override { model_ = Mahalanobis::load(path + ".mahalanobis"); }
  Mahalanobis model_;
};

// Mahalanobis with input pre-processing: x' = x - eps * sign(grad_x d_min(z(x))) / std.
class MahalanobisNoise : public MahalanobisDetector {
 public:
  std::string name() const override { return "mahalanobis_noise"; }
  bool uses_images() const override { return true; }
  Tensor score_images(const ImageContext& ctx, const Tensor& images) const override {
    const Tensor x = mahalanobis_noise_input(ctx, model_, images, param("eps"));
    autograd::NoGradGuard ng;
    return model_.score(ctx.model->forward_all(x).penultimate);
  }
};

class ReActDetector : public Detector {
 public:
  std::string name() const override { return "react"; }
  void fit(const FitContext& ctx) override {
    OODKIT_CHECK(ctx.heldout, "react: needs held-out ID features");
    heldout_z_ = ctx.heldout->z;
    head_.keep(ctx);
  }
  void configure(const Params& p) override {
    Detector::configure(p);
    react_.fit(heldout_z_, param("p"));
  }
  Tensor score(const Features& f) const override {
    const auto [w, b] = head_.on(f.z.device());
    return react_.score(f.z, w, b);
  }

 private:
  void save_fitted(const std::string& path) const override {
    react_.save(path + ".react");
    head_.save(path);
  }
  void load_fitted(const std::string& path) override {
    react_ = ReAct::load(path + ".react");
    head_.load(path);
  }
  Tensor heldout_z_;
  HeadHolder head_;
  ReAct react_;
};

class AshDetector : public Detector {
 public:
  AshDetector(AshMode mode, const char* name) : mode_(mode), name_(name) {}
  std::string name() const override { return name_; }
  void fit(const FitContext& ctx) override { head_.keep(ctx); }
  Tensor score(const Features& f) const override {
    const auto [w, b] = head_.on(f.z.device());
    return head_energy(ash(f.z, param("p"), mode_), w, b);
  }

 private:
  void save_fitted(const std::string& path) const override { head_.save(path); }
  void load_fitted(const std::string& path) override { head_.load(path); }
  AshMode mode_;
  std::string name_;
  HeadHolder head_;
};

class DiceDetector : public Detector {
 public:
  std::string name() const override { return "dice"; }
  void fit(const FitContext& ctx) override {
    OODKIT_CHECK(ctx.train, "dice: needs ID training features");
    train_z_ = ctx.train->z;
    head_.keep(ctx);
  }
  void configure(const Params& p) override {
    Detector::configure(p);
    dice_.fit(train_z_, head_.weight, head_.bias, param("p"));
  }
  Tensor score(const Features& f) const override { return dice_.score(f.z); }

 private:
  void save_fitted(const std::string& path) const override { dice_.save(path + ".dice"); }
  void load_fitted(const std::string& path) override { dice_ = Dice::load(path + ".dice"); }
  Tensor train_z_;
  HeadHolder head_;
  Dice dice_;
};

// KNN (Sun et al. 2022): -|| z/|z| - (k-th nearest normalised ID training vector) ||.
class KnnDetector : public Detector {
 public:
  std::string name() const override { return "knn"; }
  // The registered k values up to the bank size once fitted (a k beyond it is refused by score(),
  // so the reported setting is always the one used); the default k capped at the bank size.
  std::vector<Params> grid() const override {
    std::vector<Params> g;
    for (const Params& p : Detector::grid())
      if (!bank_.defined() || p.at("k") <= double(bank_.size(0))) g.push_back(p);
    OODKIT_CHECK(!g.empty(), "knn: no k of the grid is at most the bank size ", bank_.size(0));
    return g;
  }
  Params defaults() const override {
    Params p = Detector::defaults();
    if (bank_.defined()) p["k"] = std::min(p.at("k"), double(bank_.size(0)));
    return p;
  }
  void fit(const FitContext& ctx) override {
    OODKIT_CHECK(ctx.train, "knn: needs ID training features");
    bank_ = normalize_rows(ctx.train->z);
  }
  Tensor score(const Features& f) const override {
    const int64_t k = int64_t(param("k"));
    OODKIT_CHECK(k >= 1 && k <= bank_.size(0), "knn: k = ", k, " but the feature bank holds ", bank_.size(0),
                 " ID training images (k must be in [1, ", bank_.size(0), "]; fit on more images or lower k)");
    if (bank_.device() != f.z.device()) bank_ = bank_.to(f.z.device());  // once, after a load
    const KnnResult r = knn_search(normalize_rows(f.z), bank_, k);
    const Tensor d = r.distances.cpu();
    Tensor s = Tensor::empty({d.size(0)});
    for (int64_t i = 0; i < d.size(0); ++i) s.data<float>()[i] = -std::sqrt(d.data<float>()[i * k + k - 1]);
    return s.to(f.z.device());
  }

 private:
  void save_fitted(const std::string& path) const override {
    StateWriter w("knn-bank");
    w.tensor("bank", bank_);
    w.save(path + ".bank");
  }
  void load_fitted(const std::string& path) override {
    StateReader r(path + ".bank", "knn-bank");
    const NamedTensors all = load_safetensors(r.tensors_path());
    OODKIT_CHECK(all.size() == 1 && all[0].first == "bank" && all[0].second.ndim() == 2, "'", r.tensors_path(),
                 "' holds no [N, D] feature bank");
    bank_ = all[0].second;
  }
  mutable Tensor bank_;
};

class GradNorm : public Detector {
 public:
  std::string name() const override { return "gradnorm"; }
  Tensor score(const Features& f) const override { return gradnorm_score(f.logits, f.z); }
};

class VimDetector : public Detector {
 public:
  std::string name() const override { return "vim"; }
  void fit(const FitContext& ctx) override {
    OODKIT_CHECK(ctx.train, "vim: needs ID training features");
    vim_.fit(ctx.train->z, ctx.weight, ctx.bias);
  }
  Tensor score(const Features& f) const override { return vim_.score(f.logits, f.z); }

 private:
  void save_fitted(const std::string& path) const override { vim_.save(path + ".vim"); }
  void load_fitted(const std::string& path) override { vim_ = Vim::load(path + ".vim"); }
  Vim vim_;
};

class Nap : public Detector {
 public:
  explicit Nap(bool squared) : squared_(squared) {}
  std::string name() const override { return squared_ ? "nap" : "nap_mean"; }
  Tensor score(const Features& f) const override {
    OODKIT_CHECK(f.nap.defined(), name(), ": the features were extracted without the NAP columns");
    return squared_ ? f.nap : f.nap_unsquared;
  }

 private:
  bool squared_;
};

class Fs : public Detector {
 public:
  std::string name() const override { return "fs"; }
  Tensor score(const Features& f) const override {
    OODKIT_CHECK(f.fs.defined(), "fs: the features were extracted without the FS column");
    return f.fs;
  }
};

// FS read from the Threshold Activation path; the grid is the extracted TA thresholds unless
// --set gives ta_k values (each must be an extracted threshold: score() refuses others).
class FsTa : public Detector {
 public:
  std::string name() const override { return "fs_ta"; }
  void fit(const FitContext& ctx) override {
    OODKIT_CHECK(ctx.train, "fs_ta: needs the fit context's features (for the TA thresholds)");
    thresholds_ = ctx.train->ta_thresholds;
    OODKIT_CHECK(!thresholds_.empty(), "fs_ta: features were extracted without TA thresholds");
  }
  std::vector<Params> grid() const override {
    for (const auto& [key, values] : axes_)
      if (key == "ta_k" && !values.empty()) return expand_grid(axes_);
    return one_axis("ta_k", thresholds_);
  }
  Tensor score(const Features& f) const override {
    const double k = param("ta_k");
    for (size_t i = 0; i < f.ta_thresholds.size(); ++i)
      if (f.ta_thresholds[i] == k) return f.fs_ta[i];
    OODKIT_FAIL("fs_ta: features have no TA path for k = ", k);
  }

 private:
  std::vector<double> thresholds_;
};

}  // namespace

std::vector<Params> expand_grid(const Axes& axes) {
  std::vector<Params> grid{Params{}};
  for (const auto& [key, values] : axes) {
    OODKIT_CHECK(!values.empty(), "expand_grid: the axis '", key, "' has no values");
    std::vector<Params> next;
    for (const Params& p : grid)
      for (double v : values) {
        Params q = p;
        q[key] = v;
        next.push_back(std::move(q));
      }
    grid = std::move(next);
  }
  return grid;
}

// ---- The registry: the one place to add a detector or a fusion ------------------------------------
// Detector entries: one Registration each, by named fields. Fusion entries are made from
// fusion_specs() (the fusion table) below. The order is the reporting order of `--methods all`.
namespace {
// One registration by named fields, e.g.
//   Registration("odin", make<Odin>()).scores_images().defaults({...}).grid({...})
// (DetectorInfo's fields not named keep their defaults: features only, no tuning, no extra columns).
class Registration {
 public:
  Registration(std::string name, std::function<std::unique_ptr<Detector>()> make) {
    info_.name = std::move(name);
    info_.make = std::move(make);
  }
  Registration& scores_images() { info_.uses_images = true; return *this; }
  Registration& defaults(Params p) { info_.defaults = std::move(p); return *this; }
  Registration& grid(Axes a) { info_.grid = std::move(a); return *this; }
  Registration& reads(FeatureNeeds n) { info_.needs = n; return *this; }
  Registration& needs_decoder() { info_.needs_decoder = true; return *this; }
  Registration& family(Family f) { info_.family = f; return *this; }
  // A logit-family detector given by its formula alone (LogitFormula): name and formula, once.
  static Registration logit_formula(const std::string& name, std::function<Tensor(const Tensor&)> formula) {
    Registration r(name, [name, formula] { return std::make_unique<LogitFormula>(name, formula); });
    r.family(Family::Logit);
    return r;
  }
  operator DetectorInfo() const { return info_; }

 private:
  DetectorInfo info_;
};

template <class D, class... Args>
std::function<std::unique_ptr<Detector>()> make(Args... args) {
  return [=] { return std::make_unique<D>(args...); };
}
}  // namespace

const std::vector<DetectorInfo>& detector_registry() {
  static const std::vector<DetectorInfo> registry = [] {
    const std::vector<double> ash_p{60, 65, 70, 75, 80, 85, 90, 95};
    const FeatureNeeds nap{true, false, false}, fs{false, true, false}, fs_ta{false, false, true};
    std::vector<DetectorInfo> r{
        Registration::logit_formula("msp", [](const Tensor& logits) { return msp_score(logits); }),
        Registration::logit_formula("maxlogit", max_logit_score),
        Registration::logit_formula("energy", [](const Tensor& logits) { return energy_score(logits); }),
        Registration("odin", make<Odin>())
            .family(Family::Logit)
            .scores_images()
            .defaults({{"T", 1000.0}, {"eps", 0.0014}})
            .grid({{"T", {1.0, 10.0, 100.0, 1000.0}}, {"eps", {0.0, 0.0005, 0.001, 0.0014, 0.002, 0.003}}}),
        Registration("mahalanobis", make<MahalanobisDetector>()),
        Registration("mahalanobis_noise", make<MahalanobisNoise>())
            .scores_images()
            .grid({{"eps", {0.0, 0.0005, 0.001, 0.0014, 0.002, 0.005, 0.01}}}),
        Registration("react", make<ReActDetector>()).defaults({{"p", 90.0}}).grid({{"p", {80, 85, 90, 95, 99}}}),
        Registration("ash_p", make<AshDetector>(AshMode::Prune, "ash_p")).defaults({{"p", 90.0}}).grid({{"p", ash_p}}),
        Registration("ash_b", make<AshDetector>(AshMode::Binarize, "ash_b")).defaults({{"p", 90.0}}).grid({{"p", ash_p}}),
        Registration("ash_s", make<AshDetector>(AshMode::Scale, "ash_s")).defaults({{"p", 90.0}}).grid({{"p", ash_p}}),
        Registration("dice", make<DiceDetector>()).defaults({{"p", 0.9}}).grid({{"p", {0.1, 0.3, 0.5, 0.7, 0.9}}}),
        Registration("knn", make<KnnDetector>()).defaults({{"k", 50.0}}).grid({{"k", {1, 10, 20, 50, 100, 200}}}),
        Registration("gradnorm", make<GradNorm>()),
        Registration("vim", make<VimDetector>()),
        Registration("nap", make<Nap>(true)).reads(nap).family(Family::FeatureMap),
        Registration("nap_mean", make<Nap>(false)).reads(nap).family(Family::FeatureMap),
        Registration("fs", make<Fs>()).reads(fs).family(Family::FeatureMap),
        Registration("fs_ta", make<FsTa>()).grid({{"ta_k", {}}}).reads(fs_ta).family(Family::FeatureMap),
        Registration("heatmap", make<HeatmapDetector>()).needs_decoder().family(Family::Heatmap),
    };
    // Fusions, from the fusion table (ood/fusion.h): they read, need and score what their components do.
    for (const FusionSpec& spec : fusion_specs(/*with_heatmap=*/true)) {
      DetectorInfo f = Registration(spec.name, make<Fusion>(spec)).grid({{spec.key(), spec.grid}}).family(Family::Fusion);
      f.components = {spec.a, spec.b};
      for (const DetectorInfo& c : r)
        if (c.name == spec.a || c.name == spec.b) {
          f.uses_images |= c.uses_images;
          f.needs |= c.needs;
          f.needs_decoder |= c.needs_decoder;
        }
      r.push_back(f);
    }
    return r;
  }();
  return registry;
}

const char* family_name(Family f) {
  switch (f) {
    case Family::Logit: return "logit";
    case Family::Feature: return "feature";
    case Family::FeatureMap: return "feature map";
    case Family::Heatmap: return "heatmap";
    case Family::Fusion: return "fusion";
  }
  return "?";
}

std::string method_list(bool with_heatmap) {
  std::string list;
  for (const std::string& n : all_method_names(with_heatmap)) list += (list.empty() ? "" : ", ") + n;
  return list;
}

bool is_registered(const std::string& name) {
  for (const DetectorInfo& d : detector_registry())
    if (d.name == name) return true;
  return false;
}

const DetectorInfo& detector_info(const std::string& name) {
  for (const DetectorInfo& d : detector_registry())
    if (d.name == name) return d;
  OODKIT_FAIL("unknown detector '", name, "'; known: ", method_list());
}

std::vector<std::string> detector_names() {
  std::vector<std::string> names;
  for (const DetectorInfo& d : detector_registry())
    if (d.components.empty() && !d.needs_decoder) names.push_back(d.name);
  return names;
}

std::vector<std::string> all_method_names(bool with_heatmap) {
  std::vector<std::string> names;
  for (const DetectorInfo& d : detector_registry())
    if (with_heatmap || !d.needs_decoder) names.push_back(d.name);
  return names;
}

std::unique_ptr<Detector> make_detector(const std::string& name) {
  if (is_fuse_name(name)) return std::make_unique<MultiFusion>(parse_fuse_name(name));
  const DetectorInfo& info = detector_info(name);
  std::unique_ptr<Detector> d = info.make();
  d->set_tuning(info.grid, info.defaults);
  return d;
}

FeatureNeeds feature_needs(const std::vector<std::string>& methods) {
  FeatureNeeds n;
  for (const std::string& m : methods)  // fusion entries hold their components'
    n |= is_fuse_name(m) ? feature_needs(parse_fuse_name(m).components) : detector_info(m).needs;
  return n;
}

bool needs_images(const std::vector<std::string>& methods) {
  for (const std::string& m : methods)
    if (is_fuse_name(m) ? needs_images(parse_fuse_name(m).components) : detector_info(m).uses_images) return true;
  return false;
}

bool needs_decoder(const std::vector<std::string>& methods) {
  for (const std::string& m : methods)
    if (is_fuse_name(m) ? needs_decoder(parse_fuse_name(m).components) : detector_info(m).needs_decoder) return true;
  return false;
}

Settings parse_settings(const std::vector<std::string>& entries) {
  Settings out;
  for (const std::string& e : entries) {
    const size_t dot = e.find('.'), eq = e.find('=');
    OODKIT_CHECK(dot != std::string::npos && eq != std::string::npos && dot < eq, "--set '", e,
                 "': expected <method>.<key>=<value>[,<value>...] (e.g. react.p=90 or react.p=80,90)");
    const std::string method = e.substr(0, dot), key = e.substr(dot + 1, eq - dot - 1);
    OODKIT_CHECK(is_registered(method), "--set '", e, "': unknown method '", method, "'; known: ", method_list());
    const DetectorInfo& info = detector_info(method);
    std::string keys;
    bool found = false;
    for (const auto& [k, v] : info.grid) {
      keys += (keys.empty() ? "" : ", ") + k;
      found |= k == key;
    }
    OODKIT_CHECK(found, "--set '", e, "': ", method, " has no setting '", key, "'",
                 keys.empty() ? std::string(" (it has no settings)") : "; its settings: " + keys);
    std::vector<double> values;
    std::stringstream ss(e.substr(eq + 1));
    for (std::string item; std::getline(ss, item, ',');) {
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      OODKIT_CHECK(!item.empty() && used == item.size() && std::isfinite(v), "--set '", e, "': '", item,
                   "' is not a finite number");
      values.push_back(v);
    }
    OODKIT_CHECK(!values.empty() && e.back() != ',', "--set '", e, "': no value (or an empty one) after '='");
    OODKIT_CHECK(!out[method].count(key), "--set '", e, "': ", method, ".", key, " is set twice");
    out[method][key] = values;
  }
  return out;
}

void apply_settings(Detector& d, const Settings& settings) {
  const auto it = settings.find(d.name());
  if (it == settings.end()) return;
  Axes axes = d.axes();
  Params defaults = is_registered(d.name()) ? detector_info(d.name()).defaults : Params{};
  for (const auto& [key, values] : it->second) {
    bool found = false;
    for (auto& [k, v] : axes)
      if (k == key) {
        v = values;
        found = true;
      }
    OODKIT_CHECK(found, "--set: ", d.name(), " has no setting '", key, "'");
    // A fixed value is also the setting used without tuning; a list leaves the default alone.
    if (values.size() == 1) defaults[key] = values[0];
  }
  d.set_tuning(std::move(axes), std::move(defaults));
}

std::vector<FusionSpec> fusion_specs(bool with_heatmap) {
  const std::vector<double> w{0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
  const std::vector<double> lambda{0.001, 0.003, 0.01, 0.016, 0.028, 0.05, 0.1, 0.3, 1.0, 3.0, 10.0};
  std::vector<FusionSpec> specs{{"nap_e", "energy", "nap", FusionKind::Geometric, w},
                                {"nap_a", "ash_s", "nap", FusionKind::Geometric, w},
                                {"nap_r", "react", "nap", FusionKind::Geometric, w}};
  for (const char* cls : {"msp", "odin", "energy", "gradnorm", "react", "ash_s"})
    specs.push_back({std::string("fsta_") + cls, "fs_ta", cls, FusionKind::Linear, lambda});
  if (with_heatmap)
    for (const char* x : {"nap", "fs_ta", "msp", "energy"})
      specs.push_back({std::string("heatmap_") + x, "heatmap", x, FusionKind::Standardized, w});
  return specs;
}

Tensor fuse(const FusionSpec& spec, const Tensor& a, const Tensor& b, double value, ScoreScale a_scale,
            ScoreScale b_scale) {
  switch (spec.kind) {
    case FusionKind::Geometric: return geometric_fusion(a, b, value);
    case FusionKind::Linear: return linear_fusion(a, b, value);
    case FusionKind::Standardized: return standardized_fusion(a, b, value, a_scale, b_scale);
  }
  OODKIT_FAIL("fuse: unknown fusion kind");
}

ScoreScale score_scale(const std::vector<double>& scores) {
  OODKIT_CHECK(!scores.empty(), "score_scale: no scores");
  double mean = 0;
  for (double v : scores) {
    OODKIT_CHECK(std::isfinite(v), "score_scale: a score is ", v, " (scores to standardise must be finite)");
    mean += v;
  }
  mean /= double(scores.size());
  double var = 0;
  for (double v : scores) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / double(scores.size()));
  return {mean, sd > 0 ? sd : 1.0};
}

}  // namespace oodkit::ood
