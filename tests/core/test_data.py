"""Data files: pinned digests, verification, look-up order, download and tarball conversion."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from explainbench.core import data, paths
from explainbench.core.errors import ChecksumError, DataMissingError

SHARED_SUMS = Path(__file__).resolve().parents[3] / "shared" / "data" / "SHA256SUMS"


@pytest.fixture(autouse=True)
def _fresh_data_state(monkeypatch):
    data._verified.clear()
    data._mnist.cache_clear()
    data._imdb.cache_clear()
    yield
    data.set_data_dir(None)
    data._mnist.cache_clear()
    data._imdb.cache_clear()


def test_pinned_digests_equal_the_shared_sha256sums():
    if not SHARED_SUMS.is_file():
        pytest.skip(f"{SHARED_SUMS} not present")
    pinned = {rel: f.sha256 for rel, f in data.FILES.items()}
    shared = {}
    for line in SHARED_SUMS.read_text().splitlines():
        digest, rel = line.split()
        shared[rel] = digest
    assert pinned == shared


def test_mismatch_is_one_line_naming_file_expected_and_actual(tmp_path):
    bad = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"not the labels")
    with pytest.raises(ChecksumError) as info:
        data.verify(bad, data.FILES["mnist/t10k-labels-idx1-ubyte.gz"])
    message = str(info.value)
    assert "\n" not in message
    assert str(bad) in message
    assert data.FILES["mnist/t10k-labels-idx1-ubyte.gz"].sha256 in message
    assert hashlib.sha256(b"not the labels").hexdigest() in message


def test_data_dir_argument_comes_before_the_environment(tmp_path, monkeypatch):
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    monkeypatch.setenv("BENCH_DATA_DIR", str(env_dir))
    data.set_data_dir(arg_dir)
    dirs = paths.data_dirs(data._data_dir_override)
    assert dirs[:2] == [arg_dir, env_dir]
    assert dirs[2] == paths.user_cache_dir() / "data"


def test_real_mnist_and_imdb_load(real_data):
    images, labels = data.load_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    texts, labels = data.load_imdb("train")
    assert len(texts) == 25000
    # negatives then positives
    assert (labels[:12500] == 0).all() and (labels[12500:] == 1).all()


def test_missing_file_without_network_names_file_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = data.FILES["mnist/t10k-labels-idx1-ubyte.gz"]
    monkeypatch.setitem(data.FILES, spec.relpath,
                        data.DataFile(spec.relpath, spec.sha256, ("http://127.0.0.1:9/nothing",)))
    with pytest.raises(DataMissingError) as info:
        data.locate(spec.relpath)
    message = str(info.value)
    assert "mnist/t10k-labels-idx1-ubyte.gz" in message and "BENCH_DATA_DIR" in message
    assert "\n" not in message


def _serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_verifies_and_stores_in_the_cache(tmp_path, monkeypatch):
    """The real download path, against a local server: first mirror dead, second serves."""
    payload = gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    served = tmp_path / "served"
    served.mkdir()
    (served / "labels.gz").write_bytes(payload)
    server = _serve(served)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/labels.gz"
        rel = "mnist/t10k-labels-idx1-ubyte.gz"
        monkeypatch.setitem(data.FILES, rel, data.DataFile(
            rel, hashlib.sha256(payload).hexdigest(), ("http://127.0.0.1:9/dead", url)))
        monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        path = data.locate(rel)
        assert path == tmp_path / "cache" / "explainbench" / "data" / rel
        assert path.read_bytes() == payload
    finally:
        server.shutdown()


def _tarball(path: Path, reviews: dict[str, list[tuple[int, int, str]]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for split, items in reviews.items():
            for polarity, review_id, rating, text in items:
                raw = text.encode()
                info = tarfile.TarInfo(f"aclImdb/{split}/{polarity}/{review_id}_{rating}.txt")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        readme = tarfile.TarInfo("aclImdb/README")
        readme.size = 2
        tar.addfile(readme, io.BytesIO(b"hi"))


def test_tarball_conversion_orders_negatives_then_positives_by_numeric_id(tmp_path):
    import pyarrow.parquet as pq

    tarball = tmp_path / "aclImdb_v1.tar.gz"
    items = [("pos", 10, 9, "p10"), ("neg", 2, 1, "n2"), ("pos", 2, 8, "p2"),
             ("neg", 10, 3, "n10 <br />é"), ("neg", 1, 4, "n1")]
    _tarball(tarball, {"train": items, "test": [("neg", 0, 2, "t0"), ("pos", 0, 7, "t1")]})
    data.write_imdb_parquet(tarball, tmp_path / "imdb")
    table = pq.read_table(tmp_path / "imdb" / "train.parquet")
    assert table.column("text").to_pylist() == ["n1", "n2", "n10 <br />é", "p2", "p10"]
    assert table.column("label").to_pylist() == [0, 0, 0, 1, 1]
    assert str(table.schema.field("label").type) == "int64"


def test_reencoded_parquet_is_accepted_by_content_digest(tmp_path, real_data):
    """A converted copy cannot match the shared file byte for byte; its rows must match."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, labels = data.load_imdb("test")
    copy = tmp_path / "test.parquet"
    pq.write_table(pa.table({"text": list(texts), "label": labels.tolist()}), copy,
                   compression="zstd")
    data.verify(copy, data.FILES["imdb/test.parquet"])  # accepted
    pq.write_table(pa.table({"text": list(texts[:-1]), "label": labels[:-1].tolist()}), copy)
    with pytest.raises(ChecksumError):
        data.verify(copy, data.FILES["imdb/test.parquet"])
