#include "framework/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "framework/ops/elementwise.h"

namespace oodkit::autograd {

namespace {
thread_local bool g_grad_enabled = true;

// Sums b into a (either may be undefined).
Tensor sum_grads(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return ops::add(a, b);
}

// Runs the graph below root. If `capture` is non-null, leaf gradients for the metas in it
// are summed there and no .grad is touched; otherwise every reached leaf accumulates.
void run(const Tensor& root, const Tensor& grad_root_in,
         std::unordered_map<AutogradMeta*, Tensor>* capture) {
  OODKIT_CHECK(root.defined(), "backward: root is an undefined tensor");
  OODKIT_CHECK(root.requires_grad(), "backward: ", root.describe(),
               " does not require grad (no input of its graph has requires_grad set, or it was "
               "computed under NoGradGuard)");
  Tensor grad_root = grad_root_in;
  if (!grad_root.defined()) {
    OODKIT_CHECK(root.numel() == 1, "backward: a gradient must be given for non-scalar root ",
                 root.describe());
    grad_root = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  check_same_shape(root, grad_root, "backward", "root", "grad_root");
  check_same_device(root, grad_root, "backward", "root", "grad_root");

  NoGradGuard no_grad;
  auto deliver_leaf = [&](const std::shared_ptr<AutogradMeta>& leaf, const Tensor& g) {
    if (capture) {
      auto it = capture->find(leaf.get());
      if (it != capture->end()) it->second = sum_grads(it->second, g);
      return;
    }
    if (!leaf->requires_grad) return;
    // Owned copy on first arrival so that optimisers may update .grad in place.
    leaf->grad = leaf->grad.defined() ? ops::add(leaf->grad, g) : g.clone();
  };

  const std::shared_ptr<Node> root_fn = root.grad_fn();
  if (!root_fn) {  // the root is itself a leaf
    deliver_leaf(root.impl()->autograd, grad_root);
    return;
  }

  // Count, for every node, how many edges from reachable nodes point at it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root_fn.get()};
  std::unordered_set<Node*> seen{root_fn.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.node) continue;
      ++deps[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  std::unordered_map<Node*, Tensor> pending;  // gradients waiting for their node
  std::vector<std::shared_ptr<Node>> ready{root_fn};
  pending[root_fn.get()] = grad_root;
  while (!ready.empty()) {
    std::shared_ptr<Node> n = ready.back();
    ready.pop_back();
    Tensor g;
    if (auto it = pending.find(n.get()); it != pending.end()) {
      g = it->second;
      pending.erase(it);
    }
    std::vector<Tensor> grads;
    if (g.defined()) {
      grads = n->backward(g);
      OODKIT_ASSERT(grads.size() == n->next.size(), "autograd: ", n->name(), " returned ", grads.size(),
                   " gradients for ", n->next.size(), " inputs");
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Edge& e = n->next[i];
      const Tensor gi = grads.empty() ? Tensor() : grads[i];
      if (e.leaf) {
        if (gi.defined()) deliver_leaf(e.leaf, gi);
      } else if (e.node) {
        if (gi.defined()) pending[e.node.get()] = sum_grads(pending[e.node.get()], gi);
        if (--deps[e.node.get()] == 0) ready.push_back(e.node);
      }
    }
  }
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void attach(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  node->next.clear();
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      if (in.grad_fn()) e.node = in.grad_fn();
      else e.leaf = in.impl()->autograd;
    }
    node->next.push_back(std::move(e));
  }
  auto meta = std::make_shared<AutogradMeta>();
  meta->grad_fn = std::move(node);
  out.impl()->autograd = std::move(meta);
}

void backward(const Tensor& root, const Tensor& grad_root) { run(root, grad_root, nullptr); }

std::vector<Tensor> grad(const Tensor& root, const std::vector<Tensor>& inputs, const Tensor& grad_root) {
  std::unordered_map<AutogradMeta*, Tensor> capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    OODKIT_CHECK(inputs[i].defined() && inputs[i].requires_grad() && inputs[i].is_leaf(),
                 "autograd::grad: input ", i, " must be a leaf tensor that requires grad");
    capture[inputs[i].impl()->autograd.get()] = Tensor();
  }
  run(root, grad_root, &capture);
  std::vector<Tensor> out;
  for (const Tensor& in : inputs) {
    Tensor g = capture[in.impl()->autograd.get()];
    out.push_back(g.defined() ? g : Tensor::zeros(in.shape(), in.dtype(), in.device()));
  }
  return out;
}

}  // namespace oodkit::autograd
