#include "tools/study.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/registry.h"
#include "framework/random.h"
#include "models/registry.h"
#include "ood/detectors.h"
#include "run/plan.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/eval.h"
#include "tools/heatmap.h"
#include "tools/report.h"
#include "tools/study_report.h"
#include "tools/train.h"

namespace oodkit::tools {

namespace {

// What the study runs: its three steps' options, filled from the study's.
struct StudySteps {
  TrainOptions train;
  HeatmapFitOptions fit;  // used when o.heatmap_epochs > 0
  EvalOptions eval;
};

// The study's eval and decoder hold out 1000 ID training images (validation, as `oodkit eval`).
constexpr int64_t kStudyHeldout = 1000;

StudySteps study_steps(const StudyOptions& o, int64_t n_train) {
  StudySteps s;
  TrainOptions& tr = s.train;
  tr.arch = o.arch;
  tr.dataset = o.id;
  tr.limit = o.train_limit;
  tr.epochs = o.epochs;
  tr.batch = o.batch;
  tr.lr = o.lr;
  tr.nesterov = true;
  tr.seed = o.seed;
  tr.device = o.device;
  tr.out_dir = o.out_dir + "/classifier";
  tr.resume = true;  // a re-run continues (or skips) the training it already did

  HeatmapFitOptions& hf = s.fit;
  hf.checkpoint = tr.out_dir + "/model.safetensors";
  hf.id = o.id;
  hf.oe = o.oe;
  hf.oe_skip = 0;
  hf.heldout = kStudyHeldout;
  // The ID rows the decoder sees: the classifier's training rows (train_limit) minus the held-out ones.
  const int64_t n_id = std::min<int64_t>(n_train, o.train_limit >= 0 ? o.train_limit : n_train) - hf.heldout;
  hf.id_limit = n_id;
  hf.id_limit_option = "--train-limit";  // study's option behind id_limit
  hf.oe_limit = std::max<int64_t>(1, n_id / 5);
  hf.val_ood = o.val_ood;
  hf.val_ood_limit = 1000;
  hf.epochs = o.heatmap_epochs;
  hf.width = o.heatmap_width;
  hf.seed = o.seed;
  hf.device = o.device;
  hf.out_dir = o.out_dir + "/heatmap";
  hf.resume = true;

  EvalOptions& ev = s.eval;
  if (o.heatmap_epochs > 0) ev.heatmap = hf.out_dir;
  ev.checkpoint = tr.out_dir + "/model.safetensors";
  ev.id = o.id;
  ev.ood = o.ood;
  ev.val_ood = o.val_ood;
  ev.methods = o.methods;
  ev.tuning = o.tuning;
  ev.set = o.set;
  ev.heldout = kStudyHeldout;
  ev.val_ood_limit = 1000;
  ev.seed = o.seed;
  ev.device = o.device;
  ev.out_dir = o.out_dir + "/eval";
  return s;
}

// ---- the plan: every set present, every size possible, the architecture and every method known,
// --out creatable; refused before the classifier's first epoch (each step plans again when it
// starts, on what the steps before it wrote). Returns the steps' options.
StudySteps plan_study(const StudyOptions& o) {
  OODKIT_CHECK(o.heatmap_epochs >= 0, "study: --heatmap-epochs must be 0 (no heatmap detector) or more");
  OODKIT_CHECK(o.heatmap_width > 0, "study: --heatmap-width must be positive");
  run::check_output_dir(o.out_dir, "--out");
  data::LoadOptions lo;
  lo.split = "train";
  const data::Dataset train = run::load_for("--id", o.id + ":train", [&] { return data::load_dataset(o.id, "", lo); });
  OODKIT_CHECK(train.labels.defined(), "study: --id '", o.id, "' has no labels");
  run::check_image_size(train, o.id, "--id");
  run::load_for("--id", o.id + ":test", [&] { return load_named(o.id, 0, 1); });
  const int64_t n_train = train.size();
  const StudySteps s = study_steps(o, n_train);

  // The classifier's training rows (the first --train-limit): every class, a batch.
  OODKIT_CHECK(o.train_limit == -1 || o.train_limit > 0, "study: --train-limit ", o.train_limit,
               " would leave no training images; give a positive count or -1 (all)");
  const std::vector<int64_t> rows = first_rows(n_train, o.train_limit);
  run::check_classes_covered(train.labels, rows, train.num_classes, o.id + ":train",
                             o.train_limit >= 0 ? "--train-limit" : "--id");
  run::check_batch_fits(o.batch, int64_t(rows.size()), o.id + ":train", "--batch");
  const std::vector<std::string> archs = models::classifier_names();
  OODKIT_CHECK(std::find(archs.begin(), archs.end(), o.arch) != archs.end(), "study: unknown --arch '", o.arch, "'");
  Generator gen(o.seed);  // a throwaway network: the architecture and its feature width
  const std::shared_ptr<models::Classifier> net =
      models::make_classifier(o.arch, train.num_classes, int(train.images.size(2)), gen);

  // Eval: its held-out images, its methods and sets (refused by eval only after the training).
  run::check_heldout(kStudyHeldout, n_train, o.id + ":train", "--id");
  for (const std::string& method : split_list(o.methods))
    OODKIT_CHECK(o.heatmap_epochs > 0 || !ood::is_registered(method) || !ood::needs_decoder({method}),
                 "study: method '", method, "' in --methods needs the heatmap decoder: give --heatmap-epochs 1 or more");
  const EvalMethods m = plan_eval_methods(s.eval);
  for (const std::string& method : m.used)
    if (const std::string why = run::ash_problem(method, net->feature_dim(), m.settings); !why.empty())
      OODKIT_FAIL("study: method '", method, "' in --methods cannot run on the ", net->feature_dim(), " features of ",
                  o.arch, ": ", why);
  run::load_for("--val-ood", o.val_ood, [&] { return load_named(o.val_ood, 0, 1); });
  for (const std::string& spec : split_list(o.ood)) run::load_for("--ood", spec, [&] { return load_named(spec, 0, 1); });

  // The decoder: ID rows left after the held-out ones, an OE set apart from its validation images.
  if (o.heatmap_epochs > 0) {
    OODKIT_CHECK(s.fit.id_limit > 0, "study: --train-limit ", o.train_limit, " leaves no ID training images for the ",
                 "heatmap decoder (", kStudyHeldout, " are held out for validation); give a --train-limit above ",
                 kStudyHeldout, " or --heatmap-epochs 0");
    OODKIT_CHECK(!run::same_images(o.val_ood, o.oe), "study: --oe '", o.oe, "' can name the images of --val-ood '",
                 o.val_ood, "': the heatmap decoder would train on its validation images; give another --oe (e.g. ",
                 "another split of the same set)");
    run::load_for("--oe", o.oe, [&] { return load_named(o.oe, 0, 1); });
  }
  return s;
}

// Writes <out>/report.md (and report.html when tools/study_figures.py can draw it) from what the
// steps wrote; returns whether report.html was written.
bool write_study_report(const StudyOptions& o, const StudySteps& steps_options) {
  const TrainOptions& tr = steps_options.train;
  const HeatmapFitOptions& hf = steps_options.fit;
  const EvalOptions& ev = steps_options.eval;
  // The report: what was trained (table and curves), the data (an example strip per set), then
  // the evaluation: summary figure, findings and tables.
  std::vector<StudySet> sets{{o.id, "ID: training, held-out and test images"}, {o.val_ood, "OOD validation: tuning"}};
  for (const std::string& s : split_list(o.ood)) sets.push_back({s, "OOD test"});
  const std::string data_section = study_data_section(o.out_dir, sets);
  const std::string training_figure =
      study_training_figure(o.out_dir, load_named(o.id, 0, 1).num_classes);
  std::ifstream logf(tr.out_dir + "/log.json");
  const nlohmann::json log = nlohmann::json::parse(logf);
  std::ifstream mdf(ev.out_dir + "/results.md");
  std::stringstream results;
  results << mdf.rdbuf();
  std::ostringstream report;
  report << "# oodkit study\n\nClassifier: " << o.arch << " trained on " << o.id << " (" << o.train_limit
         << " images, " << o.epochs << " epochs, SGD lr " << o.lr << " cosine, batch " << o.batch << ", seed " << o.seed
         << ", " << o.device.str() << ").\n\n| epoch | train loss | train acc | test acc | s |\n|---|---|---|---|---|\n";
  for (const auto& e : log) {
    char line[160];
    std::snprintf(line, sizeof line, "| %d | %.4f | %.2f%% | %.2f%% | %.1f |\n", e["epoch"].get<int>(),
                  e["train_loss"].get<double>(), 100 * e["train_accuracy"].get<double>(),
                  100 * e["test_accuracy"].get<double>(), e["seconds"].get<double>());
    report << line;
  }
  std::string body = results.str();
  if (body.rfind("# ", 0) == 0) body = body.substr(body.find('\n') + 1);  // drop the eval title
  if (o.heatmap_epochs > 0) {
    std::ifstream hlf(hf.out_dir + "/log.json");
    const nlohmann::json hlog = nlohmann::json::parse(hlf);
    report << "\nHeatmap decoder: width " << o.heatmap_width << ", OE " << o.oe << " (" << hf.oe_limit
           << " images), Adam 2e-4, batch 200 (docs/heatmap.md).\n\n| epoch | loss | ID loss | OE loss | validation AUROC | s |\n"
           << "|---|---|---|---|---|---|\n";
    for (const auto& e : hlog) {
      char line[200];
      std::snprintf(line, sizeof line, "| %d | %.2f | %.2f | %.2f | %.2f | %.1f |\n", e["epoch"].get<int>(),
                    e["loss"].get<double>(), e["id_loss"].get<double>(), e["oe_loss"].get<double>(),
                    e["validation_auroc"].is_null() ? -1.0 : e["validation_auroc"].get<double>(),
                    e["seconds"].get<double>());
      report << line;
    }
  }
  report << training_figure << data_section;
  report << "\n## OOD detection\n\nScore histograms and ROC curves of every detector: [eval/report.html](eval/report.html).\n";
  // What tools/report.py drew and found (absent when Python/matplotlib are missing).
  if (std::ifstream(ev.out_dir + "/plots/summary.png"))
    report << "\n![AUROC and FPR95 of every detector on every OOD set](eval/plots/summary.png)\n";
  if (std::ifstream findings{ev.out_dir + "/findings.md"}) {
    std::stringstream f;
    f << findings.rdbuf();
    std::string text = f.str();
    if (text.rfind("## ", 0) == 0) text = "#" + text;  // a sub-section of "OOD detection"
    report << "\n" << text;
  }
  report << body;
  write_text_file(o.out_dir + "/report.md", report.str());
  // The same page for a browser (tools/study_figures.py --html; absent without its interpreter).
  return draw_figure("study_figures.py", {o.out_dir, "--html"}, o.out_dir + "/report.html");
}

}  // namespace

int run_study(const StudyOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const StudySteps steps_options = plan_study(o);
  const TrainOptions& tr = steps_options.train;
  const HeatmapFitOptions& hf = steps_options.fit;
  const EvalOptions& ev = steps_options.eval;
  make_output_dir(o.out_dir, "--out");
  // report.md is written last (atomically) and marks a finished study: an earlier one's goes
  // first, so a run killed at any moment leaves none (eval/ follows tools/eval.cpp's contract).
  std::remove((o.out_dir + "/report.md").c_str());
  std::remove((o.out_dir + "/report.html").c_str());
  remove_eval_results(o.out_dir + "/eval");  // eval removes them only after its plan passed

  const int steps = o.heatmap_epochs > 0 ? 3 : 2;
  std::printf("== 1/%d training %s on %s\n", steps, o.arch.c_str(), o.id.c_str());
  std::fflush(stdout);
  if (int rc = run_train(tr)) return rc;
  if (o.heatmap_epochs > 0) {
    std::printf("\n== 2/3 training the heatmap decoder (width %g, %d epochs)\n", o.heatmap_width, o.heatmap_epochs);
    std::fflush(stdout);
    if (int rc = run_heatmap_fit(hf)) return rc;
  }
  std::printf("\n== %d/%d evaluating OOD detectors\n", steps, steps);
  std::fflush(stdout);
  if (int rc = run_eval(ev)) return rc;

  const bool html = write_study_report(o, steps_options);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nstudy finished in %.0f s: report %s/report.md%s, every detector's histograms and ROC curves %s/report.html\n",
              secs, o.out_dir.c_str(), html ? (" and " + o.out_dir + "/report.html").c_str() : "", ev.out_dir.c_str());
  return 0;
}

