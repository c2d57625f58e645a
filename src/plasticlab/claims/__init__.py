"""Paper claims as data: what each paper states, with its number and spread, and a test that can fail.

Experiments produce *measurements* (``results["measurements"]``: name -> per-seed values); a claim reads
measurements by name and judges them:

- :class:`Numeric`: the paper's value with its reported spread; agrees when ``|mean - paper|`` is within the
  combined uncertainty ``2 sqrt(sd_paper^2 + se_ours^2)``, or within a stated tolerance whose reason is given.
- :class:`Greater`: "A outperforms B": a bootstrap CI of the (paired) mean difference at the paper's confidence
  level must lie above ``margin``; the effect size (mean difference, Cohen's d) is reported.
- :class:`Depends`: "A depends on the condition" with no direction given: the two-sided CI of the (paired) mean
  difference must exclude 0.
- :class:`Trend`: "rises with gamma": the pooled least-squares slope of the values against x, whose CI must
  exclude 0 on the stated side (with ``blocks``: the common slope within the blocks of a second factor).
- :class:`Exponent`: "gamma ~ sigma^p": the fitted log-log slope, whose CI must contain the paper's exponent.
- :class:`Bound`: "x > 0": the CI of the mean over seeds lies strictly on the stated side of a constant.

A verdict is ``agrees``, ``differs``, ``not measured`` (with the reason) or ``not comparable`` (a numeric claim
judged on a quick run, which is never scored against full-size numbers). Every claim can produce measurements
that agree with the paper and measurements that contradict it (:meth:`Claim.mutations`), and the test suite
checks each claim agrees with the first and differs on every one of the second.

Claims are declared per paper in ``plasticlab.claims.<paper>`` and registered with :func:`register`.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np
from scipy import stats

__all__ = ["Verdict", "Claim", "Numeric", "Greater", "Trend", "Exponent", "Bound", "register", "all_claims",
           "claims_for", "judge_all", "VERDICTS"]

VERDICTS = ("agrees", "differs", "not measured", "not comparable")
Measurements = Mapping[str, Sequence[float]]


class Verdict(NamedTuple):
    """``status`` is one of VERDICTS; ``ours`` a short number with its spread; ``detail`` how it was decided."""

    status: str
    ours: str
    detail: str


def _values(m: Measurements, name: str) -> np.ndarray | None:
    """Finite per-seed values of measurement ``name`` (None when it is absent or empty)."""
    if name not in m or m[name] is None:
        return None
    v = np.asarray([np.nan if x is None else x for x in np.atleast_1d(m[name])], dtype=float)
    v = v[np.isfinite(v)]
    return v if v.size else None


def _missing(names: Sequence[str], m: Measurements) -> Verdict | None:
    gone = [n for n in names if _values(m, n) is None]
    if gone:
        return Verdict("not measured", "-", f"no finite values for {', '.join(gone)}")
    return None


def _g(v: float) -> str:
    return f"{v:.4g}"


@dataclass(frozen=True)
class Claim:
    """One statement of a paper. ``id`` is unique (``paper.where.what``); ``experiment`` produces the inputs."""

    id: str
    paper: str
    experiment: str
    where: str
    statement: str

    def inputs(self) -> tuple[str, ...]:
        """The measurement names this claim reads."""
        raise NotImplementedError

    def paper_value(self) -> str:
        """The paper's number (with its spread) or relation, in words."""
        raise NotImplementedError

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        raise NotImplementedError

    def mutations(self) -> tuple[dict, list[dict]]:
        """(measurements that agree with the paper, a list of measurements that contradict it)."""
        raise NotImplementedError

    def row(self, m: Measurements, *, quick: bool = False, stand_in: dict[str, str] | None = None) -> dict:
        """The claim and its verdict as one table row (report, ledger). ``stand_in`` ({paper's data set: the one
        that ran}, e.g. {"cifar10": "mnist"}): a claim reading measurements filed under a stood-in data set says so,
        and a number of the paper's data set is "not comparable" there."""
        v = self.judge(m, quick=quick)
        used = sorted({n.split("/")[0] for n in self.inputs()} & set(stand_in or {}))
        if used and v.status not in ("not measured",):
            note = "; ".join(f"{stand_in[d]} standing in for {d}" for d in used)
            if isinstance(self, Numeric) and self.data_specific and v.status != "not comparable":
                v = Verdict("not comparable", v.ours, f"{note}: the paper's number is for {', '.join(used)}")
            else:
                v = Verdict(v.status, v.ours, f"{v.detail} ({note})")
        return {"claim": self.id, "where": self.where, "statement": self.statement, "paper": self.paper_value(),
                "ours": v.ours, "verdict": v.status, "detail": v.detail}


