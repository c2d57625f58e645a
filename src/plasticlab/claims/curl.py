"""Claims of the curl-descent paper (Ninou, Kadmon & Cayco-Gajic; papers/curl-descent.txt), tag "curl".

Each claim reads measurements that one curl experiment returns (``results["measurements"]``; the names are
documented where they are made: ``curl.fig2.measurements``, ``curl.common.phase_measurements``,
``curl.speed.measurement_names``, ``curl.fig1.measurements``, ``curl.ei.measurements``).

Confidence levels: the paper's paired t-tests use p < .01 (tanh, Fig. 5) and p < 0.05 (ReLU, Fig. 10), so the
speed claims are Greater at level 0.99 / 0.95, paired by seed (GD and curl share teacher, data and initial
student). The paper gives no spreads; every Numeric claim says where its tolerance comes from.
"""

from __future__ import annotations

from . import Bound, Greater, Numeric, register

PAPER = "curl"


def _fig3_resolution_tolerance() -> float:
    """Share of the default curl-fig3 grid's cells that lie next to the theory boundary: in every column (one c)
    that the boundary crosses, one cell sits within one grid step of it, so its side is below the resolution at
    which Fig. 3a draws the boundary over the cells."""
    from ..analysis.curl_theory import boundary
    from ..experiments.curl.phase import CurlPhaseConfig

    cfg = CurlPhaseConfig()
    crossed = 0
    for c in cfg.cs:
        b = boundary(float(c), "hidden")
        sides = {a == 0 or a < b for a in cfg.alphas}
        crossed += len(sides) == 2
    return crossed / (len(cfg.cs) * len(cfg.alphas))


def _numeric(name: str, experiment: str, where: str, statement: str, measure: str, value: float, tolerance: float,
             reason: str) -> Numeric:
    """A number of this paper, which gives no spreads: agrees within ``tolerance`` (``reason`` says why that bound)."""
    return Numeric(f"{PAPER}.{name}", PAPER, experiment, where, statement, measure=measure, value=value,
                   tolerance=tolerance, tolerance_reason=reason)


def _greater(name: str, experiment: str, where: str, statement: str, a: str, b: str, paired: bool = True,
             level: float = 0.95) -> Greater:
    """"A above B" of this paper (paired by seed unless ``paired=False``)."""
    return Greater(f"{PAPER}.{name}", PAPER, experiment, where, statement, a=a, b=b, paired=paired, level=level)


def _beyond_boundary(name: str, experiment: str, where: str, statement: str, layer: str, quantity: str) -> Greater:
    """``quantity`` is larger beyond the stability boundary: per seed, its median log10 over the grid's cells on the
    unstable side vs the stable side (flips in ``layer``)."""
    return _greater(name, experiment, where, statement, a=f"{layer}/unstable/median_log10_{quantity}",
                    b=f"{layer}/stable/median_log10_{quantity}")


def _one_digit(value: str) -> str:
    """The tolerance reason of a value the paper states to one significant digit."""
    return f"the paper states {value} to one significant digit (+-0.05)"


# ----------------------------------------------------------------------------- Fig. 2 (curl-fig2, theory)

register(
    _numeric("fig2.hidden_boundary_c", "curl-fig2", "Sec. 4.2, Fig. 2 top",
             "hidden-layer curl flow destabilizes the solution manifold once the compression ratio exceeds c ~ 0.3 "
             "(measured: c where alpha*_h(c) = 0.5, the middle of the transition)",
             "hidden/c_at_alpha_star=0.5", 0.3, 0.05, _one_digit("c ~ 0.3")),
    _greater("fig2.alpha_dependence_weak_hidden_strong_readout", "curl-fig2", "Sec. 4.2, Fig. 2",
             "the critical c depends only weakly on alpha_h; in contrast, for the readout layer stability depends "
             "strongly on the magnitude of the curl terms (measured: shift of the boundary in log10 c per 0.05 of "
             "alpha, readout vs hidden, at alpha = 0.05 ... 0.40)",
             a="readout/dlog10c_per_0.05_alpha", b="hidden/dlog10c_per_0.05_alpha"),
    _numeric("fig2.readout_at_most_half", "curl-fig2", "Sec. 4.2, Fig. 2 bottom",
             "at most half of the readout layer can obey rule-flipped plasticity before stability is lost "
             "(measured: alpha*_r as c -> 0, at c = 1e-4)",
             "readout/alpha_star_c->0", 0.5, 0.05, _one_digit("'half' (0.5)")),
    *[_greater(f"fig2.expansive_more_robust_{layer}", "curl-fig2", f"Sec. 4.2, Fig. 2 {side}",
               f"expansive networks (c < 1) are inherently more robust to curl terms: {layer} layer (alpha*_{layer[0]} "
               "over the grid's c < 1 vs c > 1)",
               a=f"{layer}/alpha_star_c<1", b=f"{layer}/alpha_star_c>1", paired=False)
      for layer, side in (("hidden", "top"), ("readout", "bottom"))],
)

