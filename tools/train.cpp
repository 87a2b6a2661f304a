// `oodkit train`: trains a classifier from the registry on a dataset from the registry.
//
// Checkpoints, written atomically after every epoch in --out, in this order:
//   model.safetensors  the model state dict alone (torch names) + metadata, for `oodkit eval`
//   log.json           per-epoch loss, accuracies, learning rate, time
//   last.safetensors   model state dict + optimiser state ("optim/<name>") + metadata (arch,
//                      num_classes, dataset, epoch, options, provenance: run/provenance.h):
//                      what --resume continues from
// last.safetensors is the commit point: written last, so the other two are never older than it;
// --resume drops log entries past its epoch and redoes that work. A run killed at any moment
// (SIGKILL included) thus leaves a consistent checkpoint; the temporaries of a write it was in
// (<name>.tmp.<pid>) are removed by the next run in --out.
// Batch order and augmentation depend only on (seed, epoch), and WRN's dropout generator is
// reseeded from (seed, epoch) at each epoch start, so a resumed run sees exactly the batches and
// masks an uninterrupted one would have: on the CPU it ends bit-identical.
// A non-finite loss or gradient stops training with an error naming the epoch, the step and which
// of the two; a non-finite state is never saved, so last.safetensors keeps the last good epoch.
#include "tools/train.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "data/registry.h"
#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/lr_schedule.h"
#include "framework/ops/loss.h"
#include "framework/ops/reduce.h"
#include "framework/optim.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/registry.h"
#include "models/wide_resnet.h"
#include "ood/heatmap_train.h"
#include "tools/command.h"
#include "tools/common.h"
#include "run/plan.h"
#include "run/progress.h"
#include "run/provenance.h"

namespace oodkit::tools {

namespace {
// "0.485,0.456,0.406": a normalisation's three values as checkpoint metadata (input_mean /
// input_std, run/normalization.h reads them back), shortest text that reads back exactly.
std::string channel_text(const std::array<float, 3>& v) {
  std::string out;
  for (float x : v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", double(x));
    out += (out.empty() ? "" : ",") + std::string(buf);
  }
  return out;
}
}  // namespace

namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<optim::LRSchedule> make_schedule(const TrainOptions& o) {
  if (o.schedule == "cosine") return std::make_unique<optim::CosineLR>(o.lr, o.epochs, 0.0, o.warmup_epochs);
  if (o.schedule == "step") return std::make_unique<optim::StepLR>(o.lr, o.step_size, o.gamma);
  if (o.schedule == "multistep") {
    std::vector<int64_t> ms;
    for (double v : parse_doubles(o.milestones, "--milestones")) ms.push_back(int64_t(v));
    return std::make_unique<optim::MultiStepLR>(o.lr, ms, o.gamma);
  }
  if (o.schedule == "constant") return std::make_unique<optim::ConstantLR>(o.lr);
  OODKIT_FAIL("train: --schedule must be cosine, step, multistep or constant, got '", o.schedule, "'");
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, std::vector<Tensor> params) {
  if (o.optimizer == "sgd")
    return std::make_unique<optim::SGD>(std::move(params),
                                        optim::SGDOptions{o.lr, o.momentum, 0.0, o.weight_decay, o.nesterov});
  if (o.optimizer == "adam" || o.optimizer == "adamw") {
    optim::AdamOptions a;
    a.lr = o.lr;
    a.weight_decay = o.weight_decay;
    a.decoupled_weight_decay = o.optimizer == "adamw";
    return std::make_unique<optim::Adam>(std::move(params), a);
  }
  OODKIT_FAIL("train: --optimizer must be sgd, adam or adamw, got '", o.optimizer, "'");
}

// Top-1 correct predictions in a [B, K] logits tensor.
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const std::vector<int64_t> pred = ops::argmax(logits.detach(), 1).to_vector<int64_t>();
  const int64_t* y = labels.data<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == y[i];
  return correct;
}

