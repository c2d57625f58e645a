"""Claims of the Hebbian-alignment paper (tag ``hebb``: "Hebbian dynamics of regularized learning").

Paper values are declared here once; the hebb-* experiments read the constants (Table 1, the default grids)
from this module and write the measurements the claims name (helpers ``t1_*``, ``cell``, ...).

Conventions:

* Table 1 prints mean +- SD over 10 seeds to two decimals. An SD printed as 0.00 is below 0.005: it is taken
  as 0.005 (half the last printed digit), the smallest spread the printed table allows.
* "Rises with gamma" over Table 1's columns (gamma 0, 5e-5, 5e-4, 5e-3): a :class:`Trend` on the column index
  (0, 1, 2, 3), a monotone relabelling of gamma that the zero column allows (log gamma does not).
* Gamma x sigma grids (Figs. 4-5): the claims name the cells of the default grid of hebb-fig4 (``FIG4_GAMMAS``,
  ``FIG4_SIGMAS``); a run on another grid leaves the per-row claims "not measured" (the boundary exponent and
  the loss-vs-alignment claim do not depend on the grid).
"""

from __future__ import annotations

from . import Bound, Depends, Exponent, Greater, Numeric, Trend, register

PAPER = "hebb"
SD_FLOOR = 0.005  # half the last printed digit of Table 1
SD_FLOOR_REASON = "an SD printed as 0.00 is taken as 0.005, half the last printed digit"

# ----------------------------------------------------------------------------- Table 1

TABLE1_GAMMAS = (0.0, 5e-5, 5e-4, 5e-3)  # the columns of Table 1
# (mean, sd; None = "-": the weights collapsed to zero), 2nd layer (1st for DFA), 10 seeds
PAPER_TABLE1 = {
    ("mlp", "adam"): [(-0.02, 0.00), (0.10, 0.00), (0.66, 0.01), None],
    ("mlp", "sgd"): [(-0.10, 0.01), (-0.06, 0.01), (0.17, 0.01), (0.59, 0.01)],
    ("mlp", "dfa"): [(0.45, 0.05), (0.45, 0.04), (0.68, 0.05), (0.87, 0.00)],
    ("mlp", "randomnn"): [(0.00, 0.00), (0.00, 0.00), (0.05, 0.00), (0.50, 0.00)],
    ("transformer", "adam"): [(-0.02, 0.02), (0.50, 0.24), (0.99, 0.02), None],
    ("transformer", "sgd"): [(0.00, 0.01), (0.04, 0.01), (0.47, 0.06), (0.88, 0.03)],
    ("transformer", "dfa"): [(0.08, 0.03), (0.07, 0.02), (0.11, 0.02), (0.12, 0.02)],
    ("transformer", "randomnn"): [(0.00, 0.00), (0.00, 0.00), (0.01, 0.00), (0.09, 0.01)],
}
MODEL_NAMES = {"mlp": "Regression MLP", "transformer": "Transformer"}
RULE_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "dfa": "DFA", "randomnn": "RandomNN"}
COLLAPSE_RATIO = 0.02  # a layer under 2% of its early weight norm counts as collapsed (docs/hebb.md)


def t1_alignment(model: str, rule: str, gamma: float) -> str:
    """Per-seed final alignment of Table 1's layer (None for a seed whose weights collapsed)."""
    return f"{model}/{rule}/gamma={gamma:g}/alignment"


def t1_weight_ratio(model: str, rule: str, gamma: float) -> str:
    """Per-seed smallest final / early Frobenius norm over the MLP layers (0: the weights collapsed to zero)."""
    return f"{model}/{rule}/gamma={gamma:g}/weight_norm_ratio"


def t1_weight_norm(model: str, rule: str, gamma: float) -> str:
    """Per-seed smallest final Frobenius norm over the MLP layers."""
    return f"{model}/{rule}/gamma={gamma:g}/smallest_weight_norm"


def t1_stationary_epoch(model: str, rule: str, gamma: float) -> str:
    """Per-seed epoch at which the run first met the convergence criterion (None: not within the cap); read
    by no claim, recorded so the ledger says which numbers are at convergence."""
    return f"{model}/{rule}/gamma={gamma:g}/stationary_epoch"


RANDOMNN_TARGET_NORM = 100.0  # Table 1 caption, appendix C.6
RANDOMNN_NORM_TOL = 1.0


def _randomnn_norm() -> list:
    return [Numeric(
        id=f"hebb.c6.{model}.randomnn.target_norm", paper=PAPER, experiment="hebb-table1",
        where=f"Appendix C.6 and Table 1 caption ({MODEL_NAMES[model]}, RandomNN, gamma = 0)",
        statement="without any regularization, the model's weights will converge to have the target norm "
                  f"(target weight L2 norm {RANDOMNN_TARGET_NORM:g}; measured: the smallest final Frobenius "
                  "norm over the MLP layers)",
        measure=t1_weight_norm(model, "randomnn", 0.0), value=RANDOMNN_TARGET_NORM, tolerance=RANDOMNN_NORM_TOL,
        tolerance_reason="at the target the sign rule s_dir flips every step or few, so the norm oscillates "
                         "within a few steps of lr * clip = 0.01 of it; 1% allows that and no drift")
        for model in MODEL_NAMES]


