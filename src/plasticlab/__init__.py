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
from .losses import get_loss
from .networks import MLP, Forward, Params
from .rules import BP, DFA, FA, KP, WM, Hebb, Oja, Rule, Sanger, parse_rule
from .training import DivergenceError, History, Trainer, TrainState, fit

__all__ = ["Dataset", "load_dataset", "get_loss", "MLP", "Forward", "Params", "BP", "DFA", "FA", "KP", "WM", "Hebb",
           "Oja", "Rule", "Sanger", "parse_rule", "DivergenceError", "History", "Trainer", "TrainState", "fit",
           "__version__"]
