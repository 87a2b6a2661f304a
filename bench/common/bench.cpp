#include "bench/common/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "framework/error.h"
#include "framework/tensor.h"

// Stringify the optional compile definition OODKIT_GIT_COMMIT (e.g. -DOODKIT_GIT_COMMIT=abc1234).
#define OODKIT_BENCH_STR2(x) #x
#define OODKIT_BENCH_STR(x) OODKIT_BENCH_STR2(x)

namespace oodkit::bench {

// ---- Args ----------------------------------------------------------------------------------

Args::Args(int argc, char** argv) : program_(argc > 0 ? argv[0] : "bench") {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    OODKIT_CHECK(a.size() > 2 && a.compare(0, 2, "--") == 0, program_, ": unexpected argument '", a,
                 "' (flags are --name value or --name=value)");
    a = a.substr(2);
    std::string value = "1";
    const size_t eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) {
      value = argv[++i];
    }
    if (a == "help") {
      help_ = true;
      continue;
    }
    OODKIT_CHECK(!values_.count(a), program_, ": flag --", a, " given twice");
    values_[a] = value;
    used_[a] = false;
  }
}

std::string Args::get(const std::string& name, const std::string& def, const std::string& help) {
  usage_.push_back("  --" + name + " (default '" + def + "')" + (help.empty() ? "" : ": " + help));
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  used_[name] = true;
  return it->second;
}

int64_t Args::get_int(const std::string& name, int64_t def, const std::string& help) {
  const std::string v = get(name, std::to_string(def), help);
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  OODKIT_CHECK(end && *end == '\0' && !v.empty(), program_, ": --", name, " expects an integer, got '", v, "'");
  return x;
}

double Args::get_double(const std::string& name, double def, const std::string& help) {
  std::ostringstream d;
  d << def;
  const std::string v = get(name, d.str(), help);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  OODKIT_CHECK(end && *end == '\0' && !v.empty(), program_, ": --", name, " expects a number, got '", v, "'");
  return x;
}

bool Args::flag(const std::string& name, const std::string& help) {
  const std::string v = get(name, "0", help);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  OODKIT_FAIL(program_, ": --", name, " is a boolean flag, got '", v, "'");
}

std::vector<std::string> Args::get_list(const std::string& name, const std::string& def, const std::string& help) {
  const std::string v = get(name, def, help);
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

bool Args::finish() {
  if (help_) {
    std::fprintf(stderr, "usage: %s [flags]\n", program_.c_str());
    for (const auto& u : usage_) std::fprintf(stderr, "%s\n", u.c_str());
    return true;
  }
  for (const auto& [name, used] : used_)
    OODKIT_CHECK(used, program_, ": unknown flag --", name, " (see --help)");
  return false;
}

// ---- timing --------------------------------------------------------------------------------

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Runs fn `iters` times and returns the elapsed milliseconds (device time on CUDA).
double run_once(Device device, const std::function<void()>& fn, int iters) {
  if (device.is_cuda()) {
    auto ev = detail::make_event_pair();
    detail::record_start(*ev);
    for (int i = 0; i < iters; ++i) fn();
    detail::record_stop(*ev);
    return detail::elapsed_ms(*ev);
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

}  // namespace

Timing time_fn(Device device, const std::function<void()>& fn, const TimeOptions& opt) {
  OODKIT_CHECK(opt.repeats >= 1 && opt.warmup >= 0 && opt.max_iters >= 1, "time_fn: repeats must be >= 1, got ",
               opt.repeats);
  for (int i = 0; i < opt.warmup; ++i) fn();
  cuda_synchronize();
  Timing t;
  if (!opt.flush_l2) {
    // Calibrate: one call (at least one was warmed up), then enough calls per repeat.
    const double one = std::max(run_once(device, fn, 1), 1e-4);
    t.iters_per_repeat = int(std::clamp(std::ceil(opt.min_repeat_ms / one), 1.0, double(opt.max_iters)));
  }
  for (int r = 0; r < opt.repeats; ++r) {
    if (opt.flush_l2) flush_cache(device);
    t.ms.push_back(run_once(device, fn, t.iters_per_repeat) / t.iters_per_repeat);
  }
  cuda_synchronize();
  t.min_ms = *std::min_element(t.ms.begin(), t.ms.end());
  t.median_ms = median_of(t.ms);
  return t;
}

void flush_cache(Device device) {
  static int value = 0;
  value = (value + 1) & 0xff;
  if (device.is_cuda()) {
    static Tensor buffer;
    if (!buffer.defined()) {
      const int64_t bytes = std::max<int64_t>(4 * detail::cuda_l2_bytes(), int64_t(256) << 20);
      buffer = Tensor::empty({bytes}, DType::U8, device);
    }
    cuda::memset_bytes(buffer.raw_data(), value, buffer.nbytes(), device.index);
    return;
  }
  static std::vector<unsigned char> host(size_t(256) << 20);
  std::memset(host.data(), value, host.size());
}

double measure_copy_bandwidth(Device device, size_t bytes) {
  if (bytes == 0) bytes = device.is_cuda() ? (size_t(1) << 30) : (size_t(256) << 20);
  const int64_t n = int64_t(bytes / sizeof(float));
  Tensor src = Tensor::full({n}, 1.0, DType::F32, device);
  Tensor dst = Tensor::empty({n}, DType::F32, device);
  TimeOptions opt;
  opt.warmup = 2;
  opt.repeats = 10;
  opt.min_repeat_ms = device.is_cuda() ? 20 : 0;
  const Timing t = time_fn(device, [&] { dst.copy_(src); }, opt);
  return 2.0 * double(n) * sizeof(float) / (t.median_ms * 1e-3) / 1e9;
}

std::string iso_date_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string git_commit() {
  if (const char* env = std::getenv("OODKIT_GIT_COMMIT"); env && *env) return env;
#ifdef OODKIT_GIT_COMMIT
  return OODKIT_BENCH_STR(OODKIT_GIT_COMMIT);
#else
  return "unknown";
#endif
}

std::string device_label(Device device) {
  if (device.is_cuda()) return cuda_device_name(device.index);
  std::string model = "cpu";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.compare(0, 10, "model name") == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) model = line.substr(colon + 2);
      break;
    }
  }
  int threads = int(std::thread::hardware_concurrency());
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  return model + " (" + std::to_string(threads) + " threads)";
}

