"""Command line: ``python -m paperlib <verb> ...``.

Verbs: ``train`` (a preset, any key overridable), ``sample`` (PNGs + .npz from any checkpoint), ``fid`` (FID, KID,
precision/recall of a checkpoint against a reference), ``run`` (mini-scale studies: the protocol's rate sweeps,
tables and freeze ablation, the layer study; :mod:`paperlib.study.registry`), ``check`` (retrain a sample of the
ledger's runs), ``table`` (one dataset's FID table at any scale: the protocol's at mini, built from its own runs at
smoke and paper scale), ``notebook`` (run a notebook with checked parameters), ``strip-notebook`` (a notebook in the form git
keeps, stdin to stdout: :mod:`paperlib.notebook.strip`), ``featnet`` (retrain the digits feature net),
``backbones`` (retrain the mini projected discriminator's feature networks), ``convert`` (EDM/GDD pickle ->
paperlib format), ``convert-cifar10`` (CIFAR-10 python archive -> EDM dataset zip).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from paperlib.data import DatasetError, convert_cifar10
from paperlib.diffusion import generate, parse_seeds, to_uint8
from paperlib.metrics import MetricError
from paperlib.store.checkpoints import CheckpointError, load_network, read_network_file, save_network
from paperlib.store.files import atomic_write_bytes

SAMPLE_FILE = re.compile(r"\d{6,}\.png|samples\.npz")  # what `sample` writes, and all that --overwrite removes


def prepare_sample_dir(outdir: Path, overwrite: bool) -> None:
    """Make ``outdir`` an empty folder for a new set of samples, so that no earlier sample can stand beside them:
    a non-empty one is refused, or with ``overwrite`` emptied of earlier samples (files named as ``sample`` names
    them); anything else in it is refused and kept."""
    outdir.mkdir(parents=True, exist_ok=True)
    entries = sorted(outdir.iterdir())
    if entries and not overwrite:
        raise ValueError(f"{outdir}: holds {len(entries)} entries already (e.g. {entries[0].name}); sample writes into "
                         f"an empty folder: choose another --outdir, or pass --overwrite to replace earlier samples")
    others = [e for e in entries if not (SAMPLE_FILE.fullmatch(e.name) and (e.is_symlink() or e.is_file()))]
    if others:
        raise ValueError(f"{outdir}: --overwrite replaces earlier samples only (NNNNNN.png, samples.npz), and this "
                         f"folder also holds {others[0].name}; nothing was removed")
    for entry in entries:
        entry.unlink()


def cmd_sample(args: argparse.Namespace) -> None:
    net = load_network(args.ckpt).to(args.device)
    seeds = parse_seeds(args.seeds)
    outdir = Path(args.outdir)
    prepare_sample_dir(outdir, args.overwrite)
    images, labels, nfe = [], [], None
    for start in tqdm(range(0, len(seeds), args.batch), desc="sample", unit="batch"):
        batch = generate(net, seeds[start:start + args.batch], num_steps=args.steps, class_idx=args.class_idx,
                         device=args.device, solver=args.solver, bf16=args.bf16)
        pixels = to_uint8(batch.images)
        for seed, img in zip(batch.seeds, pixels):
            Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(outdir / f"{seed:06d}.png")
        images.append(pixels)
        labels.append(batch.labels.numpy())
        nfe = batch.nfe
    buf = io.BytesIO()
    np.savez(buf, images=np.concatenate(images), labels=np.concatenate(labels),
             seeds=np.fromiter(seeds, dtype=np.int64, count=len(seeds)), nfe=nfe)
    atomic_write_bytes(outdir / "samples.npz", buf.getvalue())
    print(f"wrote {len(seeds)} images (NFE {nfe}) to {outdir}")


def cmd_convert(args: argparse.Namespace) -> None:
    if args.trust and Path(args.pkl).suffix == ".pkl":
        raise ValueError("--trust re-saves a paperlib network file written before digests existed; a .pkl is always "
                         "read with the safe unpickler and needs no --trust")
    net = load_network(args.pkl, key=args.key, verify=not args.trust)
    extra = dict(converted_from=str(args.pkl), key=args.key)
    if args.trust:  # a re-saved file keeps what it said about how it was made
        extra = read_network_file(args.pkl, verify=False)[0].get("extra") or {}
    path = save_network(net, args.outdir, extra=extra)
    params = sum(p.numel() for p in net.parameters())
    print(f"wrote {path}: {type(net).__name__}/{net.model_type}, {params:,} parameters, "
          f"{net.img_channels}x{net.img_resolution}x{net.img_resolution}, label_dim {net.label_dim}")


def cmd_convert_cifar10(args: argparse.Namespace) -> None:
    path = convert_cifar10(args.archive, args.out, split=args.split)
    print(f"wrote {path}")


def parse_overrides(tokens: list[str]) -> dict:
    """['--lr', '2e-4', '--arch', '{"model_channels": 16}'] -> {'lr': 0.0002, 'arch': {...}}.

    Values are read as JSON where they parse (numbers, true/false, null, lists, dicts), else kept as strings; the
    values of path keys (``dataset``, ``run_dir``, ``teacher``, ``bank_dir``) stay the strings given (a folder named
    2024 is a folder). '--key=value' works too. Keys may use dashes or underscores. A value nested too deep or with a
    whole number too long to read is a one-line error naming its key.
    """
    from paperlib.config import PATH_KEYS

    out, i = {}, 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise ValueError(f"unexpected argument {token!r}; overrides are given as --key value")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(tokens):
                raise ValueError(f"override --{key} has no value")
            value, i = tokens[i + 1], i + 1
        name = key.replace("-", "_")
        try:
            parsed = value if name in PATH_KEYS else json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        except (ValueError, RecursionError) as exc:  # a whole number of thousands of digits; JSON nested too deep
            raise ValueError(f"--{key}: not a readable value ({type(exc).__name__}: {str(exc)[:100]})") from None
        out[name] = parsed
        i += 1
    return out


def cmd_train(args: argparse.Namespace, extra: list[str]) -> None:
    from paperlib.presets import preset_config
    from paperlib.training import train

    cfg = preset_config(args.preset, run_dir=args.run_dir, **parse_overrides(extra))
    callback = None
    if args.eval_ref:  # FID at every snapshot (paper scale), to report the best snapshot beside the final one
        from paperlib.evaluation import snapshot_fid_callback
        callback = snapshot_fid_callback(args.eval_ref, args.eval_features, args.eval_feature_weights, args.eval_num)
    try:
        summary = train(cfg, resume=args.resume, progress=not args.no_progress, callback=callback,
                        callback_kimg=cfg.snapshot_kimg)
    except KeyboardInterrupt:
        from paperlib.store.run_folder import RunFolder

        states = RunFolder(cfg.run_dir).states()
        raise Interrupted(f"{states[-1]} is the newest training state; add --resume to continue from it" if states
                          else f"no training state was written in {cfg.run_dir} yet; the run starts over") from None
    print(json.dumps(summary))


def cmd_featnet(args: argparse.Namespace) -> None:
    from paperlib.metrics import train_digits_featnet

    result = train_digits_featnet(epochs=args.epochs, seed=args.seed, out=args.out)
    print(f"wrote {result['path']}: held-out (test split) accuracy {100 * result['test_accuracy']:.2f}%")


def cmd_backbones(args: argparse.Namespace) -> None:
    from paperlib.digits_backbones import DIGITS_BACKBONES, train_digits_backbone

    for name in DIGITS_BACKBONES:
        out = Path(args.out_dir) / f"{name}.safetensors" if args.out_dir else None
        result = train_digits_backbone(name, epochs=args.epochs, seed=args.seed, out=out)
        print(f"wrote {result['path']}: held-out (test split) accuracy {100 * result['test_accuracy']:.2f}%")


def cmd_fid(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    from paperlib.devices import init_distributed
    from paperlib.metrics import (
        Stats,
        build_extractor,
        dataset_reference,
        evaluate_features,
        extract_features,
        feature_stats,
        fid_from_stats,
        generate_uint8,
    )

    device = torch.device(args.device)
    dinfo = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
    seeds = parse_seeds(args.seeds) if args.seeds else list(range(args.num))
    extractor = build_extractor(args.features, args.feature_weights, device)
    # the reference is read (and checked) before any sample is generated; rank 0 alone scores
    reference = None
    if dinfo.rank == 0:
        reference = Stats.load(args.ref) if args.ref.endswith(".npz") else dataset_reference(args.ref, extractor)
    net = load_network(args.ckpt).to(device)
    images, _ = generate_uint8(net, seeds[dinfo.rank::dinfo.world], num_steps=args.steps, batch=args.batch,
                               device=device, progress=dinfo.rank == 0, bf16=args.bf16)
    feats = extract_features(extractor, images)
    if dinfo.enabled:  # rank 0 reduces the statistics of every rank's slice of seeds
        gathered = [None] * dinfo.world
        dist.all_gather_object(gathered, feats)
        feats = np.concatenate(gathered)
    if dinfo.rank != 0:
        return
    if isinstance(reference, Stats):
        result = dict(fid=fid_from_stats(feature_stats(feats), reference), num=len(feats))
    else:
        result = evaluate_features(feats, reference)
    print(json.dumps(result))
    if args.out:
        atomic_write_bytes(Path(args.out), json.dumps(result, indent=2).encode())


def cmd_run(args: argparse.Namespace) -> None:
    from paperlib.study.registry import Options, run_studies

    options = Options(datasets=tuple(args.datasets.split(",")), device=args.device, workers=args.workers,
                      runs=args.runs, results=args.results, figures=args.figures)
    run_studies(args.studies.split(","), options, minutes=args.minutes)


def cmd_check(args: argparse.Namespace) -> None:
    from paperlib.study.check import check_records, evidence_sample

    names = (tuple(args.records.split(",")) if args.records
             else evidence_sample(args.results, tuple(args.methods.split(",")) if args.methods else ()))
    report = check_records(args.runs, args.results, args.device, args.workers, names)
    print(f"mini check {'passed' if report['passed'] else 'FAILED'}: {args.results}/evidence/check.json")
    if not report["passed"]:
        raise SystemExit(1)


def cmd_table(args: argparse.Namespace) -> None:
    from paperlib.study.tables.build import TableRequest, build_table, to_markdown

    request = TableRequest(dataset=args.dataset, scale=args.scale, teacher=args.teacher or "", data=args.data or "",
                           feature_weights=args.feature_weights or "", ref=args.ref or "", kimg=args.kimg,
                           device=args.device, gpus=args.gpus, fid_num=args.eval_num or 0, runs=args.runs,
                           results=args.results, figures=args.figures,
                           **(dict(methods=args.methods.split(",")) if args.methods else {})).validate()
    if request.scale == "mini":  # the protocol's table, assembled from the ledger
        from paperlib.study.evidence.tables import assemble_evidence_table
        from paperlib.study.report import protocol_table_report

        print(protocol_table_report(assemble_evidence_table(request.dataset, request.results)))
    else:
        print(to_markdown(build_table(request)))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the one line that says where the interrupted work can go on from."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (no usage block), exit code 2, as paperlib's other errors."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def config_keys_help() -> str:
    """The train verb's list of config keys: each with its default (before the preset's values) and meaning."""
    from paperlib.config import TrainConfig

    lines = ["config keys (--key value; values are read as JSON where they parse; a preset sets many of them):"]
    for name, default, meaning in TrainConfig.key_help():
        lines.append(f"  --{name} (default {json.dumps(default)})" + (f": {meaning}" if meaning else ""))
    return "\n".join(lines)


def int_in(low: int, high: int):
    """argparse type: an integer in [low, high] (the bound keeps a typo from allocating until memory runs out)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {value}")
        return value
    return parse


