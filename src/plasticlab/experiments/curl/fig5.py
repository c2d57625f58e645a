"""curl-fig5: convergence speed of curl descent vs gradient descent in tanh networks (Fig. 5).

Student and teacher y = W2 tanh(W1 x) with M = 100 inputs, N = 10 hidden neurons, scalar output;
curl descent flips the rule of one readout weight (D2 = diag(-1, 1, ..., 1)), i.e. one of 1010 parameters.
Each seed owns teacher, data and the initial student, shared by GD and curl (paired design). Speed is
measured by log10 test error after ``epochs`` full-batch epochs (lower = faster convergence) and the first
logged epoch with test error below ``threshold``; curl vs GD by ``scipy.stats.ttest_rel`` over seeds.
Sweeps (sweepable tuples): training-set size, student init scale, teacher scale, fraction of flipped readouts.
"""

from __future__ import annotations

from ..base import Experiment, register
from .speed import CurlSpeedConfig, plot, run_speed


# --quick: the base point (N_train 2000, init 2, teacher 1) is shared by the sweeps that contain the base value
# (the init sweep runs at N_train 2000, not the paper's 10000, so the Fig. 5d claims are not measured), so each of
# Fig. 5d-e costs one more point; Fig. 5f is one batch (GD, 20% and 50% flipped).
QUICK = {"n_trains": (2000,), "init_scales": (2.0, 4.0), "teacher_scales": (1.0, 4.0), "flip_fractions": (0.2, 0.5),
         "seeds": 6, "epochs": 300, "init_n_train": 2000}


register(Experiment("curl-fig5", "tanh M=100, N=10: curl descent with one flipped readout weight vs GD; convergence "
                    "speed against training-set size, init scale, teacher scale, flipped fraction (paired t-tests)",
                    CurlSpeedConfig, run_speed, plot, paper="curl", quick=QUICK))
