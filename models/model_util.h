// Helpers shared by the model definitions (not part of the public model API).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/nn/module.h"

namespace oodkit::models {

// A parameter-free container that only names its children (torch.nn.Sequential /
// ModuleList / a plain attribute holder in a state dict): "layer1" holding "0", "1", ...
// gives the names "layer1.0.conv1.weight", .... The owner keeps typed pointers for the
// forward pass.
class ModuleList : public nn::Module {
 public:
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    return register_module(name, std::move(m));
  }
};

}  // namespace oodkit::models
