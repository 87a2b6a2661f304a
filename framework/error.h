// oodkit error handling: one family of check macros that throw oodkit::Error with
// file, line and the failing expression's text. CUDA/cuDNN/cuBLAS variants live in
// framework/cuda/check.h (CUDA translation units only).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace oodkit {

// Every error oodkit raises. what() reads "<message> (<expr> at <file>:<line>)".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Raised when a device allocation fails even after the cache was released.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (void)std::initializer_list<int>{((os << args), 0)...};
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const char* expr, const std::string& msg);
}  // namespace detail
}  // namespace oodkit

// OODKIT_CHECK(cond, msg parts...): precondition; throws oodkit::Error naming the condition.
#define OODKIT_CHECK(cond, ...)                                                               \
  do {                                                                                        \
    if (!(cond))                                                                              \
      ::oodkit::detail::throw_error(__FILE__, __LINE__, #cond,                                \
                                    ::oodkit::detail::str_cat(__VA_ARGS__));                  \
  } while (0)

// OODKIT_FAIL(msg parts...): unconditional error.
#define OODKIT_FAIL(...) \
  ::oodkit::detail::throw_error(__FILE__, __LINE__, "", ::oodkit::detail::str_cat(__VA_ARGS__))