@dataclass(frozen=True)
class Numeric(Claim):
    """A number the paper reports: ``value`` with ``spread`` (an SD over its runs; None: not reported).

    Agrees when ``|mean - value| <= 2 sqrt(spread^2 + se^2)`` (``se`` = our SD / sqrt(n)), or, when
    ``tolerance`` is given, ``|mean - value| <= tolerance`` (``tolerance_reason`` says why that bound).
    ``data_specific``: the number belongs to the paper's data set, so a stand-in data set cannot be scored
    against it (``Claim.row``); False for a difference the paper states as holding in general (e.g. "as well as").
    """

    measure: str = ""
    value: float = math.nan
    spread: float | None = None
    tolerance: float | None = None
    tolerance_reason: str = ""
    data_specific: bool = True  # a number of the paper's data set (False: a difference or ratio that is not)

    def __post_init__(self) -> None:
        if self.spread is None and self.tolerance is None:
            raise ValueError(f"claim {self.id}: give the paper's spread or a tolerance with its reason")
        if self.tolerance is not None and not self.tolerance_reason:
            raise ValueError(f"claim {self.id}: a tolerance needs its reason")

    def inputs(self) -> tuple[str, ...]:
        return (self.measure,)

    def paper_value(self) -> str:
        if self.spread is not None:
            return f"{_g(self.value)} +- {_g(self.spread)} (SD)"
        return f"{_g(self.value)} (no spread reported; tolerance {_g(self.tolerance)})"

    def bound(self, se: float) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return 2.0 * math.sqrt(self.spread ** 2 + se ** 2)

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        miss = _missing(self.inputs(), m)
        if miss:
            return miss
        v = _values(m, self.measure)
        mean = float(v.mean())
        sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
        se = sd / math.sqrt(v.size)
        ours = f"{_g(mean)} +- {_g(sd)} (SD, n={v.size})"
        if quick:
            return Verdict("not comparable", ours, "quick run, not comparable to the paper's number")
        bound = self.bound(se)
        how = (f"tolerance {_g(bound)} ({self.tolerance_reason})" if self.tolerance is not None
               else f"2 sqrt(sd_paper^2 + se^2) = {_g(bound)}")
        ok = abs(mean - self.value) <= bound
        return Verdict("agrees" if ok else "differs", ours, f"|diff| = {_g(abs(mean - self.value))} vs {how}")

    def mutations(self) -> tuple[dict, list[dict]]:
        width = self.spread if self.spread is not None else self.tolerance
        good = {self.measure: [self.value + d * 0.1 * width for d in (-1, 0, 1, 0.5, -0.5)]}
        bad = [{self.measure: [self.value + sign * 5 * width + d * 0.1 * width for d in (-1, 0, 1, 0.5, -0.5)]}
               for sign in (-1, 1)]
        return good, bad


def _diff_ci(a: np.ndarray, b: np.ndarray, paired: bool, level: float, seed: int = 0) -> tuple[float, float, float]:
    """Mean difference a - b and its percentile-bootstrap CI (paired by seed when ``paired``)."""
    rng = np.random.default_rng(seed)
    if paired:
        d = a - b
        if d.size < 2 or np.ptp(d) == 0:
            return float(d.mean()), float(d.mean()), float(d.mean())
        res = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=2000, method="percentile",
                              random_state=rng)
        return float(d.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return diff, diff, diff
    res = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), confidence_level=level,
                          n_resamples=2000, method="percentile", random_state=rng, vectorized=True)
    return diff, float(res.confidence_interval.low), float(res.confidence_interval.high)


def _count_diverged(m: Measurements, names: Sequence[str], value: float | None) -> tuple[Measurements, str]:
    """``m`` with each diverged seed (a None in a per-seed list) of ``names`` replaced by ``value`` (a network
    that diverged has not learned: e.g. chance accuracy), and a note saying how many were; unchanged if None."""
    if value is None:
        return m, ""
    out, counts = dict(m), []
    for name in names:
        seeds = m.get(name)
        if isinstance(seeds, (list, tuple)) and seeds:
            gone = sum(x is None or not math.isfinite(x) for x in seeds)
            out[name] = [value if x is None or not math.isfinite(x) else x for x in seeds]
            if gone:
                counts.append(f"{gone} of {len(seeds)} seeds of {name}")
    return out, (f"; diverged, counted at {_g(value)}: {', '.join(counts)}" if counts else "")


