#include "models/registry.h"

#include <functional>

#include "models/densenet.h"
#include "models/resnet.h"
#include "models/resnet_cifar.h"
#include "models/small_cnn.h"
#include "models/wide_resnet.h"

namespace oodkit::models {

namespace {
// The architectures, one row each: the name `--arch` takes and how to build it (num_classes,
// input_size 32 or 64, generator). Adding an architecture means adding one row.
std::shared_ptr<Classifier> imagenet_resnet(int depth, int64_t num_classes, Generator& gen) {
  return std::make_shared<ResNet>(ResNetSpec::of_depth(depth, ResNetStem::ImageNet), num_classes, gen);
}

struct Architecture {
  const char* name;
  std::function<std::shared_ptr<Classifier>(int64_t, int, Generator&)> make;
};

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table = {
      {"resnet20", [](int64_t k, int, Generator& g) { return std::make_shared<ResNetCifar>(20, k, g); }},
      {"resnet32", [](int64_t k, int, Generator& g) { return std::make_shared<ResNetCifar>(32, k, g); }},
      {"resnet44", [](int64_t k, int, Generator& g) { return std::make_shared<ResNetCifar>(44, k, g); }},
      {"resnet56", [](int64_t k, int, Generator& g) { return std::make_shared<ResNetCifar>(56, k, g); }},
      {"resnet18", [](int64_t k, int s, Generator& g) { return std::make_shared<ResNet>(18, k, s, g); }},
      {"resnet34", [](int64_t k, int s, Generator& g) { return std::make_shared<ResNet>(34, k, s, g); }},
      {"resnet50", [](int64_t k, int s, Generator& g) { return std::make_shared<ResNet>(50, k, s, g); }},
      {"resnet18_imagenet", [](int64_t k, int, Generator& g) { return imagenet_resnet(18, k, g); }},
      {"resnet34_imagenet", [](int64_t k, int, Generator& g) { return imagenet_resnet(34, k, g); }},
      {"resnet50_imagenet", [](int64_t k, int, Generator& g) { return imagenet_resnet(50, k, g); }},
      {"wrn40_2", [](int64_t k, int, Generator& g) { return std::make_shared<WideResNet>(40, 2, k, 0.3, g); }},
      {"densenet100", [](int64_t k, int, Generator& g) { return std::make_shared<DenseNet>(100, k, 12, 0.5, g); }},
      {"small_cnn", [](int64_t k, int, Generator& g) { return std::make_shared<SmallCnn>(k, g); }},
  };
  return table;
}
}  // namespace

std::vector<std::string> classifier_names() {
  std::vector<std::string> names;
  for (const Architecture& a : architectures()) names.push_back(a.name);
  return names;
}

std::shared_ptr<Classifier> make_classifier(const std::string& arch, int64_t num_classes, int input_size,
                                            Generator& gen) {
  OODKIT_CHECK(input_size == 32 || input_size == 64, "make_classifier: input_size must be 32 or 64, got ",
               input_size);
  for (const Architecture& a : architectures())
    if (arch == a.name) return a.make(num_classes, input_size, gen);
  std::string known;
  for (const std::string& n : classifier_names()) known += (known.empty() ? "" : ", ") + n;
  OODKIT_FAIL("unknown architecture '", arch, "' (known: ", known, ")");
}

}  // namespace oodkit::models
