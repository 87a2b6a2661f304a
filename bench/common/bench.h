// Benchmark harness shared by the bench_* programs: command-line flags, timing (CUDA events
// on oodkit's stream after warm-up, std::chrono on the CPU), min/median over repeats, an
// optional L2 flush between repeats, a measured device-to-device copy bandwidth (the
// reference for "% of copy bandwidth"), and JSON-lines output.
//
// Output: every measurement is one JSON object on its own line (stdout, and appended to
// --json FILE when given):
//   {"name": "conv2d_fwd/l1_64x64x32", "device": "NVIDIA H100 80GB HBM3", "device_kind": "cuda",
//    "precision": "fp32", "batch": 128, "unit": "ms", "min": 1.23, "median": 1.25,
//    "repeats": 20, "iters_per_repeat": 8, "rate_unit": "TFLOP/s", "rate_best": 45.1,
//    "rate_median": 44.3, "pct_copy_bw": ..., "commit": "abc1234", "date": "2026-11-20T12:00:00Z",
//    "program": "bench_ops", "source": "oodkit"}
// min and median are times per iteration in `unit` (always ms); rates are work / time
// (rate_best uses the minimum time). A human-readable table goes to stderr.
//
// Commit: $OODKIT_GIT_COMMIT, else the compile definition OODKIT_GIT_COMMIT, else "unknown".
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/cuda_api.h"
#include "framework/dtype.h"

namespace oodkit::bench {

// ---- flags -------------------------------------------------------------------------------
// --name value, --name=value, or --name alone (a boolean flag). Every flag must be read
// (get*/flag) before finish(), which throws naming any flag that was given but never read,
// so a typo is an error rather than a silently ignored option. --help prints the flags read.
class Args {
 public:
  Args(int argc, char** argv);
  std::string get(const std::string& name, const std::string& def, const std::string& help = "");
  int64_t get_int(const std::string& name, int64_t def, const std::string& help = "");
  double get_double(const std::string& name, double def, const std::string& help = "");
  bool flag(const std::string& name, const std::string& help = "");
  // Comma-separated list ("fp32,tf32").
  std::vector<std::string> get_list(const std::string& name, const std::string& def, const std::string& help = "");
  // Throws on unread flags; returns true (after printing the usage) when --help was given.
  bool finish();
  const std::string& program() const { return program_; }

 private:
  std::string program_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
  std::vector<std::string> usage_;
  bool help_ = false;
};

// ---- timing ------------------------------------------------------------------------------
struct TimeOptions {
  int warmup = 3;             // untimed calls first (module load, cuDNN algorithm search, caches)
  int repeats = 20;           // timed repeats; min and median are taken over these
  double min_repeat_ms = 20;  // each repeat runs fn enough times to last at least this long
  int max_iters = 1000;       // cap on calls per repeat
  bool flush_l2 = false;      // flush the cache before every repeat (then one call per repeat)
};

struct Timing {
  std::vector<double> ms;  // per-call time of each repeat
  double min_ms = 0, median_ms = 0;
  int iters_per_repeat = 1;
};

// Times fn on `device`. CUDA: fn only enqueues work on oodkit's stream; each repeat is
// bracketed by CUDA events recorded on that stream (the host does not synchronise inside a
// repeat), so the time is device time including launch gaps. CPU: steady_clock around the
// repeat. The per-call time is the repeat's time / iters_per_repeat, where iters_per_repeat is
// calibrated after warm-up so that one repeat lasts >= min_repeat_ms.
Timing time_fn(Device device, const std::function<void()>& fn, const TimeOptions& opt);

// Writes a buffer larger than the last-level cache (CUDA: 4x the L2 size, >= 256 MiB;
// CPU: 256 MiB) so the next timed call starts with a cold cache. Enqueued on the stream.
void flush_cache(Device device);

// Device-to-device copy bandwidth in GB/s (1e9 bytes/s), counting bytes read + written,
// from a Tensor::copy_ of `bytes` (default 1 GiB on CUDA, 256 MiB on the CPU); median of 10.
double measure_copy_bandwidth(Device device, size_t bytes = 0);

// Time-of-day helpers.
std::string iso_date_utc();   // "2026-11-20T12:34:56Z"
std::string git_commit();     // see the top of this file
std::string device_label(Device device);  // "NVIDIA H100 80GB HBM3" or "cpu (2 threads)"

// ---- results -----------------------------------------------------------------------------
struct Record {
  std::string name;
  std::string precision = "fp32";  // "fp32", "tf32", "n/a"
  int64_t batch = 0;
  Timing timing;
  // Work per call for the derived rates: flops (rate in TFLOP/s), bytes moved (GB/s and %
  // of copy bandwidth), or items (items/s, e.g. images/s). 0 = not reported.
  double flops = 0, bytes = 0, items = 0;
  std::string items_unit = "images/s";
  std::map<std::string, double> extra_numbers;
  std::map<std::string, std::string> extra_strings;
};

class Reporter {
 public:
  // Reads --json FILE (append), --copy-bw GBPS (skip the copy measurement) and the device.
  Reporter(Args& args, const std::string& program, Device device);
  ~Reporter();
  // The copy bandwidth used for pct_copy_bw: measured once, lazily (or from --copy-bw).
  double copy_bandwidth();
  void add(const Record& r);  // prints the JSON line and a table row
  Device device() const { return device_; }

 private:
  std::string program_;
  Device device_;
  std::string json_path_;
  double copy_bw_ = -1;
  std::string device_label_, date_, commit_;
  bool header_printed_ = false;
};

// Common flags of every bench program: --device, --warmup, --repeats, --min-ms, --max-iters,
// --flush-l2 (defaults from `defaults`, except min-ms: 20 on CUDA, 50 on the CPU).
struct CommonOptions {
  Device device = Device::cpu();
  TimeOptions time;
};
CommonOptions read_common(Args& args, const TimeOptions& defaults = TimeOptions());

// Parses "fp32" / "tf32" and sets oodkit's math mode; returns the canonical name.
std::string set_precision(const std::string& name);

// ---- internal: CUDA events (bench/common/cuda_events.cpp; no-ops in a CPU-only build) ------
namespace detail {
struct CudaEventPair;
std::shared_ptr<CudaEventPair> make_event_pair();
void record_start(CudaEventPair& e);
void record_stop(CudaEventPair& e);
double elapsed_ms(CudaEventPair& e);  // synchronises on the stop event
int64_t cuda_l2_bytes();              // 0 without CUDA
}  // namespace detail

}  // namespace oodkit::bench
