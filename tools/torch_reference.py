#!/usr/bin/env python3
"""PyTorch reference for oodkit's GPU validation (run on the GPU machine, whose python3 has PyTorch).

Subcommands
  info    versions, device, TF32 settings API.
  speed   training-step and inference images/s of ResNet-18 (kuangliu CIFAR variant) and
          ResNet-20 (option A) at batch 128, fp32 and TF32, and the k-NN case (torch.cdist + topk,
          and the inner-product form mm + topk) with Q=10000, M=50000, D=512, k=50 and k=1; CUDA
          events after warm-up, min/median over repeats. One JSON object per measurement (same
          fields as oodkit's bench programs, "source": "torch") to stdout and --json FILE.
  check   model-level check against oodkit: reads the inputs file written by
          `bench_model_check --mode write` (state dict "state.<name>", "input", "labels"), loads
          the state into the PyTorch definition of the same architecture (strict names and shapes),
          and writes, for each variant v in {fp64, fp32, tf32}: v/eval.logits, v/eval.loss,
          v/eval.input_grad, v/train.logits, v/train.loss, v/grad.<param>, v/buffer.<name>
          (see bench/model_check.cpp, which compares oodkit's results with these).
  selftest-io  round-trips the safetensors reader/writer (no PyTorch needed).

Parameter names follow oodkit (and the common PyTorch CIFAR code): conv1, bn1,
layer{1..4}.{i}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, linear for ResNet-18;
conv1, bn1, layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}, linear for ResNet-20/32/44/56.
"""
import argparse
import collections
import datetime
import json
import math
import os
import statistics
import struct
import sys

# ---------------------------------------------------------------------------------------------
# safetensors I/O: the `safetensors` package when it is installed, else this minimal reader and
# writer (numpy based; header = 8-byte little-endian length + JSON, data in header order).

_NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U8": "u1", "BOOL": "?"}


def st_read_numpy(path):
    """Returns (OrderedDict name -> numpy array, metadata dict)."""
    import numpy as np
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + n:]
    out = collections.OrderedDict()
    for name, e in header.items():
        if e["dtype"] not in _NP_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {e['dtype']}")
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=np.dtype(_NP_DTYPES[e["dtype"]]))
        out[name] = arr.reshape(e["shape"]).copy()
    return out, meta


