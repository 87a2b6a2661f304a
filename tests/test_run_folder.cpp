// run::RunFolder (run/run_folder.h), the output folder `train` and `heatmap fit` share: the commit
// order and its non-finite guard, --resume's option check and log trimming, and the removal of a
// killed run's temporaries. The end-to-end behaviour (kill at any moment, resume bit-exact) is
// checked by tests/cli/check_killed_resume.py and check_train_resume.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "framework/error.h"
#include "run/run_folder.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::error_of;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("oodkit_run_folder_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

void touch(const std::string& path, const std::string& text = "x") { std::ofstream(path) << text; }

TEST(RunFolder, OpenCreatesTheFolderWithItsParentsAndNotBefore) {
  const std::string dir = fresh_dir("parents") + "/a/b";
  const run::RunFolder folder(dir, "train", "train into another --out");
  EXPECT_FALSE(fs::exists(fs::path(dir).parent_path().parent_path()));  // the plan creates nothing
  folder.open();
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(folder.last_path(), dir + "/last.safetensors");
  EXPECT_FALSE(folder.has_checkpoint());
  fs::remove_all(fs::path(dir).parent_path().parent_path());
}

TEST(RunFolder, AFileInTheWayIsAnErrorNamingOut) {
  const std::string base = fresh_dir("file");
  fs::create_directories(base);
  touch(base + "/f");
  const std::string msg = error_of([&] { run::RunFolder(base + "/f/run", "train", "x"); });
  EXPECT_NE(msg.find("--out: cannot create the folder '" + base + "/f/run'"), std::string::npos) << msg;
  fs::remove_all(base);
}

TEST(RunFolder, CommitWritesTheFilesThenTheLogThenTheCheckpoint) {
  const std::string dir = fresh_dir("commit");
  const run::RunFolder folder(dir, "train", "x");
  folder.open();
  std::vector<std::string> order;
  const NamedTensors state = {{"w", Tensor::from_vector(std::vector<float>{1.f, 2.f}, {2})}};
  const nlohmann::json log = nlohmann::json::array({{{"epoch", 1}}});
  folder.commit(
      1, state,
      [&] {
        order.push_back("files:" + std::string(fs::exists(folder.path("log.json")) ? "log" : "nolog"));
      },
      log, [&] { order.push_back("last:" + std::string(fs::exists(folder.path("log.json")) ? "log" : "nolog")); });
  EXPECT_EQ(order, (std::vector<std::string>{"files:nolog", "last:log"}));
  std::ifstream f(folder.path("log.json"));
  EXPECT_EQ(nlohmann::json::parse(f), log);
  fs::remove_all(dir);
}

TEST(RunFolder, ANonFiniteStateIsNeverSaved) {
  const std::string dir = fresh_dir("nonfinite");
  const run::RunFolder folder(dir, "heatmap fit", "x");
  folder.open();
  const NamedTensors state = {{"ok", Tensor::from_vector(std::vector<float>{1.f}, {1})},
                              {"bad", Tensor::from_vector(std::vector<float>{1.f, std::nanf("")}, {2})}};
  bool wrote = false;
  const std::string msg = error_of([&] {
    folder.commit(3, state, [&] { wrote = true; }, nlohmann::json::array(), [&] { wrote = true; });
  });
  EXPECT_FALSE(wrote);
  EXPECT_FALSE(fs::exists(folder.path("log.json")));
  EXPECT_EQ(msg, "heatmap fit: 'bad' became non-finite (NaN or Inf) in epoch 3 (lower --lr?); not saved: " + dir +
                     "/last.safetensors keeps the last finished epoch");
  fs::remove_all(dir);
}

TEST(RunFolder, ResumeLogDropsEpochsPastTheCheckpoint) {
  const std::string dir = fresh_dir("log");
  const run::RunFolder folder(dir, "train", "x");
  folder.open();
  touch(folder.path("log.json"), R"([{"epoch": 1}, {"epoch": 2}, {"epoch": 3}])");
  const nlohmann::json log = folder.resume_log(2);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log.back().at("epoch").get<int>(), 2);
  fs::remove(folder.path("log.json"));
  EXPECT_EQ(folder.resume_log(2), nlohmann::json::array());
  touch(folder.path("log.json"), "{\"epoch\": 1}");
  const std::string msg = error_of([&] { folder.resume_log(1); });
  EXPECT_NE(msg.find("train --resume: '" + dir + "/log.json' is not a JSON array"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(RunFolder, OptionCheckNamesEachDifference) {
  const std::string dir = fresh_dir("options");
  const run::RunFolder folder(dir, "heatmap fit", "fit into another --out");
  folder.open();
  const nlohmann::json now = {{"--lr", 0.002}, {"--seed", 1}, {"--width", 0.25}};
  EXPECT_EQ(error_of([&] { folder.check_options(R"({"--lr": 0.002, "--seed": 1, "--width": 0.25})", now); }), "");
  EXPECT_EQ(error_of([&] { folder.check_options("", now); }), "");  // a checkpoint from before options
  EXPECT_EQ(error_of([&] { folder.check_options(R"({"--lr": 0.001, "--seed": 1})", now); }),
            "heatmap fit --resume: '" + dir + "/last.safetensors' was written with other options: --lr 0.001 (now "
            "0.002), --width (absent) (now 0.25); resume with the checkpoint's options (or fit into another --out)");
  EXPECT_EQ(run::option_differences("[1]", now), "(unreadable \"options\" metadata)");
  fs::remove_all(dir);
}

TEST(RunFolder, RemovesOnlyTheTemporariesOfDeadWriters) {
  const std::string dir = fresh_dir("stale");
  const run::RunFolder folder(dir, "train", "x");
  folder.open();
  // A pid that cannot be running: above the kernel's pid_max (4,194,304 at most).
  const std::string dead = "999999999", live = std::to_string(::getpid());
  const std::vector<std::string> files = {"last.safetensors.tmp." + dead,  "log.json.tmp." + dead,
                                          "model.safetensors.tmp." + dead, "model.safetensors.tmp." + live,
                                          "other.tmp." + dead,             "log.json.tmp.12x"};
  for (const std::string& name : files)
    touch(folder.path(name));
  folder.remove_stale({"model.safetensors"});
  EXPECT_FALSE(fs::exists(folder.path("last.safetensors.tmp." + dead)));
  EXPECT_FALSE(fs::exists(folder.path("log.json.tmp." + dead)));
  EXPECT_FALSE(fs::exists(folder.path("model.safetensors.tmp." + dead)));
  EXPECT_TRUE(fs::exists(folder.path("model.safetensors.tmp." + live)));  // its writer (this process) runs
  EXPECT_TRUE(fs::exists(folder.path("other.tmp." + dead)));              // not one of the run's files
  EXPECT_TRUE(fs::exists(folder.path("log.json.tmp.12x")));               // not a pid
  fs::remove_all(dir);
}

TEST(RunFolder, StopAfterStopsAtTheGivenEpochOnly) {
  EXPECT_FALSE(run::RunFolder::stop_after(0, 5));
  EXPECT_FALSE(run::RunFolder::stop_after(3, 2));
  EXPECT_TRUE(run::RunFolder::stop_after(3, 3));
}

}  // namespace