# ----------------------------------------------------------------------------- Fig. 3 (curl-fig3, alpha_h grid)

FIG3_TOLERANCE = _fig3_resolution_tolerance()

register(
    _numeric("fig3a.boundary_separates_learning", "curl-fig3", "Fig. 3a",
             "the analytical stability boundary separates low test error (below) from failed learning (above): "
             "share of grid cells, per seed, learned (relative test error < 1e-3) iff on the stable side",
             "hidden/agreement_with_theory", 1.0, round(FIG3_TOLERANCE, 3),
             f"plot resolution: one cell per grid column the boundary crosses lies within one grid step of it "
             f"({FIG3_TOLERANCE:.0%} of the default 10 x 10 grid)"),
    _beyond_boundary("fig3a.error_above_vs_below", "curl-fig3", "Fig. 3a, App. C",
                     "hidden-layer curl terms beyond the stability boundary destroy performance, below it the error "
                     "goes to 0 (per seed: median log10 test error over unstable vs stable cells)", "hidden",
                     "test_error"),
    _beyond_boundary("fig3b.q_above_vs_below", "curl-fig3", "Fig. 3b, eq. 15",
                     "the order parameter q (weight fluctuations) jumps at the analytical transition: larger beyond "
                     "it (per seed: median log10 q over unstable vs stable cells)", "hidden", "q"),
    _greater("fig3cd.chaotic_weights", "curl-fig3", "Fig. 3c-d (c = 0.8, alpha_h = 0.6)",
             "in the unstable regime (c = 0.8, alpha_h = 0.6) the weights fluctuate chaotically instead of "
             "converging (per seed: log10 q at alpha_h = 0.6 vs gradient descent, alpha_h = 0, same c)",
             a="hidden/c=0.8,alpha=0.6/log10_q", b="hidden/c=0.8,alpha=0/log10_q"),
)

# ----------------------------------------------------------------------------- Fig. 4 (curl-fig4, alpha_r grid)

register(
    _beyond_boundary("fig4b.manifold_unstable_beyond_boundary", "curl-fig4b", "Fig. 4b",
                     "started next to the solution manifold, the error rises beyond the boundary (the manifold is "
                     "unstable) but not below it (per seed: median log10 peak test error over unstable vs stable "
                     "cells)", "readout", "peak_test_error"),
    _greater("fig4b.spike_then_redescend", "curl-fig4b", "Fig. 4b inset, sec. 5",
             "beyond the boundary the error spikes before going down to another stable minimum (per seed: median "
             "log10 peak vs median log10 final test error over the unstable cells)",
             a="readout/unstable/median_log10_peak_test_error", b="readout/unstable/median_log10_test_error"),
    _numeric("fig4a.random_init_error_to_zero_below", "curl-fig4", "Fig. 4a",
             "below the alpha_r boundary the test error goes to 0 from a random initialisation (share of stable "
             "cells learned, relative test error < 1e-3)",
             "readout/random_init/stable/fraction_learned", 1.0, 0.1,
             "plot resolution: cells within one grid step of the boundary (one per column of a 10 x 10 grid)"),
    _greater("fig4a.random_init_low_error_beyond", "curl-fig4", "Fig. 4a",
             "readout curl terms result in low test error even when the solution manifold is unstable (from a "
             "random initialisation: median log10 test error, initial vs final, unstable cells)",
             a="readout/random_init/unstable/median_log10_initial_error",
             b="readout/random_init/unstable/median_log10_test_error"),
)

# ----------------------------------------------------------------------------- Supp. C: tanh (curl-fig6, -fig8, -fig9)

_TANH_SIMILAR = "the qualitative behavior of the tanh networks is similar to that of the linear ones"
_SHIFT = ("the phase diagrams show similar trends although the boundaries are shifted to lower c values (per seed: "
          "the share of cells on the linear theory's stable side that fail to learn exceeds the share on its unstable "
          "side that learn)")

