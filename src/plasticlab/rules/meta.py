"""Meta-learned plasticity rules (Oja paper, Fig. 6b-d, eq. 7 and 11; docs/choices.md section 1).

A rule is a linear combination of candidate plasticity terms F_i, with
coefficients theta shared across layers (eq. 11):

    Delta W_l = sum_i theta_i F_i(W_l; h_{l-1}, h_l, e_{l-1}, e_l),
    Delta B_l = sum_j theta^B_j G_j(B_l; h_{l-1}, h_l, e_{l-1}, e_l).

Signals (layer l = 1..L maps h_{l-1} to y_l = W_l h_{l-1}, h_l = f(y_l)):

    e_L = softmax(y_L) - onehot(t)                         (cross-entropy)
    e_l = (B_{l+1} e_{l+1}) * f'(y_l),  l = L-1..1,        B_{l+1} of shape (d_l, d_{l+1})
    e_0 = (B_1 e_1) * (1 - exp(-beta h_0))                 (input "error", used by F_1 and F_4 at l = 1)
    h_L := softmax(y_L) in the Hebbian terms of the output layer.

f is softplus with sharpness beta, f'(y) = sigmoid(beta y) = 1 - exp(-beta f(y)); the
authors' reference code applies the same expression 1 - exp(-beta h) to the input
to define e_0, and uses the softmax output as the last layer's activity.

Candidate terms (the paper's eq. 11 was lost in text conversion; F_0-F_2 are fixed
in docs/choices.md section 1, the rest follow the authors' reference code and earlier paper, [25]):

    F_0 "pseudo_grad":  -e_l h_{l-1}^T                        (backprop's update when B = W^T)
    F_1 "error_hebb":   -e_l e_{l-1}^T
    F_2 "oja":           h_l h_{l-1}^T - h_l h_l^T W_l         (Oja's subspace rule)
    F_3 "hebb":          h_l h_{l-1}^T                         (Hebbian)
    F_4 "post_error":   -h_l e_{l-1}^T                         (activity x error, anti-Hebbian for theta > 0)
    F_5 "decay":        -W_l                                   (weight decay)
    F_6 "error_oja":    -(e_l e_{l-1}^T - e_l e_l^T W_l)        (Oja's rule on the error signals)
    F_7 "sanger":        h_l h_{l-1}^T - LT(h_l h_l^T) W_l     (Sanger's rule, supplement S6; LT incl. diagonal)

The feedback matrices learn by the same terms written for B_l (shape of W_l^T):
G_j(B_l) = F_j(W_l := B_l^T)^T, e.g. G_0 = -h_{l-1} e_l^T (Kolen-Pollack's update) and
G_2 = h_{l-1} h_l^T - B_l h_l h_l^T. With no B terms, B stays fixed (feedback alignment);
with ``sym`` = 1, B_l = W_l^T at every step (backprop's feedback) and B is not used.

With a batch of samples every term is the batch mean of the per-sample terms; the
inner loop of meta-learning is online (batch of one). The Oja, error-Oja and
Sanger terms are computed in their rank-one forms, e.g. F_2 = h_l (h_{l-1} - W_l^T h_l)^T,
which never builds the d_l x d_l matrix h_l h_l^T.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..networks.mlp import MLP, Forward, Params, init_weight
from .base import Rule, Signals, outer_mean, prefix_sum

TermFn = Callable[..., "Outer | Decay | jax.Array"]  # (W, pre, post, e_pre, e_post) -> term


# ----------------------------------------------------------------------------- candidate terms
# Each term maps (W (d_out, d_in), pre = h_{l-1} (n, d_in), post = h_l (n, d_out),
# e_pre = e_{l-1} (n, d_in), e_post = e_l (n, d_out)) to its batch mean, returned as
# Outer(a, b) = <a b^T> (a (n, d_out), b (n, d_in)), Decay(c) = c W_l, or a dense (d_out, d_in) matrix.
# ``dense`` turns any of them into the matrix; ``combine`` sums sum_i theta_i F_i with all
# outer-product terms in one matrix product (fast, and cheap to differentiate).


class Outer(NamedTuple):
    """The term <a b^T> = a^T b / n for a (n, d_out), b (n, d_in)."""

    a: jax.Array
    b: jax.Array


class Decay(NamedTuple):
    """The term c W_l."""

    c: float


def term_pseudo_grad(W, pre, post, e_pre, e_post):
    """F_0 = -e_l h_{l-1}^T (the pseudo-gradient)."""
    return Outer(-e_post, pre)


def term_error_hebb(W, pre, post, e_pre, e_post):
    """F_1 = -e_l e_{l-1}^T."""
    return Outer(-e_post, e_pre)


def term_oja(W, pre, post, e_pre, e_post):
    """F_2 = h_l h_{l-1}^T - h_l h_l^T W_l = h_l (h_{l-1} - W_l^T h_l)^T."""
    return Outer(post, pre - post @ W)


def term_hebb(W, pre, post, e_pre, e_post):
    """F_3 = h_l h_{l-1}^T."""
    return Outer(post, pre)


def term_post_error(W, pre, post, e_pre, e_post):
    """F_4 = -h_l e_{l-1}^T."""
    return Outer(-post, e_pre)


def term_decay(W, pre, post, e_pre, e_post):
    """F_5 = -W_l."""
    return Decay(-1.0)


def term_error_oja(W, pre, post, e_pre, e_post):
    """F_6 = -(e_l e_{l-1}^T - e_l e_l^T W_l) = -e_l (e_{l-1} - W_l^T e_l)^T."""
    return Outer(-e_post, e_pre - e_post @ W)


def term_sanger(W, pre, post, e_pre, e_post):
    """F_7 = h_l h_{l-1}^T - LT(h_l h_l^T) W_l; row i: h_i (h_{l-1} - sum_{j <= i} h_j W_{l,j})^T."""

    def one(h_pre, h):
        cum = prefix_sum(h[:, None] * W, axis=0)  # row i: sum_{j<=i} h_j W_j
        return h[:, None] * (h_pre[None, :] - cum)

    return jnp.mean(jax.vmap(one)(pre, post), axis=0)


def dense(term, W: jax.Array) -> jax.Array:
    """The (d_out, d_in) matrix of a term's value."""
    if isinstance(term, Outer):
        return outer_mean(term.a, term.b)
    if isinstance(term, Decay):
        return term.c * W
    return term


