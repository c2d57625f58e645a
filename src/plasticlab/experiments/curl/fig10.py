"""curl-fig10: the convergence-speed comparison of curl-fig5 with ReLU networks (appendix D, Fig. 10).

Same set-up (M = 100, N = 10, one flipped readout weight, paired t-tests); the paper reports a smaller
effect and uses 40 seeds; the default sweeps training-set size and init scale only (as in Fig. 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...settings import setting
from ..base import Experiment, register
from .speed import CurlSpeedConfig, plot, run_speed

PAPER_INIT_SCALES = (3.0, 4.0, 6.0, 7.0, 8.0)   # Fig. 10c: p < 0.05 at these init scales (N_train = 10000)


@dataclass
class CurlReluConfig(CurlSpeedConfig):
    activation: str = setting("relu", kind="activation", doc="activation of student and teacher")
    n_trains: tuple[int, ...] = setting((250, 500, 1000, 1400, 2000), ge=1, le=10_000_000, allow_empty=True,
                                        doc="training-set sizes of the N_train sweep (full batch); empty: no sweep")
    init_scales: tuple[float, ...] = setting(PAPER_INIT_SCALES, gt=0, allow_empty=True,
                                             doc="student init scales of the init sweep (weights U(-1, 1) / "
                                                 "sqrt(fan_in) times the scale); empty: no sweep")
    teacher_scales: tuple[float, ...] = setting((), gt=0, allow_empty=True,
                                                doc="teacher weight scales of the teacher sweep; empty: no sweep")
    flip_fractions: tuple[float, ...] = setting((), gt=0, le=1, allow_empty=True,
                                                doc="fractions of flipped readout weights (round(f N), at least 1) "
                                                    "of the flip sweep; empty: no sweep")
    base_n_train: int = setting(1400, ge=1, le=10_000_000, doc="training-set size where the other sweeps run")
    seeds: int = setting(40, ge=2, le=1000, doc="seeds (teacher, data, initial student shared by GD and curl), "
                                                "vmapped; the paired t-tests need >= 2 (paper: 40)")


# --quick: the base point (N_train 1400, init 2) and one of the paper's Fig. 10c init scales (4), at N_train 1400
# (not the paper's 10000, so the Fig. 10c claims are not measured on a quick run)
QUICK = {"n_trains": (1400,), "init_scales": (4.0,), "teacher_scales": (), "flip_fractions": (), "seeds": 8,
         "epochs": 300, "init_n_train": 1400}

register(Experiment("curl-fig10", "ReLU M=100, N=10: curl descent (one flipped readout weight) vs GD, convergence "
                    "speed against training-set size and init scale (paired t-tests)",
                    CurlReluConfig, run_speed, plot, paper="curl", quick=QUICK))
