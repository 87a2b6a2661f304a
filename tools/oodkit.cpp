// The `oodkit` command line.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include "framework/cuda_api.h"
#include "data/image_folder.h"
#include "framework/error.h"
#include "ood/detectors.h"
#include "tools/common.h"
#include "tools/demo.h"
#include "tools/eval.h"
#include "tools/score.h"
#include "tools/study.h"
#include "tools/heatmap.h"
#include "tools/train.h"

namespace {
// Last resort for an exception that cannot reach main's handlers (one thrown inside an OpenMP
// worker or a noexcept function calls std::terminate): the same one-line "oodkit: error:" message
// and exit status 1 instead of an abort with "terminate called ...". Files being written are
// left as temporaries (the writers rename only complete files).
[[noreturn]] void on_terminate() {
  static std::atomic_flag entered = ATOMIC_FLAG_INIT;
  if (entered.test_and_set()) {  // another thread is already reporting
    for (;;) ::pause();
  }
  if (const std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "oodkit: error: out of host memory (a memory allocation failed)\n");
    } catch (const std::exception& x) {
      std::fprintf(stderr, "oodkit: error: %s\n", x.what());
    } catch (...) {
      std::fprintf(stderr, "oodkit: error: unknown exception\n");
    }
    std::fflush(stderr);
    std::_Exit(1);
  }
  std::fprintf(stderr, "oodkit: error: std::terminate called without an exception\n");
  std::abort();
}
}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
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
  eval_cmd->add_option("--val-ood", ev.val_ood,
                       "OOD validation set for hyper-parameters: name[:split], or pseudo (transformed held-out ID "
                       "images: jigsaw, blur, inversion; no real OOD data)")
      ->capture_default_str();
  eval_cmd->add_option("--methods", ev.methods, "comma-separated methods or 'all': " + oodkit::ood::method_list(true))
      ->capture_default_str();
  eval_cmd->add_option("--set", ev.set,
                       "<method>.<key>=<v>[,<v>...]: one value fixes a hyper-parameter (no tuning over it), a list is "
                       "its tuning grid (e.g. --set react.p=90 --set knn.k=10,50); repeatable");
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
  oodkit::tools::add_image_fit_option(eval_cmd);
  oodkit::tools::add_skip_unreadable_option(eval_cmd);
  // Kept so that existing command lines keep working: per-image scores are always written now.
  eval_cmd->add_flag("--dump-scores", "no effect: scores.safetensors is always written with --out");
  eval_cmd->add_flag("--tf32", ev.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");
  eval_cmd->add_option("--heatmap", ev.heatmap,
                       "a decoder trained by `oodkit heatmap fit` (its --out folder): adds the heatmap detector and "
                       "its fusions");

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
  oodkit::tools::add_image_fit_option(score_cmd);
  oodkit::tools::add_skip_unreadable_option(score_cmd);
  score_cmd->add_option("--batch", sc.batch)->capture_default_str()->check(CLI::PositiveNumber);
  score_cmd->add_option("--device", score_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  score_cmd->add_option("--out", sc.out, "CSV file (default: stdout)");
  score_cmd->add_flag("--tf32", sc.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");

  // ---- heatmap fit | show | lighting | oe-size
  auto* heatmap_cmd = app.add_subcommand("heatmap", "The heatmap detector: train its decoder, show heatmaps, experiments");
  heatmap_cmd->require_subcommand(1);
  oodkit::tools::HeatmapFitOptions hf;
  oodkit::tools::HeatmapOeSizeOptions hoe;
  std::string heatmap_device = "cpu";
  const auto add_fit_options = [&](CLI::App* c, oodkit::tools::HeatmapFitOptions& f) {
    c->add_option("--checkpoint", f.checkpoint, "classifier safetensors (default: the shipped ResNet-20)");
    c->add_option("--arch", f.arch, "architecture (default: the checkpoint's, else resnet20)");
    c->add_option("--id", f.id, "ID dataset (its train split)")->capture_default_str();
    c->add_option("--oe", f.oe, "outlier-exposure set name[:split]")->capture_default_str();
    c->add_option("--oe-skip", f.oe_skip, "first OE images left out (eval's validation images)")->capture_default_str();
    c->add_option("--oe-limit", f.oe_limit, "OE images drawn at random from the rest (-1: all)")->capture_default_str();
    c->add_option("--id-limit", f.id_limit, "ID training images drawn at random (-1: all)")->capture_default_str();
    c->add_option("--heldout", f.heldout, "ID training images held out (as eval --heldout)")->capture_default_str();
    c->add_option("--val-ood", f.val_ood, "OOD validation set (AUROC after each epoch; '' = none)")->capture_default_str();
    c->add_option("--val-ood-limit", f.val_ood_limit)->capture_default_str();
    oodkit::tools::add_image_fit_option(c);
    c->add_option("--epochs", f.epochs)->capture_default_str()->check(CLI::PositiveNumber);
    c->add_option("--batch", f.batch)->capture_default_str()->check(CLI::PositiveNumber);
    c->add_option("--lr", f.lr, "Adam learning rate (betas 0.5, 0.999)")->capture_default_str();
    c->add_option("--width", f.width, "decoder channel multiplier")->capture_default_str()->check(CLI::PositiveNumber);
    c->add_option("--max-minutes", f.max_minutes, "stop after the first epoch ending past this much training time")
        ->capture_default_str();
    c->add_option("--seed", f.seed)->capture_default_str();
    c->add_option("--device", heatmap_device, "cpu, cuda or cuda:<i>")->capture_default_str();
    c->add_flag("--tf32", f.tf32, "TF32 math in cuDNN/cuBLAS");
    c->add_option("--out", f.out_dir, "output folder")->capture_default_str();
    c->add_flag("--resume", f.resume, "continue from <out>/last.safetensors (bit-exact on the CPU)");
    c->add_option("--stop-after", f.stop_after, "stop after this epoch, as if killed (tests --resume)");
  };
  auto* hfit_cmd = heatmap_cmd->add_subcommand("fit", "Train the heatmap decoder for a classifier");
  add_fit_options(hfit_cmd, hf);
  oodkit::tools::HeatmapShowOptions hs;
  auto* hshow_cmd = heatmap_cmd->add_subcommand("show", "Picture grid: input, |heatmap|, overlay (PNG)");
  hshow_cmd->add_option("--heatmap", hs.heatmap, "folder of `oodkit heatmap fit` (or its decoder file)")->required();
  hshow_cmd->add_option("--checkpoint", hs.checkpoint, "classifier (default: the one the decoder records)");
  hshow_cmd->add_option("--data", hs.data, "comma-separated sets, one block each")->capture_default_str();
  hshow_cmd->add_option("--limit", hs.limit, "images per set")->capture_default_str()->check(CLI::PositiveNumber);
  oodkit::tools::add_image_fit_option(hshow_cmd);
  hshow_cmd->add_option("--scale", hs.scale, "tile magnification")->capture_default_str()->check(CLI::PositiveNumber);
  hshow_cmd->add_option("--device", heatmap_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  hshow_cmd->add_option("--out", hs.out, "PNG file (scores go to <out>.md)")->capture_default_str();
  oodkit::tools::HeatmapLightingOptions hl;
  auto* hlight_cmd = heatmap_cmd->add_subcommand(
      "lighting", "Brightness/contrast changes of ID test images: % flagged at the 95%-TPR threshold");
  hlight_cmd->add_option("--heatmap", hl.heatmap, "folder of `oodkit heatmap fit`")->required();
  hlight_cmd->add_option("--checkpoint", hl.checkpoint, "classifier (default: the one the decoder records)");
  hlight_cmd->add_option("--limit", hl.limit, "ID test images (-1: all)")->capture_default_str();
  hlight_cmd->add_option("--brightness", hl.brightness, "brightness factors")->capture_default_str();
  hlight_cmd->add_option("--contrast", hl.contrast, "contrast factors")->capture_default_str();
  hlight_cmd->add_option("--device", heatmap_device, "cpu, cuda or cuda:<i>")->capture_default_str();
  hlight_cmd->add_option("--out", hl.out, "folder for lighting.{md,json}");
  auto* hoe_cmd = heatmap_cmd->add_subcommand("oe-size", "OE-size ablation: one decoder per OE fraction, one table");
  add_fit_options(hoe_cmd, hoe.fit);
  hoe_cmd->add_option("--fractions", hoe.fractions, "OE sizes as fractions of the ID training size")
      ->capture_default_str();
  hoe_cmd->add_option("--ood", hoe.ood, "OOD test sets")->capture_default_str();
  hoe_cmd->add_option("--ood-limit", hoe.ood_limit, "images per OOD test set (-1: all)")->capture_default_str();

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
  study_cmd->add_option("--set", st.set, "<method>.<key>=<v>[,<v>...]: as `oodkit eval --set`; repeatable");
  study_cmd->add_option("--heatmap-epochs", st.heatmap_epochs, "heatmap decoder epochs (0: no heatmap detector)")
      ->capture_default_str();
  study_cmd->add_option("--heatmap-width", st.heatmap_width, "heatmap decoder width multiplier")->capture_default_str();
  study_cmd->add_option("--oe", st.oe, "outlier-exposure set for the heatmap decoder")->capture_default_str();
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
      st.device = oodkit::tools::parse_device_option(study_device);
      return oodkit::tools::run_study(st);
    }
    if (*score_cmd) {
      sc.device = oodkit::tools::parse_device_option(score_device);
      return oodkit::tools::run_score(sc);
    }
    if (*train_cmd) {
      tr.device = oodkit::tools::parse_device_option(train_device);
      return oodkit::tools::run_train(tr);
    }
    if (*eval_cmd) {
      ev.device = oodkit::tools::parse_device_option(eval_device);
      return oodkit::tools::run_eval(ev);
    }
    if (*heatmap_cmd) {
      const oodkit::Device dev = oodkit::tools::parse_device_option(heatmap_device);
      if (*hfit_cmd) {
        hf.device = dev;
        return oodkit::tools::run_heatmap_fit(hf);
      }
      if (*hshow_cmd) {
        hs.device = dev;
        return oodkit::tools::run_heatmap_show(hs);
      }
      if (*hlight_cmd) {
        hl.device = dev;
        return oodkit::tools::run_heatmap_lighting(hl);
      }
      if (*hoe_cmd) {
        hoe.fit.device = dev;
        return oodkit::tools::run_heatmap_oe_size(hoe);
      }
    }
    if (*demo_cmd) {
      demo.device = oodkit::tools::parse_device_option(demo_device);
      return oodkit::tools::run_demo(demo);
    }
  } catch (const oodkit::data::UnreadableImageError& e) {
    const bool has_flag = *eval_cmd || *score_cmd;
    std::fprintf(stderr, "oodkit: error: %s%s\n", e.what(),
                 has_flag ? "; pass --skip-unreadable to leave unreadable images out (they are counted and listed)"
                          : "");
    return 1;
  } catch (const oodkit::Error& e) {
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {  // Tensor allocations say so themselves (OutOfMemoryError)
    std::fprintf(stderr, "oodkit: error: out of host memory (a memory allocation failed)\n");
    return 1;
  } catch (const std::exception& e) {  // e.g. a malformed JSON file
    std::fprintf(stderr, "oodkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
