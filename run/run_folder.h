// The output folder of a training command (`train`, `heatmap fit`): what both do to their --out,
// in one order (docs/resume.md):
//   1. the plan: the folder is checked creatable (nothing created: an Error names --out), and the
//      command checks a last.safetensors it resumes from (check_options: the run's trajectory
//      options) before anything is written or any work starts;
//   2. open: the folder is created (mkdir -p), nothing in it changes yet;
//   3. remove_stale: the temporaries (<name>.tmp.<pid>) of a run killed while writing are removed;
//   4. resume_log: log.json read back, entries past the resumed epoch dropped (logged, not committed);
//   5. per epoch, commit: the non-finite guard (a NaN/Inf state is never saved), the command's own
//      files, log.json, then last.safetensors (the commit point: the others are never older);
//   6. stop_after: --stop-after N ends the run after epoch N, as if killed (tests --resume).
// Every file is written atomically (temporary + rename), so a run killed at any moment leaves a
// consistent folder.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/safetensors.h"

namespace oodkit::run {

// Creates the output folder `dir` and any missing parents (as mkdir -p), before a command does
// any work. Throws naming `option` (e.g. "--out") and the path when it cannot: a component is a
// file, no permission, a read-only file system.
void make_output_dir(const std::string& dir, const char* option);

// Writes `text` to `path` atomically (temp file "<path>.tmp.<pid>", fsync, rename). On any
// failure (a full disk included) the temporary file is removed, `path` is left as it was, and the
// Error names the path and the system's reason ("File too large", "No space left on device", ...).
void write_text_file(const std::string& path, const std::string& text);

// --resume's check that a run continues with the options it started with (train, heatmap fit).
// `saved` is the "options" metadata of a checkpoint (a JSON object: command-line name -> value)
// and `now` the current run's; keys of `now` only are compared. Empty when they agree, else each
// difference as "<name> <saved> (now <current>)", comma-separated, e.g. "--lr 0.001 (now 0.002)";
// a key the checkpoint lacks reads "(absent)", metadata that is not a JSON object one message.
std::string option_differences(const std::string& saved, const nlohmann::json& now);

// Removes the files "<dir>/<name>.tmp.<pid>" (the temporaries of save_safetensors and
// write_text_file) for each of `names` whose writing process no longer runs: what a run killed
// while writing leaves behind. Prints each; returns how many were removed.
int remove_stale_temp_files(const std::string& dir, const std::vector<std::string>& names);

class RunFolder {
 public:
  // Step 1: checks that `dir` can be created (run::check_output_dir, naming --out) and creates
  // nothing. `command` ("train", "heatmap fit") starts every message; `redo` ends the options
  // refusal, e.g. "train into another --out".
  RunFolder(std::string dir, std::string command, std::string redo);
  // Step 2: creates the folder and any missing parents (make_output_dir, naming --out).
  void open() const;

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }
  const std::string& last_path() const { return last_path_; }
  // Whether last.safetensors exists and is readable (what --resume continues from).
  bool has_checkpoint() const;

  // Step 1: refuses, naming each difference, when `saved` (a checkpoint's "options"; empty in
  // checkpoints written before options were recorded: not checked) differs from `now`.
  void check_options(const std::string& saved, const nlohmann::json& now) const;
  // Step 3, for the command's files (last.safetensors and log.json are always included).
  void remove_stale(std::vector<std::string> files) const;
  // Step 4: log.json's entries up to `epoch` (an empty array without log.json); prints
  // "resuming from <last> after epoch <epoch>".
  nlohmann::json resume_log(int epoch) const;
  // Without a checkpoint under --resume: prints that the run starts from scratch.
  void note_fresh_start() const;

  // Step 5 after epoch `epoch` (1-based): refuses (naming the tensor, the epoch and that
  // last.safetensors keeps the last finished epoch) when a tensor of `state` is NaN/Inf; else
  // calls write_files (the command's own files), writes `log` to log.json, then write_last.
  void commit(int epoch, const NamedTensors& state, const std::function<void()>& write_files,
              const nlohmann::json& log, const std::function<void()>& write_last) const;
  // Step 6: true (and prints so) when --stop-after `stop_after` (> 0) is reached at `epoch`.
  static bool stop_after(int stop_after, int epoch);

 private:
  std::string dir_, command_, redo_, last_path_;
};

}  // namespace oodkit::run
