"""Downloadable image data sets: MNIST, Fashion-MNIST, EMNIST, CIFAR-10, SVHN, STL-10 and MedMNIST.

Every loader has the signature ``fn(data_dir: Path | None = None, verify: bool = True) -> Dataset``.
The files are looked for in the data folder first (see :func:`data_folder`) and fetched from the
canonical source otherwise, with checksum verification (``$PLASTICLAB_OFFLINE=1`` forbids that).
``verify=False`` skips the checksums of files found locally (structure is always checked);
downloads are always verified. Images come back as float32 in [0, 1] flattened to (n, H*W*C)
in HWC order, with ``image_shape=(H, W, C)``; labels as int32.
"""

from __future__ import annotations

import gzip
import importlib
import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import DataError, Dataset, default_data_dir, register_dataset
from .download import atomic_copy, check_file, fetch

_VERIFY_NOTE = "(A loader's verify=False skips the checksum of files you placed in the data folder yourself.)"
_FIX = "delete it so it is downloaded again, or replace it with a correct copy"

# --------------------------------------------------------------------------------------------------
# shared helpers: the data folder, finding-or-fetching a file, the IDX reader, conversions
# --------------------------------------------------------------------------------------------------


def data_folder(data_dir: Path | None, folders: Sequence[str], markers: Sequence[str]) -> Path:
    """The folder that holds (or will hold) a data set's files.

    ``data_dir`` None: ``default_data_dir() / folders[0]`` (or another of ``folders`` there that
    already holds the files). Otherwise ``data_dir`` may be the data set's own folder or a parent
    containing ``<folder>/``: the first of ``data_dir``, ``data_dir/<folder>`` that contains any of
    ``markers`` (relative file paths) wins; if none does, files are downloaded into ``data_dir``
    when it is itself named like one of ``folders``, else into ``data_dir / folders[0]``.
    """
    if data_dir is None:
        base = default_data_dir()
        candidates = [base / f for f in folders]
        fallback = candidates[0]
    else:
        data_dir = Path(data_dir).expanduser()
        candidates = [data_dir, *(data_dir / f for f in folders)]
        fallback = data_dir if data_dir.name in folders else data_dir / folders[0]
    for c in candidates:
        if any((c / m).exists() for m in markers):
            return c
    return fallback


@dataclass(frozen=True)
class _File:
    """One downloadable file: canonical name and URL, md5, and other accepted local names."""

    name: str
    url: str
    md5: str | None = None
    content_md5: bool = False  # md5 is of the gunzipped content (so it also holds for the uncompressed file)
    alt: tuple[str, ...] = ()  # other names for the same bytes (verified with md5)
    uncompressed: str | None = None  # name of the gunzipped variant (verified only if content_md5)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alt, *((self.uncompressed,) if self.uncompressed else ()))

    def note(self) -> str:
        others = [n for n in self.names if n != self.name]
        return f"(Also accepted under the name{'s' if len(others) > 1 else ''} {', '.join(others)}.)" if others else ""


def _get(root: Path, f: _File, verify: bool) -> Path:
    """The local copy of ``f`` in ``root`` (checksum-verified if ``verify``), downloading it if absent."""
    for name in f.names:
        p = root / name
        if p.is_file():
            if verify and f.md5 and (name != f.uncompressed or f.content_md5):
                check_file(p, md5=f.md5, decompress=f.content_md5, url=f.url, note=_VERIFY_NOTE)
            return p
    return fetch(f.url, root / f.name, md5=f.md5, decompress=f.content_md5, note=f.note())


_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Read an IDX array (the MNIST file format) from a file or bytes, gzipped or not.

    The header's shape is checked against the data size; anything malformed raises
    :class:`DataError` naming ``name`` (default: the path).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw, name = bytes(source), name or "<IDX bytes>"
    else:
        path = Path(source)
        raw, name = path.read_bytes(), name or str(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{name} is a corrupt gzip file ({err}); {_FIX}.") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{name} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); {_FIX}.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name} is truncated (incomplete IDX header); {_FIX}.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{name} is truncated or corrupt: its header announces shape {tuple(dims)} "
                        f"({expected} bytes) but it holds {len(raw)} bytes; {_FIX}.")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


