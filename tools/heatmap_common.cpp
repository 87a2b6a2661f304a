#include "tools/heatmap_common.h"

#include "data/registry.h"
#include "ood/protocol.h"
#include "ood/scores.h"

namespace oodkit::tools {

ClassifierSetup setup_classifier(const std::string& checkpoint, const std::string& arch, const std::string& id,
                                 Device device) {
  ClassifierSetup s;
  s.checkpoint = checkpoint.empty() ? shipped_weights_path() : checkpoint;
  const std::string a = checkpoint.empty() && arch.empty() ? "resnet20" : arch;
  data::LoadOptions lo;
  lo.limit = 1;
  const data::Dataset probe = data::load_dataset(id, "", lo);
  s.image_size = probe.images.size(2);
  s.lc = load_classifier(s.checkpoint, a, probe.num_classes, int(s.image_size));
  s.fingerprint = ood::module_fingerprint(*s.lc.model);
  s.lc.model->to(device);
  s.lc.model->eval();
  s.norm = data::normalization_for(id);
  return s;
}

HeatmapSetup setup_heatmap(const std::string& heatmap, const std::string& checkpoint, Device device) {
  OODKIT_CHECK(!heatmap.empty(), "--heatmap is required (a folder written by `oodkit heatmap fit`)");
  HeatmapSetup h;
  h.decoder_path = heatmap_decoder_path(heatmap);
  h.model = ood::HeatmapModel::load(h.decoder_path);
  const ood::HeatmapModelInfo& info = h.model->info();
  const std::string ckpt = checkpoint.empty() ? info.classifier_checkpoint : checkpoint;
  h.classifier = setup_classifier(ckpt, info.classifier_arch, info.id_dataset, device);
  h.model->check_classifier(h.classifier.fingerprint, "the heatmap decoder '" + h.decoder_path + "'");
  return h;
}

std::vector<double> heatmap_scores(ood::HeatmapModel& model, const ood::Features& f) {
  return ood::to_doubles(ood::heatmap_score(model.heatmaps(f.z, f.logits)));
}

}  // namespace oodkit::tools
