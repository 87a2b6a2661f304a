// run/benchmark.h (OpenOOD v1.5's CIFAR groups, the installed subset, the refusals) and the group
// averages of run/eval_report.h, against the paper's lists and hand-worked means. The command
// (`oodkit eval --benchmark`) end to end: tests/cli/check_benchmark.py.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "framework/error.h"
#include "run/benchmark.h"
#include "run/eval_report.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::error_of;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

run::BenchmarkChoice choose(const std::string& name, const std::set<std::string>& installed) {
  return run::choose_benchmark_sets(
      run::find_benchmark(name), [&](const std::string& s) { return installed.count(s) > 0; },
      [](const std::string& s) { return "/data/" + s; }, [](const std::string& s) { return "LAYOUT(" + s + ")"; });
}

}  // namespace

// The groups as OpenOOD v1.5 (Zhang et al. 2023, Table 1) defines them for CIFAR-10 and CIFAR-100.
TEST(Benchmark, GroupsAreOpenOODs) {
  const run::Benchmark& c10 = run::find_benchmark("openood-cifar10");
  EXPECT_EQ(c10.id, "cifar10");
  ASSERT_EQ(c10.groups.size(), 2u);
  EXPECT_EQ(c10.groups[0].name, "near-OOD");
  EXPECT_EQ(c10.groups[0].sets, (std::vector<std::string>{"cifar100", "tinyimagenet"}));
  EXPECT_EQ(c10.groups[1].name, "far-OOD");
  EXPECT_EQ(c10.groups[1].sets, (std::vector<std::string>{"mnist", "svhn", "textures", "places365"}));
  const run::Benchmark& c100 = run::find_benchmark("openood-cifar100");
  EXPECT_EQ(c100.id, "cifar100");
  ASSERT_EQ(c100.groups.size(), 2u);
  EXPECT_EQ(c100.groups[0].sets, (std::vector<std::string>{"cifar10", "tinyimagenet"}));
  EXPECT_EQ(c100.groups[1].sets, (std::vector<std::string>{"mnist", "svhn", "textures", "places365"}));
  const std::string e = error_of([] { run::find_benchmark("openood-imagenet"); });
  EXPECT_TRUE(has(e, "--benchmark") && has(e, "'openood-imagenet'") && has(e, "openood-cifar10, openood-cifar100")) << e;
}

TEST(Benchmark, UsesTheInstalledSetsAndNamesTheMissingOnes) {
  const run::BenchmarkChoice c = choose("openood-cifar10", {"cifar10", "tinyimagenet", "mnist", "svhn"});
  ASSERT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.groups[0].sets, (std::vector<std::string>{"tinyimagenet"}));
  EXPECT_EQ(c.groups[0].missing, (std::vector<std::string>{"cifar100"}));
  EXPECT_TRUE(c.groups[0].partial());
  EXPECT_EQ(c.groups[1].sets, (std::vector<std::string>{"mnist", "svhn"}));
  EXPECT_EQ(c.groups[1].missing, (std::vector<std::string>{"textures", "places365"}));
  EXPECT_EQ(c.ood_sets(), (std::vector<std::string>{"tinyimagenet", "mnist", "svhn"}));
  ASSERT_EQ(c.missing.size(), 3u);
  EXPECT_EQ(c.missing[0].set, "cifar100");
  EXPECT_EQ(c.missing[0].group, "near-OOD");
  EXPECT_EQ(c.missing[2].set, "places365");
  for (const run::MissingSet& m : c.missing) {  // where it was looked for, where to get it, its layout
    EXPECT_TRUE(has(m.line, "'" + m.set + "' is not installed") && has(m.line, "/data/" + m.set) &&
                has(m.line, "LAYOUT(" + m.set + ")") && has(m.line, run::dataset_source(m.set)))
        << m.line;
    EXPECT_TRUE(has(run::dataset_source(m.set), "http")) << m.set;
  }
  // Notes: each partial group, and Tiny ImageNet not being OpenOOD's TIN.
  std::string notes;
  for (const std::string& n : c.notes) notes += n + "\n";
  EXPECT_TRUE(has(notes, "near-OOD average is partial: it leaves out cifar100")) << notes;
  EXPECT_TRUE(has(notes, "far-OOD average is partial: it leaves out textures, places365")) << notes;
  EXPECT_TRUE(has(notes, "not OpenOOD v1.5's TIN")) << notes;

  const run::BenchmarkChoice all = choose("openood-cifar100", {"cifar100", "cifar10", "tinyimagenet", "mnist", "svhn",
                                                               "textures", "places365"});
  EXPECT_TRUE(all.missing.empty());
  EXPECT_FALSE(all.groups[0].partial() || all.groups[1].partial());
  EXPECT_EQ(all.ood_sets(),
            (std::vector<std::string>{"cifar10", "tinyimagenet", "mnist", "svhn", "textures", "places365"}));
}

