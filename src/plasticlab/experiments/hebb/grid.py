"""The gamma x sigma grid shared by hebb-fig4 (alignment phase diagram) and hebb-fig5 (loss vs alignment)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...rules.hebb_optim import RULES
from ...settings import setting
from . import common as H
from ...claims.hebb import FIG4_GAMMAS, FIG4_SIGMAS
from .common import run_grid, spec_for, sre_data


NOISES = ("weight", "input")


@dataclass
class HebbFig4Config:
    """SGD on the SRE with weight noise sigma injected before every step (``noise="input"``: input noise)."""

    gammas: tuple[float, ...] = setting(FIG4_GAMMAS, gt=0,
                                        doc="weight decays, increasing (> 0: the boundary is fitted in log gamma)")
    sigmas: tuple[float, ...] = setting(FIG4_SIGMAS, gt=0,
                                        doc="noise standard deviations, increasing (> 0: read on a log scale; the "
                                            "smallest stands for noise-free)")
    noise: str = setting("weight", choices=NOISES, doc='"weight": noise sigma on the weights before every step; '
                                                       '"input": on the inputs')
    noise_mode: str = setting("perturbed", choices=H.NOISE_MODES,
                              doc='"perturbed": only the learning signal sees the noisy weights; "persistent": '
                                  'the noise stays in the weights')
    rule: str = setting("sgd", choices=RULES, doc="learning rule (with its Table 1 clipping and biases)")
    seeds: int = setting(1, ge=1, le=1000, doc="seeds per cell (one vmapped grid run each)")
    n_train: int = setting(20000, ge=1, le=10_000_000, doc="SRE training samples")
    n_val: int = setting(2000, ge=1, le=10_000_000, doc="SRE validation samples")
    d: int = setting(32, ge=1, le=H.MAX_WIDTH, doc="SRE input and output dimension")
    hidden: tuple[int, ...] = setting((128, 128), ge=1, le=H.MAX_WIDTH,
                                      doc="hidden widths of the student (and of the teacher)")
    epochs: float = setting(25.0, gt=0, le=H.MAX_EPOCHS, doc="passes over the training set (may be fractional)")
    batch_size: int = setting(256, ge=1, le=100_000, doc="minibatch size (<= n_train)")
    lr: float = setting(0.1, gt=0, doc="learning rate")
    layer: int = setting(2, ge=1, le=1000, doc="1-based MLP layer whose alignment is mapped (<= len(hidden) + 1)")
    log_every: int = setting(10, ge=1, le=100_000, doc="steps between alignment logs")
    window: int = setting(100, ge=1, le=H.MAX_STEPS, doc="final alignment: mean over the logs of the last this "
                                                        "many steps")
    fit_max_loss_ratio: float = setting(0.5, gt=0, doc="fit only gamma rows whose noise-free val. loss < ratio * "
                                                       "grid maximum (> 1: every row)")

    def validate(self) -> None:
        H.check_increasing("gammas", self.gammas)
        H.check_increasing("sigmas", self.sigmas)
        H.check_batch(self.n_train, self.batch_size)
        H.check_layer(self.layer, self.hidden)


def grid_unit(cfg, seed: int) -> dict:
    """All gamma x sigma cells of one seed in one vmapped run."""
    if cfg.noise not in NOISES:
        raise ValueError(f"noise must be 'weight' or 'input', got {cfg.noise!r}")
    data = sre_data(cfg.n_train, cfg.n_val, cfg.d, cfg.hidden)
    G, S = np.meshgrid(np.asarray(cfg.gammas, float), np.asarray(cfg.sigmas, float), indexing="ij")
    spec = spec_for(cfg.rule, (cfg.d, *cfg.hidden, cfg.d), batch_size=cfg.batch_size, neuron_layer=0,
                    noise_mode=cfg.noise_mode)
    key = "sigma" if cfg.noise == "weight" else "input_noise"
    res = run_grid(spec, data, seeds=[seed], epochs=cfg.epochs, log_every=cfg.log_every, window=cfg.window,
                   hp={"gamma": G.ravel(), key: S.ravel(), "lr": cfg.lr}, layer=cfg.layer)
    a = np.asarray(res["align"], float)[:, cfg.layer - 1].reshape(G.shape)
    return {"align": a.tolist(), "val_loss": np.asarray(res["val_loss"], float).reshape(G.shape).tolist(),
            "collapsed": np.asarray(res["collapsed"]).reshape(G.shape).tolist(), "n_steps": res["n_steps"]}
