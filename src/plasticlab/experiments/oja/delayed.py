"""The delayed-classification RNN of Oja paper Fig. 5, shared by ``oja-fig5`` and ``oja-rnn-grid``.

Each trial shows the flattened image as x_t for the first ``t_stim`` of ``t_total`` steps, then x_t = 0; the
class is read out from h_T of the leaky tanh RNN h <- (1 - alpha) h + alpha tanh(W_in x + W_rec h + b).
PEV is the bias-corrected omega^2 of a one-way ANOVA of each neuron's activity on the class, per time step
(``analysis.representations.omega_squared``), on the evaluation trials.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ...analysis.representations import omega_squared
from ...data import Dataset
from ...networks.rnn import LeakyRNN, train_rnn
from ...settings import setting
from .common import classification_datasets

RULES = ("bptt", "bptt+oja")

# constraint and doc of the task and network settings that oja-fig5 and oja-rnn-grid share (``rnn_setting``)
RNN_SETTINGS: dict[str, dict] = {
    "dataset": dict(choices=classification_datasets,
                    doc="classification data set; the flattened image is the input x_t"),
    "n_samples": dict(ge=1, le=2_000_000, doc="online trials (batch 1), drawn in epochs of random permutations of "
                                              "the training images (paper: 18,000)"),
    "n_hidden": dict(ge=1, le=10_000, doc="recurrent units (W_rec's eigenvalues are computed at every evaluation)"),
    "t_total": dict(ge=1, le=5000, doc="time steps per trial; the class is read out from h_T"),
    "t_stim": dict(ge=1, le=5000, doc="first time steps showing the image (then x_t = 0), at most t_total"),
    "seeds": dict(ge=1, le=1000, doc="independent seeds, run together under vmap"),
    "data_seed": dict(ge=0, le=2**32 - 1, doc="seed of the training subset (and of the test or validation subset)"),
}


def rnn_setting(name: str, default: Any, **override: Any) -> Any:
    """``setting(default, ...)`` with the shared constraint and doc of RNN setting ``name`` (``override`` replaces
    entries)."""
    return setting(default, **{**RNN_SETTINGS[name], **override})


def train_delayed_rnn(data: Dataset, spec: str, *, alpha: float, t_total: int, t_stim: int, n_hidden: int,
                      seeds: int, n_samples: int, eta: float, eta_oja: float, evals: int,
                      pev_over_training: bool = False) -> dict:
    """Online training of rule ``spec`` ("bptt": Delta W = -eta dL/dW by BPTT; "bptt+oja": plus eta_oja's Oja term
    on W_rec), all ``seeds`` under vmap, evaluated on ``data.x_test`` every n_samples // evals trials.

    Returns per seed: "accuracy" (seeds, evals + 1), "max_real_eig" / "mean_abs_imag" over training, the initial
    and final spectra of W_rec, "pev" (seeds, t_total, n_hidden) of the final network and, with
    ``pev_over_training``, "pev_time_over_training" (seeds, evals + 1, t_total): PEV averaged over neurons at every
    evaluation."""
    model = LeakyRNN(n_in=data.n_features, n_hidden=n_hidden, n_out=data.n_classes, alpha=alpha, t_total=t_total,
                     t_stim=t_stim)

    @jax.jit
    def pev_of(params):  # (seeds, ...) -> (seeds, t_total, n_hidden)
        hs = jax.vmap(lambda p: model.forward(p, data.x_test).h)(params)  # (seeds, T + 1, n, H)
        return jax.vmap(lambda h: omega_squared(h[1:].transpose(1, 0, 2), data.y_test, data.n_classes))(hs)

    callback = (lambda params, done: {"pev_time": np.asarray(pev_of(params)).mean(-1)}) if pev_over_training else None
    r = train_rnn(model, data.x_train, data.y_train, seeds=list(range(seeds)), n_samples=n_samples, eta=eta,
                  eta_oja=eta_oja if spec == "bptt+oja" else 0.0, eval_every=max(1, n_samples // evals),
                  x_eval=data.x_test, y_eval=data.y_test, callback=callback)
    out = {"samples": r["samples"], "accuracy": r["accuracy"].tolist(),
           "max_real_eig": r["eig_re"].max(-1).tolist(),  # (seeds, evals)
           "eig_re_final": r["eig_re"][:, -1].tolist(), "eig_im_final": r["eig_im"][:, -1].tolist(),
           "eig_re_init": r["eig_re"][:, 0].tolist(), "eig_im_init": r["eig_im"][:, 0].tolist(),
           "mean_abs_imag": np.abs(r["eig_im"]).mean(-1).tolist(),  # (seeds, evals)
           "pev": np.asarray(pev_of(r["params"])).tolist()}  # (seeds, T, H)
    if pev_over_training:
        out["pev_time_over_training"] = np.stack([e["pev_time"] for e in r["extra"]], 1).tolist()
    return out


def pev_delay(pev: np.ndarray, t_stim: int) -> np.ndarray:
    """Per seed, PEV averaged over the delay steps t > t_stim (and over neurons when ``pev`` has a neuron axis):
    ``pev`` (seeds, T[, H]) -> (seeds,)."""
    delay = np.asarray(pev, float)[:, t_stim:]
    return delay.reshape(delay.shape[0], -1).mean(1)
