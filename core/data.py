"""The raw datasets: MNIST from its four idx files, IMDB from its official 25k/25k split.

Every file is checked against a pinned SHA-256 before it is read. Files are looked up in
`--data-dir`, then `BENCH_DATA_DIR`, then the user cache folder; when none has them they are
downloaded from their canonical public sources into the first writable of those folders.

IMDB is read from `imdb/{train,test}.parquet` (columns `text`, `label`; negatives then positives,
each by numeric review id). Without them, the official `aclImdb_v1.tar.gz` (checked by its
published md5) is converted once into that same form. A converted Parquet file cannot match the
pinned file digest byte for byte (encoders differ), so Parquet files are also accepted when the
SHA-256 of their *content* (every row's label and text) matches the pinned content digest.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from explainbench.core import paths
from explainbench.core.errors import ChecksumError, DataMissingError

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IMDB_TARBALL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_TARBALL_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"


@dataclass(frozen=True)
class DataFile:
    relpath: str
    sha256: str
    urls: tuple[str, ...] = ()
    content_sha256: str | None = None  # Parquet only: digest of the rows, see module docstring


# The same digests as shared/data/SHA256SUMS (tests/test_data.py checks they agree).
FILES: dict[str, DataFile] = {
    f.relpath: f
    for f in [
        DataFile(
            "mnist/train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            tuple(m + "train-images-idx3-ubyte.gz" for m in MNIST_MIRRORS),
        ),
        DataFile(
            "mnist/train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            tuple(m + "train-labels-idx1-ubyte.gz" for m in MNIST_MIRRORS),
        ),
        DataFile(
            "mnist/t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            tuple(m + "t10k-images-idx3-ubyte.gz" for m in MNIST_MIRRORS),
        ),
        DataFile(
            "mnist/t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            tuple(m + "t10k-labels-idx1-ubyte.gz" for m in MNIST_MIRRORS),
        ),
        DataFile(
            "imdb/train.parquet",
            "2289d51446ab61e365d6f14eaf4d86c64d6cc28380818a8143fc3a1c1a389acd",
            content_sha256="4232e375961ca1121a4dea286f277c0472d21d987377dbcd4c4630f85a228a01",
        ),
        DataFile(
            "imdb/test.parquet",
            "12a54bc0788e75e4f8ea919b8e11d7d0295b9781a038649eacfe260cfd67d85d",
            content_sha256="737786ef4310f31623b1f676d0b5381ccb1b1e0dc94b3199fe9882f492828ed7",
        ),
    ]
}

_data_dir_override: Path | None = None


def set_data_dir(data_dir: str | Path | None) -> None:
    """The CLI's `--data-dir`: searched before BENCH_DATA_DIR."""
    global _data_dir_override
    _data_dir_override = Path(data_dir) if data_dir else None
    _verified.clear()


# ----------------------------------------------------------------------------- checksums


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def imdb_content_digest(texts: list[str], labels) -> str:
    """SHA-256 over every row's label and UTF-8 text, independent of the Parquet encoding."""
    h = hashlib.sha256()
    for text, label in zip(texts, labels):
        b = text.encode("utf-8")
        h.update(f"{int(label)}\t{len(b)}\n".encode())
        h.update(b)
    return h.hexdigest()


_verified: dict[tuple[str, int, int], bool] = {}


