// Features from any network: the safetensors file `oodkit eval --features` and `oodkit score
// --features` read, and `oodkit eval --save-features` writes (docs/data.md, "Features files").
//
// Tensor names (N rows each set, D feature columns, K classes):
//   head.weight               F32 [K, D]  the last layer's weight (PyTorch nn.Linear layout)
//   head.bias                 F32 [K]     its bias (zeros for a layer without one)
//   fit.features              F32 [N, D]  ID training rows the detectors are fitted on
//   fit.labels                I64 [N]     their classes, 0..K-1 (every class at least once)
//   id_val.features           F32 [N, D]  held-out ID rows (not in fit): the validation pair's ID
//                                         side and ReAct's percentile
//   id_test.features          F32 [N, D]  ID test rows
//   id_test.labels            I64 [N]     their classes (the reported ID accuracy)
//   val_ood.<name>.features   F32 [N, D]  exactly one OOD validation set (never a test set)
//   ood.<name>.features       F32 [N, D]  one or more OOD test sets, reported in the file's order
//   <set>.logits              F32 [N, K]  optional, for any set above: the network's own logits
// F16 and BF16 are read as F32. "__metadata__" may hold "id" (the ID set's name in the reports,
// default "id") and "model" (the network's name, default "features"). Any other tensor is refused.
// Logits, when absent, are features · headᵀ + bias; when present they must agree with that to 1%
// of the row's largest |logit| (else the head is not the layer that made them) and are used as given.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ood/features.h"

namespace oodkit::run {

struct FeatureSet {
  std::string name;     // "fit", "id_val", "id_test", or the <name> of val_ood.<name> / ood.<name>
  ood::Features features;  // z [N, D] and logits [N, K], CPU float32
  Tensor labels;        // int64 [N] (fit, id_test); undefined otherwise
  bool logits_given = false;  // the file held <set>.logits
};

struct FeaturesFile {
  std::string path;
  Tensor weight, bias;  // [K, D], [K]
  FeatureSet fit, id_val, id_test, val_ood;
  std::vector<FeatureSet> ood;  // in the file's order
  std::string id = "id", model = "features";  // from "__metadata__"
  int64_t num_classes() const { return weight.size(0); }
  int64_t feature_dim() const { return weight.size(1); }
};

// Reads and validates the whole file before anything else runs: every error is one line naming
// the file and the tensor (missing or unknown tensor, wrong dtype or shape, a feature width that
// is not the head's, NaN or infinity, a label outside 0..K-1, a class without fitting rows, logits
// that disagree with the head, a validation OOD set that is also a test set).
FeaturesFile read_features_file(const std::string& path);

// The head and one set of a features file, for `oodkit score --features FILE --data SET`: SET is
// "fit", "id_val", "id_test", "val_ood.<name>" or "ood.<name>"; only head.* and SET's tensors are
// needed (other tensors are ignored, so a file of new rows needs no fitting rows). Validated as above.
std::pair<FeaturesFile, FeatureSet> read_features_set(const std::string& path, const std::string& set);

// "fnv1a64:<16 hex digits>" over the head's weight and bias (dtype, shape, bytes): what `oodkit score
// --features` compares with the head the detectors were fitted with.
std::string head_fingerprint(const Tensor& weight, const Tensor& bias);

// Writes a features file (atomically): the head, then each set's features, logits and labels
// (when defined), named as above. `metadata` goes to "__metadata__".
void write_features_file(const std::string& path, const Tensor& weight, const Tensor& bias,
                         const std::vector<std::pair<std::string, const FeatureSet*>>& sets,
                         const std::map<std::string, std::string>& metadata);

// Why `method` (a registered detector or fusion) cannot run on a features file, or "" when it can:
// it needs the images, inner feature maps or a heatmap decoder; a fusion "fuses <c>, which <c's reason>".
std::string unavailable_on_features(const std::string& method);

}  // namespace oodkit::run
