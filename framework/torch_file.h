// Reading PyTorch checkpoints (`torch.save` files: the ZIP layout PyTorch >= 1.6 writes by default,
// and the legacy layout) without PyTorch or Python. The ZIP layout:
//   <archive>/data.pkl     a pickle (protocol 2) of the saved object; tensors refer to their storages
//                          through persistent ids ('storage', torch.<T>Storage, key, location, numel)
//   <archive>/data/<key>   each storage's raw little-endian bytes
//   <archive>/byteorder    "little" (absent in files of PyTorch < 1.10: little-endian)
//   <archive>/version, .format_version, .storage_alignment, .data/serialization_id (not needed)
// The legacy layout (PyTorch < 1.6, or torch.save(..., _use_new_zipfile_serialization=False)): five
// pickles one after another -- the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001,
// a dict of system information (little_endian must be True), the saved object (persistent ids
// ('storage', torch.<T>Storage, key, location, numel, view_metadata); view_metadata must be None),
// the list of storage keys -- then each storage of that list, in its order, as an 8-byte
// little-endian element count (equal to the persistent id's numel) and its raw bytes. Every
// storage the object uses must be in the list exactly once, and the list names no other.
// Every pickle is read by a restricted unpickler that executes nothing: it builds dicts, lists,
// tuples, strings and numbers, and knows only these globals: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter /
// _rebuild_parameter_with_state and the torch.<T>Storage types. Any other global (os.system,
// builtins.eval, a model class of a whole pickled module, numpy scalars, ...) is an Error naming the
// global and the file, raised when the pickle names it, before anything after it is read.
//
// What is returned: the state dict, i.e. the tensors of the saved dict (collections.OrderedDict or
// dict) under string keys, in the dict's order; or, when that dict holds a dict under exactly one of
// the keys "state_dict", "model_state_dict", "model", "net" (a training script's checkpoint
// {"epoch": ..., "state_dict": ..., "optimizer": ...}), the tensors of that one. Entries that are
// not tensors (numbers, strings, nested dicts, ...) are skipped, and so is everything outside the
// chosen dict (an optimizer's tensors are never read). Tensors come back as contiguous CPU tensors:
// views (storage offset, any sizes and strides, transposes) are materialised, two tensors sharing a
// storage become two copies. dtypes: float32, float64, int64, int32, uint8 load as themselves,
// float16 and bfloat16 as float32 (exactly), bool as uint8 (0 or 1); any other dtype of a returned
// tensor (int8, int16, complex, the uint16/32/64 and float8 of torch._utils._rebuild_tensor_v3) is an
// Error naming the tensor.
//
// Refused with an Error naming the file: TorchScript archives (torch.jit.save), the tar format of
// PyTorch < 0.4, big-endian files, compressed entries other than deflate, legacy storage views
// (view_metadata), and every damaged file (truncation, a failed CRC-32, sizes or offsets outside
// the file, a view outside its storage, a malformed pickle, storage keys that do not match). A
// legacy file is read into memory whole. Sizes read from the file are
// checked against the file's size before anything is allocated, and everything read or made from
// the file (storages, materialised views) is bounded by 64 times its size, the pickle's objects by
// 2^22: overlapping ZIP entries or many views of one storage cannot ask for unbounded memory.
#pragma once
#include <string>

#include "framework/safetensors.h"
#include "framework/tensor.h"

namespace oodkit {

NamedTensors load_torch_file(const std::string& path);

// Whether `path` starts as a torch.save file does: the ZIP signature "PK\x03\x04" or the legacy
// layout's pickled magic number (false for a missing or unreadable file).
bool is_torch_file(const std::string& path);

}  // namespace oodkit