def _table1() -> list:
    out = []
    for (model, rule), cells in PAPER_TABLE1.items():
        where = f"Table 1, {MODEL_NAMES[model]}, {RULE_NAMES[rule]}"
        layer = 1 if rule == "dfa" else 2
        for g, ref in zip(TABLE1_GAMMAS, cells):
            if ref is None:
                continue
            mean, sd = ref
            out.append(Numeric(
                id=f"hebb.table1.{model}.{rule}.gamma={g:g}", paper=PAPER, experiment="hebb-table1",
                where=f"{where}, gamma = {g:g}" + (f" ({SD_FLOOR_REASON})" if sd == 0 else ""),
                statement=f"Hebbian alignment of the layer-{layer} learning signal at convergence: {mean:.2f} +- "
                          f"{sd:.2f} (mean +- SD, n = 10 seeds)",
                measure=t1_alignment(model, rule, g), value=mean, spread=sd if sd > 0 else SD_FLOOR))
        gs = [g for g, ref in zip(TABLE1_GAMMAS, cells) if ref is not None]
        out.append(Trend(
            id=f"hebb.table1.{model}.{rule}.rises_with_gamma", paper=PAPER, experiment="hebb-table1",
            where=f"{where}, gamma {' / '.join(f'{g:g}' for g in gs)} (x = column index)",
            statement="For all models, optimizers and learning rules, Hebbian alignment rises with increasing "
                      "weight-decay gamma" + (" (over the columns that did not collapse)" if len(gs) < 4 else ""),
            measures=tuple(t1_alignment(model, rule, g) for g in gs), xs=tuple(float(i) for i in range(len(gs))),
            direction="increasing"))
        for g, ref in zip(TABLE1_GAMMAS, cells):
            if ref is None:
                out.append(Numeric(
                    id=f"hebb.table1.{model}.{rule}.gamma={g:g}.collapse", paper=PAPER, experiment="hebb-table1",
                    where=f"{where}, gamma = {g:g} ('-')",
                    statement="Table elements with - indicate the model's weights collapsed to zero "
                              "(smallest final / early layer norm = 0)",
                    measure=t1_weight_ratio(model, rule, g), value=0.0, tolerance=COLLAPSE_RATIO,
                    tolerance_reason="the paper gives no number, only 'collapsed to zero'; a layer under 2% of its "
                                     "early norm is the definition of 'collapsed' the experiments used before "
                                     "these claims (docs/hebb.md)"))
    return out


# ----------------------------------------------------------------------------- Figs. 4-5 (gamma x sigma grid)

# The paper prints no grid values. Each grid's gamma range was fixed by an exploration run of its rule that looked
# only at the noise-free validation loss (sigma 1e-4, one seed, until stationary; docs/hebb.md "The grids and the
# teacher"): the largest gamma is the largest of the series whose net still learns (validation loss below half the
# zero predictor's); the sigmas were kept from the grids fixed before with the Xavier teacher.
FIG4_GAMMAS = (1.25e-4, 2.5e-4, 5e-4, 1e-3, 2e-3)
FIG4_SIGMAS = (0.01, 0.0145, 0.021, 0.0305, 0.044, 0.064, 0.093, 0.135, 0.2)
PAPER_EXPONENT = 2.0  # eq. 18: boundary gamma ~ sigma^2
BOUNDARY_SIGMA = "boundary/sigma_star"  # per (seed, learned gamma row): sigma where the alignment turns negative
BOUNDARY_GAMMA = "boundary/gamma"  # the matching gamma
BEST_FRACTION = 0.2  # Fig. 5: "best performance" = the lowest-loss fifth of the cells
FIG5_BEST = "cells/abs_alignment/best_loss"  # |alignment| of the cells (seed x gamma x sigma) with the lowest loss
FIG5_REST = "cells/abs_alignment/rest"  # |alignment| of all other cells


def grid_setting(rule: str, noise: str) -> str:
    """Prefix of a gamma x sigma grid's measurement names: "" in Fig. 4-5's setting (SGD, weight noise), else
    "<rule>/<noise>-noise/" (Fig. 13: Adam; Fig. 14: input noise), so that a grid run in another setting never
    feeds the claims of Figs. 4-5."""
    return "" if (rule, noise) == ("sgd", "weight") else f"{rule}/{noise}-noise/"


def cell(gamma: float, sigma: float, what: str = "alignment") -> str:
    """Per-seed value of one gamma x sigma cell (``what``: alignment or val_loss)."""
    return f"gamma={gamma:g}/sigma={sigma:g}/{what}"


def fig5_gamma_loss(gamma: float) -> str:
    """Validation loss of every cell of row gamma (all sigmas and seeds)."""
    return f"gamma={gamma:g}/val_loss"


def fig5_sigma_loss(sigma: float) -> str:
    """Validation loss of every cell of column sigma (all gammas and seeds)."""
    return f"sigma={sigma:g}/val_loss"


def _fig4() -> list:
    out = [Exponent(
        id="hebb.fig4.boundary_exponent", paper=PAPER, experiment="hebb-fig4",
        where="Fig. 4 left, eq. 18 (SGD, SRE, weight noise)",
        statement="one expects a phase transition boundary at gamma ~ sigma^2 ... there is a clear quadratic curve "
                  "at zero-alignment (exponent 2 from eq. 18; the paper fits none, so no spread)",
        x=BOUNDARY_SIGMA, y=BOUNDARY_GAMMA, exponent=PAPER_EXPONENT, spread=0.0)]
    for g in FIG4_GAMMAS:
        out.append(Trend(
            id=f"hebb.fig4.falls_with_noise.gamma={g:g}", paper=PAPER, experiment="hebb-fig4",
            where=f"Fig. 4 right (Varying Noise), gamma = {g:g}",
            statement="As the noise increases, the Hebbian alignment decreases",
            measures=tuple(cell(g, s) for s in FIG4_SIGMAS), xs=FIG4_SIGMAS, direction="decreasing", log_x=True))
    for s in FIG4_SIGMAS:
        out.append(Trend(
            id=f"hebb.fig4.rises_with_gamma.sigma={s:g}", paper=PAPER, experiment="hebb-fig4",
            where=f"Fig. 4 right (Varying Weight Decay), sigma = {s:g}",
            statement="higher weight decays lead to higher Hebbian alignment (eq. 18: -sigma^2 c0 + gamma c1)",
            measures=tuple(cell(g, s) for g in FIG4_GAMMAS), xs=FIG4_GAMMAS, direction="increasing", log_x=True))
    for g in FIG4_GAMMAS:
        out.append(Bound(
            id=f"hebb.fig4.anti_hebbian_at_large_noise.gamma={g:g}", paper=PAPER, experiment="hebb-fig4",
            where=f"Fig. 4, eq. 17, gamma = {g:g}, sigma = {FIG4_SIGMAS[-1]:g}",
            statement="large noise makes the learning signal anti-Hebbian (alignment < 0 at the largest sigma)",
            measure=cell(g, FIG4_SIGMAS[-1]), bound=0.0, side="below"))
    return out


