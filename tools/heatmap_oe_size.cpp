// `oodkit heatmap oe-size`: the OE-size ablation. One decoder per OE fraction of the ID training
// size (same classifier, ID rows, epochs and seed), each scored on the validation pair and the OOD
// test sets; the table goes to <out>/oe_size.{md,json}.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/registry.h"
#include "ood/metrics.h"
#include "ood/protocol.h"
#include "tools/heatmap.h"
#include "tools/heatmap_common.h"

namespace oodkit::tools {

int run_heatmap_oe_size(const HeatmapOeSizeOptions& o) {
  const std::vector<double> fractions = parse_doubles(o.fractions, "--fractions");
  OODKIT_CHECK(!fractions.empty(), "heatmap oe-size: --fractions is empty");
  for (double f : fractions) OODKIT_CHECK(f > 0, "heatmap oe-size: fractions must be positive, got ", f);
  const HeatmapFitOptions& base = o.fit;
  ClassifierSetup cs = setup_classifier(base.checkpoint, base.arch, base.id, base.device);
  data::LoadOptions train_lo;
  train_lo.split = "train";
  train_lo.limit = -1;
  const int64_t n_train = data::load_dataset(base.id, "", train_lo).size();
  const int64_t n_id = base.id_limit >= 0 ? std::min(base.id_limit, n_train - base.heldout) : n_train - base.heldout;

  // Test features once (the classifier is fixed).
  const data::Dataset test = data::load_dataset(base.id, "", {});
  const ood::Features test_f = run::extract(*cs.lc.model, test, first_rows(test.size()), cs.norm, base.id + ":test", {base.device, 256}).features;
  std::vector<std::pair<std::string, ood::Features>> ood_f;
  for (const std::string& spec : split_list(o.ood)) {
    const data::Dataset d = load_named(spec, cs.image_size, o.ood_limit);
    ood_f.emplace_back(spec, run::extract(*cs.lc.model, d, first_rows(d.size()), cs.norm, spec, {base.device, 256}).features);
  }
  make_output_dir(base.out_dir, "--out");
  std::ostringstream md;
  md << "# OE-size ablation\n\n" << cs.lc.arch << " on " << base.id << ", " << n_id << " ID training images, "
     << base.epochs << " epochs, width " << base.width << ", seed " << base.seed
     << ". Heatmap score AUROC / FPR95 (%); validation = held-out ID vs " << base.val_ood << ".\n\n| OE fraction | OE images | validation AUROC |";
  for (const auto& [name, f] : ood_f) md << " " << name << " AUROC / FPR95 |";
  md << " average AUROC / FPR95 |\n|---|---|---|";
  for (size_t i = 0; i <= ood_f.size(); ++i) md << "---|";
  md << "\n";
  nlohmann::ordered_json j;
  for (double frac : fractions) {
    HeatmapFitOptions fo = base;
    fo.oe_limit = std::max<int64_t>(1, std::llround(frac * double(n_id)));
    fo.out_dir = base.out_dir + "/oe_" + std::to_string(fo.oe_limit);
    std::printf("\n== OE fraction %g: %lld OE images -> %s\n", frac, (long long)fo.oe_limit, fo.out_dir.c_str());
    std::fflush(stdout);
    run_heatmap_fit(fo);
    std::shared_ptr<ood::HeatmapModel> hm = ood::HeatmapModel::load(fo.out_dir + "/decoder.safetensors");
    std::ifstream lf(fo.out_dir + "/log.json");
    const nlohmann::json log = nlohmann::json::parse(lf);
    const nlohmann::json& last = log.back();
    const double val_auroc = last.at("validation_auroc").is_null() ? -1 : last.at("validation_auroc").get<double>();
    const std::vector<double> id_s = heatmap_scores(*hm, test_f);
    std::vector<ood::OodMetrics> per;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "| %g | %lld | %.2f |", frac, (long long)fo.oe_limit, val_auroc);
    md << buf;
    nlohmann::ordered_json row{{"fraction", frac}, {"oe_images", fo.oe_limit}, {"validation_auroc", val_auroc}};
    for (const auto& [name, f] : ood_f) {
      per.push_back(ood::compute_ood_metrics(id_s, heatmap_scores(*hm, f)));
      std::snprintf(buf, sizeof(buf), " %.2f / %.2f |", 100 * per.back().auroc, 100 * per.back().fpr_at_95_tpr);
      md << buf;
      row["sets"][name] = {{"auroc", 100 * per.back().auroc}, {"fpr95_tpr", 100 * per.back().fpr_at_95_tpr}};
    }
    const ood::OodMetrics avg = ood::mean_metrics(per);
    std::snprintf(buf, sizeof(buf), " %.2f / %.2f |\n", 100 * avg.auroc, 100 * avg.fpr_at_95_tpr);
    md << buf;
    row["average"] = {{"auroc", 100 * avg.auroc}, {"fpr95_tpr", 100 * avg.fpr_at_95_tpr}};
    j["runs"].push_back(row);
    write_text_file(base.out_dir + "/oe_size.md", md.str());
    write_text_file(base.out_dir + "/oe_size.json", j.dump(2) + "\n");
  }
  std::printf("\n%s\nwrote %s/oe_size.{md,json}\n", md.str().c_str(), base.out_dir.c_str());
  return 0;
}

void add_heatmap_oe_size_command(CLI::App& heatmap, CommandList& commands) {
  const auto opts = std::make_shared<HeatmapOeSizeOptions>();
  HeatmapOeSizeOptions& hoe = *opts;
  Command c;
  auto* hoe_cmd = c.app = heatmap.add_subcommand("oe-size", "OE-size ablation: one decoder per OE fraction, one table");
  add_heatmap_fit_options(hoe_cmd, hoe.fit, c);
  hoe_cmd->add_option("--fractions", hoe.fractions, "OE sizes as fractions of the ID training size")
      ->capture_default_str();
  hoe_cmd->add_option("--ood", hoe.ood, "OOD test sets")->capture_default_str();
  hoe_cmd->add_option("--ood-limit", hoe.ood_limit, "images per OOD test set (-1: all)")->capture_default_str();
  c.run = [opts](Device device) {
    opts->fit.device = device;
    return run_heatmap_oe_size(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
