// Fuzzing entry points: one per parser oodkit has. Each feeds `data` to the real parser (through
// a file under /dev/shm where the parser reads files) and returns "" when the parser accepted
// the input, or the message of the oodkit::Error it threw: a clear rejection, a correct outcome.
// Entries that run several parsers on the bytes return the outcome of the first one listed.
// Anything else escapes to the caller and is a finding: another exception type, a crash, a
// sanitizer report, a hang. Used by the libFuzzer mains (fuzz/fuzz_main.cpp) and by
// tests/test_fuzz_regressions.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace oodkit::fuzz {

using Entry = std::string (*)(const uint8_t* data, size_t size);

// safetensors header + data (list_safetensors, load_safetensors).
std::string fuzz_safetensors(const uint8_t* data, size_t size);
// A CIFAR binary batch, read as CIFAR-10, CIFAR-100 fine and coarse; also as a class-name list.
std::string fuzz_cifar(const uint8_t* data, size_t size);
// An IDX file, plain or gzip (read_idx, load_idx_images, load_idx_labels).
std::string fuzz_idx(const uint8_t* data, size_t size);
// An image file through stb_image: load_image_files (the image-folder path) with a short-side
// resize + center crop to 32x32, a 16x16 squash and at the decoded size; read_image_info;
// decode_image (for an image over 2^23 pixels only the first and read_image_info).
std::string fuzz_image(const uint8_t* data, size_t size);
// Tiny ImageNet text files: the bytes as val_annotations.txt and as wnids.txt.
std::string fuzz_tiny_imagenet(const uint8_t* data, size_t size);
// A detector state pair: the bytes up to the first NUL are <state>.json, the rest
// <state>.safetensors; loaded by StateReader and, for its kind, the detector's load function.
std::string fuzz_detector_state(const uint8_t* data, size_t size);
// protocol.json as `oodkit score` reads it (tools/protocol_file.h).
std::string fuzz_protocol(const uint8_t* data, size_t size);
// A PyTorch checkpoint (torch.save's ZIP archive or legacy file): load_torch_file (framework/torch_file.h).
std::string fuzz_torch_file(const uint8_t* data, size_t size);

// The targets by name ("safetensors", "cifar", "idx", "image", "tiny_imagenet",
// "detector_state", "protocol", "torch_file"); find_target returns nullptr for an unknown name.
const std::vector<std::string>& target_names();
Entry find_target(const std::string& name);

}  // namespace oodkit::fuzz