# Figs. 13-14: the grid of Fig. 4 with Adam, or with input noise. The paper prints neither grid ("a different
# weight decay and standard deviation range"); ours are half decades (Adam) or decades (input noise) of gamma,
# topped as Fig. 4's above, and octaves of sigma (docs/hebb.md).
FIG13_GAMMAS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
FIG13_SIGMAS = (0.001, 0.003, 0.01, 0.03, 0.1)
FIG14_GAMMAS = (1e-6, 1e-5, 1e-4, 1e-3)
FIG14_SIGMAS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def _phase_slices(fig: str, experiment: str, rule: str, noise: str, gammas, sigmas, setting: str) -> list:
    """Fig. 4's slice claims in another setting: alignment falls with the noise in every gamma row, rises with
    gamma in every sigma column, and is anti-Hebbian (< 0) at the largest noise and the smallest gamma."""
    pre = grid_setting(rule, noise)
    out = [Trend(
        id=f"hebb.{fig}.falls_with_noise.gamma={g:g}", paper=PAPER, experiment=experiment,
        where=f"{setting}, gamma = {g:g}", statement="as noise increases, alignment of the learning signal decreases",
        measures=tuple(pre + cell(g, s) for s in sigmas), xs=tuple(sigmas), direction="decreasing", log_x=True)
        for g in gammas]
    out += [Trend(
        id=f"hebb.{fig}.rises_with_gamma.sigma={s:g}", paper=PAPER, experiment=experiment,
        where=f"{setting}, sigma = {s:g}", statement="as weight decay increases, so too does alignment",
        measures=tuple(pre + cell(g, s) for g in gammas), xs=tuple(gammas), direction="increasing", log_x=True)
        for s in sigmas]
    return out


def _fig13() -> list:
    return _phase_slices("fig13", "hebb-fig13", "adam", "weight", FIG13_GAMMAS, FIG13_SIGMAS,
                         "Fig. 13 (Adam, SRE, weight noise)")


def _fig14() -> list:
    g, s = FIG14_GAMMAS[0], FIG14_SIGMAS[-1]
    return [*_phase_slices("fig14", "hebb-fig14", "sgd", "input", FIG14_GAMMAS, FIG14_SIGMAS,
                           "Fig. 14 (SGD, SRE, input noise)"),
            Bound(id="hebb.fig14.anti_hebbian_at_large_input_noise", paper=PAPER, experiment="hebb-fig14",
                  where=f"Fig. 14, gamma = {g:g}, input noise sigma = {s:g}",
                  statement="Additive noise to the input can also lead to anti-Hebbian learning (alignment < 0 at the "
                            "largest input noise and the smallest gamma)",
                  measure=grid_setting("sgd", "input") + cell(g, s), bound=0.0, side="below")]


def _fig5() -> list:
    return [
        Greater(
            id="hebb.fig5.best_loss_near_zero_alignment", paper=PAPER, experiment="hebb-fig5",
            where="Fig. 5 right (cells: seed x gamma x sigma; best = lowest-loss fifth)",
            statement="Best performance of the model is achieved when it is not Hebbian or anti-Hebbian on "
                      "average: |alignment| of the best cells below that of the others",
            a=FIG5_REST, b=FIG5_BEST, paired=False),
        Trend(
            id="hebb.fig5.loss_falls_with_smaller_gamma", paper=PAPER, experiment="hebb-fig5",
            where="Fig. 5 left (rows pooled over sigma)",
            statement="The validation loss reduces as both weight decay and noise get smaller (weight decay)",
            measures=tuple(fig5_gamma_loss(g) for g in FIG4_GAMMAS), xs=FIG4_GAMMAS, direction="increasing",
            log_x=True),
        Trend(
            id="hebb.fig5.loss_falls_with_smaller_noise", paper=PAPER, experiment="hebb-fig5",
            where="Fig. 5 left (columns pooled over gamma)",
            statement="The validation loss reduces as both weight decay and noise get smaller (noise)",
            measures=tuple(fig5_sigma_loss(s) for s in FIG4_SIGMAS), xs=FIG4_SIGMAS, direction="increasing",
            log_x=True),
    ]


# ----------------------------------------------------------------------------- Appendix C.5 (hebb-theory)

THEORY_EQ26 = "eq26/worst_rel_gap"  # max over (gamma, seed, layer) of |E[dl/dh_b . h_b] / (-gamma ||W*||^2) - 1|
THEORY_LEMMA1 = "lemma1/worst_rel_gap"  # max over (gamma, seed, layer) of |C(W*) / (gamma c_a ||W*||^2) - 1|
THEORY_EQ26_RATIOS = "eq26/lhs_over_rhs"  # the per-case ratios (for the record; the claims read the worst gap)
THEORY_LEMMA1_RATIOS = "lemma1/C_over_closed_form"
THEORY_MIN_C = "lemma1/min_C"  # the smallest C(W*) over (gamma, seed, layer): "> 0 at every stationary point"