class PairedDifference(NamedTuple):
    """mean(A - B) over seeds with its bootstrap CI, as ``Greater`` and ``Depends`` report it."""

    lo: float
    hi: float
    ours: str  # "diff D [lo, hi] (95% CI), d = Cohen's d"
    how: str  # "paired bootstrap over n=../.. seeds"


def _compare_pair(m: Measurements, a_name: str, b_name: str, paired: bool, level: float) -> PairedDifference | Verdict:
    """The CI of mean(A - B) (paired by seed when asked and both sides have as many seeds) and Cohen's d with the
    pooled SD; a Verdict "not measured" instead when a side is missing or has fewer than 2 seeds."""
    miss = _missing((a_name, b_name), m)
    if miss:
        return miss
    a, b = _values(m, a_name), _values(m, b_name)
    paired = paired and a.size == b.size
    if min(a.size, b.size) < 2:
        return Verdict("not measured", f"{_g(a.mean())} vs {_g(b.mean())}", "needs at least 2 seeds per side")
    diff, lo, hi = _diff_ci(a, b, paired, level)
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    d = diff / pooled if pooled > 0 else math.copysign(math.inf, diff) if diff else 0.0
    return PairedDifference(lo, hi, f"diff {_g(diff)} [{_g(lo)}, {_g(hi)}] ({int(level * 100)}% CI), d = {_g(d)}",
                            f"{'paired' if paired else 'unpaired'} bootstrap over n={a.size}/{b.size} seeds")


