#!/usr/bin/env python3
"""PyTorch reference for oodkit's validation and benchmarks: on the GPU machine (whose python3 has
PyTorch) and on the CPU (`speed --device cpu`, run by tools/bench_cpu_vs_torch.sh from a local
virtual environment). Network definitions: tools/torch_models.py.

Subcommands
  info    versions, device, TF32 settings API.
  speed   training-step and inference images/s of ResNet-18 (kuangliu CIFAR variant) and
          ResNet-20 (option A) at batch 128, fp32 and TF32 (--device cpu: fp32, perf_counter timing),
          optionally the heatmap decoder's training step (--decoder-width), and the k-NN case (torch.cdist + topk,
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
# Models: tools/torch_models.py (imported lazily so that `selftest-io` and --help work without PyTorch).

def build_model(arch, num_classes=10, drop_rate=0.3):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_models
    return torch_models.build_model(arch, num_classes, drop_rate)


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


def time_cpu(fn, warmup=5, repeats=20, min_ms=20.0, max_iters=1000):
    """time.perf_counter timing with the same calibration as time_cuda (CPU ops are synchronous)."""
    import time
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max((time.perf_counter() - t0) * 1e3, 1e-4)
    iters = int(min(max(math.ceil(min_ms / one), 1), max_iters))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) * 1e3 / iters)
    return {"min": min(times), "median": statistics.median(times), "repeats": repeats, "iters_per_repeat": iters}


class Reporter:
    def __init__(self, json_path, device_name, extra, device_kind="cuda"):
        self.json_path, self.device, self.extra = json_path, device_name, extra
        self.device_kind = device_kind
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.commit = os.environ.get("OODKIT_GIT_COMMIT", "unknown")
        print(f"# torch_reference.py on {device_name}", file=sys.stderr)
        print(f"{'name':44s} {'prec':5s} {'batch':>6s} {'median ms':>11s} {'min ms':>11s} {'rate':>12s} unit",
              file=sys.stderr)

    def add(self, name, precision, batch, t, rate_unit, work, **fields):
        rec = collections.OrderedDict(name=name, device=self.device, device_kind=self.device_kind, precision=precision,
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


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def cmd_speed(args):
    import torch
    import torch.nn.functional as F
    cpu = args.device == "cpu"
    if not cpu and not torch.cuda.is_available():
        raise SystemExit("torch_reference.py speed: no CUDA device (use --device cpu for the CPU)")
    dev = torch.device(args.device)
    env = describe_env()
    extra = {"torch_version": env["torch"]}
    if cpu:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        extra["threads"] = torch.get_num_threads()
        rep = Reporter(args.json, cpu_name(), extra, device_kind="cpu")
        timer = time_cpu
    else:
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        extra["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        rep = Reporter(args.json, env["device"], extra)
        timer = time_cuda
    precisions = [p for p in args.precision.split(",") if p and not (cpu and p == "tf32")]
    gen = torch.Generator(device="cpu").manual_seed(0)
    tk = dict(warmup=args.warmup, repeats=args.repeats, min_ms=args.min_ms)
    for arch in [a for a in args.arch.split(",") if a]:
        model = build_model(arch, 10).to(dev)
        params = sum(p.numel() for p in model.parameters())
        x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(dev)
        y = torch.randint(0, 10, (args.batch,), generator=gen).to(dev)
        xi = torch.randn(args.infer_batch, 3, 32, 32, generator=gen).to(dev) if args.infer_batch > 0 else None
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        for prec in precisions:
            how = "cpu" if cpu else set_tf32(prec == "tf32")
            model.train()

            def step():
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()

            t = timer(step, **tk)
            rep.add(f"train_step/{arch}", prec, args.batch, t, "images/s", args.batch, parameters=params, tf32_api=how)
            if xi is not None:
                model.eval()

                def infer():
                    with torch.no_grad():
                        model(xi)

                t = timer(infer, **tk)
                rep.add(f"inference/{arch}", prec, args.infer_batch, t, "images/s", args.infer_batch,
                        parameters=params, tf32_api=how)
    for width in [float(w) for w in args.decoder_width.split(",") if w]:
        # The heatmap decoder's training step as oodkit's DecoderTrainer: Adam(2e-4, (0.5, 0.999)),
        # loss sum((1 + 5|y|) (h - y)^2) / N; z [N, D] unit rows, one-hot classes, targets y in [-1, 1].
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch_models
        c0, ch = torch_models.decoder_channels(args.decoder_arch, 10, width)
        dec = torch_models.Decoder(args.decoder_dim, 10, c0, ch).to(dev)
        params = sum(p.numel() for p in dec.parameters())
        n = args.decoder_batch
        z = F.normalize(torch.randn(n, args.decoder_dim, generator=gen), dim=1).to(dev)
        onehot = F.one_hot(torch.randint(0, 10, (n,), generator=gen), 10).float().to(dev)
        y = (torch.rand(n, 3, 32, 32, generator=gen) * 2 - 1).to(dev)
        opt = torch.optim.Adam(dec.parameters(), lr=2e-4, betas=(0.5, 0.999))
        dec.train()
        for prec in precisions:
            how = "cpu" if cpu else set_tf32(prec == "tf32")

            def dstep():
                opt.zero_grad(set_to_none=True)
                h = dec(z, onehot)
                loss = ((1 + 5 * y.abs()) * (h - y) ** 2).sum() / n
                loss.backward()
                opt.step()

            t = timer(dstep, **tk)
            rep.add(f"decoder_step/{args.decoder_arch}/w{width:g}", prec, n, t, "images/s", n, parameters=params,
                    tf32_api=how)
    if not cpu:
        torch.cuda.empty_cache()

    if args.knn_q > 0:
        q = F.normalize(torch.randn(args.knn_q, args.knn_d, generator=gen), dim=1).to(dev)
        m = F.normalize(torch.randn(args.knn_m, args.knn_d, generator=gen), dim=1).to(dev)
        shape = f"Q{args.knn_q}xM{args.knn_m}xD{args.knn_d}"
        flops = 2.0 * args.knn_q * args.knn_m * args.knn_d
        for prec in precisions:
            how = "cpu" if cpu else set_tf32(prec == "tf32")
            for k in [int(s) for s in args.knn_k.split(",") if s]:
                def cdist_topk():
                    torch.cdist(q, m).topk(k, dim=1, largest=False)

                def mm_topk():  # cosine similarity of unit vectors: the KNN-OOD formulation
                    (q @ m.t()).topk(k, dim=1, largest=True)

                t = timer(cdist_topk, **tk)
                rep.add(f"knn_cdist_topk/k{k}/{shape}", prec, args.knn_q, t, "queries/s", args.knn_q,
                        flops=flops, tflops_median=flops / (t["median"] * 1e-3) / 1e12, tf32_api=how)
                t = timer(mm_topk, **tk)
                rep.add(f"knn_mm_topk/k{k}/{shape}", prec, args.knn_q, t, "queries/s", args.knn_q,
                        flops=flops, tflops_median=flops / (t["median"] * 1e-3) / 1e12, tf32_api=how)
    if not cpu:
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
    base = build_model(arch, classes, drop_rate=0.0)  # dropout off: train-mode results comparable
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
    sp.add_argument("--device", default="cuda", help="cuda or cpu (cpu: fp32 only, timed with perf_counter)")
    sp.add_argument("--threads", type=int, default=0, help="CPU threads (torch.set_num_threads; 0: PyTorch's default)")
    sp.add_argument("--decoder-width", default="", help="heatmap decoder widths to time, e.g. 1,0.25 ('' skips)")
    sp.add_argument("--decoder-arch", default="resnet20", help="classifier whose decoder preset is used")
    sp.add_argument("--decoder-dim", type=int, default=64, help="feature dimension D fed to the decoder")
    sp.add_argument("--decoder-batch", type=int, default=200)
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