def _theory() -> list:
    def zero_gap(name: str, where: str, identity: str, measure: str, tolerance: float, reason: str) -> Numeric:
        """``identity`` holds at every stationary point: its worst relative gap over gammas, seeds and layers is 0."""
        return Numeric(id=f"hebb.theory.{name}", paper=PAPER, experiment="hebb-theory", where=where,
                       statement=f"{identity} (worst relative gap over gammas, seeds and layers: 0)", measure=measure,
                       value=0.0, tolerance=tolerance, tolerance_reason=reason)

    return [
        zero_gap("eq26", "Appendix C.5, eq. 26", "At a stationary point E_x[grad_{h_b} l . h_b] = -gamma ||W*||_F^2",
                 THEORY_EQ26, 0.01, "an exact identity at a stationary point: only the optimiser's residual penalised "
                                    "gradient (required below 1e-4) separates the sides, which moves the ratio by well "
                                    "under 1%"),
        zero_gap("lemma1", "Appendix C.5, Lemma 1",
                 "Under Assumptions 1-2, C(W*) = gamma c_a ||W*||_F^2 at a stationary point", THEORY_LEMMA1, 0.1,
                 "exact only under Assumption 2 (||h_a||^2 = c_a for every input), which the SRE meets only "
                 "approximately (Gaussian inputs: ||x||^2 varies by sqrt(2/d) = 25% at d = 32); the paper states no "
                 "size for the gap, 10% is the bound the experiment used before these claims"),
        Bound(
            id="hebb.theory.c_positive", paper=PAPER, experiment="hebb-theory", where="Appendix C.5, Lemma 1",
            statement="C(W*) > 0 at every stationary point: the learning signal is Hebbian-aligned (smallest C over "
                      "gammas, seeds and layers)",
            measure=THEORY_MIN_C, bound=0.0, side="above"),
    ]


# ----------------------------------------------------------------------------- Fig. 3 (SCE, activations, depth)

FIG3_GAMMAS = (0.0, 5e-4, 5e-3, 5e-2)  # hebb-fig3's default grid (x of the trends: the column index)
FIG3_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
FIG3_DEEP_DEPTH = 6  # the 6 x 512 tanh MLP


def fig3_alignment(activation: str, depth: int, layer: int, gamma: float) -> str:
    """Per-seed final alignment of one layer of the SCE MLP."""
    return f"{activation}/depth={depth}/layer={layer}/gamma={gamma:g}/alignment"


def _fig3() -> list:
    xs = tuple(float(i) for i in range(len(FIG3_GAMMAS)))
    gtxt = " / ".join(f"{g:g}" for g in FIG3_GAMMAS)
    out = [Trend(
        id=f"hebb.fig3.{act}.rises_with_gamma", paper=PAPER, experiment="hebb-fig3",
        where=f"Fig. 3 left, {act}, layer 2, gamma {gtxt} (x = column index)",
        statement="the trend of weight decay increasing Hebbian alignment of the learning signal is robust across "
                  "different activation functions",
        measures=tuple(fig3_alignment(act, 3, 2, g) for g in FIG3_GAMMAS), xs=xs, direction="increasing")
        for act in FIG3_ACTIVATIONS]
    out += [Trend(
        id=f"hebb.fig3.deep.layer{l}.rises_with_gamma", paper=PAPER, experiment="hebb-fig3",
        where=f"Fig. 3 right, 6 x 512 tanh MLP, layer {l}, gamma {gtxt} (x = column index)",
        statement="the trend can generalize to deeper networks (the text adds: 'we occasionally observe some "
                  "layers behaving in an anti-Hebbian direction')",
        measures=tuple(fig3_alignment("tanh", FIG3_DEEP_DEPTH, l, g) for g in FIG3_GAMMAS), xs=xs,
        direction="increasing")
        for l in range(1, FIG3_DEEP_DEPTH + 1)]
    return out


# ----------------------------------------------------------------------------- Figs. 7-12, 16 (hebb-sweeps)

SWEEP_GAMMAS = (0.0, 5e-4, 5e-3, 5e-2)  # hebb-sweeps' default grid
SWEEP_MODEL_PARAMS = (1e6, 1e7, 5e7)  # Fig. 9's models: target parameter counts t (appendix C.1.3, eq. 19)
SWEEP_MODEL_LAYERS = (3, 7, 9)  # and their total layers
SWEEP_FROZEN = (0.0, 0.25, 0.5, 0.75)
SWEEP_SPARSITIES = (0.0, 0.5, 0.9)
SWEEP_BEST = "batch+lr/abs_alignment/best_accuracy"  # |alignment| of the best-accuracy fifth of the cells
SWEEP_REST = "batch+lr/abs_alignment/rest"


def sweep_alignment(sweep: str, value, gamma: float | None = None, metric: str = "alignment") -> str:
    """Per-seed layer-2 alignment of one sweep value at one gamma (None: every gamma's seeds pooled);
    ``metric="alignment_learning"``: over the weights that learn only (pruned or frozen weights left out)."""
    v = value if isinstance(value, str) else f"{value:g}"
    return f"{sweep}={v}/" + ("" if gamma is None else f"gamma={gamma:g}/") + metric


