// `oodkit heatmap fit`: trains the heatmap decoder for a fixed classifier (docs/heatmap.md).
//
// In --out:
//   targets.safetensors  features, predictions and nearest-ID neighbours of the OE images (the audit
//                        file of ood/heatmap_targets.h), computed once; reused by --resume when it
//                        belongs to the same classifier, the same rows and the same skipped files
//   decoder.safetensors  the decoder after the last finished epoch (ood/heatmap.h), for `eval --heatmap`
//   last.safetensors     the same plus Adam's state: what --resume continues from (refused, before
//                        anything here is written, when the run's trajectory options differ)
//   log.json             per epoch: loss (ID, OE), seconds, images/s, validation AUROC
//   skipped_images.txt   the files --skip-unreadable left out (only when there were any)
// All are written atomically (temporary + rename); after every epoch decoder.safetensors, then
// log.json, then last.safetensors: the commit point, so the others are never older than it and
// --resume drops log entries past its epoch. A run killed at any moment (SIGKILL included)
// resumes bit-identically on the CPU; the next run in --out removes the temporaries
// (<name>.tmp.<pid>) of a write it was killed in. A non-finite loss, gradient or state stops the
// run with an error naming the epoch (and the step); a non-finite state is never saved.
// Plan, then run: plan_heatmap_fit checks every option and input before any feature is extracted
// or anything written; --out is created once the targets exist (docs/resume.md).
#include <CLI/CLI.hpp>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "data/augment.h"
#include "data/loader.h"
#include "data/registry.h"
#include "framework/cuda_api.h"
#include "framework/hash.h"
#include "ood/heatmap_train.h"
#include "ood/metrics.h"
#include "ood/protocol.h"
#include "ood/scores.h"
#include "run/extract.h"
#include "run/plan.h"
#include "run/progress.h"
#include "run/provenance.h"
#include "tools/heatmap.h"
#include "tools/heatmap_common.h"
#include "tools/train.h"

