"""Many mini-scale training runs at once: seeds, sweeps and the freeze ablation are independent runs, and the
8x8 networks scale poorly across threads, so a 2-core machine trains two runs side by side with one thread each
(about 1.3x the throughput of one run on two threads), and a GPU trains several processes at once.

Each finished run prints one progress line (which run, kimg, FID, its time, the estimated time left), and each
running one a line per FID it records during training (read from its log). A run's numbers depend only on its
config and its thread count, not on which worker ran it.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import torch

from paperlib.store.run_folder import RunFolder
from paperlib.study.jobs import Job, run_job


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def build_banks(jobs: list[Job], log=print) -> None:
    """Build the instance banks that ``jobs`` need and that are not on disk yet, here with every thread of this
    process, before the pool starts: in a worker one thread would build it while the others wait for its lock."""
    from paperlib.devices import resolve_device
    from paperlib.instance_bank import bank_folder, bank_path, load_or_build_bank
    from paperlib.store.checkpoints import load_network

    for cfg in {job.run_dir: job.config() for job in jobs}.values():
        if cfg["objective"] != "instance" or not cfg["instance_bank"]:
            continue
        folder = bank_folder(cfg["bank_dir"], cfg["run_dir"])
        if not bank_path(cfg["teacher"], cfg["instance_bank"], cfg["instance_steps"], folder).exists():
            log(f"building the instance bank of {cfg['instance_bank']:,} teacher solutions in {folder} "
                f"({torch.get_num_threads()} threads)")
            load_or_build_bank(load_network(cfg["teacher"]).eval(), cfg["teacher"], cfg["instance_bank"],
                               cfg["instance_steps"], folder, resolve_device(cfg["device"]))


def default_workers(device: str = "auto") -> int:
    """Runs at once: one per CPU core (one thread each), or 6 processes sharing a GPU."""
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return 6 if cuda else max(1, len(os.sched_getaffinity(0)))


def _latest_training_fid(run_dir: str, since: float = 0.0) -> dict | None:
    """The last metrics line with a FID during training (``eval_fid``) in a run's log, or None (also when the log
    was last written before ``since``, a ``time.time()``: a finished run being read back, not trained)."""
    folder = RunFolder(run_dir)
    if not folder.log.exists() or folder.log.stat().st_mtime < since:
        return None
    return next((r for r in reversed(folder.records()) if "eval_fid" in r), None)


def _run_unless_late(job: Job, deadline: float | None) -> dict | None:
    """:func:`run_job`, or None without starting when ``deadline`` (a ``time.time()``) has passed: the
    executor hands a worker its next job before the running one ends, so the deadline is checked where it starts."""
    return None if deadline is not None and time.time() > deadline else run_job(job)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # the exit status a default SIGTERM death gives


@contextmanager
def _sigterm_as_exit():
    """Inside, SIGTERM raises SystemExit in this (main) thread, so ``kill PID`` stops the pool through its
    error path, which terminates the workers: the default action kills this process alone, and its spawned
    workers would go on training with no one to read their results. Outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Progress:
    """The results of a list of jobs as they come, each reported in one line as it arrives."""

    def __init__(self, jobs: list[Job], log):
        self.jobs, self.log, self.started = jobs, log, time.perf_counter()
        recorded = [job.recorded() for job in jobs]  # recorded runs are done: no worker needed
        self.results: list[dict | None] = [None if r is None else dict(r, from_ledger=True) for r in recorded]
        self.todo = [i for i, r in enumerate(self.results) if r is None]

    def arrived(self, i: int, result: dict | None) -> None:
        self.results[i] = result
        if result is not None:
            self.report(i)

    def report(self, i: int) -> None:
        r, label = self.results[i], self.jobs[i].label
        line = (f"{label}: {r['kimg']:g} kimg, FID {r['fid']:.2f} (held-out {r['fid_test']:.2f}), "
                if r.get("fid") is not None else f"{label}: diverged at {r['kimg']:g} kimg, ")
        if r.get("from_ledger"):
            self.log(f"[recorded] {line}from its ledger record")
            return
        trained = sum(self.results[j] is not None for j in self.todo)
        left = (time.perf_counter() - self.started) / trained * (len(self.todo) - trained)
        self.log(f"[{trained}/{len(self.todo)}] {line}trained in {r['train_seconds']:.0f} s; about {left / 60:.0f} "
                 f"min left")