def _sweeps() -> list:
    xs = tuple(float(i) for i in range(len(SWEEP_GAMMAS)))
    gtxt = " / ".join(f"{g:g}" for g in SWEEP_GAMMAS)
    out = [Greater(
        id="hebb.sweeps.best_accuracy_between_hebbian_and_anti", paper=PAPER, experiment="hebb-sweeps",
        where="Figs. 7-8 (batch size and learning-rate sweeps x gamma; best = highest-accuracy fifth of the cells)",
        statement="The optimal performance seems to be at a critical position between Hebbian and anti-Hebbian "
                  "gradient alignment: |alignment| of the best cells below that of the others",
        a=SWEEP_REST, b=SWEEP_BEST, paired=False)]
    models = {t: f"the {t / 1e6:g}M-parameter MLP ({n} layers, eq. 19's widths)"
              for t, n in zip(SWEEP_MODEL_PARAMS, SWEEP_MODEL_LAYERS)}
    for sweep, values, fig, statement in (
            ("scale", SWEEP_MODEL_PARAMS, "Fig. 9", "The trend of weight decay leading to increased Hebbian "
                                                   "alignment of the learning signal holds with larger models as well"),
            ("frozen", SWEEP_FROZEN, "Fig. 12", "The alignment decreases as the fraction of parameters that are "
                                               "frozen increases; however, the trend still persists")):
        out += [Trend(
            id=f"hebb.sweeps.{sweep}={v:g}.rises_with_gamma", paper=PAPER, experiment="hebb-sweeps",
            where=f"{fig}, {models[v] if sweep == 'scale' else f'{sweep} = {v}'}, layer 2, gamma {gtxt} "
                  "(x = column index)", statement=statement,
            measures=tuple(sweep_alignment(sweep, v, g) for g in SWEEP_GAMMAS), xs=xs, direction="increasing")
            for v in values]
    # Figs. 10 and 12 draw one line per gamma: the trend is judged within each gamma (gamma moves the alignment
    # far more than the swept value does, and pooling would count that as noise)
    out.append(Trend(
        id="hebb.sweeps.frozen.alignment_falls_with_fraction", paper=PAPER, experiment="hebb-sweeps",
        where="Fig. 12 (the common slope within each gamma)",
        statement="The alignment decreases as the fraction of parameters of the standard MLP that are frozen "
                  "increases",
        measures=tuple(sweep_alignment("frozen", v, g) for g in SWEEP_GAMMAS for v in SWEEP_FROZEN),
        xs=SWEEP_FROZEN, direction="decreasing", blocks=len(SWEEP_GAMMAS)))
    out.append(Trend(
        id="hebb.sweeps.sparsity.alignment_rises", paper=PAPER, experiment="hebb-sweeps",
        where="Fig. 10 left (the common slope within each gamma)",
        statement="Empirically, the Hebbian alignment of the learning signal increases with sparsity",
        measures=tuple(sweep_alignment("sparsity", v, g) for g in SWEEP_GAMMAS for v in SWEEP_SPARSITIES),
        xs=SWEEP_SPARSITIES, direction="increasing", blocks=len(SWEEP_GAMMAS)))
    out.append(Greater(
        id="hebb.sweeps.batchnorm_anti_hebbian", paper=PAPER, experiment="hebb-sweeps",
        where="Fig. 16 (every gamma pooled; pairs: same gamma and seed)",
        statement="Batch normalization seems to have a modest but persistent anti-Hebbian effect (alignment below "
                  "the unregularised network's)",
        a=sweep_alignment("regularizer", "none"), b=sweep_alignment("regularizer", "batchnorm"), paired=True))
    return out


# ----------------------------------------------------------------------------- Fig. 18 (hebb-fig18)

FIG18_VARIANTS = ("hebb_pre", "hebb_post", "oja_pre", "oja_post")  # hebb-fig18's rules (Normalized Hebbian, Oja)
FIG18_LRS = (0.01, 0.001)  # hebb-fig18's default learning rates (the paper prints none; docs/hebb.md)
FIG18_ZERO_TOL = 0.1  # "the average alignment ... approaches zero": |mean| <= 0.1
FIG18_POOR_MARGIN = 0.1  # "performs poorly": SGD's validation accuracy exceeds the Hebbian one by > 0.1
FIG18_SGD_ACC = "fig18/sgd/val_acc"  # per-seed validation accuracy of the SGD-trained reference network


def fig18_alignment(variant: str, lr: float) -> str:
    """Per-seed mean over the final window of cos(Delta W_2 of the Hebbian rule, -dLoss/dW_2) (None: diverged)."""
    return f"fig18/{variant}/lr={lr:g}/sgd_alignment"


def fig18_accuracy(variant: str, lr: float) -> str:
    """Per-seed final validation accuracy of the Hebbian-trained network (None: diverged)."""
    return f"fig18/{variant}/lr={lr:g}/val_acc"


def _fig18() -> list:
    names = {"hebb_pre": "Normalized Hebbian, pre-activation", "hebb_post": "Normalized Hebbian, post-activation",
             "oja_pre": "Oja, pre-activation", "oja_post": "Oja, post-activation"}
    out = []
    for v in FIG18_VARIANTS:
        for lr in FIG18_LRS:
            where = f"Fig. 18, {names[v]}, lr = {lr:g} (layer 2, SCE network)"
            out.append(Numeric(
                id=f"hebb.fig18.{v}.lr={lr:g}.alignment_near_zero", paper=PAPER, experiment="hebb-fig18",
                where=where,
                statement="No standard interpretation of Hebbian learning produces alignment with SGD at "
                          "convergence ... The average alignment of every combination approaches zero (per seed: "
                          "the mean over the last 200 steps of cos(Delta W_2, -dLoss/dW_2))",
                measure=fig18_alignment(v, lr), value=0.0, tolerance=FIG18_ZERO_TOL, data_specific=False,
                tolerance_reason="the paper prints no number, only curves that approach 0; 0.1 is a fifth of the "
                                 "smallest alignment the paper calls aligned at convergence (0.50-0.59 in Table 1), "
                                 "and 12 times the SD 1/sqrt(128 * 128) = 0.008 of the cosine of a random "
                                 "direction with a fixed one in layer 2's weight space"))
            out.append(Greater(
                id=f"hebb.fig18.{v}.lr={lr:g}.performs_poorly", paper=PAPER, experiment="hebb-fig18",
                where=where + "; main text, section 4",
                statement="when we train the same architecture with a Hebbian rule such as Oja's on the same data, "
                          "the model performs poorly (validation accuracy more than 0.1 below the same network "
                          "trained by SGD, paired by seed)",
                a=FIG18_SGD_ACC, b=fig18_accuracy(v, lr), margin=FIG18_POOR_MARGIN, paired=True))
    return out


# ----------------------------------------------------------------------------- Figs. 2 and 17 (hebb-fig2)

FIG2_GAMMAS = (0.0, 0.05)  # Fig. 2: "gamma = 0.05, or gamma = 0.0" (hebb-fig2's default)
FIG2_GAMMA = 0.05  # the "high weight decay" of Fig. 2 left and of Fig. 17
FIG2_POINTS = ("epoch1", "end")  # after the first epoch (Fig. 17 left), at the end of training (Figs. 2, 17 right)
FIG2_LOW_TOL = 0.1  # Fig. 2 right, "very low alignment": |mean| <= 0.1


