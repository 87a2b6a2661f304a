#include "framework/error.h"

#include <cstdlib>
#include <cstring>

namespace oodkit {
namespace {
std::string location(const char* file, int line, const char* expr) {
  std::ostringstream os;
  if (expr && *expr) os << "`" << expr << "` ";
  os << "at " << file << ":" << line;
  return os.str();
}
}  // namespace

InternalError::InternalError(const std::string& message, std::string where)
    : Error(detail::str_cat("internal error: ", message.empty() ? std::string("invariant failed") : message, " (",
                            where, "); please report this"),
            where, 0) {}

std::string error_text(const std::exception& e, bool with_location) {
  std::string text = e.what();
  if (!with_location) return text;
  const auto* err = dynamic_cast<const Error*>(&e);
  if (err && !err->where().empty() && !dynamic_cast<const InternalError*>(&e)) text += " (" + err->where() + ")";
  return text;
}

bool debug_errors_requested() {
  const char* v = std::getenv("OODKIT_DEBUG");
  return v && *v && std::strcmp(v, "0") != 0;
}

namespace detail {
void throw_error(const char* file, int line, const char* expr, const std::string& msg) {
  throw Error(msg.empty() ? std::string("check failed") : msg, location(file, line, expr));
}

void throw_internal(const char* file, int line, const char* expr, const std::string& msg) {
  throw InternalError(msg, location(file, line, expr));
}
}  // namespace detail
}  // namespace oodkit
