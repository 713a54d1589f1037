"""Verdicts of the protocol (``paperlib.study.protocol``) from per-seed values: each claim's
one-sided test, Holm's correction over its family, the verdict, the power of an undecided one, and the machine rule
(a comparison is decided only when every CPU kind on one side also has runs on the other). The sentences printed
come from the verdicts alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from paperlib.study.evidence.significance import holm, machine_effect, one_sided_test, power
from paperlib.study.protocol import ALPHA, CAVEATS, ERRATA

HOLDS, FAILS, UNDECIDED, UNDECIDABLE = "holds", "does not hold", "not decided", "not decidable"


@dataclass
class Side:
    """One side of a comparison: per-seed values and, per value, the CPU kind that made it (None: exempt from the
    machine rule, as the teacher's sampled ranges)."""

    values: list[float]
    kinds: list[str | None] = field(default_factory=list)


def machines_balanced(a: Side, b: Side) -> bool:
    """Whether every CPU kind on one side has runs on the other (sides without kinds are exempt)."""
    kinds_a, kinds_b = {k for k in a.kinds if k}, {k for k in b.kinds if k}
    return not kinds_a or not kinds_b or kinds_a == kinds_b


def decide(a: Side, b: Side, test: str, margin: float, alpha: float = ALPHA) -> dict:
    """One claim, before correction: 'superior' tests mean(a) - mean(b) < 0, 'noninferior' tests it < ``margin``
    (lower is better). Returns the test (:func:`paperlib.study.evidence.significance.one_sided_test`) with ``bound``, ``n_a``,
    ``n_b``, ``power`` (at the observed spreads, the truth ``margin`` inside the bound) and ``machines`` (the
    machine effect on the difference, :func:`paperlib.study.evidence.significance.machine_effect`, where two kinds give 2+ seeds to
    both sides, else None)."""
    if test not in ("superior", "noninferior"):
        raise ValueError(f"test must be 'superior' or 'noninferior', got {test!r}")
    bound = 0.0 if test == "superior" else margin
    values_a, values_b = np.asarray(a.values, float), np.asarray(b.values, float)
    result = one_sided_test(values_a, values_b, bound, alpha)
    result.update(bound=bound, n_a=len(values_a), n_b=len(values_b), balanced=machines_balanced(a, b),
                  power=power(float(values_a.std(ddof=1)), len(values_a), float(values_b.std(ddof=1)), len(values_b),
                              margin, alpha))
    by_kind: tuple[dict, dict] = ({}, {})
    for side, values, grouped in ((a, values_a, by_kind[0]), (b, values_b, by_kind[1])):
        for value, kind in zip(values, side.kinds):
            if kind:
                grouped.setdefault(kind, []).append(float(value))
    result["machines"] = machine_effect(*by_kind)
    return result


def decide_family(tests: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Holm's correction over one family (each item as :func:`decide` returns it) and each verdict: **holds** when
    the adjusted p is below ``alpha``, **does not hold** when the 95% interval lies wholly above the bound,
    otherwise **not decided** (with its power). A comparison that cannot be decided (its ``undecidable`` reason, or
    machines unbalanced) gets no verdict and takes no part in the correction."""
    reasons = [t.get("undecidable") or (None if t["balanced"] else "one side has runs from a kind of CPU the other "
                                        "lacks") for t in tests]
    decidable = [i for i, reason in enumerate(reasons) if reason is None]
    adjusted = holm([tests[i]["p"] for i in decidable])
    out = [dict(t, p_adjusted=math.nan, verdict=UNDECIDABLE, undecidable=reason) for t, reason in zip(tests, reasons)]
    for i, p_adj in zip(decidable, adjusted):
        t = tests[i]
        verdict = HOLDS if p_adj < alpha else FAILS if t["low95"] > t["bound"] else UNDECIDED
        out[i].update(p_adjusted=p_adj, verdict=verdict)
    return out


def decide_claims(claims, sides: dict[str, tuple[list[dict], list[str | None]]], margin) -> list[dict]:
    """One family of ``claims`` (dicts with key, claim, a, b, test, metric) decided on ``sides``: row name ->
    (per-seed evaluations, each a dict of metrics with ``diverged`` where it did; the CPU kind of each, or None).
    ``margin(claim)`` gives a claim's margin (for superiority: the improvement its power is computed at). A claim
    with a diverged run on either side is not decidable.
    Returns per claim: its key, words, test and metric with :func:`decide_family`'s verdict and its sentence."""
    tests = []
    for claim in claims:
        (a, kinds_a), (b, kinds_b) = sides[claim["a"]], sides[claim["b"]]
        values = [[e.get(claim["metric"]) if e.get(claim["metric"]) is not None else math.nan for e in side]
                  for side in (a, b)]
        test = decide(Side(values[0], kinds_a), Side(values[1], kinds_b), claim["test"], margin(claim))
        tests.append(dict(test, undecidable="a run of it diverged") if any(e.get("diverged") for e in a + b) else test)
    return [dict(key=c["key"], claim=c["claim"], test=c["test"], metric=c["metric"], **v,
                 sentence=sentence(c["claim"], v)) for c, v in zip(claims, decide_family(tests))]


def annotate(decided: list[dict], claims, describe, planned: dict | None = None,
             extra: dict | None = None) -> list[dict]:
    """``decided`` (:func:`decide_claims`'s, for ``claims``) with, per claim, ``rows`` (its two sides in words,
    ``describe(side)``), ``planned_power`` (``planned``: claim key -> the power the protocol planned; None where it
    planned none) and ``notes``: the protocol's erratum and caveat for it, ``extra[key]`` appended to the caveat."""
    by_key = {c["key"]: c for c in claims}
    out = []
    for c in decided:
        claim, notes = by_key[c["key"]], []
        if c["key"] in ERRATA:
            notes.append(f"Erratum: {ERRATA[c['key']]}.")
        if c["key"] in CAVEATS:
            notes.append(f"Caveat: {CAVEATS[c['key']]}{(extra or {}).get(c['key'], '')}.")
        out.append(dict(c, rows=f"{describe(claim['a'])} against {describe(claim['b'])}",
                        planned_power=(planned or {}).get(c["key"]), notes=notes))
    return out


def _signed(x: float) -> str:
    """Three significant digits with a sign, but whole numbers from 1000 on (an FID gap reads as -1019, not -1.02e+03)."""
    return f"{x:+.0f}" if abs(x) >= 1000 else f"{x:+.3g}"


def sentence(claim: str, result: dict) -> str:
    """The verdict in words, with its numbers: the claim as the protocol words it, then what the test says: the
    difference, the 95% interval (the rule of 'does not hold') and the 90% one (the one-sided test at 5%, before
    Holm) against the bound, raw and adjusted p, seeds and the power at the observed spreads."""
    numbers = (f"difference {_signed(result['diff'])}, 95% interval [{_signed(result['low95'])}, "
               f"{_signed(result['high95'])}], 90% interval [{_signed(result['low'])}, {_signed(result['high'])}] "
               f"against the bound {_signed(result['bound'])}; p {result['p']:.3g}, Holm-adjusted "
               f"{result['p_adjusted']:.3g}; {result['n_a']} vs {result['n_b']} seeds; power at the observed sds "
               f"{result['power']:.0%}")
    if result.get("machines"):
        first, second = result["machines"]["kinds"]
        numbers += (f"; machine effect on the difference, {first} minus {second}: "
                    f"{_signed(result['machines']['diff'])}, p {result['machines']['p']:.3g}")
    if result["verdict"] == HOLDS:
        return f"{claim}: **holds** ({numbers})."
    if result["verdict"] == FAILS:
        return f"{claim}: **does not hold** ({numbers})."
    if result["verdict"] == UNDECIDABLE:
        return f"{claim}: **not decidable**: {result['undecidable']}."
    return f"{claim}: **not decided** at these seeds ({numbers})."
