"""A small sequence-to-vector transformer encoder (the SRE transformer variant of the Hebbian paper).

tokens (T,) in {0..vocab-1} -> z_0 = E[tokens] + P  (token and learned position embeddings, d)
each of ``n_layers`` post-norm encoder layers (as torch.nn.TransformerEncoderLayer, no dropout):
    z <- LayerNorm(z + MHA(z, z, z));  z <- LayerNorm(z + W_2 relu(W_1 z + b_1) + b_2)
output: mean over the T positions of z (a d-vector), fed to an MLP head by the caller.
Built from Equinox's ``MultiheadAttention``, ``Linear``, ``LayerNorm`` and ``Embedding``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp


class EncoderLayer(eqx.Module):
    attn: eqx.nn.MultiheadAttention
    ff1: eqx.nn.Linear
    ff2: eqx.nn.Linear
    norm1: eqx.nn.LayerNorm
    norm2: eqx.nn.LayerNorm

    def __init__(self, d: int, heads: int, d_ff: int, key: jax.Array):
        k1, k2, k3 = jax.random.split(key, 3)
        if d % heads:
            raise ValueError(f"model width d={d} must be divisible by the number of heads ({heads})")
        self.attn = eqx.nn.MultiheadAttention(heads, d, key=k1)
        self.ff1 = eqx.nn.Linear(d, d_ff, key=k2)
        self.ff2 = eqx.nn.Linear(d_ff, d, key=k3)
        self.norm1 = eqx.nn.LayerNorm(d)
        self.norm2 = eqx.nn.LayerNorm(d)

    def __call__(self, z: jax.Array) -> jax.Array:
        """z: (T, d) -> (T, d)."""
        z = jax.vmap(self.norm1)(z + self.attn(z, z, z))
        ff = jax.vmap(self.ff2)(jax.nn.relu(jax.vmap(self.ff1)(z)))
        return jax.vmap(self.norm2)(z + ff)


class SeqEncoder(eqx.Module):
    """Token sequence (T,) -> mean-pooled d-vector."""

    embed: eqx.nn.Embedding
    pos: jax.Array
    layers: tuple[EncoderLayer, ...]
    vocab: int = eqx.field(static=True)
    length: int = eqx.field(static=True)

    def __init__(self, key: jax.Array, vocab: int = 16, length: int = 32, d: int = 32, heads: int = 4,
                 n_layers: int = 2, d_ff: int = 32):
        keys = jax.random.split(key, n_layers + 2)
        self.embed = eqx.nn.Embedding(vocab, d, key=keys[0])
        self.pos = 0.02 * jax.random.normal(keys[1], (length, d))
        self.layers = tuple(EncoderLayer(d, heads, d_ff, k) for k in keys[2:])
        self.vocab, self.length = vocab, length

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens (T,) int -> (d,) mean of the final token embeddings."""
        if tokens.shape[-1] != self.length:
            raise ValueError(f"sequence length {tokens.shape[-1]} != the encoder's length {self.length}")
        z = jax.vmap(self.embed)(tokens.astype(jnp.int32)) + self.pos
        for layer in self.layers:
            z = layer(z)
        return jnp.mean(z, axis=0)

    def batch(self, tokens: jax.Array) -> jax.Array:
        """(B, T) -> (B, d)."""
        return jax.vmap(self)(tokens)


def split_params(module: eqx.Module):
    """(trainable float arrays, static rest) for jax.grad / vmap; ``eqx.combine`` rebuilds the module."""
    return eqx.partition(module, eqx.is_inexact_array)
