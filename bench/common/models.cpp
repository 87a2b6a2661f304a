#include "bench/common/models.h"

#include <cstdlib>

#include "framework/error.h"
#include "models/resnet_cifar.h"

// The model registry (models/registry.h: make_classifier, with ResNet-18 and the other OOD
// backbones) is picked up automatically once it is in the tree; until then only the CIFAR
// ResNets of models/resnet_cifar.h are available.
#if __has_include("models/registry.h")
#include "models/registry.h"
#define OODKIT_BENCH_HAVE_REGISTRY 1
#else
#define OODKIT_BENCH_HAVE_REGISTRY 0
#endif

namespace oodkit::bench {

bool have_model_registry() { return OODKIT_BENCH_HAVE_REGISTRY; }

std::shared_ptr<models::Classifier> make_model(const std::string& arch, int64_t num_classes, Generator& gen) {
#if OODKIT_BENCH_HAVE_REGISTRY
  return models::make_classifier(arch, num_classes, 32, gen);
#else
  // Fallback until models/registry.h lands: "resnet<depth>" with depth = 6n + 2.
  if (arch.compare(0, 6, "resnet") == 0 && arch.size() > 6) {
    char* end = nullptr;
    const long depth = std::strtol(arch.c_str() + 6, &end, 10);
    if (end && *end == '\0' && depth >= 8 && (depth - 2) % 6 == 0)
      return std::make_shared<models::ResNetCifar>(int(depth), num_classes, gen);
  }
  OODKIT_FAIL("unknown architecture '", arch,
              "': this build has no models/registry.h yet, so only the CIFAR ResNets resnet20, resnet32, resnet44, "
              "resnet56, resnet110 are available (resnet18 arrives with models/resnet.h)");
#endif
}

}  // namespace oodkit::bench