TERMS: dict[str, TermFn] = {
    "pseudo_grad": term_pseudo_grad,
    "error_hebb": term_error_hebb,
    "oja": term_oja,
    "hebb": term_hebb,
    "post_error": term_post_error,
    "decay": term_decay,
    "error_oja": term_error_oja,
    "sanger": term_sanger,
}

#: The default candidate set: F_0, F_1, F_2, the three terms of the authors' reference code for this paper.
DEFAULT_TERMS: tuple[str, ...] = ("pseudo_grad", "error_hebb", "oja")

#: The seven terms F_0..F_6 (as many as the paper's theta_0..theta_6; Sanger's F_7 is for supplement S6).
ALL_TERMS: tuple[str, ...] = ("pseudo_grad", "error_hebb", "oja", "hebb", "post_error", "decay", "error_oja")


#: The default feedback term set G_0, G_1 (G_0 = -h_{l-1} e_l^T is Kolen-Pollack's alignment update).
#: G_2 (Oja on B) is left out: the meta-gradient drives its coefficient below 0, where
#: Delta B = |c| B h h^T + ... grows B exponentially and the inner loops blow up (docs/meta.md).
DEFAULT_B_TERMS: tuple[str, ...] = ("pseudo_grad", "error_hebb")


def term_help() -> dict[str, str]:
    """Term name -> its equation (first docstring line)."""
    return {k: (f.__doc__ or "").strip().splitlines()[0] for k, f in TERMS.items()}


