"""docs/python.md's example: features of a PyTorch classifier, three oodkit detectors, metrics.

The classifier is the shipped CIFAR-10 ResNet-20 as a PyTorch module (tools/torch_models.py, the
torchvision-style definition whose state_dict names the oodkit weights use); any torchvision model
works the same way (its penultimate features: the input of model.fc). Run from the repository:
  OODKIT_SHARED_DIR=/path/to/shared python python/examples/torch_quickstart.py
"""
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

import oodkit

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(root, "tools"))
from torch_models import build_model  # noqa: E402

shared = os.environ.get("OODKIT_SHARED_DIR", os.path.join(root, "..", "shared"))
torch.set_num_threads(2)


def cifar10(split_file, n):
    """n images [n, 3, 32, 32] float32 in [0, 1] and labels of a CIFAR-10 binary batch."""
    raw = np.fromfile(os.path.join(shared, "datasets", "cifar10", split_file), np.uint8).reshape(-1, 3073)[:n]
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32) / 255.0).float(), raw[:, 0].astype(np.int64)


def isun(n):
    folder = os.path.join(shared, "datasets", "isun")
    files = sorted(os.listdir(folder))[:n]
    imgs = [np.asarray(Image.open(os.path.join(folder, f)).convert("RGB").resize((32, 32))) for f in files]
    return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2) / 255.0).float()


model = build_model("resnet20", num_classes=10)
model.load_state_dict(load_file(os.path.join(shared, "weights", "resnet20_cifar10.safetensors")))
model.eval()
mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)

penultimate = {}
model.linear.register_forward_hook(lambda m, inp, out: penultimate.update(z=inp[0]))


@torch.no_grad()
def features(images, batch=500):
    """Penultimate features [N, 64] and logits [N, 10] (torch tensors, as oodkit takes them)."""
    zs, ls = [], []
    for i in range(0, len(images), batch):
        ls.append(model((images[i:i + batch] - mean) / std))
        zs.append(penultimate["z"])
    return torch.cat(zs), torch.cat(ls)


train_x, train_y = cifar10("data_batch_1.bin", 5000)
test_x, _ = cifar10("test_batch.bin", 1000)
z_train, logits_train = features(train_x)
z_id, logits_id = features(test_x)
z_ood, logits_ood = features(isun(1000))
head = (model.linear.weight.detach(), model.linear.bias.detach())

detectors = {
    "energy": oodkit.Detector("energy"),
    "knn": oodkit.Detector("knn", k=50).fit(z_train),
    "vim": oodkit.Detector("vim").fit(z_train, head=head),
}
print("%-8s %7s %8s %9s %7s %15s %8s" % ("method", "AUROC", "AUPR-In", "AUPR-Out", "FPR95", "FPR95(OpenOOD)",
                                         "time"))
for name, det in detectors.items():
    t = time.perf_counter()
    s_id = det.score(z_id, logits=logits_id)      # NumPy float32 [1000], higher = in-distribution
    s_ood = det.score(z_ood, logits=logits_ood)
    t = time.perf_counter() - t
    m = oodkit.metrics(s_id, s_ood)
    print("%-8s %7.2f %8.2f %9.2f %7.2f %15.2f %6.0fms" % (name, 100 * m["auroc"], 100 * m["aupr_in"],
          100 * m["aupr_out"], 100 * m["fpr95"], 100 * m["fpr95_openood"], 1000 * t))
detectors["knn"].save("/tmp/oodkit_knn")  # the format of `oodkit eval`'s detectors/
print("reloaded knn scores equal:", np.array_equal(oodkit.load("/tmp/oodkit_knn").score(z_ood), detectors["knn"].score(z_ood)))