// ---- Reporter ------------------------------------------------------------------------------

Reporter::Reporter(Args& args, const std::string& program, Device device)
    : program_(program), device_(device) {
  json_path_ = args.get("json", "", "append JSON lines to this file");
  copy_bw_ = args.get_double("copy-bw", -1, "copy bandwidth in GB/s for pct_copy_bw (default: measured)");
  device_label_ = device_label(device);
  date_ = iso_date_utc();
  commit_ = git_commit();
}

Reporter::~Reporter() = default;

double Reporter::copy_bandwidth() {
  if (copy_bw_ <= 0) copy_bw_ = measure_copy_bandwidth(device_);
  return copy_bw_;
}

void Reporter::add(const Record& r) {
  nlohmann::ordered_json j;
  j["name"] = r.name;
  j["device"] = device_label_;
  j["device_kind"] = device_.is_cuda() ? "cuda" : "cpu";
  j["precision"] = r.precision;
  j["batch"] = r.batch;
  j["unit"] = "ms";
  j["min"] = r.timing.min_ms;
  j["median"] = r.timing.median_ms;
  j["repeats"] = int(r.timing.ms.size());
  j["iters_per_repeat"] = r.timing.iters_per_repeat;
  std::string rate_unit;
  double work = 0;
  if (r.flops > 0) {
    rate_unit = "TFLOP/s";
    work = r.flops / 1e12;
  } else if (r.bytes > 0) {
    rate_unit = "GB/s";
    work = r.bytes / 1e9;
  } else if (r.items > 0) {
    rate_unit = r.items_unit;
    work = r.items;
  }
  double rate_median = 0;
  if (!rate_unit.empty()) {
    j["rate_unit"] = rate_unit;
    j["rate_best"] = work / (r.timing.min_ms * 1e-3);
    rate_median = work / (r.timing.median_ms * 1e-3);
    j["rate_median"] = rate_median;
  }
  std::string pct;
  if (r.bytes > 0) {
    const double gbps = r.bytes / 1e9 / (r.timing.median_ms * 1e-3);
    j["bytes"] = r.bytes;
    j["gbps_median"] = gbps;
    j["copy_bw_gbps"] = copy_bandwidth();
    j["pct_copy_bw"] = 100.0 * gbps / copy_bandwidth();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%5.1f%%", 100.0 * gbps / copy_bandwidth());
    pct = buf;
  }
  if (r.flops > 0) j["flops"] = r.flops;
  for (const auto& [k, v] : r.extra_numbers) j[k] = v;
  for (const auto& [k, v] : r.extra_strings) j[k] = v;
  j["commit"] = commit_;
  j["date"] = date_;
  j["program"] = program_;
  j["source"] = "oodkit";

  const std::string line = j.dump();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!json_path_.empty()) {
    std::ofstream f(json_path_, std::ios::app);
    OODKIT_CHECK(f.good(), program_, ": cannot open --json file '", json_path_, "'");
    f << line << "\n";
  }
  if (!header_printed_) {
    std::fprintf(stderr, "# %s on %s (commit %s)\n", program_.c_str(), device_label_.c_str(), commit_.c_str());
    std::fprintf(stderr, "%-44s %-5s %6s %11s %11s %12s %-9s %7s\n", "name", "prec", "batch", "median ms",
                 "min ms", "rate", "unit", "%copy");
    header_printed_ = true;
  }
  std::fprintf(stderr, "%-44s %-5s %6lld %11.4f %11.4f %12.4g %-9s %7s\n", r.name.c_str(), r.precision.c_str(),
               static_cast<long long>(r.batch), r.timing.median_ms, r.timing.min_ms, rate_median, rate_unit.c_str(),
               pct.c_str());
}

CommonOptions read_common(Args& args, const TimeOptions& defaults) {
  CommonOptions c;
  c.time = defaults;
  const std::string dev = args.get("device", cuda_available() ? "cuda" : "cpu", "cpu or cuda[:i]");
  c.device = Device::parse(dev);
  OODKIT_CHECK(!c.device.is_cuda() || cuda_available(), args.program(), ": --device ", dev,
               " but no CUDA device is available (", cuda_device_count(), " found)");
  c.time.warmup = int(args.get_int("warmup", c.time.warmup, "untimed calls before timing"));
  c.time.repeats = int(args.get_int("repeats", c.time.repeats, "timed repeats (min/median over these)"));
  c.time.min_repeat_ms = args.get_double("min-ms", c.device.is_cuda() ? 20 : 50, "minimum duration of one repeat");
  c.time.max_iters = int(args.get_int("max-iters", c.time.max_iters, "cap on calls per repeat"));
  c.time.flush_l2 = args.flag("flush-l2", "flush the cache before every repeat (one call per repeat)");
  return c;
}

std::string set_precision(const std::string& name) {
  if (name == "fp32") {
    set_math_mode(MathMode::FP32);
  } else if (name == "tf32") {
    set_math_mode(MathMode::TF32);
  } else {
    OODKIT_FAIL("precision must be fp32 or tf32, got '", name, "'");
  }
  return name;
}

}  // namespace oodkit::bench
