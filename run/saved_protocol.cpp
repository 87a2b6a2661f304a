#include "run/saved_protocol.h"

#include "framework/safetensors.h"
#include "run/provenance.h"
#include "run/run_folder.h"

namespace oodkit::run {

void write_saved_protocol(const std::string& save_dir, nlohmann::json protocol,
                          const std::vector<ood::MethodResult>& results) {
  NamedTensors heldout_scores;
  for (const ood::MethodResult& r : results) {
    protocol["thresholds"][r.name] = r.threshold;
    heldout_scores.emplace_back(r.name, Tensor::from_vector(r.val_id_scores, {int64_t(r.val_id_scores.size())}));
  }
  protocol["provenance"] = provenance();
  save_safetensors(save_dir + "/heldout_scores.safetensors", heldout_scores);
  write_text_file(save_dir + "/protocol.json", protocol.dump(2) + "\n");
}

}  // namespace oodkit::run
