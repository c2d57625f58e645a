"""Claims of the SAM paper (Liao, Ziyin, Gan et al., *A Cortical Motif for Learning with Vectorized Errors*;
``/work/shared/papers/self-assembling-motif-vectorized-errors.txt``), judged on the measurements of the sam-*
experiments.

Measurement names are built by the functions below (the experiments import them, so producer and claim share
one spelling). Accuracies are in % (the paper's unit), ChestMNIST's score is macro ROC AUC x 100. Names of
data-set-specific claims start with the data set the paper ran (Table 1: seven; Fig. 2 / App. C.4: CIFAR-10;
App. C.2: CIFAR-10, SVHN, STL10); a --quick run on the bundled ``digits`` names its values after the
experiment's paper data set (``stand_in`` in its results), which only numeric claims could misread and those
say "not comparable" on a quick run.
"""

from __future__ import annotations

import itertools

from . import Bound, Greater, Numeric, Trend, register

PAPER = "sam"

# Table 1 (mean +- SD over five runs, %); ChestMNIST's ~73 fits a macro ROC AUC x 100 (docs/sam.md)
TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "cifar10": {"sgd": (50.36, 0.16), "fa": (47.85, 0.20), "wm": (49.35, 0.13), "kp": (48.16, 0.09), "sam": (51.91, 0.21)},
    "mnist": {"sgd": (98.44, 0.09), "fa": (97.80, 0.19), "wm": (98.40, 0.23), "kp": (98.45, 0.09), "sam": (98.85, 0.10)},
    "fashion_mnist": {"sgd": (96.80, 0.05), "fa": (95.75, 0.20), "wm": (96.00, 0.25), "kp": (96.13, 0.07), "sam": (97.23, 0.08)},
    "chestmnist": {"sgd": (73.26, 0.14), "fa": (70.44, 0.27), "wm": (70.14, 0.08), "kp": (71.03, 0.10), "sam": (73.21, 0.11)},
    "pathmnist": {"sgd": (70.11, 0.10), "fa": (69.90, 0.10), "wm": (70.00, 0.15), "kp": (69.51, 0.05), "sam": (70.23, 0.15)},
    "svhn": {"sgd": (78.20, 0.13), "fa": (78.03, 0.15), "wm": (78.08, 0.15), "kp": (78.20, 0.05), "sam": (78.50, 0.07)},
    "stl10": {"sgd": (41.00, 0.07), "fa": (39.29, 0.23), "wm": (39.48, 0.19), "kp": (40.32, 0.11), "sam": (41.50, 0.10)},
}
TABLE1_NAMES = {"cifar10": "CIFAR10", "mnist": "MNIST", "fashion_mnist": "Fashion MNIST", "chestmnist": "Chest MNIST",
                "pathmnist": "Path MNIST", "svhn": "SVHN", "stl10": "STL10"}
METHOD_NAMES = {"sgd": "SGD", "fa": "FA", "wm": "WM", "kp": "KP", "sam": "SAM"}
QUICK_STAND_IN = "digits"  # the bundled data set every --quick run of the sam-* experiments uses


FULL_STAND_IN = "mnist"  # the offline data set that stands in, at full size, for CIFAR-10 / SVHN / STL-10


def stand_in(name: str, paper_dataset: str, quick: bool) -> str:
    """The data set name measurements are filed under: ``paper_dataset`` for a --quick run on the bundled digits
    and for a full-size run on MNIST when the paper's data set is another (each stands in for it there; the run
    says so in ``results["stand_in"]``, and numeric claims are then "not comparable"), else the data set that
    ran."""
    stands = name == QUICK_STAND_IN if quick else name == FULL_STAND_IN
    return paper_dataset if stands and name != paper_dataset else name


def metric_of(dataset: str) -> str:
    return "test_auc" if dataset == "chestmnist" else "test_accuracy"


# ----------------------------------------------------------------------------- measurement names

def t1(dataset: str, method: str, metric: str | None = None) -> str:
    """sam-table1: final test score (%) per seed of ``method`` on ``dataset``."""
    return f"{dataset}/{method}/{metric or metric_of(dataset)}"