def fig2_alignment(gamma: float, point: str) -> str:
    """Per-seed cos(-dLoss/dW_2, <y_2 h_1^T>) on hebb-fig2's fixed batch at ``point`` ("epoch1" or "end")."""
    return f"fig2/gamma={gamma:g}/{point}/alignment"


def _fig2() -> list:
    what = ("per seed: cos(-dLoss/dW_2, <y_2 h_1^T>) of layer 2 on one fixed batch of training samples, the loss "
            "gradient without the decay term")
    return [
        Greater(
            id="hebb.fig2.decay_aligns_at_end", paper=PAPER, experiment="hebb-fig2",
            where="Fig. 2 (SCE, layer 2, lr 0.1, end of training; pairs: same seed)",
            statement="weight updates with a high alignment between the learning signal (-grad_W l) and the Hebbian "
                      "update at the end of training with high weight decay (gamma = 0.05), while ... at the end of "
                      f"training with no weight decay ... very low alignment ({what}; gamma 0.05 above gamma 0)",
            a=fig2_alignment(FIG2_GAMMA, "end"), b=fig2_alignment(0.0, "end"), paired=True),
        Numeric(
            id="hebb.fig2.no_decay_very_low", paper=PAPER, experiment="hebb-fig2",
            where="Fig. 2 right (SCE, layer 2, lr 0.1, gamma = 0, end of training)",
            statement=f"an example update at the end of training with no weight decay which has very low alignment "
                      f"({what}; mean over seeds near 0)",
            measure=fig2_alignment(0.0, "end"), value=0.0, tolerance=FIG2_LOW_TOL, data_specific=False,
            tolerance_reason="the paper prints no number for the panel, only 'very low alignment'; 0.1 is a fifth of "
                             "the smallest alignment the paper calls aligned at convergence (0.50-0.59 in Table 1) "
                             "and the bound hebb-fig18 uses for 'approaches zero'; it admits the 'weak anti-Hebbian "
                             "alignment' Fig. 3 reports for zero weight decay in the same SCE, down to Table 1's SGD "
                             "value at gamma = 0 (-0.10, SRE)"),
        Bound(
            id="hebb.fig17.aligned_after_first_epoch", paper=PAPER, experiment="hebb-fig2",
            where="Fig. 17 left (SCE, layer 2, lr 0.1, gamma = 0.05, after the first epoch)",
            statement=f"With weight decay, even after the first epoch, there starts to be an alignment of the "
                      f"directions ({what}; mean over seeds above 0)",
            measure=fig2_alignment(FIG2_GAMMA, "epoch1"), bound=0.0, side="above"),
    ]


# ----------------------------------------------------------------------------- Figs. 15, 19-20 (hebb-neurons)

NEURONS_GAMMAS = (0.05, 0.0)  # Fig. 19: "gamma = 0.05" (left), "a gamma of 0.0" (right); hebb-neurons' default
NEURONS_GAMMA = 0.05  # the weight decay of Fig. 19 left, where the claims with weight decay are judged
FULL_UPDATE_TOL = 0.1  # "the full weight update alignment approaches zero near stationarity" (Fig. 15)
FULL_UPDATE_TOL_REASON = ("the paper prints no number, only a curve that 'approaches zero near stationarity' "
                          "(Fig. 15); 0.1 is the bound hebb-neurons used before these claims, a fifth of the "
                          "smallest alignment the paper calls aligned at convergence (0.50-0.59 in Table 1), as "
                          "for Figs. 2 and 18")
NEURONS_PAPER_SETTING = ("sre", "tanh", 2, 1.0)  # Fig. 19: regression, tanh, second hidden layer, default init


def neurons_setting(task: str, activation: str, layer: int, init_scale: float) -> str:
    """Part of hebb-neurons' measurement names: "" in Fig. 19's setting (SRE, tanh, layer 2, default init),
    else "<task>,<activation>,layer=<l>,init=<s>/", so that a run in another setting (e.g. Fig. 20's SCE) never
    feeds the claims, which are judged in Fig. 19's."""
    if (task, activation, layer, init_scale) == NEURONS_PAPER_SETTING:
        return ""
    return f"{task},{activation},layer={layer},init={init_scale:g}/"


def neurons_late(gamma: float, what: str, setting: str = "") -> str:
    """Per-seed quantity ``what`` of hebb-neurons over the late half of training at weight decay ``gamma``:
    ``sign_flip_rate_late``, ``frac_hebbian_full_late``, ``layer_full_late`` or ``layer_signal_late``
    (``setting``: ``neurons_setting``)."""
    return f"neurons/{setting}gamma={gamma:g}/{what}"


