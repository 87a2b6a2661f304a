// Progress of a long step on stderr: "label done/total  rate unit/s  ETA m:ss" as one updating line
// on a terminal, or a plain line at most every `plain_every_s` seconds (and at the end) otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace oodkit::tools {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "images", double plain_every_s = 10.0);
  // `done` of `total` units finished; `extra` is appended (e.g. "loss 0.0123").
  void update(int64_t done, const std::string& extra = "");
  // Ends the line (terminal) or prints the last plain line; idempotent.
  void finish(const std::string& extra = "");
  double seconds() const;

 private:
  void print(int64_t done, const std::string& extra, bool last);
  std::string label_, unit_;
  int64_t total_;
  double plain_every_s_;
  bool tty_, finished_ = false;
  int64_t last_done_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

std::string format_duration(double seconds);  // "m:ss" or "h:mm:ss"

}  // namespace oodkit::tools