LR_BEST_LOG2_VBAR_W = "lr-search/best/log2_eta_vbar_over_eta_w"  # per seed: log2 of the best cell's ratio
LR_V_SMALLEST = "lr-search/eta_v_smallest/best_val_score"  # per seed: best validation score over those cells
LR_V_NOT_SMALLEST = "lr-search/eta_v_not_smallest/best_val_score"
LR_VBAR_LARGEST = "lr-search/eta_vbar_largest/best_val_score"
LR_VBAR_NOT_LARGEST = "lr-search/eta_vbar_not_largest/best_val_score"

AN_COS_SGD = "analysis/cos_sam_sgd/min_over_layers"  # per seed: min over layers of the mean cos over training
AN_COS_RANDOM = "analysis/cos_sam_random/max_over_layers"  # the same against a fixed random direction (chance)
AN_FRACS = (0.0, 0.25, 0.5, 0.75, 1.0)  # fractions of the training at which the Fig. S1b curves are read


def an_at(frac: float, what: str) -> str:
    """sam-analysis: ``what`` (dvbar_norm: ||Delta Vbar||_F mean over hidden layers; loss) at that fraction."""
    return f"analysis/frac={frac:g}/{what}"


def an_lemma1(what: str, when: str) -> str:
    """sam-analysis: Lemma 1's ``what`` (cos: cos(V^l, Vbar^{l-1 T}); gap: relative Frobenius gap), mean over the
    level pairs, ``when`` before/after training."""
    return f"analysis/lemma1_{what}/{when}"


def mod(signal: str, what: str) -> str:
    """sam-modulation: per seed at the final evaluation and the smallest tau, ``what`` (rel_change: relative change
    of the probe batch's mean loss; frac_reduced: fraction of its samples whose loss fell) for ``signal`` (sam,
    gradient, random)."""
    return f"modulation/{signal}/{what}"


def local_loss(matrix: str, form: str) -> str:
    """sam-local-losses: per seed, the largest relative difference between ``matrix``'s update (V, Vbar, Wbar) and
    a gradient step on its local loss in ``form`` (printed: eq. 10-12 as the paper prints them; corrected)."""
    return f"local-losses/{matrix}/{form}/max_rel_diff"


LOCAL_LOSS_TOL = 1e-3  # "identical": float32 rounding is ~1e-6 relative; 1e-3 leaves room for accumulated rounding


LEMMA1_GAP = 0.1  # our tolerance on Lemma 1's equality: the relative Frobenius gap below 10%


def an_erank(matrix: str, when: str) -> str:
    """sam-analysis: effective rank of ``matrix`` (W or Vbar), mean over hidden layers, ``when`` before/after."""
    return f"analysis/erank_{matrix}_hidden/{when}"


def ab(dataset: str, label: str, metric: str = "test_accuracy") -> str:
    """sam-ablation: final test score (%) of plastic subset ``label`` ("W+Vbar", "linear (SGD)")."""
    return f"{dataset}/plastic={label}/{metric}"


def ab_w_minus_linear(dataset: str, metric: str = "test_accuracy") -> str:
    return f"{dataset}/plastic=W minus linear (SGD)/{metric}"


WIDTH_RATIOS = (1.0, 2.0, 4.0, 6.0, 8.0)
WIDTH_FORWARD = ("relu", "tanh", "leaky_relu")  # Fig. S1d: "different activation functions in the forward pathway"


def _forward(forward: str) -> str:
    return "" if forward == "relu" else f"forward={forward}/"  # ReLU: the keys of the records before 2026-12-06


def wd(dataset: str, act: str, ratio: float, metric: str = "test_accuracy", forward: str = "relu") -> str:
    """sam-width: final test score (%) with forward activation ``forward`` and downstream gain D_d = ``act`` at
    downstream/upstream width ``ratio``."""
    return f"{dataset}/{_forward(forward)}D_d={act}/ratio={ratio:g}/{metric}"


def wd_best(dataset: str, act: str, forward: str = "relu") -> str:
    """sam-width: per seed, the width ratio whose final score is the highest."""
    return f"{dataset}/{_forward(forward)}D_d={act}/best_ratio"


def se(mode: str, metric: str = "test_accuracy") -> str:
    """sam-scalar-error: final test score (%) with hidden feedback ``mode`` (vector, mean, norm)."""
    return f"feedback={mode}/{metric}"


