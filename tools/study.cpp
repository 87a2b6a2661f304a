#include "tools/study.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/common.h"
#include "tools/eval.h"
#include "tools/train.h"

namespace oodkit::tools {

int run_study(const StudyOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ::mkdir(o.out_dir.c_str(), 0755);

  TrainOptions tr;
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
  std::printf("== 1/2 training %s on %s\n", o.arch.c_str(), o.id.c_str());
  std::fflush(stdout);
  if (int rc = run_train(tr)) return rc;

  EvalOptions ev;
  ev.checkpoint = tr.out_dir + "/model.safetensors";
  ev.id = o.id;
  ev.ood = o.ood;
  ev.val_ood = o.val_ood;
  ev.methods = o.methods;
  ev.tuning = o.tuning;
  ev.heldout = 1000;
  ev.val_ood_limit = 1000;
  ev.seed = o.seed;
  ev.device = o.device;
  ev.out_dir = o.out_dir + "/eval";
  std::printf("\n== 2/2 evaluating OOD detectors\n");
  std::fflush(stdout);
  if (int rc = run_eval(ev)) return rc;

  // The report: training summary, then the evaluation tables.
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
  report << "\n## OOD detection\n" << body;
  write_text_file(o.out_dir + "/report.md", report.str());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nstudy finished in %.0f s: report %s/report.md\n", secs, o.out_dir.c_str());
  return 0;
}

}  // namespace oodkit::tools