def st_write_numpy(path, arrays, metadata=None):
    """arrays: OrderedDict name -> numpy array (written in that order)."""
    import numpy as np
    rev = {np.dtype(v).str.lstrip("<|="): k for k, v in _NP_DTYPES.items()}
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, a in arrays.items():
        a = np.asarray(a, order="C")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        key = a.dtype.str.lstrip("<|=")
        if key not in rev:
            raise ValueError(f"{name}: unsupported numpy dtype {a.dtype}")
        raw = a.tobytes()
        header[name] = {"dtype": rev[key], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def st_load_torch(path):
    """(OrderedDict name -> CPU torch tensor, metadata)."""
    import torch
    meta = st_read_numpy_header(path).get("__metadata__", {}) or {}
    try:
        from safetensors.torch import load_file
        tensors = load_file(path)
        order = [k for k in st_read_numpy_header(path) if k != "__metadata__"]
        return collections.OrderedDict((k, tensors[k]) for k in order), meta
    except ImportError:
        arrays, meta = st_read_numpy(path)
        return collections.OrderedDict((k, torch.from_numpy(v)) for k, v in arrays.items()), meta


def st_save_torch(path, tensors, metadata=None):
    tensors = collections.OrderedDict((k, v.detach().contiguous().cpu()) for k, v in tensors.items())
    try:
        from safetensors.torch import save_file
        save_file(tensors, path, metadata={str(k): str(v) for k, v in (metadata or {}).items()})
    except ImportError:
        st_write_numpy(path, collections.OrderedDict((k, v.numpy()) for k, v in tensors.items()), metadata)


def st_read_numpy_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8"), object_pairs_hook=collections.OrderedDict)


# ---------------------------------------------------------------------------------------------
# Models (defined inside a function so that `selftest-io` and --help work without PyTorch).

def build_model(arch, num_classes=10):
    import torch.nn as nn
    import torch.nn.functional as F

    class BasicBlock(nn.Module):  # kuangliu ResNet-18/34 block with projection shortcuts
        def __init__(self, inp, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Sequential()
            if stride != 1 or inp != planes:
                self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNetKuangliu(nn.Module):
        def __init__(self, blocks, num_classes):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            inp = 64
            for s, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
                layers = []
                for b in range(n):
                    stride = 2 if (s > 0 and b == 0) else 1
                    layers.append(BasicBlock(inp, planes, stride))
                    inp = planes
                setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
            self.linear = nn.Linear(512, num_classes)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
            out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # = avg_pool2d(out, 4) for 32x32 inputs
            return self.linear(out)

    class BlockA(nn.Module):  # CIFAR ResNet block with the option-A (parameter-free) shortcut
        def __init__(self, inp, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.stride, self.inp, self.planes = stride, inp, planes

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            sc = x
            if self.stride != 1 or self.inp != self.planes:
                before = (self.planes - self.inp) // 2
                after = self.planes - self.inp - before
                sc = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, before, after))
            return F.relu(out + sc)

    class ResNetCifar(nn.Module):
        def __init__(self, depth, num_classes):
            super().__init__()
            assert (depth - 2) % 6 == 0, depth
            n = (depth - 2) // 6
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            inp = 16
            for s, planes in enumerate((16, 32, 64)):
                layers = []
                for b in range(n):
                    stride = 2 if (s > 0 and b == 0) else 1
                    layers.append(BlockA(inp, planes, stride))
                    inp = planes
                setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
            self.linear = nn.Linear(64, num_classes)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            out = F.adaptive_avg_pool2d(out, 1).flatten(1)
            return self.linear(out)

    if arch == "resnet18":
        return ResNetKuangliu((2, 2, 2, 2), num_classes)
    if arch == "resnet34":
        return ResNetKuangliu((3, 4, 6, 3), num_classes)
    if arch.startswith("resnet") and arch[6:].isdigit() and (int(arch[6:]) - 2) % 6 == 0:
        return ResNetCifar(int(arch[6:]), num_classes)
    raise SystemExit(f"torch_reference.py: unknown architecture '{arch}' (resnet18, resnet34, resnet20/32/44/56)")


# ---------------------------------------------------------------------------------------------
# Precision settings.

def set_tf32(on):
    """TF32 on/off for cuDNN convolutions and cuBLAS matmuls; returns a description."""
    import torch
    mode = "tf32" if on else "ieee"
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision") and hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        try:  # PyTorch >= 2.9
            torch.backends.cuda.matmul.fp32_precision = mode
            torch.backends.cudnn.conv.fp32_precision = mode
            return f"fp32_precision={mode} (matmul, cudnn.conv)"
        except Exception as e:  # noqa: BLE001 - fall back to the legacy flags
            print(f"torch_reference.py: fp32_precision API failed ({e}); using allow_tf32", file=sys.stderr)
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    return f"allow_tf32={on} (matmul, cudnn)"


def describe_env():
    import torch
    d = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
         "python": sys.version.split()[0], "device": None}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        d["device"] = p.name
        d["sm_count"] = p.multi_processor_count
        d["memory_gib"] = round(p.total_memory / 2**30, 1)
        d["l2_mb"] = round(getattr(p, "L2_cache_size", 0) / 1e6, 1)
    try:
        import safetensors
        d["safetensors"] = safetensors.__version__
    except ImportError:
        d["safetensors"] = None
    return d


# ---------------------------------------------------------------------------------------------
# Timing with CUDA events (warm-up, calibrated calls per repeat, min/median over repeats).

def time_cuda(fn, warmup=5, repeats=20, min_ms=20.0, max_iters=1000):
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    stop.record()
    stop.synchronize()
    one = max(start.elapsed_time(stop), 1e-4)
    iters = int(min(max(math.ceil(min_ms / one), 1), max_iters))
    times = []
    for _ in range(repeats):
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / iters)
    return {"min": min(times), "median": statistics.median(times), "repeats": repeats, "iters_per_repeat": iters}


class Reporter:
    def __init__(self, json_path, device_name, extra):
        self.json_path, self.device, self.extra = json_path, device_name, extra
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.commit = os.environ.get("OODKIT_GIT_COMMIT", "unknown")
        print(f"# torch_reference.py on {device_name}", file=sys.stderr)
        print(f"{'name':44s} {'prec':5s} {'batch':>6s} {'median ms':>11s} {'min ms':>11s} {'rate':>12s} unit",
              file=sys.stderr)

    def add(self, name, precision, batch, t, rate_unit, work, **fields):
        rec = collections.OrderedDict(name=name, device=self.device, device_kind="cuda", precision=precision,
                                      batch=batch, unit="ms", min=t["min"], median=t["median"],
                                      repeats=t["repeats"], iters_per_repeat=t["iters_per_repeat"],
                                      rate_unit=rate_unit, rate_best=work / (t["min"] * 1e-3),
                                      rate_median=work / (t["median"] * 1e-3))
        rec.update(fields)
        rec.update(self.extra)
        rec.update(commit=self.commit, date=self.date, program="torch_reference.py", source="torch")
        line = json.dumps(rec)
        print(line, flush=True)
        if self.json_path:
            with open(self.json_path, "a") as f:
                f.write(line + "\n")
        print(f"{name:44s} {precision:5s} {batch:6d} {t['median']:11.4f} {t['min']:11.4f} "
              f"{rec['rate_median']:12.4g} {rate_unit}", file=sys.stderr, flush=True)