register(
    _beyond_boundary("fig6.error_above_vs_below", "curl-fig6", "Supp. C, Fig. 6a",
                     f"{_TANH_SIMILAR}: hidden-layer flips beyond the (linear) boundary destroy performance (per "
                     "seed: median log10 test error over unstable vs stable cells)", "hidden", "test_error"),
    _greater("fig6.boundary_shifted_to_lower_c", "curl-fig6", "Supp. C, Fig. 6", _SHIFT,
             a="hidden/stable/fraction_unlearned", b="hidden/unstable/fraction_learned"),
    _greater("fig7.chaotic_weights", "curl-fig6", "Supp. C, Fig. 7 (c = 0.8, alpha_h = 0.6)",
             "\"we recover the transition to chaos\": at c = 0.8, alpha_h = 0.6 the weights keep fluctuating (per "
             "seed: log10 q at alpha_h = 0.6 vs gradient descent, alpha_h = 0, same c)",
             a="hidden/c=0.8,alpha=0.6/log10_q", b="hidden/c=0.8,alpha=0/log10_q"),
    _greater("fig8a.random_init_low_error_beyond", "curl-fig8", "Supp. C, Fig. 8a",
             f"{_TANH_SIMILAR}: readout curl terms give low test error from a random initialisation even beyond the "
             "boundary (median log10 test error, initial vs final, unstable cells)",
             a="readout/random_init/unstable/median_log10_initial_error",
             b="readout/random_init/unstable/median_log10_test_error"),
    _beyond_boundary("fig8b.manifold_unstable_beyond_boundary", "curl-fig9", "Supp. C, Fig. 8b",
                     "started next to the solution manifold (1e-15), the peak error of tanh networks rises beyond the "
                     "boundary but not below it (per seed: median log10 peak test error, unstable vs stable cells)",
                     "readout", "peak_test_error"),
    _greater("fig9.spike_then_redescend", "curl-fig9", "Supp. C, Fig. 9",
             "\"we recover ... the ascend then re-descend mechanism\" in tanh networks (per seed: median log10 peak vs "
             "median log10 final test error over the unstable cells)",
             a="readout/unstable/median_log10_peak_test_error", b="readout/unstable/median_log10_test_error"),
)

# ----------------------------------------------------------------------------- Fig. 5 / Fig. 10 (speed)


def _speed(name: str, experiment: str, where: str, statement: str, activation: str, n_train: int, init: float,
           teacher: float, flipped: int, level: float) -> Greater:
    p = f"{activation},M=100,N=10,n_train={n_train},init={init:g},teacher={teacher:g}"
    return _greater(name, experiment, where, statement + f" (final log10 test error, GD vs curl, paired by seed; "
                    f"N_train = {n_train}, init scale {init:g}, teacher scale {teacher:g}, {flipped} flipped readout "
                    f"weight{'s' if flipped > 1 else ''})",
                    a=f"{p}/gd/log10_test_error", b=f"{p}/curl_flipped={flipped}/log10_test_error", level=level)


_TANH = "tanh: curl descent converges faster than gradient descent"
register(
    _speed("fig5b.faster_n2000", "curl-fig5", "Fig. 5b", _TANH + " with a single flipped readout weight",
           "tanh", 2000, 2.0, 1.0, 1, 0.99),
    *[_speed(f"fig5c.faster_n{n}", "curl-fig5", "Fig. 5c", _TANH + " (p < .01 for N_train >= 500)",
             "tanh", n, 2.0, 1.0, 1, 0.99) for n in (500, 1000)],
    *[_speed(f"fig5d.faster_init{i:g}", "curl-fig5", "Fig. 5d (N_train = 10000; the paper does not list "
             "its init scales)", _TANH + ", robust to a broad range of student init scales", "tanh", 10000, i,
             1.0, 1, 0.99) for i in (1.0, 2.0, 4.0)],
    *[_speed(f"fig5e.faster_teacher{t:g}", "curl-fig5", "Fig. 5e", _TANH + " below the critical teacher "
             "scale (p < .01; teacher scale 1 is the setting of Fig. 5b)", "tanh", 2000, 2.0, t, 1, 0.99)
      for t in (0.5, 1.0)],
    *[_speed(f"fig5f.faster_flipped{k}", "curl-fig5", "Fig. 5f", _TANH + " for <= 50% rule-flipped "
             "readout weights (p < .01)", "tanh", 2000, 2.0, 1.0, k, 0.99) for k in (2, 3, 5)],
)

_RELU = "ReLU: curl descent converges faster than gradient descent"
register(
    _speed("fig10a.faster_n1400", "curl-fig10", "Fig. 10a (40 seeds)", _RELU, "relu", 1400, 2.0, 1.0, 1, 0.95),
    *[_speed(f"fig10b.faster_n{n}", "curl-fig10", "Fig. 10b", _RELU + " (p < 0.05 for N_train >= 1000)",
             "relu", n, 2.0, 1.0, 1, 0.95) for n in (1000, 2000)],
    *[_speed(f"fig10c.faster_init{i:g}", "curl-fig10", "Fig. 10c (N_train = 10000)",
             _RELU + " (p < 0.05 for init scales 3, 4, 6, 7 and 8)", "relu", 10000, i, 1.0, 1, 0.95)
      for i in (3.0, 4.0, 6.0, 7.0, 8.0)],
)

# ----------------------------------------------------------------------------- Fig. 1 (curl-fig1, toy model)

