#include "data/cifar.h"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace oodkit::data {

namespace {
std::vector<uint8_t> read_file(const std::string& path) {
  errno = 0;
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  OODKIT_CHECK(f.good(), "cannot open '", path, "'", errno ? std::string(": ") + std::strerror(errno) : std::string());
  const std::streamsize size = f.tellg();
  f.seekg(0);
  std::vector<uint8_t> bytes(size_t(std::max<std::streamsize>(size, 0)));
  OODKIT_CHECK(size >= 0 && f.read(reinterpret_cast<char*>(bytes.data()), size), "cannot read '", path, "'");
  return bytes;
}
}  // namespace

Dataset load_cifar(const std::vector<std::string>& files, CifarLayout layout) {
  OODKIT_CHECK(!files.empty(), "load_cifar: no files given");
  const int label_bytes = layout == CifarLayout::Cifar10 ? 1 : 2;
  const int label_at = layout == CifarLayout::Cifar100Fine ? 1 : 0;
  const int64_t classes = layout == CifarLayout::Cifar10 ? 10 : layout == CifarLayout::Cifar100Fine ? 100 : 20;
  constexpr int64_t kPixels = 3 * 32 * 32;
  const int64_t record = label_bytes + kPixels;

  std::vector<std::vector<uint8_t>> contents;
  int64_t total = 0;
  for (const std::string& path : files) {
    contents.push_back(read_file(path));
    const int64_t size = int64_t(contents.back().size());
    OODKIT_CHECK(size > 0, "'", path, "' is empty");
    OODKIT_CHECK(size % record == 0, "'", path, "' has ", size, " bytes, not a whole number of ", record,
                 "-byte CIFAR records (truncated or not a ",
                 layout == CifarLayout::Cifar10 ? "CIFAR-10" : "CIFAR-100", " binary file?)");
    total += size / record;
  }
  Dataset ds;
  ds.name = layout == CifarLayout::Cifar10 ? "cifar10" : "cifar100";
  ds.num_classes = classes;
  ds.images = Tensor::empty({total, 3, 32, 32}, DType::U8);
  ds.labels = Tensor::empty({total}, DType::I64);
  uint8_t* img = ds.images.data<uint8_t>();
  int64_t* lab = ds.labels.data<int64_t>();
  int64_t i = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    const std::vector<uint8_t>& bytes = contents[f];
    for (int64_t r = 0; r < int64_t(bytes.size()) / record; ++r, ++i) {
      const uint8_t* rec = bytes.data() + r * record;
      const int64_t label = rec[label_at];
      OODKIT_CHECK(label < classes, "'", files[f], "' record ", r, ": label ", label, " out of range [0, ",
                   classes, ")");
      lab[i] = label;
      std::memcpy(img + i * kPixels, rec + label_bytes, size_t(kPixels));
    }
  }
  return ds;
}

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream f(path);
  OODKIT_CHECK(f.good(), "cannot open '", path, "'");
  std::vector<std::string> names;
  for (std::string line; std::getline(f, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

}  // namespace oodkit::data