def run_jobs(jobs: list[Job], workers: int = 1, threads: int = 1, log=lambda line: print(line, flush=True),
             deadline: float | None = None, poll_seconds: float = 30.0) -> list[dict | None]:
    """Run ``jobs`` on ``workers`` processes (``threads`` torch threads each; ``workers=1`` runs them here, one after
    the other, with this process's thread setting) and return their results in the order of ``jobs``. Jobs start in
    list order; after ``deadline`` (a ``time.time()``) no new job starts, and those not started return None. Every
    ``poll_seconds`` the running jobs' logs are read, and each FID during training they recorded since is printed."""
    progress = _Progress(jobs, log)
    for i in range(len(jobs)):
        if progress.results[i] is not None:
            progress.report(i)
    if workers <= 1 or len(progress.todo) <= 1:
        for i in progress.todo:
            progress.arrived(i, _run_unless_late(jobs[i], deadline))
            if progress.results[i] is None:
                break
        return progress.results
    build_banks([jobs[i] for i in progress.todo], log)
    with _sigterm_as_exit():
        _run_on_workers(progress, workers, threads, deadline, poll_seconds)
    late = sum(progress.results[i] is None for i in progress.todo)
    if late:
        log(f"deadline reached: {late} runs not started")
    return progress.results


class WorkerDied(ValueError):
    """A worker process of the pool was killed; the message names the runs that were on workers and how to go on."""


def _run_on_workers(progress: _Progress, workers: int, threads: int, deadline: float | None,
                    poll_seconds: float) -> None:
    """The jobs ``progress`` has to do, on ``workers`` spawned processes; between finished runs, each running one's
    newest FID during training."""
    jobs, log = progress.jobs, progress.log
    context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state
    pool = futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,))
    try:
        pending = {pool.submit(_run_unless_late, jobs[i], deadline): i for i in progress.todo}
        seen: dict[int, float] = {}  # job -> kimg of the last training-time FID reported
        wall_start = time.time()
        waiting = set(pending)
        running: list[int] = []  # the jobs on a worker at the last look: one of them was on a worker that died
        while waiting:
            done, waiting = futures.wait(waiting, timeout=poll_seconds, return_when=futures.FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    names = ", ".join(jobs[i].label for i in running) or jobs[pending[future]].label
                    raise WorkerDied(f"a worker process died (killed from outside, e.g. by the out-of-memory killer) "
                                     f"while running {names}; finished runs are recorded and unfinished ones keep "
                                     f"their training states: run the same command again to go on (fewer --workers "
                                     f"need less memory)") from None
                progress.arrived(pending[future], result)
            running = [pending[f] for f in waiting if f.running()]
            for future in waiting:
                i = pending[future]
                latest = _latest_training_fid(jobs[i].run_dir, since=wall_start) if future.running() else None
                if latest is not None and latest["kimg"] != seen.get(i):
                    seen[i] = latest["kimg"]
                    log(f"  {jobs[i].label}: {latest['kimg']:g} kimg, FID {latest['eval_fid']:.2f} during training "
                        f"({jobs[i].curve_num:,} samples), {latest['train_seconds'] / 60:.0f} min of training")
    except BaseException:
        # One failed run stops the others at once (their states stay on disk for a resume): its error is the one
        # to read, and waiting for runs of many minutes would hide it. The executor has no public way to stop
        # running workers before Python 3.14, hence its process table.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
