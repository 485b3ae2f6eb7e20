"""Training throughput (samples/s) of the tiny and full configs: cached features vs the online backbone.

One training step = collate a batch from the index, forward, loss, backward, AdamW step (the
work of one DeepSpeed micro step without the engine's bookkeeping). Two feature paths:

* ``cached``: backbone RoI vectors read from the HDF5 feature cache (how training runs);
* ``online``: the backbone runs on the batch's decoded images every step (the baseline; needed
  for fine-tuning and image-level augmentation).

Both measured in the same run on the same batches; the ratio is what the cache buys. Data: a
small synthetic dataset generated into ``--workdir`` (reused on reruns). Example::

    python benchmarks/train_throughput.py                       # tiny and full, CPU
    python benchmarks/train_throughput.py --configs full --device cuda --precision bf16

The cache extraction time itself is reported separately (a one-off per dataset and backbone).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prepare(workdir: Path, patients: int, image_size: int) -> Path:
    data, index = workdir / "data", workdir / "index"
    cx = [sys.executable, "-m", "cxrbench"]
    if not (data / "mimic-ext-cxr-qba").exists():
        subprocess.run(cx + ["synth", str(data), "--patients", str(patients), "--image-size", str(image_size),
                             "--quiet"], check=True)
    if not (index / "manifest.json").exists():
        subprocess.run(cx + ["index", str(data), "--out", str(index)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return index


def measure(config: str, index: Path, workdir: Path, steps: int, batch: int | None, device: str, precision: str):
    import numpy as np
    import torch

    from cxrbench.data.vocabulary import load_vocabulary
    from model.backbone import backbone_fingerprint
    from model.config import load_config
    from model.data import DatasetSettings, ImageStore, IndexData, QADataset, build_graphs, collate
    from model.feature_cache import FeatureCache
    from model.losses import VQALoss
    from model.network import build_model
    from model.tokenizer import build_tokenizer
    from model.trainer import to_device
    from model.vocabularies import Vocabularies

    cfg = load_config(config)
    m = cfg.model
    b = batch or cfg.train.batch_size
    idx = IndexData.load(index)
    vocabs = Vocabularies.from_dataset(load_vocabulary(idx.dataset_info))
    tok = build_tokenizer(m.tokenizer.vocab)
    graphs, _ = build_graphs(idx.studies, idx.nodes, m.tokens.max_nodes)
    qa = idx.answerable("train")
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(qa))[: b * (steps + 1)]
    images = ImageStore(idx.image_root, m.backbone.image_size)
    model = build_model(m, vocabs, tok, seed=0).to(device)
    if cfg.train.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    crit = VQALoss(m.heads).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = (lambda: torch.autocast(device_type=device.split(":")[0], dtype=dtype)) if dtype else nullcontext

    results = {}
    used = {int(qa["study_id"].iat[i]) for i in rows}
    t0 = time.perf_counter()
    cache_path = workdir / f"features_{config}.h5"
    FeatureCache.build(cache_path, model.backbone.cpu(), backbone_fingerprint(model.backbone),
                       [graphs[s] for s in sorted(used)], images, progress=False)
    model.to(device)
    results["extract_s_per_image"] = (time.perf_counter() - t0) / len(used)
    cache = FeatureCache(cache_path)
    for mode in ("cached", "online"):
        settings = DatasetSettings(m.encoder.max_question_tokens, m.backbone.image_size, True, "cache" if mode == "cached" else "online")
        ds = QADataset(qa, graphs, vocabs, settings, studies=idx.studies, train=True)
        model.train()

        def step(k: int, ds=ds, settings=settings) -> None:   # bound now: the loop rebinds both
            items = [ds.item(int(i), 0) for i in rows[k * b:(k + 1) * b]]
            batch_ = collate(items, tok, settings, features=cache, images=images)
            batch_ = to_device(batch_, device, torch.float32)
            with autocast():
                out = model(batch_)
                loss, _ = crit(out, batch_)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step(0)   # warm-up (allocations, image decoding caches are per path)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for k in range(1, steps + 1):
            step(k)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / steps
        results[mode] = {"s_per_step": dt, "samples_per_s": b / dt}
    cache.close()
    results["batch"] = b
    results["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "full"])
    parser.add_argument("--workdir", default="runs/throughput")
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="timed steps per config (default tiny 10, full 2)")
    parser.add_argument("--batch", type=int, help="override the configs' batch size")
    parser.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    index = prepare(work, args.patients, args.image_size)
    steps = dict(zip(args.configs, args.steps)) if args.steps else {"tiny": 10, "full": 2}
    print(f"device {args.device}, precision {args.precision}, {args.threads} CPU thread(s); "
          f"synthetic data: {args.patients} patients, {args.image_size} px")
    print(f"{'config':8s}{'batch':>6s}{'params M':>10s}{'cached s/step':>15s}{'cached samp/s':>15s}"
          f"{'online s/step':>15s}{'online samp/s':>15s}{'cached/online':>15s}{'extract s/img':>15s}")
    for config in args.configs:
        r = measure(config, index, work, steps.get(config, 3), args.batch, args.device, args.precision)
        ratio = r["cached"]["samples_per_s"] / r["online"]["samples_per_s"]
        print(f"{config:8s}{r['batch']:6d}{r['params_m']:10.1f}{r['cached']['s_per_step']:15.3f}"
              f"{r['cached']['samples_per_s']:15.1f}{r['online']['s_per_step']:15.3f}"
              f"{r['online']['samples_per_s']:15.1f}{ratio:15.2f}{r['extract_s_per_image']:15.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
