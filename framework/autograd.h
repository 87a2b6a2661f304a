// Define-by-run reverse-mode autograd.
//
// Every differentiable op that produces an output from inputs requiring grad attaches a
// Node to the output. Node::backward receives dL/d(output) and returns dL/d(input_i), one
// per input (undefined where that input needs no grad). backward() walks the graph in
// reverse topological order, sums gradients that reach a node along several paths, and
// accumulates (+=) into the .grad of leaf tensors that require grad. Backward functions
// run with grad recording off (no higher-order gradients).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::autograd {

struct Node;

// Autograd state of one tensor.
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                   // accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn; // producer (non-leaves)
};

// Where a gradient flows: into the producer node of an input, or into a leaf's meta.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<AutogradMeta> leaf;
  bool valid() const { return node || leaf; }
};

struct Node {
  virtual ~Node() = default;
  // grad_output has the output's shape/dtype/device; returns one entry per input.
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  virtual const char* name() const = 0;
  std::vector<Edge> next;  // one per input, same order as backward's result
};

// Grad mode (thread-local). Off: ops record no graph.
bool grad_enabled();
void set_grad_enabled(bool on);
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
 private:
  bool prev_;
};

// True when grad mode is on and any defined input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Connects `node` to `inputs` (one edge each; undefined or grad-free inputs get an empty
// edge) and makes it `out`'s grad_fn. Call only when needs_grad(...) is true.
void attach(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

// Backpropagates from `root`. `grad_root` defaults to ones for a one-element root.
void backward(const Tensor& root, const Tensor& grad_root = Tensor());

// Returns d root / d inputs[i] for leaf inputs that require grad, without touching .grad.
std::vector<Tensor> grad(const Tensor& root, const std::vector<Tensor>& inputs,
                         const Tensor& grad_root = Tensor());

// Convenience for ops: a Node whose backward is a lambda.
template <class F>
struct LambdaNode : Node {
  LambdaNode(const char* n, F f) : name_(n), f_(std::move(f)) {}
  std::vector<Tensor> backward(const Tensor& g) override { return f_(g); }
  const char* name() const override { return name_; }
  const char* name_;
  F f_;
};
// record(out, "relu", {x}, [=](const Tensor& g) { return std::vector<Tensor>{...}; })
// attaches a LambdaNode when needs_grad(inputs); captured tensors are kept alive by the node.
template <class F>
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, F f) {
  if (!needs_grad(inputs)) return;
  attach(out, std::make_shared<LambdaNode<F>>(name, std::move(f)), inputs);
}

}  // namespace oodkit::autograd