// Top-1 accuracy on `rows` of `ds`, with a progress line labelled `label`.
double evaluate(models::Classifier& model, const data::Dataset& ds, const std::vector<int64_t>& rows,
                const data::Normalization& norm, Device device, int64_t batch, const std::string& label) {
  if (rows.empty()) return 0.0;
  run::Progress progress(label, int64_t(rows.size()));
  model.eval();
  autograd::NoGradGuard ng;
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  lo.norm = norm;
  data::BatchLoader loader(ds, lo, rows);
  loader.start_epoch(0);
  int64_t correct = 0, seen = 0;
  for (data::Batch b; loader.next(b);) {
    correct += count_correct(model.forward(b.images.to(device)), b.labels);
    seen += b.labels.numel();
    progress.update(seen);
  }
  progress.finish();
  return double(correct) / double(seen);
}

// The options that decide a run's trajectory, by their command-line names: saved in every
// checkpoint's metadata ("options") so that --resume refuses to continue with other ones (the
// resumed run would not end at the weights of an uninterrupted one).
nlohmann::json trajectory_options(const TrainOptions& o) {
  return {{"--arch", o.arch},          {"--dataset", o.dataset},     {"--limit", o.limit},
          {"--val-fraction", o.val_fraction}, {"--epochs", o.epochs}, {"--batch", o.batch},
          {"--optimizer", o.optimizer}, {"--lr", o.lr},              {"--momentum", o.momentum},
          {"--weight-decay", o.weight_decay}, {"--nesterov", o.nesterov}, {"--schedule", o.schedule},
          {"--step-size", o.step_size}, {"--milestones", o.milestones}, {"--gamma", o.gamma},
          {"--warmup-epochs", o.warmup_epochs}, {"--no-augment", !o.augment}, {"--seed", o.seed}};
}

// ---- the plan: both splits present, every class with training images, every batch size
// possible, the schedule and optimiser known, --out creatable and a resumed checkpoint read and
// checked; the option named in each refusal, before any epoch and before anything is written.
struct TrainPlan {
  data::Dataset train_set, test_set;
  data::Normalization norm;
  data::HoldoutSplit split;                    // held-out (val) and training rows
  std::shared_ptr<models::Classifier> model;   // initialised from --seed, or the resumed state
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<optim::LRSchedule> schedule;
  std::optional<run::RunFolder> folder;
  int start_epoch = 0;                         // the resumed checkpoint's epoch (0: from scratch)
};

// That the training rows hold every class: those --limit loaded (named: --limit, else --dataset),
// then those --val-fraction leaves after its hold-out.
void check_training_classes(const TrainOptions& o, const data::Dataset& train_set, const data::HoldoutSplit& split) {
  const std::string set = o.dataset + ":train";
  run::check_classes_covered(train_set.labels, first_rows(train_set.size()), train_set.num_classes, set,
                             o.limit >= 0 ? "--limit" : "--dataset");
  try {
    run::check_classes_covered(train_set.labels, split.train, train_set.num_classes, set, "--val-fraction");
  } catch (const Error&) {
    OODKIT_FAIL("--val-fraction ", o.val_fraction, " holds out every training image of some class of '", set, "' (",
                split.train.size(), " of ", train_set.size(), " images left to train on); give a smaller --val-fraction",
                o.limit >= 0 ? " or a larger --limit" : "");
  }
}

