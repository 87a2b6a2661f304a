// The parts of `oodkit study`'s report.md beyond the result tables (tools/study.cpp): the
// training curves as a figure and one strip of example images per data set.
#pragma once
#include <string>
#include <vector>

namespace oodkit::tools {

// A set the study uses and what for ("ID: training and test", "OOD validation: tuning",
// "OOD test"); `spec` as `oodkit eval` takes it ("synthetic-ood-noise", "tinyimagenet:val").
struct StudySet {
  std::string spec, role;
};

// Writes <out_dir>/figures/examples_<i>.png (the first `count` images of each set side by side,
// magnified 3x, at the first set's size) and returns the Markdown section "## The data": one table row per
// set with its name, role, image count and the strip.
std::string study_data_section(const std::string& out_dir, const std::vector<StudySet>& sets, int64_t count = 6);

// Draws <out_dir>/figures/training.png from classifier/log.json (and heatmap/log.json when present)
// with tools/study_figures.py (`classes`: the ID set's class count, for the chance line); returns the Markdown image line, or "" (after one warning) without
// the script's interpreter or matplotlib.
std::string study_training_figure(const std::string& out_dir, int64_t classes);

}  // namespace oodkit::tools