def _to_unit(x: np.ndarray, source: str) -> np.ndarray:
    """uint8 images (n, ...) -> float32 (n, d) in [0, 1]."""
    if x.dtype != np.uint8:
        raise DataError(f"{source}: expected uint8 pixels, found {x.dtype}; {_FIX}.")
    out = x.reshape(len(x), -1).astype(np.float32)
    out /= 255.0
    return out


def _labels(y: np.ndarray, n_classes: int, source: str, offset: int = 0) -> np.ndarray:
    """Class labels as int32 (n,), shifted down by ``offset`` and checked to lie in [0, n_classes)."""
    y = np.asarray(y).reshape(-1).astype(np.int32) - offset
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"{source}: labels outside {offset}..{n_classes - 1 + offset} "
                        f"(found {y.min() + offset}..{y.max() + offset}); {_FIX}.")
    return y


def _pair(x: np.ndarray, y: np.ndarray, xname: str, yname: str, shape: tuple[int, ...]) -> None:
    """Check that images have per-example ``shape`` and that images and labels agree in number."""
    if tuple(x.shape[1:]) != shape:
        raise DataError(f"{xname}: expected images of shape {shape}, found {tuple(x.shape[1:])}; {_FIX}.")
    if len(x) != len(y):
        raise DataError(f"{xname} holds {len(x)} images but {yname} holds {len(y)} labels; {_FIX}.")


# --------------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST (IDX files)
# --------------------------------------------------------------------------------------------------

_IDX_STEMS = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
              "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}

# md5 of the DECOMPRESSED IDX content: holds for the .gz from any mirror (gzip bytes differ between
# mirrors / recompressions) and for the uncompressed file alike.
_MNIST_MD5 = {"train_x": "6bbc9ace898e44ae57da46a324031adb", "train_y": "a25bea736e30d166cdddb491f175f624",
              "test_x": "2646ac647ad5339dbf082846283269ea", "test_y": "27ae3e4e09519cfbb04c329615203637"}
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# md5 of the canonical .gz files (published in the Fashion-MNIST README); an uncompressed copy is
# only structure-checked since we do not pin the md5 of the decompressed content.
_FASHION_MD5 = {"train_x": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_y": "25c81989df183df01b3e8a0aad5dffbe",
                "test_x": "bef4ecab320f06d8554ea6380940ec79", "test_y": "bb300cfdad3c16e7a12a480ee83cd310"}
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot"]


def _load_idx_set(name: str, data_dir: Path | None, folder: str, base_url: str, md5s: dict[str, str],
                  content_md5: bool, classes: list[str], verify: bool) -> Dataset:
    files = {k: _File(f"{stem}.gz", base_url + f"{stem}.gz", md5s[k], content_md5, uncompressed=stem)
             for k, stem in _IDX_STEMS.items()}
    root = data_folder(data_dir, (folder,), [n for f in files.values() for n in f.names])
    paths = {k: _get(root, f, verify) for k, f in files.items()}
    arrays = {k: read_idx(p) for k, p in paths.items()}
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        xname, yname = str(paths[f"{split}_x"]), str(paths[f"{split}_y"])
        if y.ndim != 1:
            raise DataError(f"{yname}: expected a 1-d label array, found shape {y.shape}; {_FIX}.")
        _pair(x, y, xname, yname, (28, 28))
        out += [_to_unit(x, xname), _labels(y, len(classes), yname)]
    return Dataset(name, *out, n_classes=len(classes), image_shape=(28, 28, 1),
                   meta={"classes": classes, "source": str(root)})