namespace oodkit::tools {

namespace {

bool file_exists(const std::string& p) { return ::access(p.c_str(), R_OK) == 0; }

std::string absolute(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// `count` rows drawn at random (seeded) from `rows`, kept in ascending order; all when count < 0.
std::vector<int64_t> draw_rows(const std::vector<int64_t>& rows, int64_t count, uint64_t seed, const char* what) {
  if (count < 0 || count >= int64_t(rows.size())) return rows;
  OODKIT_CHECK(count > 0, "heatmap fit: ", what, " must be positive or -1 (all)");
  const std::vector<int64_t> perm = data::shuffled_indices(int64_t(rows.size()), seed);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(rows[size_t(perm[size_t(i)])]);
  std::sort(out.begin(), out.end());
  return out;
}

Tensor image_rows(const data::Dataset& ds, const std::vector<int64_t>& rows) {
  return data::take_rows(ds, rows).images;
}

std::string rows_key(const std::vector<int64_t>& rows) {  // a short digest of a row list
  uint64_t h = kDigestStart;
  for (int64_t r : rows) h = fnv1a(h, &r, sizeof(r));
  return std::to_string(rows.size()) + ":" + std::to_string(h);
}

// The files --skip-unreadable left out of a set, in load order.
std::vector<std::string> skipped_paths(const data::Dataset& ds) {
  std::vector<std::string> out;
  for (const data::Dataset::Skipped& f : ds.skipped) out.push_back(f.path);
  return out;
}

// A short digest of the files left out of a set ("" when none): rows are load-order indices, so
// targets computed with another skipped set describe other images under the same row numbers.
std::string skipped_key(const std::vector<std::string>& paths) {
  if (paths.empty()) return "";
  uint64_t h = kDigestStart;  // over the names and a NUL after each
  for (const std::string& p : paths) h = fnv1a(h, p.c_str(), p.size() + 1);
  return std::to_string(paths.size()) + ":" + std::to_string(h);
}

// The options that decide the decoder's trajectory (the rows, the images, the updates), by their
// command-line names, with the files --skip-unreadable left out of the three sets: recorded in the
// checkpoints ("options") so that --resume refuses to continue with other ones. Left out: --epochs
// (a resume may extend the run: the learning rate is constant), the stopping rules (--max-minutes,
// --stop-after), --out, and the machine's numerics (--device, --tf32: resuming a GPU run on the
// CPU is allowed, though not bit-exact); the classifier is checked by its fingerprint instead.
nlohmann::json trajectory_options(const HeatmapFitOptions& o, const std::vector<std::string>& skipped) {
  return {{"--id", o.id},         {"--oe", o.oe},           {"--oe-skip", o.oe_skip},
          {"--oe-limit", o.oe_limit}, {"--id-limit", o.id_limit}, {"--heldout", o.heldout},
          {"--val-ood", o.val_ood}, {"--val-ood-limit", o.val_ood_limit},
          {"--resize", data::image_fit_name(image_fit())},
          {"--batch", o.batch},   {"--lr", o.lr},           {"--width", o.width}, {"--loss-weight", o.loss_weight}, {"--oe-resize", o.oe_resize},
          {"--seed", o.seed},     {"--split-seed", o.split_seed}, {"--skip-unreadable", skipped}};
}

// ---- the plan: every option checked, every set loaded, the resumed checkpoint read; nothing is
// extracted and nothing written before it passes (tests/cli/check_plan_commands.py).
struct FitPlan {
  ood::LossWeight loss_weight = ood::LossWeight::Target;
  ClassifierSetup cs;
  data::Dataset train, oe_all, val_ood_set;       // ID train split, OE set, OOD validation rows
  data::HoldoutSplit split;                       // eval's held-out ID rows (val) and the rest
  std::vector<int64_t> id_rows, oe_rows;          // the rows the decoder trains on
  std::string oe_desc;                            // e.g. "tinyimagenet:val[1000:] (60 drawn)"
  bool validate = false;                          // a validation AUROC after each epoch
  std::vector<std::string> skipped;               // --skip-unreadable's files of the three sets
  nlohmann::json trajectory;                      // trajectory_options: checked on --resume
  std::string options;                            // ... as recorded in checkpoints
  models::DecoderConfig config;                   // the decoder this run trains
  std::map<std::string, std::string> targets_meta;  // what a reusable targets.safetensors records
  std::optional<run::RunFolder> folder;
  std::shared_ptr<ood::HeatmapModel> resumed;     // from --resume's last.safetensors (else null)
  NamedTensors optim_state;
};

FitPlan plan_heatmap_fit(const HeatmapFitOptions& o) {
  OODKIT_CHECK(o.epochs > 0 && o.batch > 0, "heatmap fit: --epochs and --batch must be positive");
  OODKIT_CHECK(o.width > 0, "heatmap fit: --width must be positive");
  OODKIT_CHECK(o.oe_skip >= 0, "heatmap fit: --oe-skip must be >= 0");
  FitPlan p;
  p.loss_weight = ood::parse_loss_weight(o.loss_weight);
  OODKIT_CHECK(o.oe_resize == "box" || o.oe_resize == "pil-bilinear", "--oe-resize must be box or pil-bilinear, got '",
               o.oe_resize, "'");
  const data::ResizeMode oe_resize = o.oe_resize == "box" ? data::ResizeMode::Auto : data::ResizeMode::PilBilinear;
  p.folder.emplace(o.out_dir, "heatmap fit", "fit into another --out");  // --out creatable; nothing created
  data::LoadOptions probe_lo;
  probe_lo.limit = 1;
  run::check_image_size(run::load_for("--id", o.id, [&] { return data::load_dataset(o.id, "", probe_lo); }), o.id,
                        "--id");
  p.cs = setup_classifier(o.checkpoint, o.arch, o.id, o.device);
  const ClassifierSetup& cs = p.cs;

  // ID rows: the training split minus eval's held-out images (same split and seed as `oodkit eval`).
  data::LoadOptions train_lo = base_load_options();
  train_lo.split = "train";
  p.train = run::load_for("--id", o.id + ":train", [&] { return data::load_dataset(o.id, "", train_lo); });
  const data::Dataset& train = p.train;
  note_skipped("heatmap fit", train, o.id + ":train");
  OODKIT_CHECK(train.labels.defined(), "heatmap fit: '", o.id, "' has no labels");
  OODKIT_CHECK(o.heldout >= 0 && o.heldout < train.size(), "heatmap fit: --heldout must be in [0, ", train.size(), ")");
  p.split =
      data::holdout_split(train.labels, double(o.heldout) / double(train.size()), o.split_seed, /*stratified=*/true);
  p.id_rows = draw_rows(p.split.train, o.id_limit, o.seed + 2, o.id_limit_option);

  // OE rows: the OE set minus its first oe_skip rows (eval's validation images), drawn at random.
  p.oe_all = run::load_for("--oe", o.oe, [&] { return load_named(o.oe, cs.image_size, -1, oe_resize); });
  const data::Dataset& oe_all = p.oe_all;
  note_skipped("heatmap fit", oe_all, o.oe);
  OODKIT_CHECK(oe_all.size() > o.oe_skip, "heatmap fit: --oe '", o.oe, "' has ", oe_all.size(),
               " images, not more than --oe-skip ", o.oe_skip);
  std::vector<int64_t> oe_pool;
  for (int64_t i = o.oe_skip; i < oe_all.size(); ++i) oe_pool.push_back(i);
  p.oe_rows = draw_rows(oe_pool, o.oe_limit, o.seed + 3, "--oe-limit");
  p.oe_desc = o.oe + "[" + std::to_string(o.oe_skip) + ":]" +
              (o.oe_limit >= 0 ? " (" + std::to_string(p.oe_rows.size()) + " drawn)" : "");
  p.validate = o.heldout > 0 && !o.val_ood.empty() && o.val_ood_limit != 0;
  // The per-epoch validation must not score OE training images (its first --val-ood-limit rows
  // against the OE rows from --oe-skip on, when both name the same images).
  OODKIT_CHECK(!p.validate || !run::same_images(o.val_ood, o.oe) || (o.val_ood_limit > 0 && o.val_ood_limit <= o.oe_skip),
               "heatmap fit: --val-ood '", o.val_ood, "' with --val-ood-limit ", o.val_ood_limit,
               " would validate on OE training images (--oe '", o.oe, "' from row --oe-skip ", o.oe_skip,
               " on): give --val-ood-limit ", o.oe_skip, " or less, a larger --oe-skip, or another --val-ood");
  if (p.validate)
    p.val_ood_set =
        run::load_for("--val-ood", o.val_ood, [&] { return load_named(o.val_ood, cs.image_size, o.val_ood_limit); });
  note_skipped("heatmap fit", p.val_ood_set, o.val_ood);
  for (const data::Dataset* ds : {&p.train, &p.oe_all, &p.val_ood_set})
    for (const std::string& f : skipped_paths(*ds)) p.skipped.push_back(f);
  p.trajectory = trajectory_options(o, p.skipped);
  p.options = p.trajectory.dump();
  p.config = ood::scale_decoder_width(
      models::DecoderConfig::for_classifier(cs.lc.arch, cs.lc.model->feature_dim(), cs.lc.num_classes,
                                            int(cs.image_size)),
      o.width);
  p.targets_meta = {{"classifier_fingerprint", cs.fingerprint},
                    {"id", o.id},
                    {"id_rows", rows_key(p.id_rows)},
                    {"oe", o.oe},
                    {"oe_rows", rows_key(p.oe_rows)},
                    // "" (as in files written before) when none
                    {"id_skipped", skipped_key(skipped_paths(train))},
                    {"oe_skipped", skipped_key(skipped_paths(oe_all))}};

  // ---- resume: the checkpoint must belong to this run (read only; --out unchanged)
  if (o.resume && p.folder->has_checkpoint()) {
    const std::string& last_path = p.folder->last_path();
    p.resumed = ood::HeatmapModel::load(last_path, &p.optim_state);
    const ood::HeatmapModelInfo& ri = p.resumed->info();
    OODKIT_CHECK(ri.classifier_fingerprint == cs.fingerprint && ri.oe == p.oe_desc, "heatmap fit --resume: '",
                 last_path, "' is a run for another classifier or OE set; use another --out or drop --resume");
    // Checkpoints written before the options were recorded have none: classifier, width and OE only.
    p.folder->check_options(ri.fit_options, p.trajectory);
    OODKIT_CHECK(ri.config.channels == p.config.channels && ri.config.fc_channels == p.config.fc_channels,
                 "heatmap fit --resume: '", last_path, "' is a decoder of another --width; use another --out or drop "
                 "--resume");
  }
  std::printf("oodkit heatmap fit: %s (%s) on %s; %zu ID training images (%lld held out), %zu OE images from %s; %s\n",
              cs.lc.arch.c_str(), cs.fingerprint.c_str(), o.id.c_str(), p.id_rows.size(), (long long)o.heldout,
              p.oe_rows.size(), p.oe_desc.c_str(), o.device.str().c_str());
  std::fflush(stdout);
  return p;
}

// ---- targets: features once, nearest ID neighbours once; a targets.safetensors of the same
// classifier, rows and skipped files is reused under --resume. Sets `computed` when they are new
// (to be saved). Refuses, naming --id-limit (o.id_limit_option), when an OE image's predicted class has no ID row.
ood::HeatmapTargets fit_targets(const FitPlan& p, const HeatmapFitOptions& o, const std::string& targets_path,
                                bool& computed) {
  computed = false;
  if (o.resume && file_exists(targets_path)) {
    std::map<std::string, std::string> meta;
    ood::HeatmapTargets t = ood::load_heatmap_targets(targets_path, &meta);
    bool same = true;
    for (const auto& [k, v] : p.targets_meta) same &= meta[k] == v;
    if (same) {
      std::printf("targets: reusing %s\n", targets_path.c_str());
      return t;
    }
    std::printf("targets: %s belongs to another classifier or other rows: recomputing\n", targets_path.c_str());
  }
  models::Classifier& model = *p.cs.lc.model;
  const ood::Features idf =
      run::extract(model, p.train, p.id_rows, p.cs.norm, o.id + ":train", {o.device, o.feature_batch}).features;
  const ood::Features oef = run::extract(model, p.oe_all, p.oe_rows, p.cs.norm, o.oe, {o.device, o.feature_batch}).features;
  const Tensor id_pred = ood::predicted_classes(idf.logits), oe_pred = ood::predicted_classes(oef.logits);
  run::check_predicted_classes_covered(id_pred, oe_pred, "ID training images", "OE images",
                                       o.id_limit >= 0 ? o.id_limit_option : "--heldout");
  std::vector<std::string> names;
  for (int64_t r : p.oe_rows) names.push_back(o.oe + "/" + std::to_string(r));
  const auto knn_t0 = std::chrono::steady_clock::now();
  ood::HeatmapTargets targets =
      ood::nearest_id_targets(idf.z, id_pred.to(idf.z.device()), oef.z, oe_pred.to(oef.z.device()), names,
                              Tensor::from_vector(p.id_rows, {int64_t(p.id_rows.size())}));
  const double knn_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - knn_t0).count();
  const std::vector<double> d = ood::to_doubles(targets.oe_nn_distance);
  double mean_d = 0;
  for (double v : d) mean_d += v / double(d.size());
  std::printf("targets: class-restricted exact 1-NN of %zu OE among %zu ID rows in %.2f s on %s; mean squared "
              "neighbour distance in z %.3f\n",
              p.oe_rows.size(), p.id_rows.size(), knn_s, o.device.str().c_str(), mean_d);
  computed = true;
  return targets;
}

// The decoder to train: a new one (seeded by --seed) described by the plan, or the resumed one.
std::shared_ptr<ood::HeatmapModel> make_decoder(const FitPlan& p, const HeatmapFitOptions& o,
                                                const ood::HeatmapTargets& targets) {
  const ClassifierSetup& cs = p.cs;
  ood::HeatmapModelInfo info;
  info.config = p.config;
  info.width = o.width;
  info.norm = ood::fit_feature_norm(targets.id_features);
  info.classifier_fingerprint = cs.fingerprint;
  info.classifier_arch = cs.lc.arch;
  info.classifier_checkpoint = absolute(cs.checkpoint);
  info.id_dataset = o.id;
  info.image_size = cs.image_size;
  info.heldout = o.heldout;
  info.heldout_seed = o.split_seed;
  info.oe = p.oe_desc;
  info.fit_options = p.options;
  info.provenance = run::provenance().dump();
  Generator gen(o.seed);
  std::shared_ptr<ood::HeatmapModel> hm = std::make_shared<ood::HeatmapModel>(info, gen);
  if (!p.resumed) return hm;
  p.resumed->info().provenance = info.provenance;  // the run that wrote the latest epochs
  p.resumed->info().fit_options = p.options;  // recorded from now on in a checkpoint written before options were
  return p.resumed;
}

// Trains from epoch `start_epoch` to --epochs (or a stopping rule), committing every epoch.
void train_decoder(ood::HeatmapModel& hm, ood::DecoderTrainer& trainer, const run::RunFolder& folder,
                   const HeatmapFitOptions& o, int start_epoch, nlohmann::json log, bool validate,
                   const ood::Features& val_id, const ood::Features& val_ood) {
  double trained_seconds = 0;
  for (const auto& e : log) trained_seconds += e.value("seconds", 0.0);
  for (int epoch = start_epoch; epoch < o.epochs; ++epoch) {
    // Not "epoch ...": the line after the epoch (stdout) starts so, and tests wait for that one.
    run::Progress progress("training epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                           trainer.steps_per_epoch(), "steps");
    const ood::DecoderEpoch r = trainer.run_epoch(epoch, [&](int64_t step, int64_t, double loss) {
      char buf[48];
      std::snprintf(buf, sizeof(buf), "loss %.4f", loss);
      progress.update(step, buf);
    });
    progress.finish();
    trained_seconds += r.seconds;
    hm.info().epoch = epoch + 1;
    double val_auroc = -1;
    if (validate)
      val_auroc = ood::compute_ood_metrics(heatmap_scores(hm, val_id), heatmap_scores(hm, val_ood)).auroc;
    const double ips = double(r.samples) / r.seconds;
    const double eta = (o.epochs - epoch - 1) * r.seconds;
    std::printf("epoch %d/%d  loss %.4f (ID %.4f, OE %.4f)  %.1f s (%.0f images/s)%s  ETA %s\n", epoch + 1, o.epochs,
                r.loss, r.id_loss, r.oe_loss, r.seconds, ips,
                val_auroc >= 0 ? ("  validation AUROC " + std::to_string(100 * val_auroc).substr(0, 5)).c_str() : "",
                run::format_duration(eta).c_str());
    std::fflush(stdout);
    log.push_back({{"epoch", epoch + 1},
                   {"loss", r.loss},
                   {"id_loss", r.id_loss},
                   {"oe_loss", r.oe_loss},
                   {"seconds", r.seconds},
                   {"training_seconds_total", trained_seconds},
                   {"images_per_second", ips},
                   {"validation_auroc", val_auroc >= 0 ? nlohmann::json(100 * val_auroc) : nlohmann::json(nullptr)}});
    // Decoder file, log, then the resumable checkpoint (the commit point, see the top).
    NamedTensors extra;
    for (const auto& [n, t] : trainer.optimizer_state()) extra.emplace_back("optim/" + n, t);
    NamedTensors all = hm.decoder().state_dict();
    all.insert(all.end(), extra.begin(), extra.end());
    folder.commit(epoch + 1, all, [&] { hm.save(folder.path("decoder.safetensors")); }, log,
                  [&] { hm.save(folder.last_path(), extra); });
    if (run::RunFolder::stop_after(o.stop_after, epoch + 1)) break;
    if (o.max_minutes > 0 && trained_seconds >= 60 * o.max_minutes) {
      std::printf("stopping after epoch %d: %.1f min of training reached --max-minutes %g\n", epoch + 1,
                  trained_seconds / 60, o.max_minutes);
      break;
    }
  }
}

}  // namespace

int run_heatmap_fit(const HeatmapFitOptions& o) {
  set_math_mode(o.tf32 ? MathMode::TF32 : MathMode::FP32);
  const FitPlan p = plan_heatmap_fit(o);
  const run::RunFolder& folder = *p.folder;
  const std::string targets_path = folder.path("targets.safetensors");
  bool computed = false;
  const ood::HeatmapTargets targets = fit_targets(p, o, targets_path, computed);

  // ---- the first writes: --out, stale temporaries, the skipped-files list, the targets
  folder.open();
  folder.remove_stale({"targets.safetensors", "decoder.safetensors", "skipped_images.txt"});
  // Files --skip-unreadable left out: listed in <out>/skipped_images.txt (an earlier list removed).
  write_skipped_list("heatmap fit", folder.path("skipped_images.txt"));
  if (computed) {
    ood::save_heatmap_targets(targets_path, targets, p.targets_meta);
    std::printf("targets: wrote %s\n", targets_path.c_str());
  }

  // ---- validation pair (held-out ID vs the first val_ood_limit OOD validation images)
  ood::Features val_id, val_ood;
  if (p.validate) {
    models::Classifier& model = *p.cs.lc.model;
    val_id = run::extract(model, p.train, p.split.val, p.cs.norm, o.id + ":heldout", {o.device, o.feature_batch}).features;
    val_ood = run::extract(model, p.val_ood_set, first_rows(p.val_ood_set.size()), p.cs.norm, o.val_ood,
                           {o.device, o.feature_batch}).features;
  }

  // ---- decoder, optimiser, resume
  const std::shared_ptr<ood::HeatmapModel> hm = make_decoder(p, o, targets);
  ood::DecoderTrainOptions topt;
  topt.batch = o.batch;
  topt.lr = o.lr;
  topt.seed = o.seed;
  topt.device = o.device;
  topt.loss_weight = p.loss_weight;
  const ood::DecoderTrainSet set{image_rows(p.train, p.id_rows), image_rows(p.oe_all, p.oe_rows), targets};
  ood::DecoderTrainer trainer(*hm, set, topt);
  const int start_epoch = p.resumed ? p.resumed->info().epoch : 0;
  nlohmann::json log = nlohmann::json::array();
  if (p.resumed) log = folder.resume_log(start_epoch);
  else if (o.resume) folder.note_fresh_start();
  if (!p.optim_state.empty()) trainer.load_optimizer_state(p.optim_state);
  const models::DecoderConfig& c = hm->info().config;
  std::string chans;
  for (int64_t ch : c.channels) chans += (chans.empty() ? "" : "/") + std::to_string(ch);
  std::printf("decoder: C0 %lld, channels %s (width %g), %lld parameters; batch %lld, %lld steps per epoch, %d epochs\n",
              (long long)c.fc_channels, chans.c_str(), o.width, (long long)hm->decoder().num_parameters(),
              (long long)o.batch, (long long)trainer.steps_per_epoch(), o.epochs);
  std::fflush(stdout);
  train_decoder(*hm, trainer, folder, o, start_epoch, log, p.validate, val_id, val_ood);
  std::printf("wrote %s/decoder.safetensors\n", o.out_dir.c_str());
  return 0;
}

void add_heatmap_fit_command(CLI::App& heatmap, CommandList& commands) {
  const auto opts = std::make_shared<HeatmapFitOptions>();
  Command c;
  c.app = heatmap.add_subcommand("fit", "Train the heatmap decoder for a classifier");
  add_heatmap_fit_options(c.app, *opts, c);
  add_skip_unreadable_option(c.app);  // not on `heatmap oe-size`, whose own loads do not skip
  c.run = [opts](Device device) {
    opts->device = device;
    return run_heatmap_fit(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