# ----------------------------------------------------------------------------- Table 1

def _table1() -> list:
    out = []
    for ds, row in TABLE1.items():
        name = TABLE1_NAMES[ds]
        for m, (v, sd) in row.items():
            out.append(Numeric(f"sam.table1.{ds}.{m}", PAPER, "sam-table1", f"Table 1, {name}, {METHOD_NAMES[m]}",
                               f"{METHOD_NAMES[m]} on {name}: {v:.2f} +- {sd:.2f} over five runs",
                               measure=t1(ds, m), value=v, spread=sd))
        for base in ("fa", "wm", "kp"):  # "SOTA among biologically plausible algorithms on all datasets"
            out.append(Greater(f"sam.table1.{ds}.sam_gt_{base}", PAPER, "sam-table1", f"Table 1, {name}; App. C.1",
                               f"SAM outperforms {METHOD_NAMES[base]} on {name} (\"SOTA among biologically "
                               "plausible algorithms on all datasets\")",
                               a=t1(ds, "sam"), b=t1(ds, base)))
        if ds != "chestmnist":  # "outperforms ... backpropagation on six out of the seven datasets"
            out.append(Greater(f"sam.table1.{ds}.sam_gt_sgd", PAPER, "sam-table1", f"Table 1, {name}; App. C.1",
                               f"SAM outperforms SGD on {name} (\"outperforms models trained with backpropagation on "
                               "six out of the seven datasets\"; the exception is ChestMNIST)",
                               a=t1(ds, "sam"), b=t1(ds, "sgd")))
    return out


# ----------------------------------------------------------------------------- rate search (App. A, C.4, Fig. S2)

def _lr_search() -> list:
    return [
        Numeric("sam.lr_search.best_vbar_over_w", PAPER, "sam-lr-search", "App. C.4",
                "\"the Vbar matrices require the largest learning rates, usually four times that of W\": log2 of the "
                "best-scoring eta_Vbar / eta_W is log2(4) = 2",
                measure=LR_BEST_LOG2_VBAR_W, value=2.0, tolerance=1.0,
                tolerance_reason="the paper gives no spread, only 'usually four times': within a factor 2 of 4"),
        Greater("sam.lr_search.vbar_largest_best", PAPER, "sam-lr-search", "App. C.4",
                "the Vbar matrices require the largest learning rates: the best validation score with eta_Vbar the "
                "largest of the four rates beats the best with it not the largest",
                a=LR_VBAR_LARGEST, b=LR_VBAR_NOT_LARGEST),
        Greater("sam.lr_search.v_smallest_best", PAPER, "sam-lr-search", "Fig. S2",
                "\"the best performance is achieved when eta_V is the smallest\": the best validation score with "
                "eta_V the smallest rate beats the best with it not the smallest",
                a=LR_V_SMALLEST, b=LR_V_NOT_SMALLEST),
    ]


# ----------------------------------------------------------------------------- analysis (Theorem 1, Fig. S1a-b)

