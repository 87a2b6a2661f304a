// Which input normalisation a classifier is evaluated with, in this order:
//   1. --mean and --std (three values each, given together),
//   2. the checkpoint's metadata input_mean / input_std (as the shipped ResNet-20 and every
//      checkpoint `oodkit train` writes carry them),
//   3. the ID dataset's default (data::normalization_for), with a note that it is a guess.
// A model evaluated with another normalisation than it was trained with gives plausible, wrong
// numbers, so the choice is printed (stderr) and recorded (protocol.json, results.json).
#pragma once
#include <array>
#include <map>
#include <string>

#include "data/dataset.h"

namespace oodkit::run {

struct NormalizationChoice {
  data::Normalization norm;
  std::string source;  // "--mean/--std", "checkpoint metadata" or "the default for '<id>'"
};

// "a,b,c" -> three finite numbers (std: each > 0); an Error naming `what` otherwise.
std::array<float, 3> parse_channel_values(const std::string& text, const std::string& what, bool positive);

// `meta` is the checkpoint's metadata (empty for files without any); `mean`/`std` the options' text
// ("" when not given). Errors name the option or the checkpoint file.
NormalizationChoice choose_normalization(const std::string& mean, const std::string& std,
                                         const std::map<std::string, std::string>& meta,
                                         const std::string& checkpoint, const std::string& id);

// "mean 0.485,0.456,0.406 std 0.229,0.224,0.225 (checkpoint metadata)"
std::string describe(const NormalizationChoice& c);

}  // namespace oodkit::run
