"""When is a run "at convergence"? A stated stationarity criterion over a trailing window of evaluations.

Used by every number a paper reports "at convergence": ``fit(until=Stationarity(...).watch(batch_size))``
trains until every run has held it (or the run's sample cap), and the watch records when each run first held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stationarity:
    """A run is stationary when none of its curves moved over the last ``window`` evaluations.

    The window (evaluations n - window + 1 .. n; ``window`` even) is cut into an earlier half A and a later
    half B. With m_A, m_B a curve's mean over each half (evaluation values at those evaluations; logged step
    values at the steps inside each half):

        evaluation loss  ``loss_key``:         |m_B - m_A| <= loss_rtol * |m_A|
        logged cosines   ``atol_keys``:        |m_B - m_A| <= atol        (per layer)
        logged norms     ``rtol_keys``:        |m_B - m_A| <= norm_rtol * |m_A|   (per layer)

    The run holds when every test holds; a run whose values are not finite (diverged) counts as held, since
    there is nothing to wait for. No decision before ``min_samples`` samples (a minimum training length).
    """

    window: int = 4
    loss_rtol: float = 0.01
    atol: float = 0.01
    norm_rtol: float = 0.01
    min_samples: int = 0
    loss_key: str = "eval_loss"
    atol_keys: tuple[str, ...] = ("align",)
    rtol_keys: tuple[str, ...] = ("wnorm",)

    def __post_init__(self) -> None:
        if self.window < 2 or self.window % 2:
            raise ValueError(f"window must be an even number of evaluations >= 2, got {self.window}")
        for name in ("loss_rtol", "atol", "norm_rtol"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def held(self, hist, batch_size: int) -> np.ndarray | None:
        """Per run (the History's leading (cells,) seeds axes): whether the criterion holds at the last
        evaluation; None before ``min_samples`` or while fewer than ``window`` evaluations follow step 0."""
        samples = np.asarray(hist.samples)
        n = len(samples) - 1
        if n < self.window or samples[-1] < self.min_samples:
            return None
        half = self.window // 2
        tests = []
        if self.loss_key in hist.curves:
            loss = hist.array(self.loss_key)  # (runs..., evals)
            a = np.mean(loss[..., n - self.window + 1:n - half + 1], axis=-1)
            b = np.mean(loss[..., n - half + 1:n + 1], axis=-1)
            tests.append(_close(a, b, self.loss_rtol * np.abs(a)))
        axis = 1 if hist.cells is None else 2  # the logs axis, after (cells,) seeds
        steps = np.asarray(hist.log_steps)
        edges = samples[[n - self.window, n - half, n]] // batch_size
        in_a = (steps > edges[0]) & (steps <= edges[1])
        in_b = (steps > edges[1]) & (steps <= edges[2])
        for keys, relative in ((self.atol_keys, False), (self.rtol_keys, True)):
            for key in keys:
                if key not in hist.logs or not in_a.any() or not in_b.any():
                    continue
                v = hist.logged(key)  # (runs..., logs, layers...)
                a = np.take(v, np.flatnonzero(in_a), axis=axis).mean(axis=axis)
                b = np.take(v, np.flatnonzero(in_b), axis=axis).mean(axis=axis)
                tol = self.norm_rtol * np.abs(a) if relative else self.atol
                ok = _close(a, b, tol)
                tests.append(ok.reshape(*ok.shape[:axis], -1).all(axis=-1))
        if not tests:
            raise ValueError(f"no curve to judge: {self.loss_key!r} is not an evaluation curve and none of "
                             f"{self.atol_keys + self.rtol_keys} is logged (fit(log_every=...))")
        return np.logical_and.reduce(np.broadcast_arrays(*tests))

    def watch(self, batch_size: int) -> "StationarityWatch":
        """A ``fit(until=...)`` callable that also records, per run, the first step at which it held."""
        return StationarityWatch(self, batch_size)


class StationarityWatch:
    """``fit(until=watch)``: True once every run has held ``criterion`` at some evaluation (runs that held go on
    training with the others: with many runs, batch noise makes all of them holding at one and the same
    evaluation rare); ``first_step`` (runs..., -1: never) and ``holds`` (at the last evaluation) are kept for the
    record."""

    def __init__(self, criterion: Stationarity, batch_size: int) -> None:
        self.criterion, self.batch_size = criterion, batch_size
        self.first_step: np.ndarray | None = None
        self.holds: np.ndarray | None = None

    def __call__(self, hist) -> bool:
        held = self.criterion.held(hist, self.batch_size)
        if held is None:
            return False
        step = int(hist.samples[-1]) // self.batch_size
        first = np.full(held.shape, -1) if self.first_step is None else self.first_step
        self.first_step = np.where((first < 0) & held, step, first)
        self.holds = held
        return bool((self.first_step >= 0).all())

    def state_dict(self) -> dict[str, np.ndarray | None]:
        """``first_step`` and ``holds``, for a resumable ``fit`` (``plasticlab.checkpoint``)."""
        return {"first_step": None if self.first_step is None else self.first_step.copy(),
                "holds": None if self.holds is None else self.holds.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray | None]) -> None:
        """Take back what ``state_dict`` returned."""
        self.first_step, self.holds = state.get("first_step"), state.get("holds")

    def progress_note(self) -> str:
        """How many runs have held the criterion so far, for the progress line: "stationary: 31/40 runs"."""
        if self.first_step is None:
            return "stationary: not judged yet"
        return f"stationary: {int((self.first_step >= 0).sum())}/{self.first_step.size} runs"


def _close(a: np.ndarray, b: np.ndarray, tol) -> np.ndarray:
    """|b - a| <= tol, and True where either side is not finite (a diverged run)."""
    with np.errstate(invalid="ignore"):
        return (np.abs(b - a) <= tol) | ~np.isfinite(a) | ~np.isfinite(b)