@register_dataset("mnist", "MNIST handwritten digits, 28x28 grey (60000 train / 10000 test, 10 classes; ~11 MB)")
def load_mnist(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """MNIST from the four IDX files (``.gz`` or uncompressed) in the ``mnist`` folder."""
    return _load_idx_set("mnist", data_dir, "mnist", _MNIST_URL, _MNIST_MD5, True,
                         [str(i) for i in range(10)], verify)


@register_dataset("fashion_mnist",
                  "Fashion-MNIST clothing images, 28x28 grey (60000 train / 10000 test, 10 classes; ~30 MB)")
def load_fashion_mnist(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """Fashion-MNIST from the four IDX files (``.gz`` or uncompressed) in the ``fashion_mnist`` folder."""
    return _load_idx_set("fashion_mnist", data_dir, "fashion_mnist", _FASHION_URL, _FASHION_MD5, False,
                         _FASHION_CLASSES, verify)


# --------------------------------------------------------------------------------------------------
# EMNIST (IDX files inside NIST's gzip.zip)
# --------------------------------------------------------------------------------------------------

_EMNIST_ZIP = _File("gzip.zip", "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                    "58c8d27c78d21e728a6bc7b3cc06412e", alt=("emnist.zip",))
_EMNIST_SUBDIRS = ("", "gzip", "raw")  # where extracted files may sit inside the emnist folder
_EMNIST_BALANCED = [str(i) for i in range(10)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + list("abdefghnqrt")
_EMNIST_LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def _load_emnist(split: str, data_dir: Path | None, classes: list[str], offset: int, verify: bool) -> Dataset:
    # The individual members of the zip are only structure-checked (the zip itself carries the md5).
    stems = {k: f"emnist-{split}-{stem}" for k, stem in _IDX_STEMS.items()}
    local_names = [f"{sd}/{s}{ext}".lstrip("/")
                   for s in stems.values() for sd in _EMNIST_SUBDIRS for ext in (".gz", "")]
    root = data_folder(data_dir, ("emnist", f"emnist_{split}"), [*_EMNIST_ZIP.names, *local_names])

    def local(stem: str) -> Path | None:
        for sd in _EMNIST_SUBDIRS:
            for ext in (".gz", ""):
                p = root / sd / f"{stem}{ext}"
                if p.is_file():
                    return p
        return None

    found = {k: local(s) for k, s in stems.items()}
    if all(found.values()):
        arrays = {k: read_idx(p) for k, p in found.items()}
        names = {k: str(p) for k, p in found.items()}
    else:
        zpath = _get(root, _EMNIST_ZIP, verify)
        arrays, names = {}, {}
        try:
            with zipfile.ZipFile(zpath) as zf:
                members = {Path(m).name: m for m in zf.namelist()}
                for k, stem in stems.items():
                    member = members.get(f"{stem}.gz") or members.get(stem)
                    if member is None:
                        raise DataError(f"{zpath} has no member {stem}.gz; it is not the EMNIST gzip.zip. "
                                        f"To fix: {_FIX}.")
                    names[k] = f"{zpath}:{member}"
                    arrays[k] = read_idx(zf.read(member), names[k])
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise DataError(f"{zpath} is not a valid zip archive ({err}); {_FIX}.") from err
    out = []
    for part in ("train", "test"):
        x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
        _pair(x, y, names[f"{part}_x"], names[f"{part}_y"], (28, 28))
        x = x.transpose(0, 2, 1)  # EMNIST stores images transposed; make them upright
        out += [_to_unit(x, names[f"{part}_x"]), _labels(y, len(classes), names[f"{part}_y"], offset)]
    return Dataset(f"emnist_{split}", *out, n_classes=len(classes), image_shape=(28, 28, 1),
                   meta={"classes": classes, "source": str(root)})


@register_dataset("emnist_balanced", "EMNIST Balanced digits+letters, 28x28 grey (112800 train / 18800 test, "
                                     "47 classes; ~540 MB zip shared with emnist_letters)")
def load_emnist_balanced(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """EMNIST Balanced (47 classes) from NIST's ``gzip.zip`` or its extracted files in the ``emnist`` folder."""
    return _load_emnist("balanced", data_dir, _EMNIST_BALANCED, 0, verify)


@register_dataset("emnist_letters", "EMNIST Letters a-z, 28x28 grey (124800 train / 20800 test, 26 classes; "
                                    "~540 MB zip shared with emnist_balanced)")
def load_emnist_letters(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """EMNIST Letters (files label 1..26, returned as 0..25) from ``gzip.zip`` or its extracted files."""
    return _load_emnist("letters", data_dir, _EMNIST_LETTERS, 1, verify)


# --------------------------------------------------------------------------------------------------
# CIFAR-10 (pickled batches)
# --------------------------------------------------------------------------------------------------

_CIFAR_TAR = _File("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                   "c58f30108f718f92721af3b95e74349a")
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_MD5 = {"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
              "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
              "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e"}
_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only NumPy arrays and plain containers, so a tampered file cannot run code."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    _NUMPY_CORE = {("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        parts = module.split(".")
        if len(parts) == 3 and parts[:2] in (["numpy", "core"], ["numpy", "_core"]) \
                and (parts[2], name) in self._NUMPY_CORE:
            # numpy.core.X (old pickles) and numpy._core.X (NumPy >= 2) name the same function
            for mod in (f"numpy._core.{parts[2]}", f"numpy.core.{parts[2]}"):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _cifar_batch(raw: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (n, 32, 32, 3) in HWC, labels) from one pickled CIFAR-10 batch."""
    try:
        d = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # any unpickling failure means the file is not a CIFAR batch
        raise DataError(f"{source} is not a readable CIFAR-10 python batch ({err}); {_FIX}.") from err
    data = d.get(b"data", d.get("data")) if isinstance(d, dict) else None
    labels = d.get(b"labels", d.get("labels")) if isinstance(d, dict) else None
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or labels is None:
        raise DataError(f"{source} is not a CIFAR-10 python batch (expected b'data' of shape (n, 3072) "
                        f"and b'labels'); {_FIX}.")
    labels = np.asarray(labels)
    if len(labels) != len(data):
        raise DataError(f"{source} holds {len(data)} images but {len(labels)} labels; {_FIX}.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels  # CHW -> HWC


@register_dataset("cifar10", "CIFAR-10 natural images, 32x32 RGB (50000 train / 10000 test, 10 classes; ~163 MB)")
def load_cifar10(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """CIFAR-10 from ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py/`` in the ``cifar10`` folder."""
    batches = list(_CIFAR_MD5)
    root = data_folder(data_dir, ("cifar10",), [_CIFAR_TAR.name, f"{_CIFAR_DIR}/data_batch_1", "data_batch_1"])
    bdir = next((d for d in (root, root / _CIFAR_DIR) if all((d / b).is_file() for b in batches)), None)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if bdir is not None:
        for b in batches:
            p = bdir / b
            if verify:
                check_file(p, md5=_CIFAR_MD5[b], url=_CIFAR_TAR.url, note=_VERIFY_NOTE)
            parts[b] = _cifar_batch(p.read_bytes(), str(p))
        source = bdir
    else:
        tar = _get(root, _CIFAR_TAR, verify)
        try:
            with tarfile.open(tar, "r:gz") as tf:
                for m in tf:
                    b = Path(m.name).name
                    if m.isfile() and b in _CIFAR_MD5 and b not in parts:
                        parts[b] = _cifar_batch(tf.extractfile(m).read(), f"{tar}:{m.name}")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DataError(f"{tar} is not a valid .tar.gz archive ({err}); {_FIX}.") from err
        missing = [b for b in batches if b not in parts]
        if missing:
            raise DataError(f"{tar} lacks {', '.join(missing)}; it is not cifar-10-python.tar.gz. To fix: {_FIX}.")
        source = tar
    xtr = np.concatenate([parts[b][0] for b in batches[:5]])
    ytr = np.concatenate([parts[b][1] for b in batches[:5]])
    xte, yte = parts["test_batch"]
    return Dataset("cifar10", _to_unit(xtr, str(source)), _labels(ytr, 10, str(source)),
                   _to_unit(xte, str(source)), _labels(yte, 10, str(source)), n_classes=10,
                   image_shape=(32, 32, 3), meta={"classes": _CIFAR_CLASSES, "source": str(source)})


# --------------------------------------------------------------------------------------------------
# SVHN (MATLAB files)
# --------------------------------------------------------------------------------------------------

_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_SVHN = {"train": _File("train_32x32.mat", _SVHN_URL + "train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
         "test": _File("test_32x32.mat", _SVHN_URL + "test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3")}


@register_dataset("svhn", "SVHN street-view house-number digits, 32x32 RGB (73257 train / 26032 test, "
                          "10 classes; ~245 MB)")
def load_svhn(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """SVHN (cropped digits) from ``train_32x32.mat`` / ``test_32x32.mat``; label 10 (digit 0) becomes 0."""
    import scipy.io

    root = data_folder(data_dir, ("svhn",), [f.name for f in _SVHN.values()])
    out = []
    for split in ("train", "test"):
        p = _get(root, _SVHN[split], verify)
        try:
            m = scipy.io.loadmat(p)
        except Exception as err:  # scipy raises several types for malformed files
            raise DataError(f"{p} is not a readable MATLAB file ({err}); {_FIX}.") from err
        x, y = m.get("X"), m.get("y")
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y is None:
            raise DataError(f"{p}: expected 'X' of shape (32, 32, 3, n) and 'y'; {_FIX}.")
        y = np.asarray(y).reshape(-1).astype(np.int32)
        y[y == 10] = 0
        x = x.transpose(3, 0, 1, 2)
        _pair(x, y, str(p), str(p), (32, 32, 3))
        out += [_to_unit(x, str(p)), _labels(y, 10, str(p))]
    return Dataset("svhn", *out, n_classes=10, image_shape=(32, 32, 3),
                   meta={"classes": [str(i) for i in range(10)], "source": str(root)})


# --------------------------------------------------------------------------------------------------
# STL-10 (raw binary files)
# --------------------------------------------------------------------------------------------------

_STL_TAR = _File("stl10_binary.tar.gz", "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                 "91f7769df0f17e558f3565bffb0c7dfb")
_STL_DIR = "stl10_binary"
_STL_MD5 = {"train_X.bin": "918c2871b30a85fa023e0c44e0bee87f", "train_y.bin": "5a34089d4802c674881badbb80307741",
            "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82", "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e"}
_STL_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


@register_dataset("stl10", "STL-10 labelled images, 96x96 RGB (5000 train / 8000 test, 10 classes; ~2.6 GB)")
def load_stl10(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """STL-10's labelled splits from ``stl10_binary/`` or ``stl10_binary.tar.gz`` in the ``stl10`` folder.

    From the tarball only the four labelled files are extracted (once) into ``stl10_binary/``.
    """
    names = list(_STL_MD5)
    root = data_folder(data_dir, ("stl10",), [_STL_TAR.name, f"{_STL_DIR}/train_X.bin", "train_X.bin"])
    bdir = next((d for d in (root, root / _STL_DIR) if all((d / n).is_file() for n in names)), None)
    if bdir is None:
        tar = _get(root, _STL_TAR, verify)
        bdir = root / _STL_DIR
        todo = {n for n in names if not (bdir / n).is_file()}
        try:
            with tarfile.open(tar, "r:gz") as tf:
                for m in tf:
                    n = Path(m.name).name
                    if m.isfile() and n in todo:
                        atomic_copy(tf.extractfile(m), bdir / n)
                        todo.discard(n)
                        if not todo:
                            break
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DataError(f"{tar} is not a valid .tar.gz archive ({err}); {_FIX}.") from err
        if todo:
            raise DataError(f"{tar} lacks {', '.join(sorted(todo))}; it is not stl10_binary.tar.gz. To fix: {_FIX}.")
    out = []
    for split in ("train", "test"):
        xp, yp = bdir / f"{split}_X.bin", bdir / f"{split}_y.bin"
        if verify:
            for p in (xp, yp):
                check_file(p, md5=_STL_MD5[p.name], url=_STL_TAR.url, note=_VERIFY_NOTE)
        x = np.fromfile(xp, dtype=np.uint8)
        if x.size % (3 * 96 * 96):
            raise DataError(f"{xp} holds {x.size} bytes, not a whole number of 3x96x96 images; {_FIX}.")
        x = x.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)  # column-major (C, W, H) -> (H, W, C)
        y = np.fromfile(yp, dtype=np.uint8)
        _pair(x, y, str(xp), str(yp), (96, 96, 3))
        out += [_to_unit(x, str(xp)), _labels(y, 10, str(yp), offset=1)]
    return Dataset("stl10", *out, n_classes=10, image_shape=(96, 96, 3),
                   meta={"classes": _STL_CLASSES, "source": str(bdir)})


# --------------------------------------------------------------------------------------------------
# MedMNIST (.npz files, 28x28)
# --------------------------------------------------------------------------------------------------

_MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{}.npz?download=1"
_MEDMNIST_MD5 = {"pathmnist": "a8b06965200029087d5bd730944a56c1", "chestmnist": "02c8a6516a18b556561a56cbdd36c4a8"}
_PATH_CLASSES = ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
                 "cancer-associated stroma", "colorectal adenocarcinoma epithelium"]
_CHEST_CLASSES = ["atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
                  "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia"]


def _load_medmnist(name: str, data_dir: Path | None, classes: list[str], multilabel: bool, verify: bool) -> Dataset:
    f = _File(f"{name}.npz", _MEDMNIST_URL.format(name), _MEDMNIST_MD5[name])
    root = data_folder(data_dir, ("medmnist", name), [f.name])
    p = _get(root, f, verify)
    k = len(classes)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except Exception as err:  # zipfile / format errors
        raise DataError(f"{p} is not a readable .npz file ({err}); {_FIX}.") from err
    split: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shape = None
    for s in ("train", "val", "test"):
        if f"{s}_images" not in arrays or f"{s}_labels" not in arrays:
            raise DataError(f"{p} lacks {s}_images / {s}_labels; it is not a MedMNIST file. To fix: {_FIX}.")
        x, y = arrays[f"{s}_images"], arrays[f"{s}_labels"]
        if x.ndim == 3:  # greyscale (n, H, W)
            x = x[..., None]
        if x.ndim != 4:
            raise DataError(f"{p}: {s}_images has shape {x.shape}, expected (n, H, W[, C]); {_FIX}.")
        shape = tuple(int(d) for d in x.shape[1:])
        _pair(x, y, f"{p}:{s}_images", f"{p}:{s}_labels", shape)
        if multilabel:
            y = np.asarray(y).reshape(len(y), -1)
            if y.shape[1] != k:
                raise DataError(f"{p}: {s}_labels has {y.shape[1]} columns, expected {k}; {_FIX}.")
            y = y.astype(np.float32)
        else:
            y = _labels(y, k, f"{p}:{s}_labels")
        split[s] = (_to_unit(x, f"{p}:{s}_images"), y)
    return Dataset(name, *split["train"], *split["test"], n_classes=k,
                   task="multilabel" if multilabel else "classification", image_shape=shape,
                   meta={"classes": classes, "x_val": split["val"][0], "y_val": split["val"][1], "source": str(p)})


@register_dataset("pathmnist", "MedMNIST PathMNIST colon pathology, 28x28 RGB (89996 train / 7180 test, "
                               "10004 val in meta; 9 classes; ~206 MB)")
def load_pathmnist(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """PathMNIST from ``pathmnist.npz`` in the ``medmnist`` folder; the val split is in ``meta['x_val'/'y_val']``."""
    return _load_medmnist("pathmnist", data_dir, _PATH_CLASSES, False, verify)


@register_dataset("chestmnist", "MedMNIST ChestMNIST chest X-rays, 28x28 grey (78468 train / 22433 test, "
                                "11219 val in meta; 14 binary labels, multilabel; ~82 MB)")
def load_chestmnist(data_dir: Path | None = None, verify: bool = True) -> Dataset:
    """ChestMNIST (multilabel: y float32 (n, 14)) from ``chestmnist.npz``; val split in ``meta``."""
    return _load_medmnist("chestmnist", data_dir, _CHEST_CLASSES, True, verify)
