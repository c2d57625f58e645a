"""A convolutional input front for ``networks.front_mlp.FrontMLP``: the CNN of the Hebbian paper's Fig. 10
(right) and the small ResNet of its Fig. 11, feeding an MLP whose layers the rules and the alignment see.

The input is a batch of flat images x (B, H*W*C) in HWC order (``data.images``' layout), reshaped to
(B, H, W, C) and zero-padded by ``pad`` pixels on every side (H_0 = H + 2 pad, W_0 = W + 2 pad). With
``channels`` = (c_1, ..., c_K), c_0 = C, an activation f and P = 2x2 max pooling with stride 2 (floor: an odd
side loses its last row / column, as torch's ``MaxPool2d(2, 2)``), stage k = 1..K is

    backbone "cnn":     z_k = P(f(K_k * z_{k-1} + b_k))
    backbone "resnet":  z_k = P(f(K_k2 * f(K_k1 * z_{k-1} + b_k1) + b_k2 + S_k z_{k-1}))   (a basic block)

with z_0 the padded images, ``*`` a 3x3 convolution with stride 1 and padding 1 (the spatial size is kept),
biases b (c_k,) and S_k a 1x1 convolution without bias (the projection shortcut: the channels change in every
block). The front's output is h_0 = flatten(z_K) (HWC order) of width d_0 = c_K H_K W_K, H_k = floor(H_{k-1}
/ 2). The paper's CNN ("Conv Layers: (3, 32, 3, 1), (32, 64, 3, 1), (64, 128, 3, 1), MaxPool: (2, 2), Linear
hidden dimensions: 2048, 512, 256") is channels (32, 64, 128) with a pool after every conv: on 32 x 32 CIFAR-10
images d_0 = 128 * 4 * 4 = 2048, the first linear width. Max pooling commutes with a non-decreasing f, so the
order of f and P does not matter for tanh or ReLU.

Initialisation (torch's default for ``Conv2d``): every kernel and bias entry ~ U(-1, 1) / sqrt(fan_in),
fan_in = c_in * kh * kw. Parameters are a tuple of dicts per stage: "cnn" {"K": (3, 3, c_in, c_out), "b":
(c_out,)}; "resnet" {"K1", "b1", "K2", "b2", "S": (1, 1, c_in, c_out)} (kernels HWIO).

A batch larger than ``chunk`` samples (evaluation on a whole validation set, vmapped over runs) is processed
``chunk`` samples at a time (``lax.map``): the values are the same, the memory of the convolutions' outputs is
bounded. The convolutions are matrix products of im2col patches (``conv``); ``tests/test_hebb_fig10.py`` checks
them against ``jax.lax.conv_general_dilated``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .activations import get_activation

BACKBONES = ("cnn", "resnet")
KERNEL = 3  # 3x3 convolutions, stride 1, padding 1
POOL = 2  # 2x2 max pooling, stride 2


def _uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) / math.sqrt(fan_in)


def conv(z: jax.Array, k: jax.Array) -> jax.Array:
    """(B, H, W, c_in) * (kh, kw, c_in, c_out) -> (B, H, W, c_out): stride 1, 'same' zero padding (1 for 3x3, odd
    kernels), as a matrix product of the im2col patches (B, H, W, kh kw c_in) with the kernel reshaped to
    (kh kw c_in, c_out). Vmapped over runs (each seed its own kernel) this is a batched matrix product, which XLA
    runs on CPU about 3x faster than the grouped convolution ``lax.conv`` becomes under vmap."""
    kh, kw, ci, co = k.shape
    if kh == kw == 1:
        return z @ k.reshape(ci, co)
    H, W = z.shape[1:3]
    zp = jnp.pad(z, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    patches = jnp.concatenate([zp[:, i:i + H, j:j + W, :] for i in range(kh) for j in range(kw)], axis=-1)
    return patches @ k.reshape(kh * kw * ci, co)


def max_pool(z: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 of (B, H, W, c) (floor: an odd side drops its last row / column)."""
    return jax.lax.reduce_window(z, -jnp.inf, jax.lax.max, (1, POOL, POOL, 1), (1, POOL, POOL, 1), "VALID")