def _neurons() -> list:
    g = NEURONS_GAMMA
    where = "SRE, tanh, layer 2, late half of training; pairs: same seed"
    return [
        Greater(
            id="hebb.fig19.neurons_oscillate_more_with_decay", paper=PAPER, experiment="hebb-neurons",
            where=f"Fig. 19 ({where})",
            statement="The full weight update of neurons ... strongly oscillates between positively and negatively "
                      "aligned to the Hebbian update late into training with weight decay ... This phenomenon "
                      f"becomes much weaker without weight decay (per seed: the share of consecutive logs at which "
                      f"a neuron's cos(full update, Hebbian update) changes sign, gamma {g:g} above gamma 0)",
            a=neurons_late(g, "sign_flip_rate_late"), b=neurons_late(0.0, "sign_flip_rate_late"), paired=True),
        Greater(
            id="hebb.fig15_19.signal_more_hebbian_with_decay", paper=PAPER, experiment="hebb-neurons",
            where=f"Figs. 15, 19 ({where})",
            statement="The learning signal alignment shows the characteristic patterns described in the main text "
                      "(there: weight decay aligns the learning signal with the Hebbian update; per seed: the "
                      f"layer's cos(learning signal, Hebbian update) averaged over the late logs, gamma {g:g} above "
                      "gamma 0)",
            a=neurons_late(g, "layer_signal_late"), b=neurons_late(0.0, "layer_signal_late"), paired=True),
        Numeric(
            id="hebb.fig15.full_update_alignment_near_zero", paper=PAPER, experiment="hebb-neurons",
            where=f"Fig. 15 and section 5 (judged in Fig. 19's setting: SRE, tanh, layer 2, gamma = {g:g}, late "
                  "half of training)",
            statement="the full weight update alignment approaches zero near stationarity as expected, since the "
                      "mean of the full update must be zero at convergence (per seed: the layer's cos(full update, "
                      "Hebbian update) averaged over the late logs; mean over seeds near 0)",
            measure=neurons_late(g, "layer_full_late"), value=0.0, tolerance=FULL_UPDATE_TOL,
            tolerance_reason=FULL_UPDATE_TOL_REASON, data_specific=False),
        Greater(
            id="hebb.sec5.more_anti_hebbian_neurons_with_decay", paper=PAPER, experiment="hebb-neurons",
            where=f"Section 5, 'Transient phases' (of Fig. 20; judged in Fig. 19's setting: {where})",
            statement="The ratio of anti-Hebbian to Hebbian neurons increases with weight decay (per seed: the share "
                      "of (neuron, log) pairs whose full update is Hebbian, cos > 0, is lower at gamma "
                      f"{g:g} than at gamma 0; the paper says this of the phases early in training)",
            a=neurons_late(0.0, "frac_hebbian_full_late"), b=neurons_late(g, "frac_hebbian_full_late"),
            paired=True),
    ]


# ----------------------------------------------------------------------------- Fig. 6 (hebb-fig6)

FIG6_INITS = (0.5, 1.0, 2.0)  # "Init: 0.5x, 1x, and 2x" (Fig. 6 caption): factors of the default torch init
FIG6_GAMMAS = (0.0, 0.05)  # none, and Fig. 20 left's gamma (SCE, ReLU, 0.5x init, lr 0.001: Fig. 6's setting)
FIG6_GAMMA = 0.05  # the positive weight decay: "with positive weight decays [the weight norm] decreases"
FIG6_LR = 0.001  # "This experiment used a SCE with eta = 0.001"
FIG6_HIGH_LR = 0.01  # "A higher learning rate makes this process happen faster": the SCE's default rate
FIG6_LRS = (FIG6_LR, FIG6_HIGH_LR)
FIG6_ACTIVATION = "relu"  # "Particularly for networks with ReLU activations"
FIG6_WINDOW = 200  # "(mean +- SD, window=200)": a trailing window of 200 steps


def fig6_setting(activation: str) -> str:
    """Part of hebb-fig6's measurement names: "" for ReLU (Fig. 6's setting), else "<activation>/", so that a run
    with another activation never feeds the claims."""
    return "" if activation == FIG6_ACTIVATION else f"{activation}/"


def fig6_run(init: float, gamma: float, lr: float, what: str, setting: str = "") -> str:
    """Per-seed quantity ``what`` of hebb-fig6 (``experiments.hebb.fig6.MEASURED``: early, peak, jump,
    jump_heldout, peak_step, their ``signal_`` versions, norm_start, norm_peak, norm_decreased) at init scale
    ``init``, weight decay ``gamma`` and learning rate ``lr`` (``setting``: ``fig6_setting``)."""
    return f"fig6/{setting}init={init:g}/gamma={gamma:g}/lr={lr:g}/{what}"