def cmd_speed(args):
    import torch
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        raise SystemExit("torch_reference.py speed: no CUDA device")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    env = describe_env()
    rep = Reporter(args.json, env["device"], {"torch_version": env["torch"],
                                              "cudnn_benchmark": torch.backends.cudnn.benchmark})
    gen = torch.Generator(device="cpu").manual_seed(0)
    tk = dict(warmup=args.warmup, repeats=args.repeats, min_ms=args.min_ms)
    for arch in [a for a in args.arch.split(",") if a]:
        model = build_model(arch, 10).to(dev)
        params = sum(p.numel() for p in model.parameters())
        x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(dev)
        y = torch.randint(0, 10, (args.batch,), generator=gen).to(dev)
        xi = torch.randn(args.infer_batch, 3, 32, 32, generator=gen).to(dev) if args.infer_batch > 0 else None
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        for prec in [p for p in args.precision.split(",") if p]:
            how = set_tf32(prec == "tf32")
            model.train()

            def step():
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()

            t = time_cuda(step, **tk)
            rep.add(f"train_step/{arch}", prec, args.batch, t, "images/s", args.batch, parameters=params, tf32_api=how)
            if xi is not None:
                model.eval()

                def infer():
                    with torch.no_grad():
                        model(xi)

                t = time_cuda(infer, **tk)
                rep.add(f"inference/{arch}", prec, args.infer_batch, t, "images/s", args.infer_batch,
                        parameters=params, tf32_api=how)
    torch.cuda.empty_cache()

    if args.knn_q > 0:
        q = F.normalize(torch.randn(args.knn_q, args.knn_d, generator=gen), dim=1).to(dev)
        m = F.normalize(torch.randn(args.knn_m, args.knn_d, generator=gen), dim=1).to(dev)
        shape = f"Q{args.knn_q}xM{args.knn_m}xD{args.knn_d}"
        flops = 2.0 * args.knn_q * args.knn_m * args.knn_d
        for prec in [p for p in args.precision.split(",") if p]:
            how = set_tf32(prec == "tf32")
            for k in [int(s) for s in args.knn_k.split(",") if s]:
                def cdist_topk():
                    torch.cdist(q, m).topk(k, dim=1, largest=False)

                def mm_topk():  # cosine similarity of unit vectors: the KNN-OOD formulation
                    (q @ m.t()).topk(k, dim=1, largest=True)

                t = time_cuda(cdist_topk, **tk)
                rep.add(f"knn_cdist_topk/k{k}/{shape}", prec, args.knn_q, t, "queries/s", args.knn_q,
                        flops=flops, tflops_median=flops / (t["median"] * 1e-3) / 1e12, tf32_api=how)
                t = time_cuda(mm_topk, **tk)
                rep.add(f"knn_mm_topk/k{k}/{shape}", prec, args.knn_q, t, "queries/s", args.knn_q,
                        flops=flops, tflops_median=flops / (t["median"] * 1e-3) / 1e12, tf32_api=how)
    set_tf32(False)


