"""plasticlab: biologically plausible learning rules in JAX.

Quick use::

    import plasticlab as pl
    data = pl.load_dataset("digits")
    net = pl.MLP((64, 100, 10), activation="tanh")
    trainer = pl.Trainer(net, pl.parse_rule("kp(lr=0.05)"))
    hist = pl.fit(trainer, data.x_train, data.y_train, seeds=5, epochs=5,
                  eval_every=len(data.x_train), x_eval=data.x_test, y_eval=data.y_test)
    print(hist.final("eval_accuracy"))
"""

__version__ = "0.2.0"

from .data import Dataset, load_dataset
from .experiments import run_experiment
from .experiments.compare import compare
from .losses import get_loss
from .networks import MLP, Forward, Params
from .networks.rnn import LeakyRNN
from .networks.two_stream import TwoStream
from .results import RunResults, load_results
from .rules import (BP, BPTT, DFA, FA, KP, SAM, WM, Curl, Hebb, MetaPlasticity, Oja, OjaRec, RandomNN, Rule, Sanger,
                    Signals, Sum, parse_rule)
from . import transforms
from .training import DivergenceError, History, Trainer, TrainState, drive, fit

__all__ = ["Dataset", "load_dataset", "get_loss", "MLP", "Forward", "Params", "LeakyRNN", "TwoStream",
           "Rule", "Signals", "Sum", "BP", "FA", "DFA", "KP", "WM", "SAM", "Curl", "RandomNN", "Hebb", "Oja", "Sanger",
           "MetaPlasticity", "BPTT", "OjaRec",
           "parse_rule", "Trainer", "TrainState", "fit", "drive", "transforms", "History", "DivergenceError", "run_experiment",
           "compare", "load_results", "RunResults", "__version__"]