def _fig6() -> list:
    lr, hi, g = FIG6_LR, FIG6_HIGH_LR, FIG6_GAMMA
    small, large = FIG6_INITS[0], FIG6_INITS[-1]
    smoothed = (f"the {FIG6_WINDOW}-step trailing mean of layer 2's cos(full update U_2, Hebbian update "
                "<y_2 h_1^T>)")
    jump = (f"per seed: the held-out jump of {smoothed}, its value at the peak chosen on the other half of the "
            f"logs minus its value over the first {FIG6_WINDOW} steps")
    peak = f"per seed: the step at which {smoothed} peaks"
    out: list = []
    for s in FIG6_INITS:
        for gamma in FIG6_GAMMAS:
            out.append(Bound(
                id=f"hebb.fig6.init={s:g}.gamma={gamma:g}.jump", paper=PAPER, experiment="hebb-fig6",
                where=f"Fig. 6 (SCE, ReLU, lr {lr:g}, init {s:g}x, gamma {gamma:g}, layer 2)",
                statement="For some activations at low learning rates, there is a sharp jump in Hebbian alignment "
                          f"of the weight update when training with SGD ({jump}; mean over seeds above 0)",
                measure=fig6_run(s, gamma, lr, "jump_heldout"), bound=0.0, side="above"))
        out.append(Bound(
            id=f"hebb.fig6.init={s:g}.gamma={g:g}.signal_jump", paper=PAPER, experiment="hebb-fig6",
            where=f"Section 5, 'Initial Hebbian alignment bump' (SCE, ReLU, lr {lr:g}, init {s:g}x, gamma {g:g}, "
                  "layer 2; at gamma 0 the learning signal's cosine is the full update's)",
            statement="Particularly for networks with ReLU activations, there is a bump in Hebbian alignment of the "
                      "learning signal ... at the beginning of training (per seed: the held-out jump of the "
                      f"{FIG6_WINDOW}-step trailing mean of cos(-dLoss/dW_2, <y_2 h_1^T>); mean over seeds above 0)",
            measure=fig6_run(s, g, lr, "signal_jump_heldout"), bound=0.0, side="above"))
    for gamma in FIG6_GAMMAS:
        out.append(Depends(
            id=f"hebb.fig6.gamma={gamma:g}.jump_depends_on_init", paper=PAPER, experiment="hebb-fig6",
            where=f"Fig. 6 and section 5 (SCE, ReLU, lr {lr:g}, gamma {gamma:g}, init {small:g}x vs {large:g}x; "
                  "pairs: same seed)",
            statement="the size of this jump depends on initial conditions ... a bump in Hebbian alignment ... that "
                      f"appears to be strongly dependent on initialization scale ({jump}; init {small:g}x minus "
                      f"{large:g}x, paired by seed; the paper gives no direction: the two-sided CI excludes 0)",
            a=fig6_run(small, gamma, lr, "jump_heldout"), b=fig6_run(large, gamma, lr, "jump_heldout"), paired=True))
    for s in FIG6_INITS:
        out.append(Greater(
            id=f"hebb.fig6.init={s:g}.gamma={g:g}.norm_decreases", paper=PAPER, experiment="hebb-fig6",
            where=f"Fig. 6 caption and section 5 (SCE, ReLU, lr {lr:g}, init {s:g}x, gamma {g:g}, layer 2)",
            statement="During this phase, the weight norm decreases monotonically ... the actual scale of weight "
                      "norms does not change substantially at the start of this period, and with positive weight "
                      f"decays decreases (per seed: ||W_2||_F at the first log above ||W_2||_F at the step where "
                      f"{smoothed} peaks, paired; monotonicity itself is not tested)",
            a=fig6_run(s, g, lr, "norm_start"), b=fig6_run(s, g, lr, "norm_peak"), paired=True))
    for s in FIG6_INITS:
        for gamma in FIG6_GAMMAS:
            out.append(Greater(
                id=f"hebb.fig6.init={s:g}.gamma={gamma:g}.faster_at_higher_lr", paper=PAPER, experiment="hebb-fig6",
                where=f"Section 5, 'Initial Hebbian alignment bump' (SCE, ReLU, init {s:g}x, gamma {gamma:g}, lr "
                      f"{lr:g} vs {hi:g}; pairs: same seed)",
                statement=f"A higher learning rate makes this process happen faster ({peak}: later at lr {lr:g} "
                          f"than at lr {hi:g}, paired by seed)",
                a=fig6_run(s, gamma, lr, "peak_step"), b=fig6_run(s, gamma, hi, "peak_step"), paired=True))
    for gamma in FIG6_GAMMAS:
        out.append(Greater(
            id=f"hebb.fig6.gamma={gamma:g}.longer_at_small_init", paper=PAPER, experiment="hebb-fig6",
            where=f"Section 5, after Fig. 6 (SCE, ReLU, lr {lr:g}, gamma {gamma:g}, init {small:g}x vs {large:g}x; "
                  "pairs: same seed)",
            statement="Like the average behavior of the model, the length of these phases increases as the weight "
                      f"initialization scale magnitude and learning rate decrease (the model's average: {peak}, "
                      f"later at init {small:g}x than at {large:g}x, paired by seed)",
            a=fig6_run(small, gamma, lr, "peak_step"), b=fig6_run(large, gamma, lr, "peak_step"), paired=True))
    return out


# ----------------------------------------------------------------------------- Fig. 10 right (hebb-fig10)

FIG10_GAMMAS = FIG3_GAMMAS  # hebb-fig10's default grid: the SCE grid of hebb-fig3 (x of the trend: column index)
FIG10_LAYER = 2  # "the alignment of the second MLP layer"
FIG10_WINDOW = 200  # "the mean of the alignment ... for the final 200 steps of the run"
FIG10_MODELS = ("mlp", "cnn")  # the standard SCE MLP and the CNN of the caption (a ResNet run: "resnet")


def fig10_alignment(model: str, gamma: float, layer: int = FIG10_LAYER) -> str:
    """Per-seed mean over the final window of cos(-dLoss/dW_l, <y_l h_{l-1}^T>) of MLP layer ``layer`` of
    ``model`` ("mlp", "cnn", "resnet": the MLP on top of a CNN / ResNet front) at weight decay ``gamma``."""
    return f"fig10/{model}/gamma={gamma:g}/layer={layer}/alignment"


def _fig10() -> list:
    what = (f"per seed: the mean over the final {FIG10_WINDOW} steps of cos(-dLoss/dW_2, <y_2 h_1^T>) of the second "
            "MLP layer")
    out = [Greater(
        id=f"hebb.fig10.gamma={g:g}.cnn_more_hebbian_than_mlp", paper=PAPER, experiment="hebb-fig10",
        where=f"Fig. 10 right and caption (SCE, SGD, gamma = {g:g}, layer 2 of the CNN's MLP 2048-512-256 vs of "
              "the standard MLP 2 x 128; pairs: same seed, same data order)",
        statement="the linear layers in a convolutional neural network, which are highly sparse, have increased "
                  f"Hebbian alignment ({what}; CNN above the standard MLP, paired by seed)",
        a=fig10_alignment("cnn", g), b=fig10_alignment("mlp", g), paired=True)
        for g in FIG10_GAMMAS if g > 0]
    gtxt = " / ".join(f"{g:g}" for g in FIG10_GAMMAS)
    out.append(Trend(
        id="hebb.fig10.cnn.rises_with_gamma", paper=PAPER, experiment="hebb-fig10",
        where=f"Fig. 10 right (SCE, SGD, CNN, layer 2 of its MLP, gamma {gtxt}; x = column index)",
        statement="the trend of weight decay increasing the Hebbian alignment of the learning signal holds for the "
                  f"linear layers of a CNN ('The trend is very robust'; {what})",
        measures=tuple(fig10_alignment("cnn", g) for g in FIG10_GAMMAS),
        xs=tuple(float(i) for i in range(len(FIG10_GAMMAS))), direction="increasing"))
    return out


# ----------------------------------------------------------------------------- registry

CLAIMS = [*_table1(), *_randomnn_norm(), *_fig2(), *_fig3(), *_fig4(), *_fig5(), *_fig13(), *_fig14(), *_sweeps(),
          *_theory(), *_fig18(), *_neurons(), *_fig6(), *_fig10()]
register(*CLAIMS)
