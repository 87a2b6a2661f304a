#include "framework/error.h"

namespace oodkit::detail {

void throw_error(const char* file, int line, const char* expr, const std::string& msg) {
  std::ostringstream os;
  os << (msg.empty() ? std::string("check failed") : msg) << " (";
  if (expr && *expr) os << "`" << expr << "` ";
  os << "at " << file << ":" << line << ")";
  throw Error(os.str());
}

}  // namespace oodkit::detail