TEST(Benchmark, RefusesAnEmptyGroupOrAMissingIdSet) {
  std::string e = error_of([] { choose("openood-cifar10", {"cifar10", "tinyimagenet", "cifar100"}); });
  EXPECT_TRUE(has(e, "--benchmark openood-cifar10") && has(e, "none of the far-OOD sets") &&
              has(e, "mnist, svhn, textures, places365"))
      << e;
  e = error_of([] { choose("openood-cifar10", {"cifar10", "mnist"}); });
  EXPECT_TRUE(has(e, "none of the near-OOD sets")) << e;
  e = error_of([] { choose("openood-cifar100", {"cifar10", "tinyimagenet", "mnist"}); });
  EXPECT_TRUE(has(e, "ID set 'cifar100' is not installed") && has(e, "/data/cifar100") && has(e, "LAYOUT(cifar100)"))
      << e;
}

// Group averages in every report: the mean over the group's sets only, worked by hand.
TEST(Benchmark, ReportsGroupMeansOverTheirSets) {
  run::EvalSummary s;
  s.arch = "resnet20";
  s.id = "cifar10";
  s.checkpoint = "w.safetensors";
  s.val_ood = "pseudo";
  s.test_sets = {"tinyimagenet", "mnist", "svhn"};
  ood::MethodResult r;
  r.name = "msp";
  const double auroc[3] = {0.80, 0.90, 0.96}, fpr[3] = {0.50, 0.30, 0.10};
  for (int i = 0; i < 3; ++i) {
    ood::OodMetrics m;
    m.auroc = auroc[i];
    m.aupr_in = m.aupr_out = 0.5;
    m.fpr_at_95_tpr = fpr[i];
    m.fpr_at_95_tpr_openood = 2 * fpr[i];
    m.n_id = 100;
    m.n_ood = 10 * (i + 1);
    r.per_set.push_back(m);
  }
  r.average = ood::mean_metrics(r.per_set);
  r.id_scores = {1.0};
  r.ood_scores = {{0.0}, {0.0}, {0.0}};
  s.results = {r};
  s.benchmark = "openood-cifar10";
  s.groups = {{"near-OOD", {"tinyimagenet"}, {"cifar100"}}, {"far-OOD", {"mnist", "svhn"}, {"textures", "places365"}}};
  s.benchmark_notes = {"a note"};

  const nlohmann::ordered_json j = run::eval_json(s);
  const auto& g = j["methods"]["msp"]["groups"];
  EXPECT_NEAR(g["near-OOD"]["auroc"].get<double>(), 80.0, 1e-12);
  EXPECT_NEAR(g["far-OOD"]["auroc"].get<double>(), 93.0, 1e-12);  // (90 + 96) / 2
  EXPECT_NEAR(g["far-OOD"]["fpr95_tpr"].get<double>(), 20.0, 1e-12);
  EXPECT_NEAR(g["far-OOD"]["fpr95_tpr_openood"].get<double>(), 40.0, 1e-12);
  EXPECT_TRUE(g["near-OOD"]["partial"].get<bool>());
  EXPECT_EQ(j["benchmark"]["name"], "openood-cifar10");
  EXPECT_EQ(j["benchmark"]["groups"]["far-OOD"]["missing"], (std::vector<std::string>{"textures", "places365"}));
  EXPECT_EQ(j["benchmark"]["notes"], (std::vector<std::string>{"a note"}));

  const std::string csv = run::eval_csv(s);
  EXPECT_TRUE(has(csv, "msp,\"-\",near-OOD (partial),80,")) << csv;
  EXPECT_TRUE(has(csv, "msp,\"-\",far-OOD (partial),93,")) << csv;
  const std::string md = run::eval_markdown(s);
  EXPECT_TRUE(has(md, "## far-OOD (partial): mean over mnist, svhn; not installed: textures, places365")) << md;
  EXPECT_TRUE(has(md, "| msp | - | **93.00** |")) << md;
  EXPECT_TRUE(has(md, "- Note: a note.")) << md;

  // Without a benchmark nothing of it appears.
  s.benchmark.clear();
  s.groups.clear();
  s.benchmark_notes.clear();
  EXPECT_FALSE(run::eval_json(s)["methods"]["msp"].contains("groups"));
  EXPECT_FALSE(has(run::eval_csv(s), "OOD") || has(run::eval_markdown(s), "Benchmark"));
}
