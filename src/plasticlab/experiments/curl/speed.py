"""Convergence-speed machinery shared by curl-fig5 (tanh) and curl-fig10 (ReLU): GD vs curl, paired tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from scipy import stats

from ...networks import student_teacher as st
from ...plotting import figure, save
from ...settings import SettingError, setting
from ..base import RunContext


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
    init_n_train: int = setting(10000, ge=1, le=10_000_000, doc="training-set size of the init-scale sweep "
                                                                 "(paper, Fig. 5d / 10c: 10000)")
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


def point_name(cfg: CurlSpeedConfig, n_train: int, init_scale: float, teacher_scale: float) -> str:
    """The setting of one GD-vs-curl comparison, as its measurements are named (the claims read these names)."""
    return (f"{cfg.activation},M={cfg.M},N={cfg.N},n_train={int(n_train)},init={init_scale:g},"
            f"teacher={teacher_scale:g}")


def measurement_names(cfg: CurlSpeedConfig, n_train: int, init_scale: float, teacher_scale: float,
                      flipped: int = 1) -> tuple[str, str]:
    """(GD, curl with ``flipped`` flipped readout weights): per-seed final log10 test error at one setting."""
    p = point_name(cfg, n_train, init_scale, teacher_scale)
    return f"{p}/gd/log10_test_error", f"{p}/curl_flipped={flipped}/log10_test_error"


def sweep_points(cfg: CurlSpeedConfig) -> list[tuple[str, float]]:
    """(sweep, value) of every GD-vs-curl comparison ``run_speed`` makes: each sweep varies one setting from the
    base (base_n_train, base_init_scale, base_teacher_scale, one flipped readout weight); the init-scale sweep
    runs at N_train = init_n_train (the paper's Fig. 5d / 10c use 10000)."""
    return ([("n_train", float(v)) for v in cfg.n_trains] + [("init_scale", float(v)) for v in cfg.init_scales]
            + [("teacher_scale", float(v)) for v in cfg.teacher_scales]
            + [("flip_fraction", float(v)) for v in cfg.flip_fractions])


def run_speed(cfg: CurlSpeedConfig, ctx: RunContext) -> dict:
    """The GD-vs-curl comparisons of every sweep point (shared by curl-fig5 and curl-fig10)."""
    if cfg.M < 1 or cfg.N < 1:
        raise ValueError(f"M and N must be positive, got M={cfg.M}, N={cfg.N}")
    base = dict(n_train=cfg.base_n_train, init_scale=cfg.base_init_scale, teacher_scale=cfg.base_teacher_scale)
    rows, summary, curves = [], [], {}
    measurements: dict[str, list[float]] = {}
    done: dict = {}
    for kind, value in sweep_points(cfg):
        if kind == "flip_fraction":           # one batch with every fraction, below
            continue
        args = {**base, kind: int(value) if kind == "n_train" else value}
        if kind == "init_scale":
            args["n_train"] = cfg.init_n_train
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
        gd_name, curl_name = measurement_names(cfg, *k)
        measurements[gd_name], measurements[curl_name] = le[:, 0, -1].tolist(), le[:, 1, -1].tolist()
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
            gd_name, curl_name = measurement_names(cfg, cfg.base_n_train, cfg.base_init_scale,
                                                   cfg.base_teacher_scale, counts[j - 1])
            measurements.setdefault(gd_name, le[:, 0, -1].tolist())   # the same seeds, data and GD run as above
            measurements[curl_name] = le[:, j, -1].tolist()
            for s in range(le.shape[0]):
                rows.append({"sweep": "flip_fraction", "value": float(f), "rule": "curl", "seed": s,
                             "log10_test_error": float(le[s, j, -1])})
    for r in summary:
        ctx.log(f"{r['sweep']}={r['value']:g}: GD {r['gd_log10_error']:.3f}, curl {r['curl_log10_error']:.3f} "
                f"(log10 test error), t={r['t']:.2f}, p={r['p']:.2g}")
    return {"rows": rows, "summary": summary, "curves": curves, "measurements": measurements}


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
        ax[0, 0].plot(ep, m, label=f"{name} (mean +- SEM, n={len(v)})")
        ax[0, 0].fill_between(ep, m - se, m + se, alpha=0.25)
    ax[0, 0].set_xscale("symlog")
    ax[0, 0].set_xlabel("epoch")
    ax[0, 0].set_ylabel("log10 test error (mean +- sem)")
    ax[0, 0].legend()
    for k, kind in enumerate(kinds, start=1):
        rs = [r for r in summ if r["sweep"] == kind]
        x = [r["value"] for r in rs]
        ax[0, k].plot(x, [r["gd_log10_error"] for r in rs], "o-", label=f"GD (mean, n={cfg['seeds']})")
        ax[0, k].plot(x, [r["curl_log10_error"] for r in rs], "s-", label=f"curl (mean, n={cfg['seeds']})")
        for r in rs:
            if r["p"] < 0.01:
                ax[0, k].annotate("*", (r["value"], r["curl_log10_error"]), fontsize=12)
        ax[0, k].set_xlabel(kind)
        ax[0, k].set_title(f"{kind}: * paired t-test p < 0.01 (either direction)", fontsize=8)
        ax[0, k].legend(fontsize=7)
    save(fig, out / f"speed_{cfg['activation']}.png")
