#include "run/progress.h"

#include <unistd.h>

#include <chrono>

namespace oodkit::run {

std::string format_duration(double seconds) {
  const long s = seconds > 0 ? long(seconds + 0.5) : 0;
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  return buf;
}

ProgressSink ProgressSink::standard() {
  ProgressSink s;
  s.out = stderr;
  s.tty = ::isatty(STDERR_FILENO) != 0;
  s.seconds = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  return s;
}

Progress::Progress(std::string label, int64_t total, std::string unit, double plain_every_s, ProgressSink sink)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      plain_every_s_(plain_every_s),
      sink_(std::move(sink)),
      start_(sink_.seconds()),
      last_print_(start_) {}

double Progress::seconds() const { return sink_.seconds() - start_; }

void Progress::update(int64_t done, const std::string& extra) {
  last_done_ = done;
  if (!sink_.tty && done >= total_) return;  // finish() prints the last plain line, with the total time
  const double now = sink_.seconds();
  const double since = now - last_print_;
  if (sink_.tty ? since < 0.2 : since < plain_every_s_) return;
  last_print_ = now;
  print(done, extra, false);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  print(last_done_, extra, true);
}

void Progress::print(int64_t done, const std::string& extra, bool last) {
  const double secs = seconds();
  const double rate = secs > 0 ? double(done) / secs : 0.0;
  std::string eta;
  if (!last && rate > 0 && total_ > done) eta = "  ETA " + format_duration(double(total_ - done) / rate);
  if (last) eta = "  " + format_duration(secs);
  std::fprintf(sink_.out, "%s%s %lld/%lld  %.1f %s/s%s%s%s%s", sink_.tty ? "\r\033[K" : "", label_.c_str(),
               (long long)done, (long long)total_, rate, unit_.c_str(), eta.c_str(), extra.empty() ? "" : "  ",
               extra.c_str(), sink_.tty && !last ? "" : "\n");
  std::fflush(sink_.out);
}

}  // namespace oodkit::run