TrainPlan plan_train(const TrainOptions& o) {
  OODKIT_CHECK(o.epochs > 0 && o.batch > 0, "train: --epochs and --batch must be positive");
  OODKIT_CHECK(o.val_fraction >= 0 && o.val_fraction < 1, "train: --val-fraction must be in [0, 1)");
  OODKIT_CHECK(o.optimizer == "sgd" || o.optimizer == "adam" || o.optimizer == "adamw",
               "train: --optimizer must be sgd, adam or adamw, got '", o.optimizer, "'");
  TrainPlan p;
  p.schedule = make_schedule(o);
  p.folder.emplace(o.out_dir, "train", "train into another --out");  // --out creatable; nothing created
  data::LoadOptions lo;
  lo.split = "train";
  lo.limit = o.limit;
  p.train_set =
      run::load_for("--dataset", o.dataset + ":train", [&] { return data::load_dataset(o.dataset, "", lo); });
  const data::Dataset& train_set = p.train_set;
  OODKIT_CHECK(train_set.labels.defined(), "train: --dataset '", o.dataset, "' has no labels");
  data::LoadOptions test_lo;
  test_lo.split = "test";
  p.test_set =
      run::load_for("--dataset", o.dataset + ":test", [&] { return data::load_dataset(o.dataset, "", test_lo); });
  p.norm = data::normalization_for(o.dataset);
  const int64_t size = train_set.images.size(2);

  p.split = o.val_fraction > 0 ? data::holdout_split(train_set.labels, o.val_fraction, o.seed, true)
                               : data::holdout_split(train_set.size(), 0.0, o.seed);
  check_training_classes(o, train_set, p.split);
  run::check_batch_fits(o.batch, int64_t(p.split.train.size()), o.dataset + ":train", "--batch");
  Generator gen(o.seed);
  p.model = models::make_classifier(o.arch, train_set.num_classes, int(size), gen);
  p.model->to(o.device);
  p.opt = make_optimizer(o, p.model->parameters());

  // ---- resume: the checkpoint must belong to this run (read only; --out unchanged)
  const std::string& last_path = p.folder->last_path();
  if (o.resume && p.folder->has_checkpoint()) {
    std::map<std::string, std::string> meta;
    const NamedTensors all = load_safetensors(last_path, &meta);
    OODKIT_CHECK(meta["arch"] == o.arch && meta["dataset"] == o.dataset, "train --resume: '", last_path,
                 "' is a ", meta["arch"], " on ", meta["dataset"], ", not ", o.arch, " on ", o.dataset);
    // Checkpoints written before the options were recorded have no "options" key: arch and dataset only.
    p.folder->check_options(meta["options"], trajectory_options(o));
    NamedTensors model_state, optim_state;
    for (const auto& [n, t] : all) {
      if (n.rfind("optim/", 0) == 0) optim_state.emplace_back(n.substr(6), t);
      else model_state.emplace_back(n, t);
    }
    p.model->load_state_dict(model_state);
    p.opt->load_state(optim_state);
    p.start_epoch = std::stoi(meta["epoch"]);
  }
  return p;
}

struct EpochStats {
  double loss = 0, accuracy = 0, seconds = 0;
  int64_t seen = 0;  // training images of the epoch's batches
};

