"""Image loaders and the download helper, on tiny files written in the real formats (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import plasticlab.data.images as images  # registers the loaders (also done by plasticlab.data)
from plasticlab.data.base import DataError, available_datasets, load_dataset
from plasticlab.data.download import fetch, md5_file, sha256_file

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
IMAGE_SETS = ["mnist", "fashion_mnist", "emnist_balanced", "emnist_letters", "cifar10", "svhn", "stl10",
              "pathmnist", "chestmnist"]
IDX_NAMES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    """Every test runs offline with an empty default data folder."""
    monkeypatch.setenv("PLASTICLAB_OFFLINE", "1")
    monkeypatch.setenv("PLASTICLAB_DATA", str(tmp_path / "default_cache"))


# ----------------------------------------------------------------------------- file writers


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(arr)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_idx_set(rng, n_train=5, n_test=3, n_classes=10, low=0):
    return {"train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train_y": rng.integers(low, low + n_classes, n_train).astype(np.uint8),
            "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "test_y": rng.integers(low, low + n_classes, n_test).astype(np.uint8)}


def write_idx_set(folder: Path, arrays: dict, gz: bool = True, prefix: str = "") -> None:
    for k, stem in IDX_NAMES.items():
        write_idx(folder / f"{prefix}{stem}{'.gz' if gz else ''}", arrays[k], gz)


def check_basic(ds, n_train, n_test, shape, n_classes):
    d = int(np.prod(shape))
    assert ds.x_train.shape == (n_train, d) and ds.x_test.shape == (n_test, d)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert ds.image_shape == shape and ds.n_classes == n_classes
    if ds.task == "classification":
        assert ds.y_train.dtype == np.int32 and ds.y_train.shape == (n_train,)
        assert ds.y_test.dtype == np.int32 and ds.y_test.shape == (n_test,)


# ----------------------------------------------------------------------------- registry and folder rule


def test_all_image_sets_registered():
    assert set(IMAGE_SETS) <= set(available_datasets())


def test_data_folder_rule(tmp_path):
    own = tmp_path / "own"
    (own).mkdir()
    (own / "marker.bin").write_bytes(b"x")
    assert images.data_folder(own, ("mnist",), ["marker.bin"]) == own  # files directly in data_dir
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "marker.bin").write_bytes(b"x")
    assert images.data_folder(tmp_path, ("mnist",), ["marker.bin"]) == tmp_path / "mnist"  # parent of <name>/
    empty = tmp_path / "empty"
    assert images.data_folder(empty, ("mnist",), ["marker.bin"]) == empty / "mnist"  # download target
    assert images.data_folder(tmp_path / "x" / "mnist", ("mnist",), ["m"]) == tmp_path / "x" / "mnist"
    assert images.data_folder(None, ("mnist",), ["m"]) == tmp_path / "default_cache" / "mnist"


# ----------------------------------------------------------------------------- MNIST / Fashion-MNIST


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_sets(tmp_path, name, gz):
    arrays = fake_idx_set(np.random.default_rng(0))
    write_idx_set(tmp_path / name, arrays, gz=gz)
    for data_dir in (tmp_path, tmp_path / name):  # parent folder or the data set's own folder
        ds = load_dataset(name, data_dir=data_dir, verify=False)
        check_basic(ds, 5, 3, (28, 28, 1), 10)
        np.testing.assert_allclose(ds.x_train, arrays["train_x"].reshape(5, -1) / 255.0, atol=1e-7)
        np.testing.assert_array_equal(ds.y_test, arrays["test_y"])


def test_mnist_wrong_checksum_names_file(tmp_path):
    write_idx_set(tmp_path, fake_idx_set(np.random.default_rng(1)))
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "6bbc9ace898e44ae57da46a324031adb" in msg
    assert "delete" in msg.lower() and "PLASTICLAB_DATA" in msg


def test_fashion_wrong_checksum_gz(tmp_path):
    write_idx_set(tmp_path, fake_idx_set(np.random.default_rng(1)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


def test_idx_truncated_and_bad_magic(tmp_path):
    arrays = fake_idx_set(np.random.default_rng(2))
    write_idx_set(tmp_path, arrays, gz=False)
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)
    p.write_bytes(b"\x08\x03" + p.read_bytes()[2:])
    with pytest.raises(DataError, match="not an IDX file"):
        images.read_idx(p)
    q = tmp_path / "x.gz"
    q.write_bytes(gzip.compress(b"abc")[:-4])
    with pytest.raises(DataError, match="x.gz"):
        images.read_idx(q)


def test_read_idx_bytes_other_dtype():
    a = np.arange(6, dtype=">i4").reshape(2, 3)
    raw = struct.pack(">BBBB", 0, 0, 0x0C, 2) + struct.pack(">2I", 2, 3) + a.tobytes()
    np.testing.assert_array_equal(images.read_idx(raw), a)
    np.testing.assert_array_equal(images.read_idx(gzip.compress(raw)), a)


# ----------------------------------------------------------------------------- EMNIST


def emnist_arrays(split, rng):
    n_classes, low = (47, 0) if split == "balanced" else (26, 1)
    arrays = fake_idx_set(rng, 4, 2, n_classes, low)
    arrays["train_x"][0] = 0
    arrays["train_x"][0, 0, 5] = 255  # stored transposed: row 0, column 5
    if split == "letters":
        arrays["train_y"][:2] = [1, 26]
    return arrays


def write_emnist_zip(path: Path, splits: dict) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for split, arrays in splits.items():
            for k, stem in IDX_NAMES.items():
                zf.writestr(f"gzip/emnist-{split}-{stem}.gz", gzip.compress(idx_bytes(arrays[k])))


def check_emnist(ds, split, arrays):
    n_classes = 47 if split == "balanced" else 26
    check_basic(ds, 4, 2, (28, 28, 1), n_classes)
    img = ds.x_train[0].reshape(28, 28)
    assert img[5, 0] == 1.0 and img.sum() == 1.0  # transposed back: row 5, column 0
    np.testing.assert_allclose(ds.x_test.reshape(-1, 28, 28), arrays["test_x"].transpose(0, 2, 1) / 255.0, atol=1e-7)
    offset = 1 if split == "letters" else 0
    np.testing.assert_array_equal(ds.y_train, arrays["train_y"].astype(np.int32) - offset)
    if split == "letters":
        assert ds.y_train[:2].tolist() == [0, 25]
        assert ds.y_train.min() >= 0 and ds.y_train.max() <= 25


def test_emnist_from_zip(tmp_path):
    rng = np.random.default_rng(3)
    splits = {s: emnist_arrays(s, rng) for s in ("balanced", "letters")}
    (tmp_path / "emnist").mkdir()
    write_emnist_zip(tmp_path / "emnist" / "gzip.zip", splits)
    for split, arrays in splits.items():
        ds = load_dataset(f"emnist_{split}", data_dir=tmp_path, verify=False)
        check_emnist(ds, split, arrays)
    with pytest.raises(DataError, match=r"gzip\.zip.*58c8d27c78d21e728a6bc7b3cc06412e"):
        load_dataset("emnist_letters", data_dir=tmp_path)  # verify=True: the fake zip fails its checksum


@pytest.mark.parametrize("layout", ["gz_in_gzip_subdir", "raw_in_folder"])
def test_emnist_extracted(tmp_path, layout):
    arrays = emnist_arrays("letters", np.random.default_rng(4))
    if layout == "gz_in_gzip_subdir":
        write_idx_set(tmp_path / "gzip", arrays, gz=True, prefix="emnist-letters-")
    else:
        write_idx_set(tmp_path, arrays, gz=False, prefix="emnist-letters-")
    check_emnist(load_dataset("emnist_letters", data_dir=tmp_path), "letters", arrays)


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_batches(rng):
    out = {}
    for i, b in enumerate(CIFAR_BATCHES):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        out[b] = {b"batch_label": b.encode(), b"labels": [int(v) for v in rng.integers(0, 10, 2)], b"data": data,
                  b"filenames": [b"a.png", b"b.png"]}
    out["data_batch_1"][b"data"][0] = 0
    out["data_batch_1"][b"data"][0, 1 * 1024 + 2 * 32 + 3] = 200  # green channel, row 2, column 3
    return out


def write_cifar_folder(folder: Path, batches) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (b, d) in enumerate(batches.items()):
        raw = pickle.dumps(d, protocol=2 if i % 2 else pickle.HIGHEST_PROTOCOL)
        # the real batches were pickled with NumPy 1 (numpy.core.multiarray); emulate that in some of them
        (folder / b).write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def check_cifar(ds, batches):
    check_basic(ds, 10, 2, (32, 32, 3), 10)
    img = ds.x_train[0].reshape(32, 32, 3)
    assert img[2, 3, 1] == pytest.approx(200 / 255) and np.count_nonzero(img) == 1
    expected = np.concatenate([batches[b][b"data"] for b in CIFAR_BATCHES[:5]]).reshape(-1, 3, 32, 32)
    np.testing.assert_allclose(ds.x_train.reshape(-1, 32, 32, 3), expected.transpose(0, 2, 3, 1) / 255.0, atol=1e-7)
    assert ds.y_train.tolist() == sum((batches[b][b"labels"] for b in CIFAR_BATCHES[:5]), [])
    assert ds.y_test.tolist() == batches["test_batch"][b"labels"]


def test_cifar10_extracted_folder(tmp_path):
    batches = cifar_batches(np.random.default_rng(5))
    write_cifar_folder(tmp_path / "cifar10" / "cifar-10-batches-py", batches)
    check_cifar(load_dataset("cifar10", data_dir=tmp_path, verify=False), batches)
    check_cifar(load_dataset("cifar10", data_dir=tmp_path / "cifar10" / "cifar-10-batches-py", verify=False), batches)
    with pytest.raises(DataError, match=r"data_batch_1.*c99cafc152244af753f735de768cd75f"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar10_tarball(tmp_path):
    batches = cifar_batches(np.random.default_rng(6))
    src = tmp_path / "src" / "cifar-10-batches-py"
    write_cifar_folder(src, batches)
    tar = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(src, arcname="cifar-10-batches-py")
    check_cifar(load_dataset("cifar10", data_dir=tmp_path, verify=False), batches)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "cifar-10-python.tar.gz" in str(err.value) and "c58f30108f718f92721af3b95e74349a" in str(err.value)


def test_cifar10_refuses_code_in_pickles(tmp_path):
    batches = cifar_batches(np.random.default_rng(7))
    write_cifar_folder(tmp_path, batches)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="test_batch.*refusing"):
        load_dataset("cifar10", data_dir=tmp_path, verify=False)


# ----------------------------------------------------------------------------- SVHN


def test_svhn(tmp_path):
    rng = np.random.default_rng(8)
    folder = tmp_path / "svhn"
    folder.mkdir()
    mats = {}
    for split, n in (("train", 4), ("test", 3)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0, 0] = 10
        mats[split] = (X, y)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": X, "y": y})
    ds = load_dataset("svhn", data_dir=tmp_path, verify=False)
    check_basic(ds, 4, 3, (32, 32, 3), 10)
    X, y = mats["train"]
    assert ds.x_train[1].reshape(32, 32, 3)[4, 5, 2] == pytest.approx(X[4, 5, 2, 1] / 255)
    np.testing.assert_allclose(ds.x_train.reshape(-1, 32, 32, 3), X.transpose(3, 0, 1, 2) / 255.0, atol=1e-7)
    assert ds.y_train[0] == 0
    np.testing.assert_array_equal(ds.y_train, np.where(y.ravel() == 10, 0, y.ravel()))
    with pytest.raises(DataError, match=r"train_32x32\.mat.*e26dedcc434d2e4c54c9b2d4a06d8373"):
        load_dataset("svhn", data_dir=folder)


# ----------------------------------------------------------------------------- STL-10


def stl_files(rng):
    files, imgs = {}, {}
    for split, n in (("train", 3), ("test", 2)):
        img = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)  # HWC
        img[0] = 0
        img[0, 1, 2, 0] = 255  # red at row 1, column 2
        y = rng.integers(1, 11, n).astype(np.uint8)
        y[0] = 10
        # the binary format is column-major: (C, W, H) with H varying fastest
        files[f"{split}_X.bin"] = np.ascontiguousarray(img.transpose(0, 3, 2, 1)).tobytes()
        files[f"{split}_y.bin"] = y.tobytes()
        imgs[split] = (img, y)
    return files, imgs


def check_stl(ds, imgs):
    check_basic(ds, 3, 2, (96, 96, 3), 10)
    first = ds.x_train[0].reshape(96, 96, 3)
    assert first[1, 2, 0] == 1.0 and first.sum() == 1.0
    np.testing.assert_allclose(ds.x_test.reshape(-1, 96, 96, 3), imgs["test"][0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_train, imgs["train"][1].astype(np.int32) - 1)
    assert ds.y_train[0] == 9 and ds.y_train.min() >= 0


def test_stl10_extracted(tmp_path):
    files, imgs = stl_files(np.random.default_rng(9))
    folder = tmp_path / "stl10" / "stl10_binary"
    folder.mkdir(parents=True)
    for n, raw in files.items():
        (folder / n).write_bytes(raw)
    check_stl(load_dataset("stl10", data_dir=tmp_path, verify=False), imgs)
    with pytest.raises(DataError, match=r"train_X\.bin.*918c2871b30a85fa023e0c44e0bee87f"):
        load_dataset("stl10", data_dir=tmp_path)


def test_stl10_tarball(tmp_path):
    files, imgs = stl_files(np.random.default_rng(10))
    files["class_names.txt"] = b"airplane\n"
    tar = tmp_path / "stl10_binary.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        for n, raw in files.items():
            info = tarfile.TarInfo(f"stl10_binary/{n}")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    check_stl(load_dataset("stl10", data_dir=tmp_path, verify=False), imgs)
    assert (tmp_path / "stl10_binary" / "train_X.bin").is_file()  # labelled files extracted once
    assert not (tmp_path / "stl10_binary" / "class_names.txt").exists()


# ----------------------------------------------------------------------------- MedMNIST


def test_pathmnist(tmp_path):
    rng = np.random.default_rng(11)
    arrays = {}
    for s, n in (("train", 6), ("val", 2), ("test", 3)):
        arrays[f"{s}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{s}_labels"] = rng.integers(0, 9, (n, 1)).astype(np.uint8)
    np.savez_compressed(tmp_path / "pathmnist.npz", **arrays)
    ds = load_dataset("pathmnist", data_dir=tmp_path, verify=False)
    check_basic(ds, 6, 3, (28, 28, 3), 9)
    assert ds.task == "classification" and ds.n_outputs == 9
    np.testing.assert_allclose(ds.x_train, arrays["train_images"].reshape(6, -1) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"].ravel())
    assert ds.meta["x_val"].shape == (2, 28 * 28 * 3) and ds.meta["x_val"].dtype == np.float32
    assert ds.meta["y_val"].dtype == np.int32 and ds.meta["y_val"].tolist() == arrays["val_labels"].ravel().tolist()
    with pytest.raises(DataError, match=r"pathmnist\.npz.*a8b06965200029087d5bd730944a56c1"):
        load_dataset("pathmnist", data_dir=tmp_path)


def test_chestmnist(tmp_path):
    rng = np.random.default_rng(12)
    arrays = {}
    for s, n in (("train", 5), ("val", 2), ("test", 4)):
        arrays[f"{s}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{s}_labels"] = rng.integers(0, 2, (n, 14)).astype(np.uint8)
    (tmp_path / "medmnist").mkdir()
    np.savez(tmp_path / "medmnist" / "chestmnist.npz", **arrays)
    ds = load_dataset("chestmnist", data_dir=tmp_path, verify=False)
    check_basic(ds, 5, 4, (28, 28, 1), 14)
    assert ds.task == "multilabel" and ds.n_outputs == 14
    assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (5, 14)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    assert ds.meta["y_val"].shape == (2, 14) and ds.meta["x_val"].shape == (2, 784)


# ----------------------------------------------------------------------------- missing files, offline

MISSING_FILE = {"mnist": "train-images-idx3-ubyte.gz", "fashion_mnist": "train-images-idx3-ubyte.gz",
                "emnist_balanced": "gzip.zip", "emnist_letters": "gzip.zip", "cifar10": "cifar-10-python.tar.gz",
                "svhn": "train_32x32.mat", "stl10": "stl10_binary.tar.gz", "pathmnist": "pathmnist.npz",
                "chestmnist": "chestmnist.npz"}


@pytest.mark.parametrize("name", IMAGE_SETS)
def test_missing_file_offline_names_file(tmp_path, name):
    with pytest.raises(DataError) as err:
        load_dataset(name, data_dir=tmp_path / "data")
    msg = str(err.value)
    assert MISSING_FILE[name] in msg and "PLASTICLAB_OFFLINE" in msg
    assert str(tmp_path / "data") in msg  # says where to place it
    assert not any((tmp_path / "data").rglob("*"))  # nothing written


# ----------------------------------------------------------------------------- fetch / checksums


def test_md5_and_sha256_file(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello world")
    assert md5_file(p) == hashlib.md5(b"hello world").hexdigest()
    assert sha256_file(p) == hashlib.sha256(b"hello world").hexdigest()
    g = tmp_path / "f.gz"
    g.write_bytes(gzip.compress(b"hello world"))
    assert md5_file(g, decompress=True) == md5_file(p) != md5_file(g)


def test_fetch_file_url(tmp_path, monkeypatch):
    monkeypatch.delenv("PLASTICLAB_OFFLINE")
    src = tmp_path / "src.bin"
    src.write_bytes(b"some payload" * 100)
    good_md5, good_sha = md5_file(src), sha256_file(src)
    dest = tmp_path / "cache" / "sub" / "file.bin"
    assert fetch(src.as_uri(), dest, md5=good_md5, sha256=good_sha) == dest
    assert dest.read_bytes() == src.read_bytes()
    src.unlink()
    assert fetch(src.as_uri(), dest, md5=good_md5) == dest  # cached: no download needed

    src.write_bytes(b"other payload")
    bad = tmp_path / "cache" / "bad.bin"
    with pytest.raises(DataError) as err:
        fetch(src.as_uri(), bad, md5=good_md5)
    msg = str(err.value)
    assert "bad.bin" in msg and good_md5 in msg and md5_file(src) in msg
    assert not bad.exists() and not list(bad.parent.glob("*.part"))  # nothing half-written left behind
    with pytest.raises(DataError, match="bad.bin.*sha256"):
        fetch(src.as_uri(), bad, sha256="0" * 64)

    dest.write_bytes(b"corrupted")
    with pytest.raises(DataError, match=r"file\.bin.*(?i:delete)"):
        fetch(src.as_uri(), dest, md5=good_md5)
    assert dest.read_bytes() == b"corrupted"  # an existing file is never silently overwritten


def test_fetch_network_failure_and_offline(tmp_path, monkeypatch):
    url = (tmp_path / "does-not-exist.bin").as_uri()
    dest = tmp_path / "cache" / "x.bin"
    with pytest.raises(DataError, match="x.bin.*PLASTICLAB_OFFLINE"):
        fetch(url, dest)
    monkeypatch.delenv("PLASTICLAB_OFFLINE")
    with pytest.raises(DataError) as err:
        fetch(url, dest)
    assert url in str(err.value) and str(dest) in str(err.value)
    assert not dest.exists()


# ----------------------------------------------------------------------------- the real MNIST


def test_real_mnist():
    if not REAL_MNIST.is_dir():
        pytest.skip(f"real MNIST not available at {REAL_MNIST}")
    ds = load_dataset("mnist", data_dir=REAL_MNIST)  # verify=True: decompressed-content md5s
    check_basic(ds, 60000, 10000, (28, 28, 1), 10)
    assert np.bincount(ds.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert float(ds.x_train.mean()) == pytest.approx(33.318 / 255, abs=1e-4)
    assert ds.x_train.max() == 1.0 and ds.x_train.min() == 0.0


def test_standardized_uses_training_statistics():
    from plasticlab.data import load_dataset

    d = load_dataset("digits")
    s = d.standardized()
    assert abs(float(s.x_train.mean())) < 1e-5 and abs(float(s.x_train.std()) - 1) < 1e-4
    mu, sd = d.x_train.mean(dtype=np.float64), d.x_train.std(dtype=np.float64)
    np.testing.assert_allclose(s.x_test, (d.x_test - mu) / sd, rtol=1e-5, atol=1e-5)  # the train split's mu, sd
    p = d.standardized(per_feature=True)
    used = d.x_train.std(0) > 0
    np.testing.assert_allclose(p.x_train.std(0)[used], 1.0, rtol=1e-3)
    assert s.x_train.dtype == np.float32 and (s.y_train == d.y_train).all()


def test_centered_subtracts_the_training_mean_image():
    from plasticlab.data import load_dataset

    d = load_dataset("digits")
    c = d.centered()
    np.testing.assert_allclose(c.x_train.mean(0), 0.0, atol=1e-5)            # every feature centred
    mu = d.x_train.mean(0, dtype=np.float64)
    np.testing.assert_allclose(c.x_test, d.x_test - mu, rtol=1e-5, atol=1e-5)  # the train split's mean image
    np.testing.assert_allclose(c.x_train.std(0), d.x_train.std(0), rtol=1e-4, atol=1e-5)  # scale unchanged
    # the mean direction leaves the second moment: its top eigenvalue drops
    top = lambda x: np.linalg.eigvalsh(x.T.astype(np.float64) @ x / len(x))[-1]  # noqa: E731
    assert top(c.x_train) < 0.5 * top(d.x_train)
    assert c.x_train.dtype == np.float32 and (c.y_test == d.y_test).all()


def test_teacher_student_inits_draw_their_stated_laws_and_label_with_that_teacher():
    """xavier_normal: N(0, 2 / (fan_in + fan_out)); uniform_fanin: U(+-1/sqrt(fan_in)) (std 1/sqrt(3 fan_in));
    the targets are the tanh teacher of those weights (numpy forward pass); an unknown init is refused."""
    from plasticlab.data.synthetic import teacher_student

    for init in ("xavier_normal", "uniform_fanin"):
        ds = teacher_student(200, 10, d_in=32, d_out=32, hidden=(128, 128), init=init)
        Ws = ds.meta["teacher_weights"]
        for w in Ws:
            o, i = w.shape
            if init == "uniform_fanin":
                assert np.abs(w).max() <= 1 / np.sqrt(i)
                assert np.std(w) == pytest.approx(1 / np.sqrt(3 * i), rel=0.05)
            else:
                assert np.std(w) == pytest.approx(np.sqrt(2 / (i + o)), rel=0.05)
        h = ds.x_train.astype(np.float64)
        for l, w in enumerate(Ws):
            h = h @ w.T if l == len(Ws) - 1 else np.tanh(h @ w.T)
        np.testing.assert_allclose(ds.y_train, h, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="init 'kaiming'.*allowed: xavier_normal, uniform_fanin"):
        teacher_student(10, 2, init="kaiming")
