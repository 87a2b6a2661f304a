#include "fuzz/targets.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "framework/error.h"
#include "framework/safetensors.h"
#include "framework/torch_file.h"
#include "ood/dice.h"
#include "ood/mahalanobis.h"
#include "ood/react.h"
#include "ood/state_io.h"
#include "ood/vim.h"
#include "tools/protocol_file.h"

namespace oodkit::fuzz {

namespace {

// A per-process scratch path under /dev/shm (memory-backed; /tmp where it is missing).
std::string scratch(const std::string& name) {
  struct stat st;
  const std::string dir = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  return dir + "/oodkit-fuzz-" + std::to_string(::getpid()) + "-" + name;
}

// Writes bytes to a file that is removed when the object goes away.
struct ScratchFile {
  std::string path;
  ScratchFile(const std::string& name, const uint8_t* data, size_t size) : path(scratch(name)) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
    f.close();
    if (!f) {  // the harness's own failure, not the parser's: abort loudly
      std::fprintf(stderr, "fuzz: cannot write scratch file %s\n", path.c_str());
      std::abort();
    }
  }
  ~ScratchFile() { ::unlink(path.c_str()); }
};

// Runs `f`: "" when it returns, the message of the oodkit::Error it throws. An InternalError (an
// invariant an input must never break) escapes, so that the fuzzer reports it as a crash. Each
// entry returns the outcome of its primary parse; the other parses it runs only add coverage.
template <class F>
std::string attempt(F&& f) {
  try {
    f();
  } catch (const InternalError&) {
    throw;
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

std::string fuzz_safetensors(const uint8_t* data, size_t size) {
  ScratchFile file("st.safetensors", data, size);
  const std::string err = attempt([&] {
    std::map<std::string, std::string> meta;
    load_safetensors(file.path, &meta);
  });
  (void)attempt([&] { list_safetensors(file.path); });
  return err;
}

std::string fuzz_cifar(const uint8_t* data, size_t size) {
  ScratchFile file("cifar.bin", data, size);
  const std::string err = attempt([&] { data::load_cifar({file.path}, data::CifarLayout::Cifar10); });
  (void)attempt([&] { data::load_cifar({file.path}, data::CifarLayout::Cifar100Fine); });
  (void)attempt([&] { data::load_cifar({file.path}, data::CifarLayout::Cifar100Coarse); });
  (void)attempt([&] { data::read_class_names(file.path); });
  return err;
}

std::string fuzz_idx(const uint8_t* data, size_t size) {
  ScratchFile file("data.idx", data, size);
  const std::string err = attempt([&] { data::read_idx(file.path); });
  (void)attempt([&] { data::load_idx_images(file.path); });
  (void)attempt([&] { data::load_idx_labels(file.path, 10); });
  return err;
}

std::string fuzz_image(const uint8_t* data, size_t size) {
  ScratchFile file("image.img", data, size);
  // size 32: short-side resize + crop (the eval default); 16: squash; 0: the decoded size.
  auto load = [&](int square) {
    data::ImageFolderOptions o;
    data::set_square_size(o, square, square == 16 ? data::ImageFit::Squash : data::ImageFit::ShortSideCrop);
    data::load_image_files({file.path}, o, "fuzz");
  };
  const std::string err = attempt([&] { load(32); });
  // An image over 2^23 pixels (up to 2^26 are accepted) takes seconds per decode under the
  // sanitizers, even from a 54-byte TGA: only the primary parse runs for it, so that a bounded
  // run does not spend its time (and hit its timeout) on a few such inputs.
  int64_t pixels = 0;
  (void)attempt([&] {
    const data::ImageInfo info = data::read_image_info(file.path);
    pixels = info.height * info.width;
  });
  if (pixels > (int64_t(1) << 23)) return err;
  (void)attempt([&] { load(16); });
  (void)attempt([&] { load(0); });
  (void)attempt([&] { data::decode_image(file.path); });
  return err;
}

std::string fuzz_tiny_imagenet(const uint8_t* data, size_t size) {
  ScratchFile file("annotations.txt", data, size);
  const std::string err = attempt([&] {
    data::read_tiny_imagenet_val_labels(file.path, {"n01443537", "n01629819", "n01641577"},
                                        {"val/images/val_0.JPEG", "val_1.JPEG", "val_2.JPEG"});
  });
  (void)attempt([&] { data::read_wnids(file.path); });
  return err;
}

std::string fuzz_detector_state(const uint8_t* data, size_t size) {
  size_t split = 0;
  while (split < size && data[split] != 0) ++split;
  const std::string base = scratch("state");
  ScratchFile js("state.json", data, split);
  ScratchFile st("state.safetensors", data + std::min(size, split + 1), size - std::min(size, split + 1));
  // The kind the file claims (the loaders check it themselves); "" when there is none.
  const nlohmann::json doc = nlohmann::json::parse(data, data + split, nullptr, /*allow_exceptions=*/false);
  std::string kind;
  if (doc.is_object() && doc.contains("kind") && doc["kind"].is_string()) kind = doc["kind"].get<std::string>();
  const std::string err = attempt([&] {
    if (kind == ood::Mahalanobis::kKind) {
      ood::Mahalanobis::load(base);
    } else if (kind == ood::ReAct::kKind) {
      ood::ReAct::load(base);
    } else if (kind == ood::Vim::kKind) {
      ood::Vim::load(base);
    } else if (kind == ood::Dice::kKind) {
      ood::Dice::load(base);
    } else {  // a detector's base pair (Detector::load) or another kind
      const ood::StateReader r(base, kind.empty() ? "knn" : kind);
      std::stringstream keys(r.has("param_keys") ? r.text("param_keys") : "");
      for (std::string k; std::getline(keys, k, ',');)
        if (!k.empty()) r.number("param." + k);
      r.expect_no_other_tensors();
    }
  });
  return err;
}

std::string fuzz_protocol(const uint8_t* data, size_t size) {
  ScratchFile file("protocol.json", data, size);
  const std::string err = attempt([&] { tools::read_saved_protocol(file.path); });
  return err;
}

std::string fuzz_torch_file(const uint8_t* data, size_t size) {
  ScratchFile file("checkpoint.pt", data, size);
  return attempt([&] { load_torch_file(file.path); });
}

const std::vector<std::string>& target_names() {
  static const std::vector<std::string> names = {"safetensors", "cifar", "idx", "image",
                                                 "tiny_imagenet", "detector_state", "protocol",
                                                 "torch_file"};
  return names;
}

Entry find_target(const std::string& name) {
  static const std::map<std::string, Entry> entries = {
      {"safetensors", fuzz_safetensors}, {"cifar", fuzz_cifar},
      {"idx", fuzz_idx},                 {"image", fuzz_image},
      {"tiny_imagenet", fuzz_tiny_imagenet}, {"detector_state", fuzz_detector_state},
      {"protocol", fuzz_protocol},       {"torch_file", fuzz_torch_file}};
  const auto it = entries.find(name);
  return it == entries.end() ? nullptr : it->second;
}

}  // namespace oodkit::fuzz
