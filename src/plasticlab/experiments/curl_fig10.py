"""curl-fig10: the convergence-speed comparison of curl-fig5 with ReLU networks (appendix D, Fig. 10).

Same set-up (M = 100, N = 10, one flipped readout weight, paired t-tests); the paper reports a smaller
effect and uses 40 seeds; the default sweeps training-set size and init scale only (as in Fig. 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Experiment, register
from .curl_fig5 import QUICK, CurlSpeedConfig, plot, run


@dataclass
class CurlReluConfig(CurlSpeedConfig):
    activation: str = "relu"
    n_trains: tuple[int, ...] = (250, 500, 1000, 1400, 2000)
    init_scales: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    teacher_scales: tuple[float, ...] = ()
    flip_fractions: tuple[float, ...] = ()
    base_n_train: int = 1400
    seeds: int = 40


register(Experiment("curl-fig10", "ReLU M=100, N=10: curl descent (one flipped readout weight) vs GD, convergence "
                    "speed against training-set size and init scale (paired t-tests)",
                    CurlReluConfig, run, plot, paper="curl", quick={**QUICK, "n_trains": (1400,),
                                                                           "seeds": 8}))
