// The `oodkit` command line.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "framework/cuda_api.h"
#include "framework/error.h"
#include "tools/demo.h"
#include "tools/eval.h"
#include "tools/score.h"
#include "tools/study.h"
#include "tools/train.h"

int main(int argc, char** argv) {
  CLI::App app{"oodkit: out-of-distribution detection on a from-scratch C++/CUDA framework"};
  app.require_subcommand(1);

  auto* info = app.add_subcommand("info", "Print the build configuration and the devices found");

  oodkit::tools::DemoOptions demo;
  std::string demo_device = "cpu";
  auto* demo_cmd = app.add_subcommand("demo", "Train a small CNN on a built-in toy image task (no files needed)");
  demo_cmd->add_option("--device", demo_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  demo_cmd->add_option("--epochs", demo.epochs)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--train-size", demo.train_size)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--batch", demo.batch)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--lr", demo.lr)->capture_default_str()->check(CLI::PositiveNumber);
  demo_cmd->add_option("--seed", demo.seed)->capture_default_str();

  oodkit::tools::EvalOptions ev;
  std::string eval_device = "cpu";
  auto* eval_cmd = app.add_subcommand("eval", "Evaluate a classifier against OOD sets with every post-hoc detector");
  eval_cmd->add_option("--checkpoint", ev.checkpoint, "safetensors state dict (default: the shipped ResNet-20)");
  eval_cmd->add_option("--arch", ev.arch, "architecture (default: the checkpoint's, else resnet20)");
  eval_cmd->add_option("--num-classes", ev.num_classes, "classes (default: from the checkpoint)");
  eval_cmd->add_option("--id", ev.id, "ID dataset")->capture_default_str();
  eval_cmd->add_option("--ood", ev.ood, "OOD test sets, comma-separated name[:split]")->capture_default_str();
  eval_cmd->add_option("--val-ood", ev.val_ood, "OOD validation set for hyper-parameters")->capture_default_str();
  eval_cmd->add_option("--methods", ev.methods, "comma-separated methods or 'all'")->capture_default_str();
  eval_cmd->add_option("--tuning", ev.tuning, "all | features (input-perturbation methods use defaults) | none")
      ->capture_default_str();
  eval_cmd->add_option("--fit-limit", ev.fit_limit, "ID training images for fitting (-1: all)")->capture_default_str();
  eval_cmd->add_option("--heldout", ev.heldout, "held-out ID training images (validation)")->capture_default_str();
  eval_cmd->add_option("--val-ood-limit", ev.val_ood_limit, "OOD validation images")->capture_default_str();
  eval_cmd->add_option("--test-limit", ev.test_limit, "ID test images (-1: all)")->capture_default_str();
  eval_cmd->add_option("--ood-limit", ev.ood_limit, "images per OOD test set (-1: all)")->capture_default_str();
  eval_cmd->add_option("--ta-thresholds", ev.ta_thresholds, "Threshold Activation k values")->capture_default_str();
  eval_cmd->add_option("--batch", ev.batch)->capture_default_str()->check(CLI::PositiveNumber);
  eval_cmd->add_option("--seed", ev.seed)->capture_default_str();
  eval_cmd->add_option("--device", eval_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  eval_cmd->add_option("--out", ev.out_dir, "folder for results.{json,csv,md}");
  eval_cmd->add_flag("--dump-scores", ev.dump_scores, "also write per-image scores (scores.safetensors)");
  eval_cmd->add_flag("--tf32", ev.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");

  oodkit::tools::TrainOptions tr;
  std::string train_device = "cpu";
  auto* train_cmd = app.add_subcommand("train", "Train a classifier (checkpoints every epoch, --resume continues)");
  train_cmd->add_option("--arch", tr.arch, "architecture")->capture_default_str();
  train_cmd->add_option("--dataset", tr.dataset, "training dataset (registry name)")->capture_default_str();
  train_cmd->add_option("--limit", tr.limit, "first N training images only (-1: all)")->capture_default_str();
  train_cmd->add_option("--val-fraction", tr.val_fraction, "held-out fraction evaluated each epoch")->capture_default_str();
  train_cmd->add_option("--epochs", tr.epochs)->capture_default_str()->check(CLI::PositiveNumber);
  train_cmd->add_option("--batch", tr.batch)->capture_default_str()->check(CLI::PositiveNumber);
  train_cmd->add_option("--optimizer", tr.optimizer, "sgd | adam | adamw")->capture_default_str();
  train_cmd->add_option("--lr", tr.lr)->capture_default_str();
  train_cmd->add_option("--momentum", tr.momentum)->capture_default_str();
  train_cmd->add_option("--weight-decay", tr.weight_decay)->capture_default_str();
  train_cmd->add_flag("--nesterov", tr.nesterov);
  train_cmd->add_option("--schedule", tr.schedule, "cosine | step | multistep | constant (per epoch)")->capture_default_str();
  train_cmd->add_option("--step-size", tr.step_size)->capture_default_str();
  train_cmd->add_option("--milestones", tr.milestones)->capture_default_str();
  train_cmd->add_option("--gamma", tr.gamma)->capture_default_str();
  train_cmd->add_option("--warmup-epochs", tr.warmup_epochs)->capture_default_str();
  train_cmd->add_flag("!--no-augment", tr.augment, "disable random crop + flip");
  train_cmd->add_flag("--tf32", tr.tf32, "TF32 math in cuDNN/cuBLAS");
  train_cmd->add_option("--seed", tr.seed)->capture_default_str();
  train_cmd->add_option("--device", train_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  train_cmd->add_option("--out", tr.out_dir, "checkpoint folder")->capture_default_str();
  train_cmd->add_flag("--resume", tr.resume, "continue from <out>/last.safetensors");
  train_cmd->add_option("--stop-after", tr.stop_after, "stop after this epoch, as if killed (tests --resume)");

  oodkit::tools::ScoreOptions sc;
  std::string score_device = "cpu";
  auto* score_cmd = app.add_subcommand("score", "Score new images with detectors saved by `oodkit eval --out` (no refit)");
  score_cmd->add_option("--detectors", sc.detectors, "the detectors/ folder of an eval run")->required();
  score_cmd->add_option("--data", sc.data, "dataset name[:split] or folder:<path>")->required();
  score_cmd->add_option("--limit", sc.limit, "first N images (-1: all)")->capture_default_str();
  score_cmd->add_option("--methods", sc.methods, "comma-separated (default: all saved)");
  score_cmd->add_option("--checkpoint", sc.checkpoint, "classifier (default: the one the detectors were fitted with)");
  score_cmd->add_option("--batch", sc.batch)->capture_default_str()->check(CLI::PositiveNumber);
  score_cmd->add_option("--device", score_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  score_cmd->add_option("--out", sc.out, "CSV file (default: stdout)");
  score_cmd->add_flag("--tf32", sc.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");

  oodkit::tools::StudyOptions st;
  std::string study_device = "cpu";
  auto* study_cmd = app.add_subcommand(
      "study", "Train a classifier, evaluate every detector, write a report (default: the embedded synthetic study)");
  study_cmd->add_option("--arch", st.arch)->capture_default_str();
  study_cmd->add_option("--id", st.id, "ID dataset")->capture_default_str();
  study_cmd->add_option("--ood", st.ood, "OOD test sets")->capture_default_str();
  study_cmd->add_option("--val-ood", st.val_ood, "OOD validation set")->capture_default_str();
  study_cmd->add_option("--train-limit", st.train_limit)->capture_default_str();
  study_cmd->add_option("--epochs", st.epochs)->capture_default_str()->check(CLI::PositiveNumber);
  study_cmd->add_option("--batch", st.batch)->capture_default_str()->check(CLI::PositiveNumber);
  study_cmd->add_option("--lr", st.lr)->capture_default_str();
  study_cmd->add_option("--methods", st.methods)->capture_default_str();
  study_cmd->add_option("--tuning", st.tuning, "all | features | none")->capture_default_str();
  study_cmd->add_option("--seed", st.seed)->capture_default_str();
  study_cmd->add_option("--device", study_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  study_cmd->add_option("--out", st.out_dir)->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*info) {
      std::printf("oodkit 0.1.0\nCUDA backend: %s\n", oodkit::cuda_built() ? "built" : "not built");
      const int n = oodkit::cuda_device_count();
      std::printf("CUDA devices: %d\n", n);
      for (int i = 0; i < n; ++i) std::printf("  cuda:%d %s\n", i, oodkit::cuda_device_name(i).c_str());
      return 0;
    }
    if (*study_cmd) {
      st.device = oodkit::Device::parse(study_device);
      return oodkit::tools::run_study(st);
    }
    if (*score_cmd) {
      sc.device = oodkit::Device::parse(score_device);
      return oodkit::tools::run_score(sc);
    }
    if (*train_cmd) {
      tr.device = oodkit::Device::parse(train_device);
      return oodkit::tools::run_train(tr);
    }
    if (*eval_cmd) {
      ev.device = oodkit::Device::parse(eval_device);
      return oodkit::tools::run_eval(ev);
    }
    if (*demo_cmd) {
      demo.device = oodkit::Device::parse(demo_device);
      return oodkit::tools::run_demo(demo);
    }
  } catch (const oodkit::Error& e) {
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // e.g. a malformed JSON file, out of host memory
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
