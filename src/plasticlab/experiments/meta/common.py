"""Shared pieces of the meta-learning experiments (``meta-fig6``, ``meta-sanger``): their base settings and the
class counts of the data sets. The machinery (samplers, outer loop, checkpoints, evaluation) is the library's
``plasticlab.meta_learning``, imported here under the names the experiments use.
"""

from __future__ import annotations

from ...data.episodes import SPLIT_MODES
from ...meta_learning import (  # noqa: F401  (re-exported: the experiments' names for the library's machinery)
    HEADS, HELDOUT, SELECT, SELECT_START, STAT_KEYS, TRAIN, MetaLearner, build_loop, episode_inputs, evaluate_rule,
    load_checkpoint, make_samplers, meta_train, n_outputs, pseudo_grad_theta, save_checkpoint, select_lr,
    theta_table, validator)
from ...settings import SettingError, setting, settings_dataclass, with_default  # noqa: F401
from ..oja.common import classification_datasets


HELDOUT_SEED = 12345  # tasks and initial weights of the held-out evaluation (same for every rule and meta seed)
PATHWAYS = {"bp": 1.0, "fa": 0.0}  # feedback pathway -> sym: BP (B = W^T) or FA (fixed random B)


# class counts of the registered classification data sets, for the instant n_way check of ``check_n_way``
# (teacher_classification: its loader's default d_out); a data set not listed is checked when it is loaded
N_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "emnist_balanced": 47, "emnist_letters": 26,
             "cifar10": 10, "svhn": 10, "stl10": 10, "pathmnist": 9, "teacher_classification": 10}


def check_n_way(cfg) -> None:
    """Raise SettingError if ``cfg.n_way`` exceeds the classes ``cfg.dataset`` offers (when N_CLASSES knows them):
    all of them (split_mode "samples"), or with split_mode "classes" those left for meta-training once the
    held-out ones (the last max(n_way, n_classes // 3)) are set aside."""
    n = N_CLASSES.get(cfg.dataset)
    if n is None:
        return
    if cfg.split_mode == "classes":
        room = n - max(cfg.n_way, n // 3)
        if cfg.n_way > room:
            raise SettingError("n_way", cfg.n_way, f"at most {n // 2} for {cfg.dataset} "
                               f"({n} classes) with split_mode=classes",
                               f"only {max(room, 0)} classes are left for meta-training")
    elif cfg.n_way > n:
        raise SettingError("n_way", cfg.n_way, f"at most {n} (the classes of {cfg.dataset})", "too many classes")


# where ``plasticlab show`` lists each setting of the meta-* configs built by ``meta_config``
SETTINGS_ORDER = (
    "dataset", "n_way", "k_shot", "n_query", "split_mode",  # the tasks
    "hidden", "hidden_bp", "head", "beta",  # the network
    "feedback", "terms", "b_terms", "variants", "coefficients",  # the rules meta-learned (or scanned)
    "theta0", "lr_meta", "clip", "l1", "max_growth", "n_episodes", "meta_batch", "ckpt_every",  # the outer loop
    "n_select_tasks", "select_every", "n_val_tasks", "n_eval_tasks", "eval_batch", "lr_grid",  # selection, evaluation
    "seeds")


class TaskConfig:
    """The settings every meta-* config shares: the tasks, the network, the inner loop's guard and the evaluation,
    with their defaults (a config declares one again to change its default: ``with_default``); ``@task_config``
    makes a subclass the config dataclass (meta-sanger-scan, which meta-trains nothing)."""

    dataset: str = setting("emnist_balanced", choices=classification_datasets,
                           doc="classification data set the N-way tasks are drawn from")
    n_way: int = setting(5, ge=2, le=1000, doc="classes per task (N); at most the data set's classes (split_mode="
                                               "classes: as many again must remain for meta-training)")
    k_shot: int = setting(20, ge=1, le=10_000,
                          doc="support (training) samples per class, presented online one at a time")
    n_query: int = setting(10, ge=1, le=10_000, doc="query samples per class that score the adapted network")
    split_mode: str = setting("samples", choices=SPLIT_MODES,
                              doc="meta-train vs held-out tasks: samples (train vs test split, all classes) or "
                                  "classes (disjoint class sets)")
    hidden: tuple[int, ...] = setting((170, 130, 100, 70), ge=1, le=100_000,
                                      doc="hidden layer widths of the softplus, bias-free MLP")
    head: str = setting("dataset", choices=HEADS, doc="dataset: one output per class of the data set, original "
                                                      "labels (reference code); task: N outputs, the task's classes "
                                                      "relabelled 0..N-1")
    beta: float = setting(10.0, gt=0, doc="softplus sharpness beta")
    max_growth: float | None = setting(10.0, gt=1, doc="inner-loop guard: no update past max_growth x a matrix's "
                                                       "initial norm (see InnerLoop); none: off")
    n_select_tasks: int = setting(50, ge=1, le=100_000, doc="meta-train selection tasks on which BP's / FA's "
                                                            "learning rate is picked from lr_grid")
    n_eval_tasks: int = setting(200, ge=1, le=100_000, doc="held-out tasks every rule is evaluated on")
    eval_batch: int = setting(10, ge=1, le=10_000, doc="tasks evaluated at once (vmapped; the last batch is padded)")
    lr_grid: tuple[float, ...] = setting((0.003, 0.01, 0.03, 0.1, 0.3), gt=0,
                                         doc="learning rates tried for the BP / FA baselines (pseudo-gradient only)")

    def validate(self) -> None:
        check_n_way(self)


class MetaConfig(TaskConfig):
    """The settings meta-fig6 and meta-sanger share: ``TaskConfig``'s and the outer loop that meta-trains theta;
    ``@meta_config`` makes a subclass the config dataclass."""

    theta0: float = setting(1e-3, ge=0, doc="initial pseudo-gradient coefficient theta_0 (every other coefficient "
                                            "starts at 0); also the untrained rule's learning rate")
    lr_meta: float = setting(1e-3, gt=0, doc="Adam learning rate of the outer loop (on theta)")
    clip: float = setting(1.0, ge=0, doc="global-norm clip of the meta-gradient; 0: no clipping")
    n_episodes: int = setting(600, ge=1, le=100_000, doc="meta-training episodes (tasks)")
    ckpt_every: int = setting(25, ge=1, affects_result=False, doc="checkpoint theta and Adam's state every "
                                                                  "ckpt_every episodes (for resuming; results do not "
                                                                  "depend on it)")
    select_every: int = setting(50, ge=0, le=1_000_000,
                                doc="model selection: score theta every select_every episodes (0: off) ...")
    n_val_tasks: int = setting(30, ge=1, le=100_000, doc="... on the first n_val_tasks selection tasks (meta-train "
                                                         "split); keep the best")
    seeds: int = setting(1, ge=1, le=1000, doc="independent meta-training runs")


meta_config = settings_dataclass(MetaConfig, SETTINGS_ORDER)
task_config = settings_dataclass(TaskConfig, SETTINGS_ORDER)