_EXACT = ("eq. 9 gives the eigenvalues exactly; 1e-9 is far above float64 eigensolver round-off and far below any "
          "error in the Jacobian")
register(
    _numeric("fig1.origin_centre_real", "curl-fig1", "Sec. 4.1, eq. 9",
             "the origin, a saddle under gradient flow, is converted to a center with purely imaginary "
             "eigenvalues +-i s (measured: |Re lambda| / s)", "origin/abs_real_eigenvalue/s", 0.0, 1e-9, _EXACT),
    _numeric("fig1.origin_centre_imag", "curl-fig1", "Sec. 4.1, eq. 9",
             "the origin's eigenvalues under curl flow are +-i s (measured: |Im lambda| / s)",
             "origin/abs_imag_eigenvalue/s", 1.0, 1e-9, _EXACT),
    _numeric("fig1.manifold_lambda2", "curl-fig1", "Sec. 4.1, eq. 9",
             "on the solution manifold the non-zero eigenvalue is w1^2 - w2^2: half of the manifold loses "
             "stability (measured: relative error of lambda_2 at three points of w1 w2 = s)",
             "manifold/lambda2_rel_error", 0.0, 1e-9, _EXACT),
    _greater("fig1.faster_near_saddle", "curl-fig1", "Sec. 4.1, Fig. 1a,c",
             "curl flow can converge faster than gradient flow when the weights would otherwise be stuck along "
             "the stable manifold of the saddle at the origin (log10 time to loss < tol, GD vs curl, paired by "
             "init, inits with w1 w2 < 0 outside w1^2 + w2^2 = s)",
             a="near_saddle/gd/log10_time_to_tol", b="near_saddle/curl/log10_time_to_tol"),
    _greater("fig1.small_inits_do_not_converge", "curl-fig1", "Sec. 4.1, Fig. 1a",
             "small-amplitude initializations (inside w1^2 + w2^2 = s) no longer converge under curl flow (log10 "
             "final loss, curl vs GD, paired by init)",
             a="small_init/curl/log10_final_loss", b="small_init/gd/log10_final_loss"),
)

# ----------------------------------------------------------------------------- sec. 2, app. A (curl-ei)

_ZERO = ("a gradient flow has a symmetric Jacobian, so the paper's antisymmetric share is exactly 0; 1e-6 bounds "
         "the round-off of the float32 autodiff Jacobian")
register(
    _numeric("ei.all_excitatory_gradient", "curl-ei", "Sec. 2, eq. 2",
             "with only excitatory neurons (D = I) the Hebbian learning flow is a gradient flow "
             "(antisymmetric share of its Jacobian on symmetric W)", "ei/all_excitatory/curl_share", 0.0, 1e-6, _ZERO),
    _greater("ei.inhibitory_with_input_curl", "curl-ei", "Sec. 2, eq. 2, App. A.3",
             "with inhibitory neurons that receive external input the two intermediate terms cannot be written "
             "as gradients (smallest curl share over the inhibitory fractions > 0 vs all excitatory, paired by "
             "network)",
             a="ei/inputs=all/min_curl_share", b="ei/all_excitatory/curl_share"),
    _numeric("ei.no_input_to_inhibitory_gradient", "curl-ei", "Sec. 2, App. A.3",
             "the symmetry (gradient flow) holds when the inhibitory neurons receive no external input (largest "
             "curl share over the inhibitory fractions > 0)", "ei/inputs=excitatory_only/max_curl_share", 0.0, 1e-6,
             _ZERO),
    _greater("ei.mixed_hebbian_curl", "curl-ei", "App. A.2, eq. 24",
             "mixed Hebbian/anti-Hebbian networks cannot be written as gradient descent (smallest curl share over "
             "the anti-Hebbian fractions > 0 vs purely Hebbian, paired by network)",
             a="hebb/mixed/min_curl_share", b="hebb/all_hebbian/curl_share"),
    _numeric("ei.purely_hebbian_gradient", "curl-ei", "App. A.2.1, eq. 32",
             "for symmetric W a purely Hebbian network is a gradient flow", "hebb/all_hebbian/curl_share", 0.0, 1e-6,
             _ZERO),
    Bound(f"{PAPER}.ei.exact_flow_curl_vanishes_with_W", PAPER, "curl-ei", "Sec. 2, App. A.3",
          "the symmetry without input to inhibitory neurons is the first-order flow's: the exact steady-state "
          "flow's curl share is a higher-order term that vanishes with the weights (log-log slope of the share "
          "against the weight scale, per network: 0 if a curl were present at first order, >= 1 if the first "
          "order is symmetric; bound at the midpoint 0.5)",
          measure="ei/inputs=excitatory_only/exact_curl_order", bound=0.5, side="above"),
)
