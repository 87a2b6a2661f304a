#include "run/explain.h"

#include <fstream>
#include <memory>

#include "framework/autograd.h"
#include "framework/concat.h"
#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/safetensors.h"
#include "ood/detectors.h"
#include "ood/fusion_maps.h"
#include "ood/multi_fusion.h"
#include "ood/heatmap.h"
#include "ood/method_scores.h"
#include "ood/react.h"
#include "ood/dice.h"
#include "ood/score_gradients.h"
#include "ood/spatial_maps.h"
#include "ood/state_io.h"
#include "run/extract.h"

namespace oodkit::run {

const char* map_kind_name(MapKind k) {
  switch (k) {
    case MapKind::Heatmap: return "heatmap";
    case MapKind::Contribution: return "contribution";
    case MapKind::GradCam: return "grad-cam";
    case MapKind::Fusion: return "fusion";
  }
  return "?";
}

const std::vector<std::pair<std::string, MapKind>>& explainable_methods() {
  static const std::vector<std::pair<std::string, MapKind>> m = [] {
    std::vector<std::pair<std::string, MapKind>> v{
        {"heatmap", MapKind::Heatmap},   {"nap", MapKind::Contribution},      {"nap_mean", MapKind::Contribution},
        {"fs", MapKind::Contribution},   {"fs_ta", MapKind::Contribution},    {"msp", MapKind::GradCam},
        {"maxlogit", MapKind::GradCam},  {"energy", MapKind::GradCam},        {"odin", MapKind::GradCam},
        {"react", MapKind::GradCam},     {"ash_p", MapKind::GradCam},         {"ash_s", MapKind::GradCam},     {"dice", MapKind::GradCam},          {"gradnorm", MapKind::GradCam},
        {"knn", MapKind::GradCam},       {"mahalanobis", MapKind::GradCam},   {"mahalanobis_noise", MapKind::GradCam},
        {"vim", MapKind::GradCam}};
    // Every registered fusion: its members' maps combined (ood/fusion_maps.h).
    for (const ood::DetectorInfo& d : ood::detector_registry())
      if (d.family == ood::Family::Fusion) v.emplace_back(d.name, MapKind::Fusion);
    return v;
  }();
  return m;
}

std::string explainable_list() {
  std::string s;
  for (const auto& [name, kind] : explainable_methods()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

MapKind map_kind(const std::string& method, const char* option) {
  for (const auto& [name, kind] : explainable_methods())
    if (name == method) return kind;
  // ASH-B sees z only through its kept set (piecewise constant) and sum(z): dS/dz is the same for
  // every channel, so a Grad-CAM map would be the total activation per position (or 0), nothing of
  // the detector's own.
  OODKIT_CHECK(method != "ash_b", option, ": 'ash_b' has no map: its score reads the activations only "
               "through their sum (the kept entries are filled with sum(z)/k), so its gradient is the same for "
               "every channel and a Grad-CAM map would only show the total activation; ash_p and ash_s have maps");
  if (method == "fused") return MapKind::Fusion;  // a z fusion unless saved otherwise (checked on loading)
  if (ood::is_fuse_name(method)) {
    const ood::FuseSpec spec = ood::parse_fuse_name(method);
    OODKIT_CHECK(spec.combination == ood::Combination::Z, option, ": '", method, "' has no map: a p-value "
                 "combination is a step function of its members' scores (no gradient); a z fusion "
                 "(--fuse z:...) has one");
    return MapKind::Fusion;
  }
  OODKIT_CHECK(ood::is_registered(method), option, ": unknown method '", method, "'; methods with a map: ",
               explainable_list(), ", fused and the z fusions of --fuse");
  OODKIT_FAIL(option, ": '", method, "' has no map; methods with a map: ", explainable_list());
}

namespace {

// dS/dz [N, D] (float64 CPU) of one method from one forward pass.
using ScoreGradient = std::function<Tensor(const models::ClassifierOutput&)>;
// The network input a method's score reads, from the normalised batch on the device (the input
// perturbation of odin and mahalanobis_noise); empty: the batch itself.
using ScoreInput = std::function<Tensor(const Tensor&)>;

// The fitted state a Grad-CAM method's gradient needs, loaded from the detector's saved files
// (<dir>/<method>.<part>, as its Detector::load_fitted reads them).
ScoreGradient score_gradient(const std::string& m, const ood::Detector& d, const ExplainSetup& s) {
  const Tensor w = s.model->head().weight.detach().cpu(), b = s.model->head().bias.defined()
                                                                  ? s.model->head().bias.detach().cpu()
                                                                  : Tensor();
  const std::string path = s.detectors + "/" + m;
  if (m == "msp" || m == "maxlogit" || m == "energy")
    return [m, w](const models::ClassifierOutput& o) {
      return ood::through_head(ood::logit_score_gradient(m, o.logits), w);
    };
  if (m == "react") {
    const double c = ood::ReAct::load(path + ".react").threshold();
    return [w, b, c](const models::ClassifierOutput& o) { return ood::react_score_gradient(o.penultimate, w, b, c); };
  }
  if (m == "odin") {
    const double t = d.params().at("T");
    return [w, t](const models::ClassifierOutput& o) {
      return ood::through_head(ood::logit_score_gradient("msp", o.logits, t), w);
    };
  }
  if (m == "ash_p" || m == "ash_b" || m == "ash_s") {
    const ood::AshMode mode = m == "ash_p" ? ood::AshMode::Prune : m == "ash_b" ? ood::AshMode::Binarize
                                                                                 : ood::AshMode::Scale;  // ash_b: refused by map_kind
    const double p = d.params().at("p");
    return [w, b, p, mode](const models::ClassifierOutput& o) {
      return ood::ash_score_gradient(o.penultimate, w, b, p, mode);
    };
  }
  if (m == "dice") {
    auto model = std::make_shared<ood::Dice>(ood::Dice::load(path + ".dice"));
    return [model](const models::ClassifierOutput& o) { return ood::dice_score_gradient(*model, o.penultimate); };
  }
  if (m == "gradnorm")
    return [w, b](const models::ClassifierOutput& o) { return ood::gradnorm_score_gradient(o.penultimate, w, b); };
  if (m == "knn") {
    ood::StateReader r(path + ".bank", "knn-bank");
    const NamedTensors all = load_safetensors(r.tensors_path());
    OODKIT_CHECK(all.size() == 1 && all[0].first == "bank" && all[0].second.ndim() == 2, "'", r.tensors_path(),
                 "' holds no [N, D] feature bank");
    const Tensor bank = all[0].second;
    const int64_t k = int64_t(d.params().at("k"));
    return [bank, k](const models::ClassifierOutput& o) { return ood::knn_score_gradient(o.penultimate, bank, k); };
  }
  if (m == "mahalanobis" || m == "mahalanobis_noise") {
    auto model = std::make_shared<ood::Mahalanobis>(ood::Mahalanobis::load(path + ".mahalanobis"));
    return [model](const models::ClassifierOutput& o) {
      return ood::mahalanobis_score_gradient(*model, o.penultimate);
    };
  }
  if (m == "vim") {
    auto model = std::make_shared<ood::Vim>(ood::Vim::load(path + ".vim"));
    return [model, w, b](const models::ClassifierOutput& o) {
      return ood::vim_score_gradient(*model, o.penultimate, w, b);
    };
  }
  OODKIT_FAIL("explain: no score gradient for '", m, "'");
}

ScoreInput score_input(const std::string& m, const ood::Detector& d, const ExplainSetup& s) {
  const ood::ImageContext ctx{s.model, s.norm.std};
  if (m == "odin")
    return [ctx, t = d.params().at("T"), eps = d.params().at("eps")](const Tensor& x) {
      return ood::odin_input(ctx, x, t, eps);
    };
  if (m == "mahalanobis_noise") {
    auto model = std::make_shared<ood::Mahalanobis>(ood::Mahalanobis::load(s.detectors + "/" + m + ".mahalanobis"));
    return [ctx, model, eps = d.params().at("eps")](const Tensor& x) {
      return ood::mahalanobis_noise_input(ctx, *model, x, eps);
    };
  }
  return {};
}

// Maps of one batch at the feature (or decoder) resolution, [B, h, w] float32 CPU.
using BatchMap = std::function<Tensor(const models::ClassifierOutput&)>;

BatchMap batch_map(const std::string& m, MapKind kind, const ood::Detector& d, const ExplainSetup& s) {
  models::Classifier* model = s.model;
  switch (kind) {
    case MapKind::Heatmap: {
      auto hm = ood::HeatmapModel::load(s.detectors + "/heatmap.decoder.safetensors");
      hm->check_classifier(s.fingerprint, "the decoder saved in '" + s.detectors + "/heatmap.decoder.safetensors'");
      return [hm, batch = s.batch](const models::ClassifierOutput& o) {
        return ood::heatmap_map(hm->heatmaps(o.penultimate, o.logits, batch).cpu());
      };
    }
    case MapKind::Contribution: {
      // tau - s_p: the spatial_maps functions give -s_p, the offset is added by the caller.
      if (m == "nap" || m == "nap_mean")
        return [eps = s.nap_eps, sq = m == "nap"](const models::ClassifierOutput& o) {
          return ood::nap_contribution_map(o.features.cpu(), eps, sq);
        };
      if (m == "fs") return [](const models::ClassifierOutput& o) { return ood::fs_contribution_map(o.features.cpu()); };
      // fs_ta: FS of the feature map of the Threshold Activation path at the saved ta_k (as
      // ood::extract_features computes it: ReLU(g - k) after the stage before the last).
      const double k = d.params().at("ta_k");
      return [model, k](const models::ClassifierOutput& o) {
        const int stage = model->num_stages() - 2;
        const Tensor& g = o.stages[size_t(stage)];
        return ood::fs_contribution_map(model->forward_from(stage, ops::relu(ops::add_scalar(g, -k))).features.cpu());
      };
    }
    case MapKind::GradCam: {
      ScoreGradient grad = score_gradient(m, d, s);
      return [grad](const models::ClassifierOutput& o) { return ood::gradcam_map(o.features.cpu(), grad(o)); };
    }
    case MapKind::Fusion: break;  // made from the members' explainers (fusion_explainer)
  }
  OODKIT_FAIL("explain: unknown map kind");
}

// A fusion's explainer: its members' explanations combined as ood/fusion_maps.h says; the scores
// are the fusion's own combination of the members' scores.
Explainer fusion_explainer(const std::string& m, std::shared_ptr<const ood::Detector> det,
                           std::vector<std::pair<std::string, Explainer>> members) {
  return [m, det, members](const data::Dataset& ds) {
    std::vector<Explanation> parts;
    for (const auto& [name, explain] : members) parts.push_back(explain(ds));
    ood::Detector::ScoreList scores;
    for (const Explanation& e : parts) scores.push_back(&e.scores);
    Explanation out;
    out.scores = det->combine(scores);
    const std::vector<std::vector<double>> c = ood::fusion_map_weights(*det, scores);
    const Shape shape = parts[0].maps.shape();
    const int64_t n = shape[0], hw = shape[1] * shape[2];
    std::vector<double> sum(size_t(n * hw), 0.0);
    for (size_t i = 0; i < parts.size(); ++i) {
      OODKIT_CHECK(parts[i].maps.shape() == shape, "explain ", m, ": member maps of different shapes");
      const std::vector<float> mi = parts[i].maps.cpu().to_vector<float>();
      for (int64_t r = 0; r < n; ++r)
        for (int64_t p = 0; p < hw; ++p) sum[size_t(r * hw + p)] += c[i][size_t(r)] * double(mi[size_t(r * hw + p)]);
    }
    out.maps = Tensor::from_vector(std::vector<float>(sum.begin(), sum.end()), shape);
    return out;
  };
}

}  // namespace

std::vector<std::pair<std::string, Explainer>> make_explainers(const ExplainSetup& s,
                                                               const std::vector<std::string>& methods) {
  OODKIT_CHECK(s.model, "make_explainers: no classifier");
  std::vector<std::pair<std::string, Explainer>> out;
  for (const std::string& m : methods) {
    const MapKind kind = map_kind(m, "--methods");
    const std::string path = s.detectors + "/" + m;
    OODKIT_CHECK(std::ifstream(ood::state_json_path(path)).good(), "--methods: '", m, "' is not saved in '",
                 s.detectors, "'", m == "heatmap" ? " (run `oodkit eval --heatmap DECODER --out ...`)" : "",
                 ": explain maps detectors that `oodkit eval --out` saved");
    std::shared_ptr<const ood::Detector> det = ood::load_detector(path);
    if (kind == MapKind::Fusion) {
      std::string why;
      OODKIT_CHECK(!det->components().empty() && ood::fusion_has_map(*det, &why), "--methods: '", m,
                   "' has no map: ", why);
      out.emplace_back(m, fusion_explainer(m, det, make_explainers(s, det->components())));
      continue;
    }
    const BatchMap maps = batch_map(m, kind, *det, s);
    const ScoreInput input = kind == MapKind::GradCam ? score_input(m, *det, s) : ScoreInput();
    double offset = 0;  // tau for the contribution maps
    if (kind == MapKind::Contribution) {
      const auto it = s.thresholds.find(m);
      OODKIT_CHECK(it != s.thresholds.end(), "--methods: '", s.detectors, "/protocol.json' records no decision "
                   "threshold for '", m, "' (an older eval): its map is offset by it; re-run `oodkit eval --out`");
      offset = it->second;
    }
    ood::FeatureOptions fo;
    fo.nap_eps = s.nap_eps;
    fo.ta_thresholds = s.ta_thresholds;
    fo.needs = ood::detector_info(m).needs;
    out.emplace_back(m, [s, det, maps, input, fo, m, offset](const data::Dataset& ds) {
      OODKIT_CHECK(ds.size() > 0, "explain ", m, ": '", ds.name, "' has no images");
      ExtractOptions xo;
      xo.device = s.device;
      xo.batch = s.batch;
      xo.features = fo;
      xo.keep_images = det->uses_images();  // odin, mahalanobis_noise score the images themselves
      const ood::ScoredSet set = extract(*s.model, ds, first_rows(ds.size()), s.norm, ds.name, xo);
      const ood::ScoreContext ctx{s.model, s.norm.std, s.device, s.batch};
      Explanation e;
      e.scores = ood::score_method(*det, set, ctx, [&](const std::string& c) -> const std::vector<double>& {
        OODKIT_FAIL("explain ", m, ": no component scores (", c, ")");
      });
      const int64_t height = ds.images.size(2), width = ds.images.size(3);
      std::vector<Tensor> parts;
      for (int64_t start = 0; start < ds.size(); start += s.batch) {
        const int64_t len = std::min(s.batch, ds.size() - start);
        Tensor x = normalized_rows(ds, start, len, s.norm).to(s.device);
        if (input) x = input(x);  // the perturbed images the score reads (a graph of its own)
        autograd::NoGradGuard ng;  // the maps need no graph through the network (score gradients are dS/dz)
        const models::ClassifierOutput o = s.model->forward_all(x);
        Tensor part = ood::upsample_bilinear(maps(o), height, width);
        if (offset != 0) part = ops::add_scalar(part, offset);
        parts.push_back(part);
      }
      e.maps = concat_rows(parts);
      return e;
    });
  }
  return out;
}

}  // namespace oodkit::run