def _analysis() -> list:
    return [
        Greater("sam.analysis.update_aligned_with_sgd", PAPER, "sam-analysis", "Theorem 1 / 2 (eq. 3, 12)",
                "Delta_SAM W = H Delta_sgd W + O(eps) with H positive (semi)definite: SAM's W update has a positive "
                "inner product with the SGD update in every layer (min over layers of cos, mean over training, "
                "above the cos with a fixed random direction)",
                a=AN_COS_SGD, b=AN_COS_RANDOM),
        *[Trend(f"sam.analysis.{name}", PAPER, "sam-analysis", "Fig. S1b, App. B", statement,
                measures=tuple(an_at(f, what) for f in AN_FRACS), xs=AN_FRACS, direction="decreasing")
          for name, what, statement in (
              ("dvbar_shrinks", "dvbar_norm", "\"Delta Vbar approaches zero during training\" (||Delta Vbar|| of the "
                                              "hidden levels falls with the training time)"),
              ("loss_shrinks", "loss", "the fall of Delta Vbar \"accompanies the decrease\" of the loss (probe loss "
                                       "falls with the training time)"))],
        *[Greater(f"sam.analysis.{m.lower()}_low_rank", PAPER, "sam-analysis", "Fig. S1a, App. C.3",
                  f"the matrices \"become effectively low-rank\" ({rank} of the hidden {m} lower after training than "
                  "before)", a=an_erank(m, "before"), b=an_erank(m, "after"))
          for m, rank in (("Vbar", "Roy & Vetterli effective rank"), ("W", "effective rank"))],
        Greater("sam.analysis.lemma1_aligning", PAPER, "sam-analysis", "App. D, Lemma 1",
                "\"the interstream connections evolve towards becoming aligned with each other after training\": "
                "cos(V^l, Vbar^{l-1 T}) (mean over the level pairs) higher after training than before",
                a=an_lemma1("cos", "after"), b=an_lemma1("cos", "before")),
        Bound("sam.analysis.lemma1_equal", PAPER, "sam-analysis", "App. D, Lemma 1 (eq. 13)",
              f"at stationarity Vbar^{{l-1}} = (V^l)^T: the relative gap ||V^l - Vbar^{{l-1 T}}|| / mean norm after "
              f"training below {LEMMA1_GAP:g} (the paper's equality; {LEMMA1_GAP:g} is our tolerance)",
              measure=an_lemma1("gap", "after"), bound=LEMMA1_GAP, side="below"),
    ]


# ----------------------------------------------------------------------------- short-term modulation (earlier paper)

def _modulation() -> list:
    where = "earlier version (Self-Assembling Learning), Sec. 2.3"
    return [
        Bound("sam.modulation.reduces_loss", PAPER, "sam-modulation", where,
              "adding the feedback to every hidden neuron, h -> h + Vbar hbar, \"leads to a reduced loss function "
              "value for this particular data point\" for a small time constant (relative change of the probe "
              "batch's loss after training, smallest tau, below 0)",
              measure=mod("sam", "rel_change"), bound=0.0, side="below"),
        Greater("sam.modulation.beats_random", PAPER, "sam-modulation", where,
                "the modulation works because Vbar hbar = -grad_h F: SAM's feedback lowers the loss more than a "
                "random signal of the same norm per sample and layer",
                a=mod("random", "rel_change"), b=mod("sam", "rel_change")),
    ]


# ----------------------------------------------------------------------------- local losses (earlier paper)

def _local_losses() -> list:
    where = "earlier version (Self-Assembling Learning), Sec. 2.4, eq. {}"
    losses = {"V": ("10", "||Vbar hbar^{l+1} (h^l)^T - gamma V||^2"),
              "Vbar": ("11", "||hbar^{l+1} (h^l)^T (W^l)^T - gamma Vbar||^2"),
              "Wbar": ("12", "||hbar^{l+1} (h^l)^T (V^l)^T - gamma Wbar||^2")}
    return [Bound(f"sam.local_losses.{m.lower()}", PAPER, "sam-local-losses", where.format(eq),
                  f"the {m} update rule is \"identical to running a gradient descent step\" on F_{m} = {loss} (the "
                  f"largest relative difference between the rule's update and the step of size eta_{m} / (2 gamma), "
                  f"over levels and evaluations, below {LOCAL_LOSS_TOL:g}: equal to rounding)",
                  measure=local_loss(m, "printed"), bound=LOCAL_LOSS_TOL, side="below")
            for m, (eq, loss) in losses.items()]


# ----------------------------------------------------------------------------- plasticity ablation (Fig. 2, C.4)

ABLATION_DATASET = "cifar10"


def plastic_subsets() -> list[str]:
    """"W", "W+Wbar", ... "W+Wbar+V+Vbar": W plus every subset of the other three."""
    others = ("Wbar", "V", "Vbar")
    return ["+".join(("W",) + s) for k in range(4) for s in itertools.combinations(others, k)]