def check_terms(terms: Sequence[str], what: str = "terms") -> tuple[str, ...]:
    """Validate term names (a clear error lists the valid ones)."""
    terms = tuple(terms)
    bad = [t for t in terms if t not in TERMS]
    if bad:
        raise ValueError(f"unknown plasticity {what} {bad}; choose from: {', '.join(TERMS)}")
    if len(set(terms)) != len(terms):
        raise ValueError(f"plasticity {what} {terms} repeat a term")
    return terms


def term_value(name: str, W, pre, post, e_pre, e_post) -> jax.Array:
    """F_name as a dense (d_out, d_in) matrix."""
    return dense(TERMS[name](W, pre, post, e_pre, e_post), W)


def combine(terms: Sequence[str], theta: jax.Array, W, pre, post, e_pre, e_post) -> jax.Array:
    """sum_i theta_i F_i(W; pre, post, e_pre, e_post) for the named terms.

    The outer-product terms are summed as one product A^T B / n with A = [theta_i a_i], B = [b_i]
    stacked over terms and samples; decay and dense terms are added to it.
    """
    out = jnp.zeros_like(W)
    a_list, b_list = [], []
    n = pre.shape[0]
    for i, name in enumerate(terms):
        f = TERMS[name](W, pre, post, e_pre, e_post)
        if isinstance(f, Outer):
            a_list.append(theta[i] * f.a)
            b_list.append(f.b)
        elif isinstance(f, Decay):
            out = out + (theta[i] * f.c) * W
        else:
            out = out + theta[i] * f
    if a_list:
        out = out + jnp.concatenate(a_list).T @ jnp.concatenate(b_list) / n
    return out


def combine_feedback(terms: Sequence[str], theta: jax.Array, B, pre, post, e_pre, e_post) -> jax.Array:
    """sum_j theta_j G_j(B) with G_j(B) = F_j(W := B^T)^T (B has the shape of W^T)."""
    return combine(terms, theta, B.T, pre, post, e_pre, e_post).T


# ----------------------------------------------------------------------------- parameters

class Theta(NamedTuple):
    """Meta-parameters: coefficients of the forward terms (w) and of the feedback terms (b)."""

    w: jax.Array
    b: jax.Array


def init_theta(terms: Sequence[str], b_terms: Sequence[str] = (), lr0: float = 1e-3, dtype=jnp.float32) -> Theta:
    """theta_0 (the pseudo-gradient's coefficient, if present) = lr0, every other coefficient 0 (paper's Methods)."""
    w = jnp.asarray([lr0 if t == "pseudo_grad" else 0.0 for t in terms], dtype)
    b = jnp.asarray([lr0 if t == "pseudo_grad" else 0.0 for t in b_terms], dtype) if b_terms else jnp.zeros((0,), dtype)
    return Theta(w, b)


def init_feedback(key: jax.Array, sizes: Sequence[int], method: str = "xavier") -> tuple[jax.Array, ...]:
    """B_l of shape (d_{l-1}, d_l) for l = 1..L, drawn independently of W (Xavier by default)."""
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(init_weight(k, (i, o), method) for k, i, o in zip(keys, sizes[:-1], sizes[1:]))


