#include "models/registry.h"

#include "models/densenet.h"
#include "models/resnet.h"
#include "models/resnet_cifar.h"
#include "models/small_cnn.h"
#include "models/wide_resnet.h"

namespace oodkit::models {

std::vector<std::string> classifier_names() {
  return {"resnet20", "resnet32", "resnet44", "resnet56", "resnet18",
          "resnet34", "resnet50", "wrn40_2",  "densenet100", "small_cnn"};
}

std::shared_ptr<Classifier> make_classifier(const std::string& arch, int64_t num_classes, int input_size,
                                            Generator& gen) {
  OODKIT_CHECK(input_size == 32 || input_size == 64, "make_classifier: input_size must be 32 or 64, got ",
               input_size);
  if (arch == "resnet20") return std::make_shared<ResNetCifar>(20, num_classes, gen);
  if (arch == "resnet32") return std::make_shared<ResNetCifar>(32, num_classes, gen);
  if (arch == "resnet44") return std::make_shared<ResNetCifar>(44, num_classes, gen);
  if (arch == "resnet56") return std::make_shared<ResNetCifar>(56, num_classes, gen);
  if (arch == "resnet18") return std::make_shared<ResNet>(18, num_classes, input_size, gen);
  if (arch == "resnet34") return std::make_shared<ResNet>(34, num_classes, input_size, gen);
  if (arch == "resnet50") return std::make_shared<ResNet>(50, num_classes, input_size, gen);
  if (arch == "wrn40_2") return std::make_shared<WideResNet>(40, 2, num_classes, 0.3, gen);
  if (arch == "small_cnn") return std::make_shared<SmallCnn>(num_classes, gen);
  if (arch == "densenet100") return std::make_shared<DenseNet>(100, num_classes, 12, 0.5, gen);
  std::string known;
  for (const std::string& n : classifier_names()) known += (known.empty() ? "" : ", ") + n;
  OODKIT_FAIL("unknown architecture '", arch, "' (known: ", known, ")");
}

}  // namespace oodkit::models