def verify(path: Path, spec: DataFile) -> None:
    """Raise a one-line ChecksumError unless `path` holds exactly the pinned content."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    actual = file_digest(path)
    if actual != spec.sha256:
        content = _parquet_content_digest(path) if spec.content_sha256 else None
        if content is None or content != spec.content_sha256:
            raise ChecksumError(
                f"checksum mismatch for {path}: expected SHA-256 {spec.sha256}, got {actual}"
            )
    _verified[key] = True


def _parquet_content_digest(path: Path) -> str | None:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["text", "label"])
    except Exception:
        return None
    return imdb_content_digest(table.column("text").to_pylist(), table.column("label").to_pylist())


# ----------------------------------------------------------------------------- locating, downloading


def locate(relpath: str) -> Path:
    """Path of a verified copy of a pinned data file, downloading or converting it if needed."""
    spec = FILES[relpath]
    for d in paths.data_dirs(_data_dir_override):
        candidate = d / relpath
        if candidate.is_file():
            verify(candidate, spec)
            return candidate
    if relpath.startswith("imdb/"):
        _convert_imdb_tarball()
    else:
        target = paths.download_dir(_data_dir_override) / relpath
        _download(spec.urls, target, relpath)
    path = paths.download_dir(_data_dir_override) / relpath
    verify(path, spec)
    return path


def _download(urls: tuple[str, ...], target: Path, what: str, md5: str | None = None) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        tmp = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    transient=True,
                ) as progress, open(tmp, "wb") as out:
                    task = progress.add_task(f"downloading {what}", total=total)
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        progress.advance(task, len(block))
            if md5 is not None and (got := file_digest(tmp, "md5")) != md5:
                tmp.unlink()
                raise ChecksumError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}")
            tmp.replace(target)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            tmp.unlink(missing_ok=True)
    searched = ", ".join(str(d) for d in paths.data_dirs(_data_dir_override))
    raise DataMissingError(
        f"data file {what} not found in {searched} and could not be downloaded "
        f"({'; '.join(errors)}); set BENCH_DATA_DIR to a folder that holds {what}"
    )


_IMDB_MEMBER = re.compile(r"^aclImdb/(train|test)/(neg|pos)/(\d+)_(\d+)\.txt$")


def _convert_imdb_tarball() -> None:
    """Convert the official aclImdb_v1.tar.gz into imdb/{train,test}.parquet, once."""
    tarball = None
    for d in paths.data_dirs(_data_dir_override):
        if (d / "aclImdb_v1.tar.gz").is_file():
            tarball = d / "aclImdb_v1.tar.gz"
            break
    if tarball is None:
        tarball = paths.download_dir(_data_dir_override) / "aclImdb_v1.tar.gz"
        _download((IMDB_TARBALL_URL,), tarball, "imdb/train.parquet (via aclImdb_v1.tar.gz)",
                  md5=IMDB_TARBALL_MD5)
    elif (got := file_digest(tarball, "md5")) != IMDB_TARBALL_MD5:
        raise ChecksumError(
            f"checksum mismatch for {tarball}: expected md5 {IMDB_TARBALL_MD5}, got {got}"
        )
    write_imdb_parquet(tarball, paths.download_dir(_data_dir_override) / "imdb")


def write_imdb_parquet(tarball: Path, out_dir: Path) -> None:
    """Rows: negatives then positives, each ordered by the numeric review id of its file name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list[tuple[int, int, str]]] = {"train": [], "test": []}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            m = _IMDB_MEMBER.match(member.name)
            if not m or not member.isfile():
                continue
            split, polarity, review_id = m.group(1), m.group(2), int(m.group(3))
            text = tar.extractfile(member).read().decode("utf-8")
            rows[split].append((int(polarity == "pos"), review_id, text))
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        items.sort(key=lambda r: (r[0], r[1]))
        table = pa.table(
            {
                "text": pa.array([r[2] for r in items], pa.string()),
                "label": pa.array([r[0] for r in items], pa.int64()),
            }
        )
        tmp = out_dir / f"{split}.parquet.part"
        pq.write_table(table, tmp, compression="snappy")
        tmp.replace(out_dir / f"{split}.parquet")


# ----------------------------------------------------------------------------- loaders


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ChecksumError(f"{path} is not an idx file with magic {expected_magic} (got {magic})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@lru_cache(maxsize=None)
def _mnist(split: str, data_key: Path | None) -> tuple[np.ndarray, np.ndarray]:
    prefix = {"train": "train", "test": "t10k"}[split]
    images = _read_idx(locate(f"mnist/{prefix}-images-idx3-ubyte.gz"), 2051)
    labels = _read_idx(locate(f"mnist/{prefix}-labels-idx1-ubyte.gz"), 2049)
    images.setflags(write=False)
    labels = labels.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of the official split ('train' or 'test')."""
    _check_split(split)
    return _mnist(split, _data_dir_override)


@lru_cache(maxsize=None)
def _imdb(split: str, data_key: Path | None) -> tuple[tuple[str, ...], np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(locate(f"imdb/{split}.parquet"), columns=["text", "label"])
    labels = np.asarray(table.column("label").to_pylist(), dtype=np.int64)
    labels.setflags(write=False)
    return tuple(table.column("text").to_pylist()), labels


def load_imdb(split: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Review texts and int64 labels (0 negative, 1 positive) of the official split."""
    _check_split(split)
    return _imdb(split, _data_dir_override)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        from explainbench.core.errors import UnknownNameError

        raise UnknownNameError("split", split, ["train", "test"])