def xavier_init(sizes: Sequence[int], rng: np.random.Generator | int, dtype=np.float32
                ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(W, B) with W_l (d_l, d_{l-1}) and B_l (d_{l-1}, d_l) ~ U(-a, a), a = sqrt(6 / (d_{l-1} + d_l)), all independent.

    Drawn with NumPy on the host: per-episode initialisations stay reproducible and cost no
    JAX compilation (JAX's random bits compile slowly on CPU).
    """
    rng = np.random.default_rng(rng)
    W, B = [], []
    for i, o in zip(sizes[:-1], sizes[1:]):
        a = np.sqrt(6.0 / (i + o))
        W.append(rng.uniform(-a, a, (o, i)).astype(dtype))
    for i, o in zip(sizes[:-1], sizes[1:]):
        a = np.sqrt(6.0 / (i + o))
        B.append(rng.uniform(-a, a, (i, o)).astype(dtype))
    return tuple(W), tuple(B)


# ----------------------------------------------------------------------------- signals and one step

def layer_errors(fwd: Forward, e_out: jax.Array, back: Sequence[jax.Array], beta: float) -> tuple[jax.Array, ...]:
    """(e_0, e_1, ..., e_L): e_L = e_out, e_l = (B_{l+1} e_{l+1}) * f'(y_l), e_0 = (B_1 e_1) * (1 - exp(-beta h_0)).

    ``back[l-1]`` = B_l of shape (d_{l-1}, d_l); arrays carry a batch axis.
    """
    L = len(fwd.y)
    errs = [e_out]
    for l in range(L - 1, 0, -1):
        errs.append((errs[-1] @ back[l].T) * fwd.df[l - 1])
    errs.append((errs[-1] @ back[0].T) * (1.0 - jnp.exp(-beta * fwd.h[0])))
    return tuple(reversed(errs))


def plastic_updates(terms: Sequence[str], b_terms: Sequence[str], theta: Theta, W: Sequence[jax.Array],
                    B: Sequence[jax.Array], fwd: Forward, e: Sequence[jax.Array]
                    ) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    """(Delta W_l, Delta B_l) for every layer from eq. 11, with h_L := softmax(y_L).

    ``e`` = (e_0, ..., e_L) from ``layer_errors``.
    """
    L = len(W)
    posts = list(fwd.h[1:L]) + [jax.nn.softmax(fwd.y[-1], axis=-1)]
    dW, dB = [], []
    for l in range(1, L + 1):
        args = (fwd.h[l - 1], posts[l - 1], e[l - 1], e[l])
        dW.append(combine(terms, theta.w, W[l - 1], *args))
        dB.append(combine_feedback(b_terms, theta.b, B[l - 1], *args) if b_terms else jnp.zeros_like(B[l - 1]))
    return tuple(dW), tuple(dB)


def _theta_array(value) -> jax.Array | None:
    """Coefficients as an array (a tuple from ``parse_rule``; a traced theta keeps its dtype)."""
    return None if value is None else jnp.asarray(value)


class MetaPlasticity(Rule):
    """Meta-learned plasticity rule (Oja paper, eq. 11): a weighted sum of candidate terms, state = feedback B.

    Equation:
        Delta W_l = sum_i theta_w[i] F_i(W_l, h_{l-1}, h_l, e_{l-1}, e_l)
        Delta B_l = sum_j theta_b[j] G_j(B_l, h_{l-1}, h_l, e_{l-1}, e_l)
        e_l = (B_{l+1} e_{l+1}) * f'(y_l),  B_{l+1} <- sym W_{l+1}^T + (1 - sym) B_{l+1}

    ``sym`` = 1 gives backprop's feedback (and with terms=("pseudo_grad",) exactly BP with lr = theta_w[0]);
    ``b_terms`` = () keeps B fixed (feedback alignment). The network must have no biases. The terms F_i / G_j
    are listed in ``plasticlab.rules.meta.TERMS``; theta comes from ``meta-fig6`` (or ``init_theta``).

    Parameters:
        theta_w: one coefficient per term of ``terms``; None: init_theta (pseudo_grad 1e-3, the others 0).
        theta_b: one coefficient per term of ``b_terms``; None: init_theta.
        sym: weight of W^T in the feedback matrices (1: backprop's feedback, 0: the learned B).
        terms: candidate terms F_i of the weight update.
        b_terms: candidate terms G_j of the feedback update (empty: B fixed).
        beta: softplus sharpness of the network the rule was meta-learned on (its f').
        init_method: distribution of the initial feedback matrices B_l.
    """

    theta_w: jax.Array | None = eqx.field(default=None, converter=_theta_array)
    theta_b: jax.Array | None = eqx.field(default=None, converter=_theta_array)
    sym: jax.Array | float = 0.0
    terms: tuple[str, ...] = eqx.field(static=True, default=DEFAULT_TERMS)
    b_terms: tuple[str, ...] = eqx.field(static=True, default=())
    beta: float = eqx.field(static=True, default=10.0)
    init_method: str = eqx.field(static=True, default="xavier")

    def __post_init__(self) -> None:
        if self.theta_w is None or self.theta_b is None:
            theta = init_theta(check_terms(self.terms), check_terms(self.b_terms, "feedback terms"))
            self.theta_w = theta.w if self.theta_w is None else self.theta_w
            self.theta_b = theta.b if self.theta_b is None else self.theta_b

    def __check_init__(self) -> None:
        check_terms(self.terms)
        check_terms(self.b_terms, "feedback terms")
        if jnp.shape(self.theta_w) != (len(self.terms),) or jnp.shape(self.theta_b) != (len(self.b_terms),):
            raise ValueError(f"theta_w / theta_b have shapes {jnp.shape(self.theta_w)} / {jnp.shape(self.theta_b)}, "
                             f"expected ({len(self.terms)},) / ({len(self.b_terms)},) for terms {self.terms} "
                             f"and feedback terms {self.b_terms}")

    @classmethod
    def from_theta(cls, theta: Theta, terms: Sequence[str], b_terms: Sequence[str] = (), sym: float = 0.0,
                   beta: float = 10.0) -> "MetaPlasticity":
        return cls(theta.w, theta.b, sym, tuple(terms), tuple(b_terms), beta)

    @property
    def theta(self) -> Theta:
        return Theta(jnp.asarray(self.theta_w), jnp.asarray(self.theta_b))

    @property
    def provides_feedback(self) -> bool:
        return True

    def init(self, key, net, params):
        return init_feedback(key, net.sizes, self.init_method)

    def backward(self, params: Params, state) -> tuple[jax.Array, ...]:
        """B_l used for the errors: sym W_l^T + (1 - sym) B_l."""
        return tuple(self.sym * w.T + (1.0 - self.sym) * b for w, b in zip(params.W, state))

    def _errors(self, params, state, fwd, e_out):
        return layer_errors(fwd, e_out, self.backward(params, state), self.beta)

    def feedback(self, net, params, state, fwd, e_out):
        return self._errors(params, state, fwd, e_out)[1:]

    def feedback_with_aux(self, net, params, state, fwd, e_out):
        """((e_1, ..., e_L), (e_0, e_1, ..., e_L)): the terms also read the input layer's e_0."""
        e = self._errors(params, state, fwd, e_out)
        return e[1:], e

    def update(self, net, params, state, sig, key):
        if params.b is not None:
            raise ValueError("MetaPlasticity is defined for networks without biases: build the MLP with use_bias=False")
        e = sig.aux if sig.aux is not None else self._errors(params, state, sig.fwd, sig.e_out)
        dW, dB = plastic_updates(self.terms, self.b_terms, self.theta, params.W, state, sig.fwd, e)
        return Params(dW, None), tuple(b + d for b, d in zip(state, dB))


# ----------------------------------------------------------------------------- the inner loop

class InnerLoop(eqx.Module):
    """Online adaptation of a freshly initialised network by eq. 11 (the inner loop of meta-learning).

    net: the MLP (softplus, no biases). ``adapt`` scans ``step`` over the support samples one
    at a time; ``remat`` wraps each step in ``jax.checkpoint`` so the meta-gradient stores
    only (W, B) per step. ``b_terms`` = () keeps B fixed (feedback alignment).

    ``max_growth`` (None: off) guards against inner loops that blow up: a step whose update would
    give any W_l or B_l a non-finite entry or a Frobenius norm above max_growth * ||W_l(0)|| (resp.
    ||B_l(0)||) is not applied (the weights keep their values for that sample):

        (W, B)_{t+1} = (W, B)_t + Delta_t  if ok_t else (W, B)_t,
        ok_t = all_l isfinite(.) and ||W_l + Delta W_l|| <= g ||W_l(0)|| and ||B_l + Delta B_l|| <= g ||B_l(0)||.

    Without it one diverging episode gives a non-finite meta-gradient (skipped), and a theta at the
    edge of stability stops moving; with it the query loss stays finite and its gradient points
    away from the explosive terms. Healthy adaptation changes the norms by far less than 10x.
    """

    net: MLP
    terms: tuple[str, ...] = eqx.field(static=True, default=DEFAULT_TERMS)
    b_terms: tuple[str, ...] = eqx.field(static=True, default=DEFAULT_B_TERMS)
    remat: bool = eqx.field(static=True, default=True)
    max_growth: float | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        check_terms(self.terms)
        check_terms(self.b_terms, "feedback terms")
        if self.net.use_bias:
            raise ValueError("the meta-learning inner loop has no biases: build the MLP with use_bias=False")
        if self.max_growth is not None and not self.max_growth > 1.0:
            raise ValueError(f"max_growth must be None (no guard) or > 1, got {self.max_growth}")

    def rule(self, theta: Theta, sym) -> MetaPlasticity:
        return MetaPlasticity(theta.w, theta.b, sym, self.terms, self.b_terms, self.net.beta)

    def init(self, rng: np.random.Generator | int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Fresh (W, B), Xavier-uniform, drawn separately (paper: re-initialised every episode); see ``xavier_init``."""
        return xavier_init(self.net.sizes, rng)

    def trainer(self, theta: Theta, sym):
        """The ``training.Trainer`` of one inner-loop step: this network, ``MetaPlasticity(theta)``, the
        cross-entropy loss (e_L = softmax(y_L) - onehot(t)) and the identity optimiser (W <- W + Delta W)."""
        from ..losses import get_loss
        from ..training import Trainer

        return Trainer(self.net, self.rule(theta, sym), loss=get_loss("cross_entropy"))

    def step(self, theta: Theta, sym, carry, sample, limits=None):
        """One online step on (x, t) (x of shape (d_0,), t an integer label): ``Trainer.step`` of ``trainer``.

        ``limits`` (norm bounds of W_l and B_l, from ``adapt`` when ``max_growth`` is set): an update
        that breaks one is not applied. Returns ((W, B), loss); ``guarded_step`` also says whether the update was
        rejected.
        """
        new, (loss, _) = self.guarded_step(theta, sym, carry, sample, limits)
        return new, loss

    def guarded_step(self, theta: Theta, sym, carry, sample, limits=None):
        """``step`` returning ((W, B), (loss, rejected)): rejected is True when the guard kept the old weights."""
        from ..training import TrainState

        W, B = carry
        x, t = sample
        trainer = self.trainer(theta, sym)
        params = Params(tuple(W), None)
        state = TrainState(params, tuple(B), trainer.optimizer.init(params), jnp.zeros((2,), jnp.uint32))
        state, metrics = trainer.step(state, x[None], t[None])
        W_new, B_new = state.params.W, state.rule_state
        if limits is None:
            return (W_new, B_new), (metrics["loss"], jnp.asarray(False))
        new = W_new + tuple(B_new)
        ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) & (jnp.linalg.norm(a) <= lim)
                                for a, lim in zip(new, limits)]))
        # the state before the step is bounded, so the rejected update itself is finite and no NaN leaks into
        # the gradient
        keep = tuple(jnp.where(ok, a, o) for a, o in zip(new, tuple(W) + tuple(B)))
        return (keep[:len(W)], keep[len(W):]), (metrics["loss"], ~ok)

    def adapt(self, theta: Theta, W0, B0, xs: jax.Array, ts: jax.Array, sym=0.0, rejected: bool = False):
        """Adapt (W0, B0) on the samples xs (n, d_0), ts (n,) in order; returns ((W, B), per-step losses), or with
        ``rejected`` ((W, B), (per-step losses, per-step flags: the guard rejected the update))."""
        limits = None
        if self.max_growth is not None:
            limits = tuple(self.max_growth * jnp.linalg.norm(jnp.asarray(a)) for a in tuple(W0) + tuple(B0))
        body = lambda c, s: self.guarded_step(theta, sym, c, s, limits)  # noqa: E731
        if self.remat:
            body = jax.checkpoint(body)
        carry, (losses, rej) = jax.lax.scan(body, (tuple(W0), tuple(B0)), (xs, ts))
        return (carry, (losses, rej)) if rejected else (carry, losses)

    def evaluate(self, W, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean cross-entropy, accuracy) of the network W on a batch (x, t)."""
        y = self.net.forward(Params(tuple(W), None), x).y[-1]
        loss = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(y, axis=-1), t[:, None], axis=-1))
        return loss, jnp.mean(jnp.argmax(y, axis=-1) == t)

    def episode_loss(self, theta: Theta, W0, B0, xs, ts, xq, tq, sym=0.0):
        """Query cross-entropy after adapting (W0, B0) on the support set (xs, ts); aux = query accuracy."""
        (W, _), _ = self.adapt(theta, W0, B0, xs, ts, sym)
        return self.evaluate(W, xq, tq)

    def episode_loss_stats(self, theta: Theta, W0, B0, xs, ts, xq, tq, sym=0.0):
        """``episode_loss`` with the inner loop's health: (loss, (accuracy, stats)), stats = {"rejected": updates the
        guard rejected, "growth": max_l of ||W_l|| / ||W_l(0)|| and ||B_l|| / ||B_l(0)|| after adaptation}."""
        (W, B), (_, rej) = self.adapt(theta, W0, B0, xs, ts, sym, rejected=True)
        loss, acc = self.evaluate(W, xq, tq)
        growth = jnp.max(jnp.stack([jnp.linalg.norm(a) / jnp.linalg.norm(jnp.asarray(a0))
                                    for a, a0 in zip(tuple(W) + tuple(B), tuple(W0) + tuple(B0))]))
        return loss, (acc, {"rejected": jnp.sum(rej.astype(jnp.float32)), "growth": growth})


def meta_objective(loop: InnerLoop, theta: Theta, W0, B0, xs, ts, xq, tq, sym=0.0, l1: float = 0.0,
                   l1_skip_first: bool = True, stats: bool = False):
    """Mean query loss over a batch of episodes (leading axis of every array, vmapped) + l1 * sum |theta|.

    The L1 penalty skips the pseudo-gradient's coefficient when ``l1_skip_first``. Returns (objective, (loss, acc)),
    with ``stats`` (objective, (loss, acc, stats)): the mean over episodes of the updates the guard rejected and the
    largest norm growth (``InnerLoop.episode_loss_stats``).
    """
    if stats:
        loss, (acc, st) = jax.vmap(lambda *a: loop.episode_loss_stats(theta, *a, sym))(W0, B0, xs, ts, xq, tq)
        st = {"rejected": jnp.mean(st["rejected"]), "growth": jnp.max(st["growth"])}
    else:
        loss, acc = jax.vmap(lambda *a: loop.episode_loss(theta, *a, sym))(W0, B0, xs, ts, xq, tq)
    loss, acc = jnp.mean(loss), jnp.mean(acc)
    pen = 0.0
    if l1:
        mask_w = jnp.asarray([0.0 if (t == "pseudo_grad" and l1_skip_first) else 1.0 for t in loop.terms])
        pen = l1 * (jnp.sum(mask_w * jnp.abs(theta.w)) + jnp.sum(jnp.abs(theta.b)))
    return loss + pen, ((loss, acc, st) if stats else (loss, acc))


__all__ = ["TERMS", "DEFAULT_TERMS", "DEFAULT_B_TERMS", "ALL_TERMS", "Theta", "MetaPlasticity", "InnerLoop", "init_theta", "init_feedback", "xavier_init",
           "layer_errors", "plastic_updates", "combine", "term_value", "dense", "Outer", "Decay", "combine_feedback", "check_terms", "term_help",
           "meta_objective"]