void add_study_command(CLI::App& app, CommandList& commands) {
  const auto opts = std::make_shared<StudyOptions>();
  StudyOptions& st = *opts;
  Command c;
  auto* study_cmd = c.app = app.add_subcommand(
      "study", "Train a classifier, evaluate every detector, write a report (default: the embedded synthetic study)");
  study_cmd->add_option("--arch", st.arch)->capture_default_str();
  study_cmd->add_option("--id", st.id, "ID dataset")->capture_default_str();
  study_cmd->add_option("--ood", st.ood, "OOD test sets")->capture_default_str();
  study_cmd->add_option("--val-ood", st.val_ood, "OOD validation set")->capture_default_str();
  study_cmd->add_option("--train-limit", st.train_limit)->capture_default_str();
  study_cmd->add_option("--epochs", st.epochs)->capture_default_str()->check(positive_count());
  study_cmd->add_option("--batch", st.batch)->capture_default_str()->check(positive_count());
  study_cmd->add_option("--lr", st.lr)->capture_default_str();
  study_cmd->add_option("--methods", st.methods)->capture_default_str();
  study_cmd->add_option("--tuning", st.tuning, "all | features | none")->capture_default_str();
  study_cmd->add_option("--set", st.set, "<method>.<key>=<v>[,<v>...]: as `oodkit eval --set`; repeatable");
  study_cmd->add_option("--heatmap-epochs", st.heatmap_epochs, "heatmap decoder epochs (0: no heatmap detector)")
      ->capture_default_str();
  study_cmd->add_option("--heatmap-width", st.heatmap_width, "heatmap decoder width multiplier")->capture_default_str();
  study_cmd->add_option("--oe", st.oe, "outlier-exposure set for the heatmap decoder")->capture_default_str();
  study_cmd->add_option("--seed", st.seed)->capture_default_str();
  add_device_option(study_cmd, c);
  study_cmd->add_option("--out", st.out_dir)->capture_default_str();
  c.run = [opts](Device device) {
    opts->device = device;
    return run_study(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