// One epoch of SGD steps over `loader` (learning rate already set), with the non-finite guard
// and a progress line; `last_path` is named in its refusals.
EpochStats train_epoch(models::Classifier& model, optim::Optimizer& opt, data::BatchLoader& loader,
                       const TrainOptions& o, int epoch, const std::string& last_path) {
  model.train();
  loader.start_epoch(epoch);
  model.reseed(counter_hash(o.seed ^ 0x64726f706f7574ull /* "dropout" */, uint64_t(epoch)));
  const auto t0 = Clock::now();
  double loss_sum = 0;
  int64_t correct = 0, seen = 0, step = 0;
  const int64_t steps = loader.batches_per_epoch();
  // Labels do not start with "epoch": the line after the epoch (stdout) does, and tests wait for it.
  run::Progress progress("training epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs), steps,
                         "batches");
  // Losses and logits are read back every kReadEvery steps, not every step: each read waits for
  // the GPU, and a wait per step would drain its queue every step.
  constexpr int64_t kReadEvery = 10;
  struct Pending {
    int64_t step;
    Tensor loss, logits, labels;
    Tensor grad_flag;  // ops::all_finite of the step's gradients (1 or 0)
  };
  std::vector<Pending> pending;
  const auto read_back = [&] {
    for (const Pending& p : pending) {
      const double l = p.loss.item();
      OODKIT_CHECK(std::isfinite(l), "train: the loss became ", l, " at epoch ", epoch + 1, " step ", p.step + 1,
                   " (lower --lr?); ", last_path, " keeps the last finished epoch");
      OODKIT_CHECK(p.grad_flag.item() != 0.0,
                   "train: the gradients became non-finite (NaN or Inf) at epoch ", epoch + 1, " step ", p.step + 1,
                   " with a finite loss (lower --lr?); ", last_path, " keeps the last finished epoch");
      loss_sum += l * double(p.labels.numel());
      correct += count_correct(p.logits, p.labels);
      seen += p.labels.numel();
    }
    pending.clear();
  };
  // The running mean loss and accuracy of the steps read back so far (the progress line's tail).
  const auto running_stats = [&] {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "loss %.4f  acc %.2f%%", loss_sum / double(std::max<int64_t>(seen, 1)),
                  100.0 * double(correct) / double(std::max<int64_t>(seen, 1)));
    return std::string(buf);
  };
  for (data::Batch b; loader.next(b); ++step) {
    const Tensor x = b.images.to(o.device), y = b.labels.to(o.device);
    const Tensor logits = model.forward(x);
    const Tensor loss = ops::cross_entropy(logits, y);
    opt.zero_grad();
    loss.backward();
    std::vector<Tensor> grads;
    for (const Tensor& w : opt.params()) grads.push_back(w.grad());
    pending.push_back({step, loss.detach(), logits.detach(), b.labels, ops::all_finite(grads)});
    opt.step();
    if (step % kReadEvery != 0 && step + 1 != steps) continue;
    read_back();
    progress.update(step + 1, running_stats());
  }
  read_back();
  progress.finish(running_stats());
  cuda_synchronize();
  EpochStats r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.loss = loss_sum / double(std::max<int64_t>(seen, 1));
  r.accuracy = double(correct) / double(std::max<int64_t>(seen, 1));
  r.seen = seen;
  return r;
}
}  // namespace

