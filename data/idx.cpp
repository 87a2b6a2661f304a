#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "data/io.h"

namespace oodkit::data {

namespace {
const char* idx_type_name(uint8_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return nullptr;
  }
}

// The dims of an IDX header at the start of `bytes` (which may hold only a prefix of the file);
// sets header_bytes (4 + 4 * ndim) and count (the values the header promises).
std::vector<int64_t> parse_idx_header(const std::vector<uint8_t>& bytes, const std::string& path, int expect_ndim,
                                      size_t& header_bytes, int64_t& count) {
  OODKIT_CHECK(bytes.size() >= 4, "'", path, "' is too short (", bytes.size(), " bytes) for an IDX header");
  OODKIT_CHECK(bytes[0] == 0 && bytes[1] == 0, "'", path, "' is not an IDX file: bad magic (first bytes ",
               int(bytes[0]), " ", int(bytes[1]), ", expected 0 0)");
  const uint8_t code = bytes[2];
  const char* type = idx_type_name(code);
  OODKIT_CHECK(type != nullptr, "'", path, "' is not an IDX file: unknown data type code ", int(code));
  OODKIT_CHECK(code == 0x08, "'", path, "' holds ", type, " values (IDX type code ", int(code),
               "); only unsigned byte (0x08) is supported");
  const int ndim = bytes[3];
  OODKIT_CHECK(ndim >= 1 && ndim <= 4, "'", path, "': unsupported number of IDX dimensions ", ndim);
  OODKIT_CHECK(expect_ndim <= 0 || ndim == expect_ndim, "'", path, "' has ", ndim, " dimension(s), expected ",
               expect_ndim, expect_ndim == 3 ? " (an image file, e.g. *-idx3-ubyte)" :
               expect_ndim == 1 ? " (a label file, e.g. *-idx1-ubyte)" : "");
  header_bytes = 4 + 4 * size_t(ndim);
  OODKIT_CHECK(bytes.size() >= header_bytes, "'", path, "' is truncated inside its IDX header (", bytes.size(),
               " bytes, header needs ", header_bytes, ")");
  std::vector<int64_t> dims;
  count = 1;
  for (int d = 0; d < ndim; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const int64_t dim = (int64_t(p[0]) << 24) | (int64_t(p[1]) << 16) | (int64_t(p[2]) << 8) | int64_t(p[3]);
    OODKIT_CHECK(dim > 0, "'", path, "': IDX dimension ", d, " is 0");
    OODKIT_CHECK(count <= (int64_t(1) << 40) / dim, "'", path, "': IDX dimensions are implausibly large");
    count *= dim;
    dims.push_back(dim);
  }
  return dims;
}
}  // namespace

IdxArray read_idx(const std::string& path, int expect_ndim) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  if (is_gzip(bytes)) {
    // The header first, then the stream bounded by the size it declares: a small .gz that expands
    // to gigabytes is refused after decompressing at most one chunk more than the header promises.
    size_t header_bytes = 0;
    int64_t count = 0;
    parse_idx_header(gunzip(bytes, path, 4 + 4 * 4, /*prefix_only=*/true), path, expect_ndim, header_bytes, count);
    bytes = gunzip(bytes, path, std::min(header_bytes + size_t(count), kMaxGunzipBytes));
  }
  IdxArray a;
  size_t header = 0;
  int64_t count = 0;
  a.dims = parse_idx_header(bytes, path, expect_ndim, header, count);
  const int64_t payload = int64_t(bytes.size() - header);
  OODKIT_CHECK(payload >= count, "'", path, "' is truncated: the header promises ", count, " values but only ",
               payload, " bytes follow");
  OODKIT_CHECK(payload == count, "'", path, "' has ", payload - count, " trailing bytes after its ", count,
               " values");
  a.values.assign(bytes.begin() + std::ptrdiff_t(header), bytes.end());
  return a;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
  OODKIT_CHECK(!array.dims.empty() && array.dims.size() <= 4, "write_idx: 1 to 4 dims, got ", array.dims.size());
  int64_t count = 1;
  for (int64_t d : array.dims) {
    OODKIT_CHECK(d > 0 && d <= 0xFFFFFFFFll, "write_idx: bad dimension ", d);
    count *= d;
  }
  OODKIT_CHECK(int64_t(array.values.size()) == count, "write_idx: ", array.values.size(), " values for dims of ",
               count, " elements");
  std::vector<uint8_t> bytes = {0, 0, 0x08, uint8_t(array.dims.size())};
  for (int64_t d : array.dims)
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(uint8_t((d >> s) & 0xFF));
  bytes.insert(bytes.end(), array.values.begin(), array.values.end());
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    OODKIT_CHECK(f != nullptr, "cannot create '", path, "'");
    const int written = gzwrite(f, bytes.data(), unsigned(bytes.size()));
    const int closed = gzclose(f);
    OODKIT_CHECK(written == int(bytes.size()) && closed == Z_OK, "cannot write '", path, "'");
  } else {
    std::ofstream f(path, std::ios::binary);
    OODKIT_CHECK(f.good(), "cannot create '", path, "'");
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    OODKIT_CHECK(f.good(), "cannot write '", path, "'");
  }
}

Tensor load_idx_images(const std::string& path) {
  const IdxArray a = read_idx(path, 3);
  const int64_t n = a.dims[0], h = a.dims[1], w = a.dims[2], hw = h * w;
  Tensor out = Tensor::empty({n, 3, h, w}, DType::U8);
  uint8_t* q = out.data<uint8_t>();
  const uint8_t* p = a.values.data();
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) std::memcpy(q + (i * 3 + c) * hw, p + i * hw, size_t(hw));
  return out;
}

Tensor load_idx_labels(const std::string& path, int64_t num_classes) {
  const IdxArray a = read_idx(path, 1);
  Tensor out = Tensor::empty({a.dims[0]}, DType::I64);
  int64_t* q = out.data<int64_t>();
  for (int64_t i = 0; i < a.dims[0]; ++i) {
    const int64_t y = a.values[size_t(i)];
    OODKIT_CHECK(y < num_classes, "'", path, "' label ", i, " is ", y, ", out of range [0, ", num_classes, ")");
    q[i] = y;
  }
  return out;
}

std::vector<std::string> mnist_class_names() { return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; }

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

Dataset load_mnist_like(const std::string& images_path, const std::string& labels_path, const std::string& name,
                        int64_t num_classes) {
  Dataset ds;
  ds.name = name;
  ds.images = load_idx_images(images_path);
  ds.labels = load_idx_labels(labels_path, num_classes);
  OODKIT_CHECK(ds.images.size(0) == ds.labels.size(0), "'", images_path, "' has ", ds.images.size(0),
               " images but '", labels_path, "' has ", ds.labels.size(0), " labels");
  ds.num_classes = num_classes;
  if (num_classes == 10 && name == "mnist") ds.class_names = mnist_class_names();
  if (num_classes == 10 && name == "fashion-mnist") ds.class_names = fashion_mnist_class_names();
  return ds;
}

}  // namespace oodkit::data
