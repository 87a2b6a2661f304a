// Progress of a long step on stderr: "label done/total  rate unit/s  ETA m:ss" as one updating line
// on a terminal, or a plain line at most every `plain_every_s` seconds (and at the end) otherwise.
// The final line (finish) gives the total time instead of the ETA.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace oodkit::run {

// Where a Progress writes and what it asks of the machine; the default is stderr, the steady clock
// and isatty(stderr). Tests substitute a clock and the terminal decision.
struct ProgressSink {
  std::FILE* out = stderr;
  bool tty = false;                 // true: "\r\033[K" + one updating line; false: plain lines
  std::function<double()> seconds;  // a monotonic clock in seconds (any origin)
  static ProgressSink standard();   // stderr, isatty(stderr), std::chrono::steady_clock
};

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "images", double plain_every_s = 10.0,
           ProgressSink sink = ProgressSink::standard());
  // `done` of `total` units finished; `extra` is appended (e.g. "loss 0.0123"). On a terminal at
  // most one line per 0.2 s; otherwise at most one per `plain_every_s`, none once done >= total
  // (finish prints that one, with the total time).
  void update(int64_t done, const std::string& extra = "");
  // Ends the line (terminal) or prints the last plain line; idempotent.
  void finish(const std::string& extra = "");
  double seconds() const;  // since construction

 private:
  void print(int64_t done, const std::string& extra, bool last);
  std::string label_, unit_;
  int64_t total_;
  double plain_every_s_;
  ProgressSink sink_;
  bool finished_ = false;
  int64_t last_done_ = 0;
  double start_, last_print_;  // sink_.seconds() values
};

std::string format_duration(double seconds);  // "m:ss" or "h:mm:ss", rounded to the second

}  // namespace oodkit::run