@dataclass(frozen=True)
class ConvFront:
    """Static description of the front (hashable: it is a static field of ``FrontMLP``); see the module docstring.

    image_shape: (H, W, C) of one input image; channels: (c_1, ..., c_K); pad: zeros added on every side of
    the image (e.g. 2: 28 x 28 MNIST -> 32 x 32, the paper's CIFAR-10 size); activation: f; backbone: "cnn"
    or "resnet"; chunk: samples per ``lax.map`` step of a large batch.
    """

    image_shape: tuple[int, int, int]
    channels: tuple[int, ...] = (32, 64, 128)
    pad: int = 0
    activation: str = "tanh"
    backbone: str = "cnn"
    chunk: int = 512

    def __post_init__(self) -> None:
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape is (H, W, C) with positive sides, got {self.image_shape}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive counts, got {self.channels}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.pad < 0 or self.chunk < 1:
            raise ValueError("pad must be >= 0 and chunk >= 1")
        h, w = self.out_hw
        if h < 1 or w < 1:
            side = (self.image_shape[0] + 2 * self.pad, self.image_shape[1] + 2 * self.pad)
            raise ValueError(f"{len(self.channels)} 2x2 poolings leave nothing of a {side[0]} x {side[1]} image; use "
                             "fewer channels (stages) or pad it")
        get_activation(self.activation)

    def _stages(self) -> list[tuple[int, int, int, int]]:
        """Per stage k = 1..K: (H_k-1, W_k-1, c_k-1, c_k), the sides its convolutions see (H_0 W_0: the padded
        image) and its channels in and out."""
        h, w = self.image_shape[0] + 2 * self.pad, self.image_shape[1] + 2 * self.pad
        out, c_in = [], self.image_shape[2]
        for co in self.channels:
            out.append((h, w, c_in, co))
            h, w, c_in = h // POOL, w // POOL, co
        return out

    @property
    def out_hw(self) -> tuple[int, int]:
        """(H_K, W_K): the spatial size after the K poolings."""
        h, w = self.image_shape[0] + 2 * self.pad, self.image_shape[1] + 2 * self.pad
        for _ in self.channels:
            h, w = h // POOL, w // POOL
        return h, w

    @property
    def width(self) -> int:
        """d_0 = c_K H_K W_K, the MLP's input width."""
        h, w = self.out_hw
        return self.channels[-1] * h * w

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one image's forward pass: sum_k H_k-1 W_k-1 c_k (9 c_k-1 [cnn]; resnet: 9 c_k-1 +
        9 c_k + c_k-1, the two 3x3 convolutions and the 1x1 shortcut), H_0 W_0 the padded size."""
        total = 0
        for h, w, c_in, co in self._stages():
            per_pixel = KERNEL * KERNEL * c_in * co
            if self.backbone == "resnet":
                per_pixel += KERNEL * KERNEL * co * co + c_in * co
            total += h * w * per_pixel
        return total

    @property
    def stored_floats(self) -> int:
        """Floats one image's forward pass keeps for the backward pass, the bulk of a training step's memory:
        per stage the im2col patches of every convolution (9 c_in per pixel; resnet: also 9 c_k and the shortcut's
        c_k-1), its outputs before and after f (2 c_k; resnet: 4 c_k and the shortcut's c_k) and the pooled map
        (H_k W_k c_k, H_k = floor(H_k-1 / 2))."""
        total = 0
        for h, w, c_in, co in self._stages():
            per_pixel = KERNEL * KERNEL * c_in + 2 * co
            if self.backbone == "resnet":
                per_pixel += KERNEL * KERNEL * co + c_in + 3 * co
            total += h * w * per_pixel + (h // POOL) * (w // POOL) * co
        return total

    @property
    def input_width(self) -> int:
        """Features of one flat input image: H W C."""
        return math.prod(self.image_shape)

    def init(self, key: jax.Array) -> tuple[dict, ...]:
        """Fresh parameters (torch's Conv2d default init), one dict per stage."""
        c_in = (self.image_shape[2], *self.channels[:-1])
        out = []
        for k, ci, co in zip(jax.random.split(key, len(self.channels)), c_in, self.channels):
            ks = jax.random.split(k, 5)
            fan = ci * KERNEL * KERNEL
            if self.backbone == "cnn":
                out.append({"K": _uniform(ks[0], (KERNEL, KERNEL, ci, co), fan), "b": _uniform(ks[1], (co,), fan)})
            else:
                fan2 = co * KERNEL * KERNEL
                out.append({"K1": _uniform(ks[0], (KERNEL, KERNEL, ci, co), fan), "b1": _uniform(ks[1], (co,), fan),
                            "K2": _uniform(ks[2], (KERNEL, KERNEL, co, co), fan2),
                            "b2": _uniform(ks[3], (co,), fan2), "S": _uniform(ks[4], (1, 1, ci, co), ci)})
        return tuple(out)

    def images(self, x: jax.Array) -> jax.Array:
        """Flat inputs (B, H W C) -> padded images (B, H_0, W_0, C)."""
        z = x.reshape(x.shape[0], *self.image_shape)
        if self.pad:
            z = jnp.pad(z, ((0, 0), (self.pad, self.pad), (self.pad, self.pad), (0, 0)))
        return z

    def _apply(self, params: tuple[dict, ...], x: jax.Array) -> jax.Array:
        f = get_activation(self.activation).f
        z = self.images(x)
        for p in params:
            if self.backbone == "cnn":
                z = f(conv(z, p["K"]) + p["b"])
            else:
                u = f(conv(z, p["K1"]) + p["b1"])
                z = f(conv(u, p["K2"]) + p["b2"] + conv(z, p["S"]))
            z = max_pool(z)
        return z.reshape(z.shape[0], -1)

    def __call__(self, params: tuple[dict, ...], x: jax.Array) -> jax.Array:
        """h_0 (B, d_0) of flat images x (B, H W C); in chunks of ``chunk`` samples when B is larger."""
        return in_chunks(lambda xc: self._apply(params, xc), x, self.chunk)


def in_chunks(f, x: jax.Array, chunk: int) -> jax.Array:
    """f(x) for a per-sample map f of a batch x (B, ...) -> (B, ...), ``chunk`` samples at a time (``lax.map``)
    when B is larger (the last chunk zero-padded, its padding dropped): the same values, the memory of f's
    intermediates bounded by one chunk's."""
    n = x.shape[0]
    if n <= chunk:
        return f(x)
    m = -(-n // chunk)
    xs = jnp.pad(x, ((0, m * chunk - n),) + ((0, 0),) * (x.ndim - 1)).reshape(m, chunk, *x.shape[1:])
    out = jax.lax.map(f, xs)
    return out.reshape(m * chunk, *out.shape[2:])[:n]
