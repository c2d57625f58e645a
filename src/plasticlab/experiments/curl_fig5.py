"""curl-fig5: convergence speed of curl descent vs gradient descent in tanh networks (Fig. 5).

Student and teacher y = W2 tanh(W1 x) with M = 100 inputs, N = 10 hidden neurons, scalar output;
curl descent flips the rule of one readout weight (D2 = diag(-1, 1, ..., 1)), i.e. one of 1010 parameters.
Each seed owns teacher, data and the initial student, shared by GD and curl (paired design). Speed is
measured by log10 test error after ``epochs`` full-batch epochs (lower = faster convergence) and the first
logged epoch with test error below ``threshold``; curl vs GD by ``scipy.stats.ttest_rel`` over seeds.
Sweeps (sweepable tuples): training-set size, student init scale, teacher scale, fraction of flipped readouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from scipy import stats

from ..networks import student_teacher as st
from ..plotting import figure, save
from ..settings import SettingError, setting
from ._curl_common import claim
from .base import Experiment, RunContext, register


@dataclass
class CurlSpeedConfig:
    activation: str = setting("tanh", kind="activation", doc="activation of student and teacher")
    M: int = setting(100, ge=1, le=100_000, doc="input neurons (paper: 100)")
    N: int = setting(10, ge=1, le=100_000, doc="hidden neurons (paper: 10)")
    n_trains: tuple[int, ...] = setting((250, 500, 1000, 2000), ge=1, le=10_000_000, allow_empty=True,
                                        doc="training-set sizes of the N_train sweep (full batch); empty: no sweep")
    init_scales: tuple[float, ...] = setting((1.0, 2.0, 4.0), gt=0, allow_empty=True,
                                             doc="student init scales of the init sweep (weights U(-1, 1) / "
                                                 "sqrt(fan_in) times the scale); empty: no sweep")
    teacher_scales: tuple[float, ...] = setting((0.5, 1.0, 2.0, 4.0), gt=0, allow_empty=True,
                                                doc="teacher weight scales of the teacher sweep; empty: no sweep")
    flip_fractions: tuple[float, ...] = setting((0.1, 0.2, 0.3, 0.5, 0.7), gt=0, le=1, allow_empty=True,
                                                doc="fractions of flipped readout weights (round(f N), at least 1) "
                                                    "of the flip sweep; empty: no sweep")
    base_n_train: int = setting(2000, ge=1, le=10_000_000, doc="training-set size where the other sweeps run")
    base_init_scale: float = setting(2.0, gt=0, doc="student init scale where the other sweeps run")
    base_teacher_scale: float = setting(1.0, gt=0, doc="teacher scale where the other sweeps run")
    n_test: int = setting(1000, ge=1, le=10_000_000, doc="test samples of the relative test error")
    epochs: int = setting(1000, ge=1, le=10_000_000, doc="full-batch epochs")
    lr: float = setting(0.5, gt=0, doc="learning rate (of the mean gradient over the training set)")
    rescale: bool = setting(True, doc="bring W1, W2 back to their initial Frobenius norms after every step")
    threshold: float = setting(0.03, gt=0, doc="relative test error that counts as converged (first logged epoch "
                                               "below it)")
    seeds: int = setting(10, ge=2, le=1000, doc="seeds (teacher, data, initial student shared by GD and curl), "
                                                "vmapped; the paired t-tests need >= 2")
    seed: int = setting(0, ge=0, le=2**32 - 1, doc="base seed (JAX PRNG key)")

    def validate(self) -> None:
        if not (self.n_trains or self.init_scales or self.teacher_scales):
            raise SettingError("n_trains", self.n_trains, "a non-empty list when init_scales and teacher_scales "
                               "are empty (the learning curves come from these sweeps)", "no sweep with curves")


def _point(cfg: CurlSpeedConfig, n_train: int, init_scale: float, teacher_scale: float,
           flipped: tuple[int, ...] = (1,)) -> dict:
    """GD and curl (one variant per number of flipped readout weights) from the same seeds; speed measures."""
    M, N = cfg.M, cfg.N
    variants = [(np.ones(M, np.float32), np.ones(N, np.float32))]
    for k in flipped:
        variants.append((np.ones(M, np.float32), st.flip_signs(N, index=list(range(k)))))
    key = jax.random.PRNGKey(cfg.seed)
    nets, data = st.build_batch(key, M, N, cfg.seeds, variants, n_train, cfg.n_test, cfg.activation,
                                init_scale=init_scale, teacher_scale=teacher_scale)
    sim = st.SimConfig(lr=cfg.lr, activation=cfg.activation, rescale=cfg.rescale)
    out = st.simulate(nets, data, jax.random.fold_in(key, 1), cfg.epochs, sim, epochs_at=st.log_epochs(cfg.epochs, 30))
    te = np.maximum(out["logs"]["test_error"], 1e-30)     # (seeds, variants, T+1)
    ep = out["epochs"]
    below = te < cfg.threshold
    t_hit = np.where(below.any(-1), ep[np.argmax(below, axis=-1)], np.inf)
    return {"epochs": ep.tolist(), "log10_error": np.log10(te).tolist(), "t_hit": t_hit.tolist()}


def _compare(res: dict, j: int) -> dict:
    """Paired t-test of variant j (curl) against variant 0 (GD) on the final log10 test error."""
    le = np.asarray(res["log10_error"])
    gd, cu = le[:, 0, -1], le[:, j, -1]
    t, p = stats.ttest_rel(cu, gd)
    th = np.asarray(res["t_hit"], dtype=float)
    return {"gd_log10_error": float(gd.mean()), "curl_log10_error": float(cu.mean()),
            "diff_mean": float((cu - gd).mean()), "t": float(t), "p": float(p),
            "curl_faster": bool(cu.mean() < gd.mean() and p < 0.01),
            "gd_hit_fraction": float(np.isfinite(th[:, 0]).mean()), "curl_hit_fraction": float(np.isfinite(th[:, j]).mean()),
            "gd_median_t_hit": float(np.median(th[:, 0])), "curl_median_t_hit": float(np.median(th[:, j]))}


def run(cfg: CurlSpeedConfig, ctx: RunContext) -> dict:
    res = run_speed(cfg, ctx)
    return {**res, "paper": paper_rows(res["summary"], cfg)}


def sweep_points(cfg: CurlSpeedConfig) -> list[tuple[str, float]]:
    """(sweep, value) of every GD-vs-curl comparison ``run_speed`` makes: each sweep varies one setting from the
    base (base_n_train, base_init_scale, base_teacher_scale, one flipped readout weight)."""
    return ([("n_train", float(v)) for v in cfg.n_trains] + [("init_scale", float(v)) for v in cfg.init_scales]
            + [("teacher_scale", float(v)) for v in cfg.teacher_scales]
            + [("flip_fraction", float(v)) for v in cfg.flip_fractions])


def run_speed(cfg: CurlSpeedConfig, ctx: RunContext) -> dict:
    """The GD-vs-curl comparisons of every sweep point (shared by curl-fig5 and curl-fig10)."""
    if cfg.M < 1 or cfg.N < 1:
        raise ValueError(f"M and N must be positive, got M={cfg.M}, N={cfg.N}")
    base = dict(n_train=cfg.base_n_train, init_scale=cfg.base_init_scale, teacher_scale=cfg.base_teacher_scale)
    rows, summary, curves = [], [], {}
    done: dict = {}
    for kind, value in sweep_points(cfg):
        if kind == "flip_fraction":           # one batch with every fraction, below
            continue
        args = {**base, kind: int(value) if kind == "n_train" else value}
        k = (args["n_train"], args["init_scale"], args["teacher_scale"])
        if k not in done:
            ctx.log(f"{kind} = {value}: GD vs curl, {cfg.seeds} seeds (vmapped)")
            done[k] = ctx.unit(f"n={k[0]}-init={k[1]}-teacher={k[2]}-flip1",
                               lambda a=args: _point(cfg, a["n_train"], a["init_scale"], a["teacher_scale"]))
        res = done[k]
        cmp = _compare(res, 1)
        summary.append({"sweep": kind, "value": value, "flipped": 1, **cmp})
        curves[f"{kind}={value}"] = {"epochs": res["epochs"], "gd": np.asarray(res["log10_error"])[:, 0].tolist(),
                                     "curl": np.asarray(res["log10_error"])[:, 1].tolist()}
        le = np.asarray(res["log10_error"])
        for s in range(le.shape[0]):
            for j, rule in ((0, "gd"), (1, "curl")):
                rows.append({"sweep": kind, "value": value, "rule": rule, "seed": s,
                             "log10_test_error": float(le[s, j, -1])})
    if cfg.flip_fractions:
        ctx.log(f"fraction of flipped readouts {cfg.flip_fractions}")
        counts = tuple(max(1, int(round(f * cfg.N))) for f in cfg.flip_fractions)
        res = ctx.unit(f"fractions={cfg.flip_fractions}", lambda: _point(
            cfg, cfg.base_n_train, cfg.base_init_scale, cfg.base_teacher_scale, counts))
        le = np.asarray(res["log10_error"])
        for j, f in enumerate(cfg.flip_fractions, start=1):
            summary.append({"sweep": "flip_fraction", "value": float(f),
                            "flipped": max(1, int(round(f * cfg.N))), **_compare(res, j)})
            for s in range(le.shape[0]):
                rows.append({"sweep": "flip_fraction", "value": float(f), "rule": "curl", "seed": s,
                             "log10_test_error": float(le[s, j, -1])})
    for r in summary:
        ctx.log(f"{r['sweep']}={r['value']:g}: GD {r['gd_log10_error']:.3f}, curl {r['curl_log10_error']:.3f} "
                f"(log10 test error), t={r['t']:.2f}, p={r['p']:.2g}")
    return {"rows": rows, "summary": summary, "curves": curves}


def faster(r: dict, p_max: float) -> bool:
    """Curl reaches a lower mean log10 test error than GD with paired t-test p < p_max."""
    return bool(r["curl_log10_error"] < r["gd_log10_error"] and r["p"] < p_max)


def _show(rs: list[dict]) -> str:
    return "; ".join(f"{r['sweep']} {r['value']:g}: GD {r['gd_log10_error']:.2f}, curl {r['curl_log10_error']:.2f} "
                     f"(log10 test error), p={r['p']:.2g}" for r in rs)


def sweep_row(quantity: str, summary: list[dict], sweep: str, keep, p_max: float, what: str, where: str) -> dict:
    """Paper-vs-ours row: curl faster (p < p_max) at every point of ``sweep`` whose value passes ``keep``; a
    reason string instead of the verdict when no such point was run."""
    rs = [r for r in summary if r["sweep"] == sweep and keep(r["value"])]
    if not rs:
        ran = ", ".join(f"{r['value']:g}" for r in summary if r["sweep"] == sweep) or "none"
        return claim(quantity, f"not run: no {what} in this config", where=where, note=f"{sweep} values run: {ran}")
    return claim(quantity, all(faster(r, p_max) for r in rs), where=where, note=_show(rs))


def base_point(summary: list[dict], cfg: CurlSpeedConfig) -> dict | None:
    """The comparison at the base setting (base_n_train, base_init_scale, base_teacher_scale), if it was run."""
    base = {"n_train": cfg.base_n_train, "init_scale": cfg.base_init_scale, "teacher_scale": cfg.base_teacher_scale}
    return next((r for r in summary if r["sweep"] in base and r["value"] == float(base[r["sweep"]])), None)


def speed_rows(summary: list[dict], cfg: CurlSpeedConfig, p_max: float, n_min: int, where_base: str,
               where_n: str) -> list[dict]:
    """The two claims shared by Fig. 5 and 10: curl faster than GD (paired t-test p < p_max) at the base setting
    and at every N_train >= n_min."""
    b = base_point(summary, cfg)
    return [claim(f"one flipped readout weight converges faster than GD (p < {p_max:g}) at N_train = "
                  f"{cfg.base_n_train}, init scale {cfg.base_init_scale:g}", faster(b, p_max) if b else
                  "base setting not run", where=where_base, note=_show([b]) if b else "-"),
            sweep_row(f"faster (p < {p_max:g}) at every N_train >= {n_min}", summary, "n_train",
                      lambda v: v >= n_min, p_max, f"N_train >= {n_min}", where_n)]


def paper_rows(summary: list[dict], cfg: CurlSpeedConfig) -> list[dict]:
    """Fig. 5 beside ours (paired t-tests, p < .01): curl with one flipped readout weight converges faster at
    N_train = 2000 and for every N_train >= 500, robust to the init scale, faster below a critical teacher
    scale only, faster for <= 50% flipped readout weights."""
    p = 0.01
    rows = speed_rows(summary, cfg, p, 500, "Fig. 5b (paper: N_train = 2000, init scale 2)", "Fig. 5c")
    rows.append(sweep_row("robust to the student init scale: faster (p < 0.01) at every init scale run", summary,
                          "init_scale", lambda v: True, p, "init scales",
                          f"Fig. 5d (paper: N_train = 10000; ours: {cfg.base_n_train})"))
    ts = sorted((r for r in summary if r["sweep"] == "teacher_scale"), key=lambda r: r["value"])
    if len(ts) < 2:
        ok: bool | str = f"not run: needs >= 2 teacher scales, {len(ts)} in this config"
    else:
        flags = [faster(r, p) for r in ts]
        k = flags.index(False) if False in flags else len(flags)
        ok = 0 < k < len(flags) and not any(flags[k:])
    rows.append(claim("critical teacher scale: faster (p < 0.01) below it, not above", ok, where="Fig. 5e",
                      note=_show(ts) if ts else "teacher_scale values run: none"))
    rows.append(sweep_row("faster (p < 0.01) for every fraction <= 50% of flipped readout weights", summary,
                          "flip_fraction", lambda v: v <= 0.5, p, "flipped fractions <= 0.5", "Fig. 5f"))
    return rows


def plot(results: dict, out: Path) -> None:
    summ = results["summary"]
    kinds = list(dict.fromkeys(r["sweep"] for r in summ))
    fig, ax = figure(1, len(kinds) + 1, size=(3.8, 3.2))
    cfg = results["config"]
    key = f"n_train={float(cfg['base_n_train'])}"
    c = results["curves"].get(key) or next(iter(results["curves"].values()))
    ep = np.asarray(c["epochs"])
    for name in ("gd", "curl"):
        v = np.asarray(c[name])
        m, se = v.mean(0), v.std(0, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0 * v[0]
        ax[0, 0].plot(ep, m, label=name)
        ax[0, 0].fill_between(ep, m - se, m + se, alpha=0.25)
    ax[0, 0].set_xscale("symlog")
    ax[0, 0].set_xlabel("epoch")
    ax[0, 0].set_ylabel("log10 test error (mean +- sem)")
    ax[0, 0].legend()
    for k, kind in enumerate(kinds, start=1):
        rs = [r for r in summ if r["sweep"] == kind]
        x = [r["value"] for r in rs]
        ax[0, k].plot(x, [r["gd_log10_error"] for r in rs], "o-", label="GD")
        ax[0, k].plot(x, [r["curl_log10_error"] for r in rs], "s-", label="curl")
        for r in rs:
            if r["p"] < 0.01:
                ax[0, k].annotate("*", (r["value"], r["curl_log10_error"]), fontsize=12)
        ax[0, k].set_xlabel(kind)
        ax[0, k].set_title("* paired t-test p < 0.01 (either direction)", fontsize=8)
        ax[0, k].legend(fontsize=7)
    save(fig, out / f"speed_{cfg['activation']}.png")


# --quick: the base point (N_train 2000, init 2, teacher 1) is shared by the sweeps that contain the base value,
# so each of Fig. 5d-e costs one more point; Fig. 5f is one batch (GD, 20% and 50% flipped).
QUICK = {"n_trains": (2000,), "init_scales": (2.0, 4.0), "teacher_scales": (1.0, 4.0), "flip_fractions": (0.2, 0.5),
         "seeds": 6, "epochs": 300}

register(Experiment("curl-fig5", "tanh M=100, N=10: curl descent with one flipped readout weight vs GD; convergence "
                    "speed against training-set size, init scale, teacher scale, flipped fraction (paired t-tests)",
                    CurlSpeedConfig, run, plot, paper="curl", quick=QUICK))