@dataclass(frozen=True)
class Greater(Claim):
    """"A outperforms B": the CI (at ``level``) of mean(A - B) over our seeds lies above ``margin``.

    ``paired``: seed s of A and seed s of B share data order and initial draws, so differences are taken per
    seed. Needs at least 2 seeds; a CI that contains ``margin`` is "differs" (the data do not show the claim).
    """

    a: str = ""
    b: str = ""
    margin: float = 0.0
    paired: bool = True
    level: float = 0.95
    diverged_as: float | None = None  # a seed recorded as diverged (None) counts as this value, e.g. chance

    def inputs(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def paper_value(self) -> str:
        return f"{self.a} > {self.b}" + (f" + {_g(self.margin)}" if self.margin else "")

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        m, note = _count_diverged(m, (self.a, self.b), self.diverged_as)
        pair = _compare_pair(m, self.a, self.b, self.paired, self.level)
        if isinstance(pair, Verdict):
            return pair
        # a CI exactly at the margin (up to rounding) is not above it
        ok = pair.lo > self.margin + 1e-9 * (1 + abs(self.margin))
        return Verdict("agrees" if ok else "differs", pair.ours,
                       f"{pair.how}; {'CI above' if ok else 'CI not above'} {_g(self.margin)}{note}")

    def mutations(self) -> tuple[dict, list[dict]]:
        noise = [0.01, -0.01, 0.02, -0.02, 0.0]
        base = [0.5 + n for n in noise]
        above = [b + self.margin + 1.0 for b in base]  # A clearly beyond B + margin
        at = [b + self.margin for b in base]  # no effect beyond the margin
        below = [b + self.margin - 1.0 for b in base]  # the opposite ordering
        return {self.a: above, self.b: base}, [{self.a: below, self.b: base}, {self.a: at, self.b: base}]


@dataclass(frozen=True)
class Depends(Claim):
    """"A depends on the condition" with no direction given: the two-sided CI (at ``level``) of mean(A - B) over
    our seeds (paired by seed when ``paired``) excludes 0; the effect size is reported. Needs at least 2 seeds."""

    a: str = ""
    b: str = ""
    paired: bool = True
    level: float = 0.95

    def inputs(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def paper_value(self) -> str:
        return f"{self.a} != {self.b} (either direction)"

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        pair = _compare_pair(m, self.a, self.b, self.paired, self.level)
        if isinstance(pair, Verdict):
            return pair
        ok = pair.lo > 1e-12 or pair.hi < -1e-12
        return Verdict("agrees" if ok else "differs", pair.ours,
                       f"{pair.how}; two-sided: CI {'excludes' if ok else 'contains'} 0")

    def mutations(self) -> tuple[dict, list[dict]]:
        noise = [0.01, -0.01, 0.02, -0.02, 0.0]
        base = [0.5 + n for n in noise]
        same = [0.5 + n for n in (-0.02, 0.01, 0.0, 0.02, -0.01)]  # equal in the mean, shuffled noise
        return ({self.a: [b + 1.0 for b in base], self.b: base},
                [{self.a: list(base), self.b: base}, {self.a: same, self.b: base}])


@dataclass(frozen=True)
class Trend(Claim):
    """"Rises (falls) with x": the pooled least-squares slope of the values of ``measures`` (one per x in
    ``xs``, each over seeds) against x (or log10 x with ``log_x``) has a CI (at ``level``) excluding 0 on the
    side of ``direction``.

    ``blocks`` > 1: the trend holds within each block of a second factor that also moves the values (e.g.
    "alignment falls with the frozen fraction" at every weight decay). ``measures`` then holds ``blocks`` runs of
    ``len(xs)`` names, block by block, and the slope is the common within-block one: x and y centred on their
    block's means, then fitted through the origin (least squares with a fixed effect per block), with
    ``n - blocks - 1`` degrees of freedom, so that the spread between blocks is not counted as noise."""

    measures: tuple[str, ...] = ()
    xs: tuple[float, ...] = ()
    direction: str = "increasing"
    log_x: bool = False
    level: float = 0.95
    blocks: int = 1

    def __post_init__(self) -> None:
        if self.blocks < 1 or len(self.measures) != len(self.xs) * self.blocks or len(self.xs) < 2:
            raise ValueError(f"claim {self.id}: one measure per x (per block), at least 2 x values")
        if self.direction not in ("increasing", "decreasing"):
            raise ValueError(f"claim {self.id}: direction is 'increasing' or 'decreasing'")

    def inputs(self) -> tuple[str, ...]:
        return self.measures

    def paper_value(self) -> str:
        return f"{self.direction} in {'log ' if self.log_x else ''}x" + (
            f" (within each of {self.blocks} blocks)" if self.blocks > 1 else "")

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        miss = _missing(self.inputs(), m)
        if miss:
            return miss
        xs, ys, block = [], [], []
        for i, name in enumerate(self.measures):
            x, v = self.xs[i % len(self.xs)], _values(m, name)
            xs += [math.log10(x) if self.log_x else x] * v.size
            ys += list(v)
            block += [i // len(self.xs)] * v.size
        xs, ys, block = np.asarray(xs), np.asarray(ys), np.asarray(block)
        df = len(xs) - self.blocks - 1
        if len(set(xs.tolist())) < 2 or df < 1:
            return Verdict("not measured", "-", "needs at least 3 points at 2 x values" if self.blocks == 1 else
                           f"needs more than blocks + 1 points at 2 x values ({len(xs)} points, {self.blocks} blocks)")
        for b in range(self.blocks):  # a fixed effect per block: centre x and y on the block's means
            xs[block == b] -= xs[block == b].mean()
            ys[block == b] -= ys[block == b].mean()
        sxx = float(xs @ xs)
        if sxx == 0.0:
            return Verdict("not measured", "-", "x does not vary within any block")
        slope = float(xs @ ys) / sxx
        stderr = math.sqrt(float(((ys - slope * xs) ** 2).sum()) / df / sxx)
        t = stats.t.ppf(0.5 + self.level / 2, df)
        lo, hi = slope - t * stderr, slope + t * stderr
        ok = lo > 0 if self.direction == "increasing" else hi < 0
        ours = f"slope {_g(slope)} [{_g(lo)}, {_g(hi)}] ({int(self.level * 100)}% CI)"
        how = f"least squares over {len(xs)} points" + (f", within {self.blocks} blocks" if self.blocks > 1 else "")
        return Verdict("agrees" if ok else "differs", ours, how)

    def mutations(self) -> tuple[dict, list[dict]]:
        """The paper's trend (slope 1 in every block; blocks offset far apart, so a block-blind fit would miss
        it) agrees; no trend and the opposite trend differ."""
        sign = 1.0 if self.direction == "increasing" else -1.0
        noise = (0.01, -0.01, 0.0)
        n = len(self.xs)

        def curve(slope: float) -> dict:
            return {name: [sign * slope * (i % n) + 10.0 * (i // n) + e for e in noise]
                    for i, name in enumerate(self.measures)}

        return curve(1.0), [curve(0.0), curve(-1.0)]


@dataclass(frozen=True)
class Exponent(Claim):
    """"y ~ x^p": the least-squares slope of log y against log x (``x``, ``y``: measurements holding matched
    points) has a CI (at ``level``) that contains the paper's ``exponent`` (widened by its ``spread``, if any)."""

    x: str = ""
    y: str = ""
    exponent: float = math.nan
    spread: float = 0.0
    level: float = 0.95

    def inputs(self) -> tuple[str, ...]:
        return (self.x, self.y)

    def paper_value(self) -> str:
        return f"exponent {_g(self.exponent)}" + (f" +- {_g(self.spread)}" if self.spread else "")

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        miss = _missing(self.inputs(), m)
        if miss:
            return miss
        x = np.asarray(m[self.x], dtype=float)
        y = np.asarray(m[self.y], dtype=float)
        ok_pts = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        if ok_pts.sum() < 3:
            return Verdict("not measured", "-", "needs at least 3 positive points")
        fit = stats.linregress(np.log(x[ok_pts]), np.log(y[ok_pts]))
        t = stats.t.ppf(0.5 + self.level / 2, max(1, int(ok_pts.sum()) - 2))
        lo, hi = fit.slope - t * fit.stderr, fit.slope + t * fit.stderr
        agree = lo <= self.exponent + self.spread and hi >= self.exponent - self.spread
        return Verdict("agrees" if agree else "differs", f"{_g(fit.slope)} [{_g(lo)}, {_g(hi)}]",
                       f"log-log least squares over {int(ok_pts.sum())} points, {int(self.level * 100)}% CI")

    def mutations(self) -> tuple[dict, list[dict]]:
        xs = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
        jitter = np.array([1.0, 1.01, 0.99, 1.005, 0.995])

        def points(p: float) -> dict:
            return {self.x: xs.tolist(), self.y: (xs ** p * jitter).tolist()}

        return points(self.exponent), [points(self.exponent + 3 + 3 * self.spread),
                                       points(self.exponent - 3 - 3 * self.spread)]


@dataclass(frozen=True)
class Bound(Claim):
    """"x is above (below) a constant": the CI (at ``level``) of the mean over our seeds lies strictly above
    (below) ``bound``; with one value (a deterministic measurement) the value itself must."""

    measure: str = ""
    bound: float = 0.0
    side: str = "above"
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.side not in ("above", "below"):
            raise ValueError(f"claim {self.id}: side is 'above' or 'below'")

    def inputs(self) -> tuple[str, ...]:
        return (self.measure,)

    def paper_value(self) -> str:
        return f"{self.measure} {'>' if self.side == 'above' else '<'} {_g(self.bound)}"

    def judge(self, m: Measurements, *, quick: bool = False) -> Verdict:
        miss = _missing(self.inputs(), m)
        if miss:
            return miss
        v = _values(m, self.measure)
        if v.size > 1 and np.ptp(v) > 0:
            res = stats.bootstrap((v,), np.mean, confidence_level=self.level, n_resamples=2000,
                                  method="percentile", random_state=np.random.default_rng(0))
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        else:
            lo = hi = float(v.mean())
        tol = 1e-9 * (1 + abs(self.bound))
        ok = lo > self.bound + tol if self.side == "above" else hi < self.bound - tol
        return Verdict("agrees" if ok else "differs", f"{_g(float(v.mean()))} [{_g(lo)}, {_g(hi)}] (n={v.size})",
                       f"{int(self.level * 100)}% bootstrap CI of the mean {'above' if self.side == 'above' else 'below'}"
                       f" {_g(self.bound)}: {'yes' if ok else 'no'}")

    def mutations(self) -> tuple[dict, list[dict]]:
        sign = 1.0 if self.side == "above" else -1.0
        noise = (0.01, -0.01, 0.02, 0.0)
        return ({self.measure: [self.bound + sign * (1.0 + n) for n in noise]},
                [{self.measure: [self.bound - sign * (1.0 + n) for n in noise]}, {self.measure: [self.bound] * 4}])


# ----------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Claim] = {}
_LOADED = False


def register(*claims: Claim) -> None:
    """Add claims to the registry (ids must be unique)."""
    for c in claims:
        if c.id in _REGISTRY and _REGISTRY[c.id] != c:
            raise ValueError(f"claim {c.id!r} declared twice")
        _REGISTRY[c.id] = c


def all_claims() -> list[Claim]:
    """Every declared claim, grouped by paper (imports each ``plasticlab.claims.<paper>`` module once)."""
    global _LOADED
    if not _LOADED:
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
        _LOADED = True
    # by paper tag, each paper in declaration order: the same order whichever module imported its claims first
    return sorted(_REGISTRY.values(), key=lambda c: c.paper)


def claims_for(experiment: str | None = None, paper: str | None = None) -> list[Claim]:
    """The claims judged on ``experiment``'s measurements (or every claim of ``paper``)."""
    return [c for c in all_claims() if (experiment is None or c.experiment == experiment)
            and (paper is None or c.paper == paper)]


def judge_all(experiment: str, measurements: Measurements | None, *, quick: bool = False,
              stand_in: dict[str, str] | None = None) -> list[dict]:
    """One row per claim of ``experiment`` with its verdict on ``measurements`` (``stand_in``: see ``Claim.row``)."""
    return [c.row(measurements or {}, quick=quick, stand_in=stand_in) for c in claims_for(experiment)]