def _ablation() -> list:
    ds, where = ABLATION_DATASET, "Fig. 2, App. C.4 (CIFAR-10)"
    all4 = "W+Wbar+V+Vbar"
    out = [
        Numeric("sam.ablation.w_only", PAPER, "sam-ablation", where,
                "only W plastic: 40% (\"improving performance from 40% to roughly 46%\")",
                measure=ab(ds, "W"), value=40.0, tolerance=0.5,
                tolerance_reason="the text gives a whole percent (40%), no spread: rounding to whole percents"),
        Numeric("sam.ablation.w_vbar", PAPER, "sam-ablation", where,
                "W and Vbar plastic: \"roughly 46%\"",
                measure=ab(ds, "W+Vbar"), value=46.0, tolerance=1.0,
                tolerance_reason="the text gives 'roughly 46%', no spread: a whole percent either way"),
        Greater("sam.ablation.vbar_gain", PAPER, "sam-ablation", where,
                "making Vbar plastic improves on W alone (\"from 40% to roughly 46%\")",
                a=ab(ds, "W+Vbar"), b=ab(ds, "W")),
        Numeric("sam.ablation.w_only_as_linear", PAPER, "sam-ablation", where,
                "\"Only updating W works but only works as well as the linear model\" (W alone minus the linear net "
                "by SGD, paired by seed, is 0)",
                measure=ab_w_minus_linear(ds), value=0.0, tolerance=2.0, data_specific=False,
                tolerance_reason="the paper gives no number for the gap; 'only works as well as' read as within "
                                 "2 points (the bound the earlier check used), our reading, not a value from the paper"),
    ]
    for other in ("W+Wbar", "W+V"):
        out.append(Greater(f"sam.ablation.vbar_best_single_vs_{other.split('+')[1].lower()}", PAPER, "sam-ablation",
                           where, f"\"If only one additional connection is made plastic, Vbar is the most important "
                                  f"one\": W+Vbar beats {other}",
                           a=ab(ds, "W+Vbar"), b=ab(ds, other)))
    for other in plastic_subsets():
        if other == all4:
            continue
        out.append(Greater(f"sam.ablation.all_four_vs_{other.replace('+', '_').lower()}", PAPER, "sam-ablation",
                           where, f"\"Making all four connections plastic improves the performance further\": all "
                                  f"four beat {other}",
                           a=ab(ds, all4), b=ab(ds, other)))
    return out


# ----------------------------------------------------------------------------- downstream width (Fig. S1d, C.2)

WIDTH_DATASETS = ("cifar10", "svhn", "stl10")


def _width() -> list:
    out = []
    for act in WIDTH_FORWARD:
        out.append(Trend(f"sam.width.cifar10.forward_{act}.wider_better", PAPER, "sam-width",
                         f"Fig. S1d, {act} in the forward pathway, D_d = I",
                         "\"having a wider downstream network improves the performance ... up to an "
                         "overparametrization ratio of 7.5\" (final accuracy rises with the width ratio 1x-8x)",
                         measures=tuple(wd("cifar10", "identity", r, forward=act) for r in WIDTH_RATIOS),
                         xs=WIDTH_RATIOS, direction="increasing"))
    for ds in WIDTH_DATASETS:
        out.append(Numeric(f"sam.width.{ds}.best_ratio", PAPER, "sam-width", f"App. C.2, {ds}, D_d = identity",
                           "\"achieves the best performance across multiple datasets when the parameter count of the "
                           "downstream pathway is approximately 5 to 8 times that of the upstream pathway\"",
                           measure=wd_best(ds, "identity"), value=6.5, tolerance=1.5,
                           tolerance_reason="the paper states a range, 5 to 8, and no spread: the range itself"))
    return out


# ----------------------------------------------------------------------------- scalar-error ablation (Sec. 2.2)

CHANCE_PERCENT = 10.0  # test accuracy (%) of a 10-class network that diverged: it has not learned


def _scalar_error() -> list:
    """A mode whose seeds diverge (at every searched rate: the search falls back to lower rates first) has not
    learned: each diverged seed counts at chance, so the comparison is not made on the survivors only."""
    return [Greater(f"sam.scalar_error.vector_gt_{mode}", PAPER, "sam-scalar-error", "Sec. 2.2, Methods",
                    f"\"Collapsing the vector signal substantially degrades learning\": the vector feedback beats its "
                    f"per-layer {mode}",
                    a=se("vector"), b=se(mode), diverged_as=CHANCE_PERCENT)
            for mode in ("mean", "norm")]


register(*_table1(), *_lr_search(), *_analysis(), *_modulation(), *_local_losses(), *_ablation(), *_width(), *_scalar_error())
