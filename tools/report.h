// The browser report of an eval run: runs tools/report.py (matplotlib) on the run folder, which
// writes plots/<set>_hist.png, plots/<set>_roc.png and report.html from results.json and
// scores.safetensors (see the script's header).
#pragma once
#include <string>
#include <vector>

namespace oodkit::tools {

// Runs the report script on `run_dir` (results.json and scores.safetensors written). Never
// throws and never fails the run (the results files are complete already): a missing
// interpreter, script or matplotlib, or a failing script, is one warning line on stderr.
// Returns true when report.html was written. The interpreter is $OODKIT_PYTHON, else the one
// chosen at configure time (the first of /usr/bin/python3, CMake's Python 3 that imports
// matplotlib); the script is $OODKIT_REPORT_SCRIPT, else tools/report.py of the source tree.
bool write_html_report(const std::string& run_dir, const std::string& title);

// A labelled picture grid (tools/picture_grid.py, beside the report script, with the same
// interpreter) from `arrays`, a safetensors file in the layout that script's header states, written
// to `png` (atomically). Never throws: returns false, after one warning line, when it could not.
bool draw_picture_grid(const std::string& arrays, const std::string& png);

// Runs `script` (a file beside the report script: e.g. "study_figures.py") with `args` under the
// report's interpreter; true when it exited 0. `what` names the output in the one warning line
// printed otherwise. Never throws.
bool draw_figure(const std::string& script, const std::vector<std::string>& args, const std::string& what);

}  // namespace oodkit::tools
