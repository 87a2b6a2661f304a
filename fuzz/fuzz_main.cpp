// The libFuzzer main of one target: fuzz/CMakeLists.txt compiles this file once per parser with
// OODKIT_FUZZ_ENTRY set to the entry function of fuzz/targets.h (e.g. fuzz_safetensors).
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)oodkit::fuzz::OODKIT_FUZZ_ENTRY(data, size);
  return 0;
}
