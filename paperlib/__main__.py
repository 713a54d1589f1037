"""Command line: ``python -m paperlib <verb> ...``.

Verbs: ``sample`` (PNGs + .npz from any checkpoint), ``convert`` (EDM/GDD pickle -> paperlib format),
``convert-cifar10`` (CIFAR-10 python archive -> EDM dataset zip).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from paperlib.checkpoints import CheckpointError, atomic_write_bytes, load_network, save_network
from paperlib.data import DatasetError, convert_cifar10
from paperlib.diffusion import generate, parse_seeds, to_uint8


def cmd_sample(args: argparse.Namespace) -> None:
    net = load_network(args.ckpt).to(args.device)
    seeds = parse_seeds(args.seeds)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    images, labels, nfe = [], [], None
    for start in tqdm(range(0, len(seeds), args.batch), desc="sample", unit="batch"):
        batch = generate(net, seeds[start:start + args.batch], num_steps=args.steps, class_idx=args.class_idx,
                         device=args.device, solver=args.solver)
        pixels = to_uint8(batch.images)
        for seed, img in zip(batch.seeds, pixels):
            Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(outdir / f"{seed:06d}.png")
        images.append(pixels)
        labels.append(batch.labels.numpy())
        nfe = batch.nfe
    buf = io.BytesIO()
    np.savez(buf, images=np.concatenate(images), labels=np.concatenate(labels), seeds=np.array(seeds), nfe=nfe)
    atomic_write_bytes(outdir / "samples.npz", buf.getvalue())
    print(f"wrote {len(seeds)} images (NFE {nfe}) to {outdir}")


def cmd_convert(args: argparse.Namespace) -> None:
    net = load_network(args.pkl, key=args.key)
    path = save_network(net, args.outdir, extra=dict(converted_from=str(args.pkl), key=args.key))
    params = sum(p.numel() for p in net.parameters())
    print(f"wrote {path}: {type(net).__name__}/{net.model_type}, {params:,} parameters, "
          f"{net.img_channels}x{net.img_resolution}x{net.img_resolution}, label_dim {net.label_dim}")


def cmd_convert_cifar10(args: argparse.Namespace) -> None:
    path = convert_cifar10(args.archive, args.out, split=args.split)
    print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m paperlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("sample", help="generate images with a one-step generator or a diffusion model")
    p.add_argument("--ckpt", required=True, help="paperlib .safetensors/folder or EDM/GDD .pkl")
    p.add_argument("--seeds", default="0-63", help="e.g. 0-63 or 1,5,10-12 (one image per seed)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps N (NFE 2N-1 with Heun); "
                   "default 18 for diffusion models, 1 for GDD generators")
    p.add_argument("--solver", choices=["heun", "euler"], default="heun")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class for conditional models (default: random per seed)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--outdir", required=True)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("convert", help="convert an EDM/GDD network pickle into paperlib's safetensors format")
    p.add_argument("pkl")
    p.add_argument("outdir")
    p.add_argument("--key", default="ema", choices=["ema", "net"], help="which network of the pickle (GDD snapshots hold both)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("convert-cifar10", help="convert cifar-10-python.tar.gz into an EDM dataset zip")
    p.add_argument("archive")
    p.add_argument("out")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.set_defaults(func=cmd_convert_cifar10)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CheckpointError, DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
