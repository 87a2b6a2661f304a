// Dataset rows -> features: the one batched extraction loop behind eval, score, study and the
// heatmap commands (classifier forward passes under no-grad, ood/features.h), with a progress line
// on stderr ("features <label> done/total ...": tests look for it to tell whether work started).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "ood/features.h"
#include "ood/protocol.h"

namespace oodkit::run {

// Normalised float images [len, C, H, W] of rows [start, start + len) of a uint8 dataset (CPU).
Tensor normalized_rows(const data::Dataset& ds, int64_t start, int64_t len, const data::Normalization& norm);

struct ExtractOptions {
  Device device = Device::cpu();  // where the classifier runs; the features stay there
  int64_t batch = 256;            // images per forward pass
  ood::FeatureOptions features;   // which columns (ood::feature_needs) and their settings
  bool keep_images = false;       // also return the normalised images (CPU), for input perturbation
};

// Features of `rows` of `ds` (in that order), in batches; the model is put in eval mode. `label`
// names the set in the progress line and in errors ("<label>: no images" when rows is empty).
// Returns a ScoredSet named `label` whose images are defined only with keep_images.
ood::ScoredSet extract(models::Classifier& model, const data::Dataset& ds, const std::vector<int64_t>& rows,
                       const data::Normalization& norm, const std::string& label, const ExtractOptions& options);

// Rows 0..n-1, or the first `limit` of them (limit >= 0).
std::vector<int64_t> first_rows(int64_t n, int64_t limit = -1);

}  // namespace oodkit::run
