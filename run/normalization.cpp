#include "run/normalization.h"

#include <cmath>
#include <sstream>

#include "data/registry.h"

namespace oodkit::run {

std::array<float, 3> parse_channel_values(const std::string& text, const std::string& what, bool positive) {
  std::array<float, 3> out{};
  std::stringstream ss(text);
  std::string item;
  size_t n = 0;
  while (std::getline(ss, item, ',')) {
    OODKIT_CHECK(n < 3, what, ": expected three comma-separated values (one per channel), got '", text, "'");
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    OODKIT_CHECK(!item.empty() && end && *end == '\0' && std::isfinite(v) && (!positive || v > 0), what,
                 ": '", item, "' in '", text, "' is not a ", positive ? "positive " : "", "finite number");
    out[n++] = float(v);
  }
  OODKIT_CHECK(n == 3, what, ": expected three comma-separated values (one per channel), got '", text, "'");
  return out;
}

NormalizationChoice choose_normalization(const std::string& mean, const std::string& std,
                                         const std::map<std::string, std::string>& meta,
                                         const std::string& checkpoint, const std::string& id) {
  OODKIT_CHECK(mean.empty() == std.empty(), mean.empty() ? "--std" : "--mean", " given without ",
               mean.empty() ? "--mean" : "--std", ": give both (three values each) or neither");
  NormalizationChoice c;
  if (!mean.empty()) {
    c.norm.mean = parse_channel_values(mean, "--mean", false);
    c.norm.std = parse_channel_values(std, "--std", true);
    c.source = "--mean/--std";
    return c;
  }
  const auto m = meta.find("input_mean"), s = meta.find("input_std");
  if (m != meta.end() && s != meta.end()) {
    c.norm.mean = parse_channel_values(m->second, "checkpoint '" + checkpoint + "' metadata input_mean", false);
    c.norm.std = parse_channel_values(s->second, "checkpoint '" + checkpoint + "' metadata input_std", true);
    c.source = "checkpoint metadata";
    return c;
  }
  c.norm = data::normalization_for(id);
  c.source = "the default for '" + id + "' (the checkpoint records none; pass --mean/--std if it was trained otherwise)";
  return c;
}

std::string describe(const NormalizationChoice& c) {
  std::ostringstream os;
  os << "mean " << c.norm.mean[0] << "," << c.norm.mean[1] << "," << c.norm.mean[2] << " std " << c.norm.std[0] << ","
     << c.norm.std[1] << "," << c.norm.std[2] << " (" << c.source << ")";
  return os.str();
}

}  // namespace oodkit::run
