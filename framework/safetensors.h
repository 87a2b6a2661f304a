// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian uint64 N, the header length
//   N bytes   JSON object {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//             optionally "__metadata__": {"<key>": "<string>", ...}}, padded with spaces so that N is a
//             multiple of 8
//   rest      the data section: raw little-endian row-major tensor bytes; offsets are relative to its
//             start, and the tensors cover it exactly (no holes, no overlap, nothing after the last).
// save_safetensors writes the header keys in the given order ("__metadata__" first, omitted when
// empty) and the data in the same order. Loading validates the whole file (a header nested deeper
// than 64 JSON levels is refused) and every error names the file (and the tensor, where there is one).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace oodkit {

struct TensorInfo {
  std::string name;
  DType dtype;               // the dtype load_safetensors returns (F16 and BF16 load as F32)
  Shape shape;
  std::string stored_dtype;  // the dtype string in the file: "F32", "F64", "U8", "I32", "I64", "F16", "BF16"
};


// Writes `tensors` (any device; copied to the host one at a time) and `metadata` to `path`.
// Atomic: the file is written to "<path>.tmp.<pid>", fsync'ed and renamed over `path`; on any
// failure the temporary file is removed, `path` is left untouched, and an Error naming `path`
// is thrown. Duplicate names, the reserved name "__metadata__" and undefined tensors are Errors.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor of `path` into CPU tensors, in the header's order. Native dtypes: F32,
// F64, U8, I32, I64; F16 and BF16 are converted to F32 exactly (subnormals, infinities and NaNs
// included); any other dtype is an Error. `metadata`, when given, receives "__metadata__".
NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// Names, dtypes and shapes of the tensors in `path`, in the header's order; reads and validates
// only the header (against the file's size), not the data.
std::vector<TensorInfo> list_safetensors(const std::string& path);

// IEEE binary16 / bfloat16 bit patterns to float (exact; NaN payloads kept where they fit).
float half_to_float(uint16_t bits);
float bfloat16_to_float(uint16_t bits);

}  // namespace oodkit