def float_in(low: float, high: float):
    """argparse type: a finite number in [low, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in [{low:g}, {high:g}], got {text!r}") from None
        if not low <= value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected a finite number in [{low:g}, {high:g}], got {text}")
        return value
    return parse


MAX_COUNT = 10 ** 7  # samples, images or epochs one command may ask for
positive_int = int_in(1, MAX_COUNT)
steps_arg = int_in(1, 1000)
seed_arg = int_in(0, 2 ** 32 - 1)


def device_arg(text: str) -> str:
    """argparse type: cpu, cuda or cuda:N, with CUDA only where a GPU is visible."""
    if text.split(":")[0] not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu or cuda[:N], got {text!r}")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA GPU is visible to this process; use cpu")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m paperlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("sample", help="generate images with a one-step generator or a diffusion model")
    p.add_argument("--ckpt", required=True, help="paperlib .safetensors/folder or EDM/GDD .pkl")
    p.add_argument("--seeds", default="0-63", help="e.g. 0-63 or 1,5,10-12 (one image per seed)")
    p.add_argument("--steps", type=steps_arg, default=None, help="sampler steps N (NFE 2N-1 with Heun); "
                   "default 18 for diffusion models, 1 for GDD generators")
    p.add_argument("--solver", choices=["heun", "euler"], default="heun")
    p.add_argument("--class", dest="class_idx", type=int_in(0, 10 ** 6), default=None,
                   help="class for conditional models (default: random per seed)")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--device", type=device_arg, default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--outdir", required=True, help="an empty or new folder")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier samples in --outdir (and nothing else)")
    p.add_argument("--bf16", action="store_true", help="sample in the training precision (bfloat16 on CUDA for "
                   "use_fp16 networks) instead of the authors' (one-step generators fp32, EDM teachers float16)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("train", help="train with a preset; any config key can be overridden as --key value",
                       description="Train with a named preset (an unknown name lists them all). Every key of "
                                   "the config can be overridden, e.g. --lr 2e-4 --total_kimg 50 --teacher PATH.",
                       epilog=config_keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", required=True)
    p.add_argument("--run-dir", default=None, help="run folder (default runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest training state in the run folder")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--eval-ref", default=None, help="FID of the EMA at every snapshot against this reference "
                   "(EDM's fid-refs .npz or a dataset), logged as eval_fid in metrics.jsonl")
    p.add_argument("--eval-features", choices=["digits", "inception"], default="inception")
    p.add_argument("--eval-feature-weights", default=None, help="inception-2015-12-05.pt for --eval-ref")
    p.add_argument("--eval-num", type=positive_int, default=50000, help="samples per snapshot FID (seeds 0..num-1)")
    p.set_defaults(func=cmd_train, takes_extra=True)

    p = sub.add_parser("fid", help="generate samples and compute FID (and KID, precision/recall) against a reference")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--ref", required=True, help="reference: an .npz with mu/sigma (e.g. EDM's fid-refs) or a dataset "
                   "(digits-8:train, or an EDM-format folder/zip)")
    p.add_argument("--num", type=positive_int, default=50000, help="number of samples, seeds 0..num-1")
    p.add_argument("--seeds", default=None, help="explicit seeds instead of --num")
    p.add_argument("--steps", type=steps_arg, default=None, help="sampler steps for diffusion models (default 18)")
    p.add_argument("--features", choices=["digits", "inception"], default="inception")
    p.add_argument("--feature-weights", default=None, help="inception-2015-12-05.pt (or another digits feature net)")
    p.add_argument("--batch", type=positive_int, default=250)
    p.add_argument("--device", type=device_arg, default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    p.add_argument("--bf16", action="store_true", help="sample in the training precision (bfloat16 on CUDA for "
                   "use_fp16 networks) instead of the authors' (one-step generators fp32, EDM teachers float16)")
    p.set_defaults(func=cmd_fid)

    from paperlib.study.names import STUDY_HELP

    p = sub.add_parser("run", help="mini scale: run studies (" + ", ".join(STUDY_HELP) + "): every run they need in "
                       "one pool, what the ledger holds not trained again, then their tables and figures",
                       description="Studies: " + "; ".join(f"{k}: {v}" for k, v in STUDY_HELP.items()) + ".")
    p.add_argument("studies", help="comma-separated, e.g. rates,evidence")
    p.add_argument("--datasets", default="digits", help="comma-separated: digits, digits-cond")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int_in(0, 256), default=0, help="runs trained at once (0: one per core, 6 on a GPU)")
    p.add_argument("--minutes", type=float_in(0, 10 ** 7), default=0.0, help="start no new run after this long (0: no limit)")
    p.add_argument("--runs", default="runs")
    p.add_argument("--results", default="results")
    p.add_argument("--figures", default="figures")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("notebook", help="run notebooks/NAME.ipynb into OUT with name=value parameters, each name and "
                       "value checked against the notebook's parameters before a kernel starts")
    p.add_argument("name", help="fid_table, layer_activation, training_curves or tables")
    p.add_argument("out", help="the executed notebook to write")
    p.add_argument("parameters", nargs="*", help="name=value, the value read as YAML (methods=[gdd, gddi], train=true)")
    p.set_defaults(func=cmd_notebook)

    p = sub.add_parser("strip-notebook", help="a notebook in the form git keeps (no outputs, keys sorted), stdin to "
                       "stdout: what git's clean filter for notebooks/ does")
    p.set_defaults(func=cmd_strip_notebook)

    p = sub.add_parser("check", help="mini scale: retrain a stated sample of the ledger's runs from scratch and compare "
                       "them with their records (bit for bit on the same kind of CPU, else within 3 seed sds)")
    p.add_argument("--records", default="", help="comma-separated record names (default: one evidence-table run per "
                   "method and dataset, made on this kind of CPU where the ledger has one)")
    p.add_argument("--methods", default="", help="comma-separated table methods the default sample is drawn from "
                   "(gdd, gddi, instance, gddi-smalld; default all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int_in(0, 256), default=0)
    p.add_argument("--runs", default="runs")
    p.add_argument("--results", default="results")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("table", help="a dataset's FID table: at mini scale the protocol's, from the ledger; at smoke and "
                       "paper scale trained and evaluated row by row")
    p.add_argument("--dataset", default="digits", help="digits | digits-cond (smoke, mini); cifar10 | cifar10-cond | "
                   "afhqv2-64 | ffhq-64 | imagenet-64 (paper)")
    p.add_argument("--scale", default="mini", choices=["smoke", "mini", "paper"])
    p.add_argument("--teacher", default=None, help="teacher checkpoint (paper scale: the EDM .pkl)")
    p.add_argument("--data", default=None, help="paper scale: the dataset in EDM's zip/folder format")
    p.add_argument("--feature-weights", default=None, help="paper scale: inception-2015-12-05.pt")
    p.add_argument("--ref", default=None, help="paper scale: EDM's fid-refs/<dataset>.npz")
    p.add_argument("--kimg", type=float_in(0, 10 ** 6), default=0.0, help="students' image budget in kimg (0: the preset's)")
    p.add_argument("--gpus", type=int_in(1, 1024), default=1, help="paper scale: processes per run (torchrun when > 1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default="runs")
    p.add_argument("--results", default="results")
    p.add_argument("--figures", default="figures")
    p.add_argument("--eval-num", type=positive_int, default=None)
    p.add_argument("--methods", default="", help="smoke and paper scale: comma-separated students to train (default: "
                   "gdd,gddi,instance,gddi-smalld; the ablation is mini and smoke only)")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("featnet", help="train the digits feature network used for mini-scale FID")
    p.add_argument("--epochs", type=positive_int, default=40)
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "assets" / "digits_featnet.safetensors"))
    p.set_defaults(func=cmd_featnet)

    p = sub.add_parser("backbones", help="train the projected discriminator's two digits feature networks (mini scale)")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--out-dir", default=None, help="folder for the two files (default: paperlib/assets)")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("convert", help="convert an EDM/GDD network pickle into paperlib's safetensors format")
    p.add_argument("pkl", help="an EDM/GDD .pkl (or, with --trust, a paperlib network file)")
    p.add_argument("outdir")
    p.add_argument("--key", default="ema", choices=["ema", "net"], help="which network of the pickle (GDD snapshots hold both)")
    p.add_argument("--trust", action="store_true", help="re-save a paperlib network file written before digests "
                   "existed, unverified, with a digest (only for a file you trust)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("convert-cifar10", help="convert cifar-10-python.tar.gz into an EDM dataset zip")
    p.add_argument("archive")
    p.add_argument("out")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.set_defaults(func=cmd_convert_cifar10)
    return parser


def cmd_notebook(args: argparse.Namespace) -> None:
    import papermill as pm

    from paperlib.notebook.runner import parse_assignments, run_notebook

    try:
        run_notebook(args.name, args.out, parse_assignments(args.parameters))
    except pm.PapermillExecutionError as exc:  # the notebook's own error, in one line
        raise NotebookFailed(f"{args.name}.ipynb stopped in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                             f"(the executed notebook is {args.out})") from None


class NotebookFailed(Exception):
    """A notebook raised: its error, one line."""


def cmd_strip_notebook(args: argparse.Namespace) -> None:
    from paperlib.notebook.strip import strip_outputs

    sys.stdout.write(strip_outputs(sys.stdin.read()))


def main(argv: list[str] | None = None) -> int:
    try:
        args, extra = build_parser().parse_known_args(argv)
        if getattr(args, "takes_extra", False):
            args.func(args, extra)
        elif extra:
            raise ValueError(f"unrecognised arguments: {' '.join(extra)}")
        else:
            args.func(args)
    except (CheckpointError, DatasetError, MetricError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an output folder that is a file, a full disk: one line naming the path
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