int run_train(const TrainOptions& o) {
  set_math_mode(o.tf32 ? MathMode::TF32 : MathMode::FP32);
  TrainPlan p = plan_train(o);
  const data::Dataset& train_set = p.train_set;
  models::Classifier& model = *p.model;
  const run::RunFolder& folder = *p.folder;
  folder.open();
  folder.remove_stale({"model.safetensors"});  // only now: a refused --resume changes nothing in --out
  nlohmann::json log = nlohmann::json::array();
  if (p.start_epoch > 0) log = folder.resume_log(p.start_epoch);
  else if (o.resume) folder.note_fresh_start();

  data::LoaderOptions train_lo;
  train_lo.batch_size = o.batch;
  train_lo.shuffle = true;
  train_lo.drop_last = true;
  train_lo.random_crop = o.augment;
  train_lo.hflip = o.augment;
  train_lo.norm = p.norm;
  train_lo.seed = o.seed;
  data::BatchLoader loader(train_set, train_lo, p.split.train);
  const std::vector<int64_t> test_rows = first_rows(p.test_set.size());

  std::printf("oodkit train: %s on %s (%lld training images%s, %lld test), %lld parameters, %s, %s %s\n",
              o.arch.c_str(), o.dataset.c_str(), (long long)p.split.train.size(),
              p.split.val.empty() ? "" : (", " + std::to_string(p.split.val.size()) + " held out").c_str(),
              (long long)p.test_set.size(), (long long)model.num_parameters(), o.device.str().c_str(),
              o.optimizer.c_str(), o.tf32 ? "TF32" : "FP32");
  std::fflush(stdout);
  for (int epoch = p.start_epoch; epoch < o.epochs; ++epoch) {
    const double lr = p.schedule->lr_at(epoch);
    p.opt->set_lr(lr);
    const EpochStats r = train_epoch(model, *p.opt, loader, o, epoch, folder.last_path());
    const std::string epoch_name = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs);
    const double val_acc = p.split.val.empty() ? -1
                                               : evaluate(model, train_set, p.split.val, p.norm, o.device, 256,
                                                          "validating " + epoch_name);
    const double test_acc = evaluate(model, p.test_set, test_rows, p.norm, o.device, 256, "testing " + epoch_name);
    std::printf("epoch %d/%d  lr %.5f  loss %.4f  train acc %.2f%%%s  test acc %.2f%%  %.1f s (%.0f img/s)\n",
                epoch + 1, o.epochs, lr, r.loss, 100 * r.accuracy,
                val_acc >= 0 ? ("  val acc " + std::to_string(100 * val_acc).substr(0, 5) + "%").c_str() : "",
                100 * test_acc, r.seconds, double(r.seen) / r.seconds);
    std::fflush(stdout);
    log.push_back({{"epoch", epoch + 1}, {"lr", lr}, {"train_loss", r.loss}, {"train_accuracy", r.accuracy},
                   {"val_accuracy", val_acc >= 0 ? nlohmann::json(val_acc) : nlohmann::json(nullptr)},
                   {"test_accuracy", test_acc}, {"seconds", r.seconds}, {"images_per_second", double(r.seen) / r.seconds}});

    // Checkpoints: model-only file, log, then the resumable one (the commit point, see the top).
    std::map<std::string, std::string> meta{{"arch", o.arch},
                                            {"num_classes", std::to_string(train_set.num_classes)},
                                            {"dataset", o.dataset},
                                            {"epoch", std::to_string(epoch + 1)},
                                            {"test_accuracy", std::to_string(test_acc)},
                                            {"options", trajectory_options(o).dump()},
                                            {"provenance", run::provenance().dump()},
                                            {"input_mean", channel_text(p.norm.mean)},
                                            {"input_std", channel_text(p.norm.std)}};
    const NamedTensors state = model.state_dict();
    NamedTensors all = state;
    for (const auto& [n, t] : p.opt->state()) all.emplace_back("optim/" + n, t);
    folder.commit(epoch + 1, all, [&] { save_safetensors(folder.path("model.safetensors"), state, meta); }, log,
                  [&] { save_safetensors(folder.last_path(), all, meta); });
    if (run::RunFolder::stop_after(o.stop_after, epoch + 1)) break;
  }
  return 0;
}

void add_train_command(CLI::App& app, CommandList& commands) {
  const auto opts = std::make_shared<TrainOptions>();
  TrainOptions& tr = *opts;
  Command c;
  auto* train_cmd = c.app = app.add_subcommand("train", "Train a classifier (checkpoints every epoch, --resume continues)");
  train_cmd->add_option("--arch", tr.arch, "architecture")->capture_default_str();
  train_cmd->add_option("--dataset", tr.dataset, "training dataset (registry name)")->capture_default_str();
  train_cmd->add_option("--limit", tr.limit, "first N training images only (-1: all)")->capture_default_str();
  train_cmd->add_option("--val-fraction", tr.val_fraction, "held-out fraction evaluated each epoch")->capture_default_str();
  train_cmd->add_option("--epochs", tr.epochs)->capture_default_str()->check(positive_count());
  train_cmd->add_option("--batch", tr.batch)->capture_default_str()->check(positive_count());
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
  add_device_option(train_cmd, c);
  train_cmd->add_option("--out", tr.out_dir, "checkpoint folder")->capture_default_str();
  train_cmd->add_flag("--resume", tr.resume, "continue from <out>/last.safetensors");
  train_cmd->add_option("--stop-after", tr.stop_after, "stop after this epoch, as if killed (tests --resume)");
  c.run = [opts](Device device) {
    opts->device = device;
    return run_train(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