def cmd_check(args):
    import copy
    import torch
    import torch.nn.functional as F
    tensors, meta = st_load_torch(args.inputs)
    arch = args.arch or meta.get("arch", "resnet20")
    classes = int(meta.get("num_classes", "10"))
    state = collections.OrderedDict((k[6:], v) for k, v in tensors.items() if k.startswith("state."))
    inp, labels = tensors["input"], tensors["labels"].long()
    base = build_model(arch, classes)
    missing, unexpected = base.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"torch_reference.py check: state dict names differ from the PyTorch {arch}: "
                         f"missing in the file {list(missing)}, unknown to PyTorch {list(unexpected)}")
    base.load_state_dict(state, strict=True)
    dev = torch.device(args.device if torch.cuda.is_available() or args.device == "cpu" else "cpu")
    out = collections.OrderedDict()
    info = {}
    for variant in [v for v in args.variants.split(",") if v]:
        dtype = torch.float64 if variant == "fp64" else torch.float32
        vdev = dev
        if variant == "fp64" and args.fp64_device:
            vdev = torch.device(args.fp64_device)
        if vdev.type == "cuda":
            info[variant] = set_tf32(variant == "tf32")
        m = copy.deepcopy(base).to(device=vdev, dtype=dtype)
        x = inp.to(device=vdev, dtype=dtype)
        y = labels.to(vdev)
        m.eval()
        xg = x.clone().requires_grad_(True)
        logits = m(xg)
        loss = F.cross_entropy(logits, y)
        (gx,) = torch.autograd.grad(loss, [xg])
        out[f"{variant}/eval.logits"] = logits.detach()
        out[f"{variant}/eval.loss"] = loss.detach()
        out[f"{variant}/eval.input_grad"] = gx.detach()
        m.train()
        m.zero_grad(set_to_none=True)
        logits = m(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        out[f"{variant}/train.logits"] = logits.detach()
        out[f"{variant}/train.loss"] = loss.detach()
        for name, p in m.named_parameters():
            out[f"{variant}/grad.{name}"] = p.grad.detach()
        for name, b in m.named_buffers():
            out[f"{variant}/buffer.{name}"] = b.detach()
        print(f"torch_reference.py check: {arch} {variant} on {vdev}: eval loss {out[f'{variant}/eval.loss'].item():.6f}, "
              f"train loss {loss.item():.6f}", flush=True)
    set_tf32(False)
    meta_out = {"arch": arch, "inputs": args.inputs, "variants": args.variants, "torch": torch.__version__,
                "tf32_api": json.dumps(info)}
    st_save_torch(args.out, out, meta_out)
    print(f"torch_reference.py check: wrote {args.out} ({len(out)} tensors)")


def cmd_info(args):
    print(json.dumps(describe_env(), indent=1))


def cmd_selftest_io(args):
    import numpy as np
    rng = np.random.default_rng(0)
    arrays = collections.OrderedDict(
        [("a", rng.standard_normal((2, 3)).astype(np.float32)), ("b", rng.standard_normal(5)),
         ("c", np.arange(7, dtype=np.int64)), ("d", np.array(3, dtype=np.int64)),
         ("e", np.zeros((0, 4), dtype=np.float32))])
    path = args.path or "/tmp/torch_reference_selftest.safetensors"
    st_write_numpy(path, arrays, {"k": "v"})
    back, meta = st_read_numpy(path)
    assert meta == {"k": "v"}, meta
    assert list(back) == list(arrays), list(back)
    for k in arrays:
        assert back[k].dtype == arrays[k].dtype and back[k].shape == arrays[k].shape, k
        assert np.array_equal(back[k], arrays[k]), k
    if args.read:
        t, m = st_read_numpy(args.read)
        print(f"read {args.read}: {len(t)} tensors, metadata {m}")
    print("selftest-io: ok")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info")
    sp = sub.add_parser("speed")
    sp.add_argument("--arch", default="resnet18,resnet20")
    sp.add_argument("--batch", type=int, default=128)
    sp.add_argument("--infer-batch", type=int, default=1024)
    sp.add_argument("--precision", default="fp32,tf32")
    sp.add_argument("--warmup", type=int, default=5)
    sp.add_argument("--repeats", type=int, default=10)
    sp.add_argument("--min-ms", type=float, default=20.0)
    sp.add_argument("--no-cudnn-benchmark", action="store_true", help="leave torch.backends.cudnn.benchmark off")
    sp.add_argument("--knn-q", type=int, default=10000, help="0 skips the k-NN measurements")
    sp.add_argument("--knn-m", type=int, default=50000)
    sp.add_argument("--knn-d", type=int, default=512)
    sp.add_argument("--knn-k", default="50,1")
    sp.add_argument("--json", default="")
    cp = sub.add_parser("check")
    cp.add_argument("--inputs", required=True)
    cp.add_argument("--out", required=True)
    cp.add_argument("--arch", default="", help="default: the inputs file's metadata")
    cp.add_argument("--variants", default="fp64,fp32,tf32")
    cp.add_argument("--device", default="cuda")
    cp.add_argument("--fp64-device", default="", help="device of the fp64 reference (default: --device)")
    tp = sub.add_parser("selftest-io")
    tp.add_argument("--path", default="")
    tp.add_argument("--read", default="", help="also parse this safetensors file")
    args = ap.parse_args(argv)
    {"info": cmd_info, "speed": cmd_speed, "check": cmd_check, "selftest-io": cmd_selftest_io}[args.cmd](args)


if __name__ == "__main__":
    main()
