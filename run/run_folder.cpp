#include "run/run_folder.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "framework/error.h"
#include "ood/heatmap_train.h"
#include "run/plan.h"

namespace oodkit::run {

void make_output_dir(const std::string& dir, const char* option) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec && !std::filesystem::is_directory(dir, ec))
    ec = std::make_error_code(std::errc::not_a_directory);
  OODKIT_CHECK(!ec, option, ": cannot create the folder '", dir, "': ", ec.message());
}

void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const auto fail = [&](const char* what, int fd) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    std::remove(tmp.c_str());
    OODKIT_FAIL("cannot write '", path, "': ", what, ": ", why);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create its temporary file", -1);
  for (size_t done = 0; done < text.size();) {
    const ssize_t k = ::write(fd, text.data() + done, text.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail("write failed (disk full?)", fd);
    done += size_t(k);
  }
  if (::fsync(fd) != 0) fail("fsync failed", fd);
  if (::close(fd) != 0) fail("close failed", -1);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename failed", -1);
}

std::string option_differences(const std::string& saved, const nlohmann::json& now) {
  const nlohmann::json was = nlohmann::json::parse(saved, nullptr, /*allow_exceptions=*/false);
  if (!was.is_object()) return "(unreadable \"options\" metadata)";
  std::string diff;
  for (const auto& [key, value] : now.items()) {
    if (was.contains(key) && was[key] == value) continue;
    diff += (diff.empty() ? "" : ", ") + key + " " + (was.contains(key) ? was[key].dump() : "(absent)") +
            " (now " + value.dump() + ")";
  }
  return diff;
}

int remove_stale_temp_files(const std::string& dir, const std::vector<std::string>& names) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  for (const dirent* e; (e = ::readdir(d)) != nullptr;) {
    const std::string f = e->d_name;
    for (const std::string& n : names) {
      const std::string prefix = n + ".tmp.";
      if (f.size() <= prefix.size() || f.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string digits = f.substr(prefix.size());
      if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
      const pid_t pid = pid_t(std::stol(digits));
      // Left alone while its writer may still run (kill fails with EPERM for another user's process).
      if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
      if (::unlink((dir + "/" + f).c_str()) == 0) {
        std::printf("removed %s/%s (left by a run killed while writing)\n", dir.c_str(), f.c_str());
        ++removed;
      }
    }
  }
  ::closedir(d);
  return removed;
}

RunFolder::RunFolder(std::string dir, std::string command, std::string redo)
    : dir_(std::move(dir)), command_(std::move(command)), redo_(std::move(redo)), last_path_(dir_ + "/last.safetensors") {
  check_output_dir(dir_, "--out");
}

void RunFolder::open() const { make_output_dir(dir_, "--out"); }

bool RunFolder::has_checkpoint() const { return ::access(last_path_.c_str(), R_OK) == 0; }

void RunFolder::check_options(const std::string& saved, const nlohmann::json& now) const {
  if (saved.empty()) return;
  const std::string diff = option_differences(saved, now);
  OODKIT_CHECK(diff.empty(), command_, " --resume: '", last_path_, "' was written with other options: ", diff,
               "; resume with the checkpoint's options (or ", redo_, ")");
}

void RunFolder::remove_stale(std::vector<std::string> files) const {
  for (const char* always : {"log.json", "last.safetensors"})
    if (std::find(files.begin(), files.end(), always) == files.end()) files.push_back(always);
  remove_stale_temp_files(dir_, files);
}

nlohmann::json RunFolder::resume_log(int epoch) const {
  nlohmann::json log = nlohmann::json::array();
  const std::string log_path = path("log.json");
  if (::access(log_path.c_str(), R_OK) == 0) {
    std::ifstream f(log_path);
    log = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    OODKIT_CHECK(log.is_array(), command_, " --resume: '", log_path, "' is not a JSON array (a log.json of ", command_,
                 "); move it away to resume without the earlier epochs' log");
    // Entries of an epoch that was logged but whose checkpoint was not committed are redone.
    while (!log.empty() && log.back().at("epoch").get<int>() > epoch) log.erase(log.size() - 1);
  }
  std::printf("resuming from %s after epoch %d\n", last_path_.c_str(), epoch);
  return log;
}

void RunFolder::note_fresh_start() const {
  std::printf("no checkpoint at %s: starting from scratch\n", last_path_.c_str());
}

void RunFolder::commit(int epoch, const NamedTensors& state, const std::function<void()>& write_files,
                       const nlohmann::json& log, const std::function<void()>& write_last) const {
  // An update can overflow with finite losses and gradients (a huge step): never save that.
  const std::string bad = ood::first_nonfinite(state);
  OODKIT_CHECK(bad.empty(), command_, ": '", bad, "' became non-finite (NaN or Inf) in epoch ", epoch,
               " (lower --lr?); not saved: ", last_path_, " keeps the last finished epoch");
  write_files();
  write_text_file(path("log.json"), log.dump(2) + "\n");
  write_last();
}

bool RunFolder::stop_after(int stop_after, int epoch) {
  if (stop_after <= 0 || epoch < stop_after) return false;
  std::printf("stopping after epoch %d (--stop-after)\n", epoch);
  return true;
}

}  // namespace oodkit::run
