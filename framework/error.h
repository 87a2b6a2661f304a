// oodkit error handling. Two families of check macros:
// - OODKIT_CHECK / OODKIT_FAIL: errors a caller can cause (a bad argument, a missing or malformed
//   file, an unknown name). They throw oodkit::Error whose what() is the message alone, which
//   must say on its own what is wrong and what to do; the source location is kept in where().
// - OODKIT_ASSERT / OODKIT_UNREACHABLE: internal invariants no input or API use can break. They
//   throw oodkit::InternalError whose what() keeps the expression and location (a bug report).
// CUDA/cuDNN/cuBLAS variants live in framework/cuda/check.h (CUDA translation units only).
#pragma once
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

namespace oodkit {

// Every error oodkit raises. what(): the message. where(): "`<expr>` at <file>:<line>" (or
// "at <file>:<line>" without an expression) for errors raised by the macros, "" otherwise.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string where = "")
      : std::runtime_error(message), where_(std::move(where)) {}
  const std::string& where() const { return where_; }

 protected:
  // For subclasses whose what() differs from the message (InternalError).
  Error(const std::string& what_text, std::string where, int) : std::runtime_error(what_text), where_(std::move(where)) {}

 private:
  std::string where_;
};

// A broken internal invariant (an oodkit bug). what() reads
// "internal error: <message> (<where>); please report this".
class InternalError : public Error {
 public:
  InternalError(const std::string& message, std::string where);
};

// Raised when a device allocation fails even after the cache was released.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// The text a program shows for `e` after "error: ": what(), plus " (<where>)" when `with_location`
// and `e` is an oodkit::Error with a location not already in what() (InternalError has it).
std::string error_text(const std::exception& e, bool with_location);

// True when the environment variable OODKIT_DEBUG is set to a value other than "" or "0": the
// command line then appends the source location to user errors.
bool debug_errors_requested();

namespace detail {
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (void)std::initializer_list<int>{((os << args), 0)...};
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const char* expr, const std::string& msg);
[[noreturn]] void throw_internal(const char* file, int line, const char* expr, const std::string& msg);
}  // namespace detail
}  // namespace oodkit

// OODKIT_CHECK(cond, msg parts...): precondition a caller can break; throws oodkit::Error whose
// message (what()) must name the argument/file and say what to do.
#define OODKIT_CHECK(cond, ...)                                                               \
  do {                                                                                        \
    if (!(cond))                                                                              \
      ::oodkit::detail::throw_error(__FILE__, __LINE__, #cond,                                \
                                    ::oodkit::detail::str_cat(__VA_ARGS__));                  \
  } while (0)

// OODKIT_FAIL(msg parts...): unconditional user-facing error.
#define OODKIT_FAIL(...) \
  ::oodkit::detail::throw_error(__FILE__, __LINE__, "", ::oodkit::detail::str_cat(__VA_ARGS__))

// OODKIT_ASSERT(cond, msg parts...): internal invariant; throws oodkit::InternalError.
#define OODKIT_ASSERT(cond, ...)                                                              \
  do {                                                                                        \
    if (!(cond))                                                                              \
      ::oodkit::detail::throw_internal(__FILE__, __LINE__, #cond,                             \
                                       ::oodkit::detail::str_cat(__VA_ARGS__));               \
  } while (0)

// OODKIT_UNREACHABLE(msg parts...): a branch no input can reach; throws oodkit::InternalError.
#define OODKIT_UNREACHABLE(...) \
  ::oodkit::detail::throw_internal(__FILE__, __LINE__, "", ::oodkit::detail::str_cat(__VA_ARGS__))
