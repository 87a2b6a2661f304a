#include "run/explain.h"

#include <fstream>
#include <memory>

#include "framework/autograd.h"
#include "framework/concat.h"
#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/safetensors.h"
#include "ood/detectors.h"
#include "ood/heatmap.h"
#include "ood/method_scores.h"
#include "ood/react.h"
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
  }
  return "?";
}

const std::vector<std::pair<std::string, MapKind>>& explainable_methods() {
  static const std::vector<std::pair<std::string, MapKind>> m{
      {"heatmap", MapKind::Heatmap},       {"nap", MapKind::Contribution},     {"nap_mean", MapKind::Contribution},
      {"fs", MapKind::Contribution},       {"fs_ta", MapKind::Contribution},   {"msp", MapKind::GradCam},
      {"maxlogit", MapKind::GradCam},      {"energy", MapKind::GradCam},       {"react", MapKind::GradCam},
      {"knn", MapKind::GradCam},           {"mahalanobis", MapKind::GradCam},  {"vim", MapKind::GradCam}};
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
  OODKIT_CHECK(ood::is_registered(method) || ood::is_fuse_name(method), option, ": unknown method '", method,
               "'; methods with a map: ", explainable_list());
  OODKIT_FAIL(option, ": '", method, "' has no map (input perturbation, fusions, ASH, DICE and GradNorm are not "
              "explained yet); methods with a map: ", explainable_list());
}

namespace {

// dS/dz [N, D] (float64 CPU) of one method from one forward pass.
using ScoreGradient = std::function<Tensor(const models::ClassifierOutput&)>;

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
  if (m == "knn") {
    ood::StateReader r(path + ".bank", "knn-bank");
    const NamedTensors all = load_safetensors(r.tensors_path());
    OODKIT_CHECK(all.size() == 1 && all[0].first == "bank" && all[0].second.ndim() == 2, "'", r.tensors_path(),
                 "' holds no [N, D] feature bank");
    const Tensor bank = all[0].second;
    const int64_t k = int64_t(d.params().at("k"));
    return [bank, k](const models::ClassifierOutput& o) { return ood::knn_score_gradient(o.penultimate, bank, k); };
  }
  if (m == "mahalanobis") {
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
  }
  OODKIT_FAIL("explain: unknown map kind");
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
    const BatchMap maps = batch_map(m, kind, *det, s);
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
    out.emplace_back(m, [s, det, maps, fo, m, offset](const data::Dataset& ds) {
      OODKIT_CHECK(ds.size() > 0, "explain ", m, ": '", ds.name, "' has no images");
      ExtractOptions xo;
      xo.device = s.device;
      xo.batch = s.batch;
      xo.features = fo;
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
        autograd::NoGradGuard ng;  // the maps need no graph through the network (score gradients are dS/dz)
        const models::ClassifierOutput o = s.model->forward_all(normalized_rows(ds, start, len, s.norm).to(s.device));
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
