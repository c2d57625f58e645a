"""Networks: the MLP (and, in sibling modules, the RNN and two-stream networks)."""

from .activations import ACTIVATIONS, Activation, get_activation, softplus
from .mlp import INITS, MLP, Forward, Params, init_weight

__all__ = ["ACTIVATIONS", "Activation", "get_activation", "softplus", "INITS", "MLP", "Forward", "Params", "init_weight"]
