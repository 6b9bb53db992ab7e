"""The project's word-level IMDB tokenizer, trained with `tokenizers` on the IMDB train split.

One token is one word (or one run of punctuation), so LIME's words, SHAP's text features and the
token metrics all share one unit. A sequence is `[CLS] w1 ... w_{L-1}` padded with [PAD] to L;
reviews longer than that keep their head. Saved as tokenizer.json (never pickled).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from explainbench.core import data, paths

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]  # ids 0..4 in this order
VOCAB_SIZE = 20_000
MAX_LEN = 256


def _build_untrained():
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"<br\s*/?>"), " "), normalizers.NFKC(), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+ | [^\w\s]+
    return tok


def train_tokenizer(texts, vocab_size: int = VOCAB_SIZE):
    from tokenizers import trainers

    tok = _build_untrained()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


@dataclass(frozen=True)
class WordTokenizer:
    """Encodes reviews into fixed-length id tensors and back into words."""

    backend: object  # tokenizers.Tokenizer
    sha256: str
    max_len: int = MAX_LEN

    @property
    def pad_id(self) -> int:
        return SPECIAL_TOKENS.index(PAD)

    @property
    def unk_id(self) -> int:
        return SPECIAL_TOKENS.index(UNK)

    @property
    def cls_id(self) -> int:
        return SPECIAL_TOKENS.index(CLS)

    @property
    def mask_id(self) -> int:
        return SPECIAL_TOKENS.index(MASK)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, texts, chunk: int = 1000) -> torch.Tensor:
        """Token ids (N, max_len): [CLS], then the first max_len - 1 words, then [PAD].

        Encoded `chunk` texts at a time: an Encoding keeps every token's string and offsets, so
        the 25,000 training reviews at once would hold ~1 GB only to keep 51 MB of ids."""
        texts = list(texts)
        ids = np.full((len(texts), self.max_len), self.pad_id, dtype=np.int64)
        ids[:, 0] = self.cls_id
        for start in range(0, len(texts), chunk):
            encodings = self.backend.encode_batch(texts[start : start + chunk],
                                                  add_special_tokens=False)
            for row, enc in enumerate(encodings, start=start):
                words = enc.ids[: self.max_len - 1]
                ids[row, 1 : 1 + len(words)] = words
        return torch.from_numpy(ids)

    def words(self, ids: torch.Tensor | np.ndarray) -> list[str]:
        """The token strings of one id row (special tokens included)."""
        return [self.backend.id_to_token(int(i)) for i in np.asarray(ids).reshape(-1)]


def _tokenizer_path() -> Path:
    return paths.cache_dir() / "tokenizers" / f"imdb-wordlevel-{VOCAB_SIZE}" / "tokenizer.json"


@lru_cache(maxsize=None)
def _load(path: str, mtime_ns: int) -> WordTokenizer:
    from tokenizers import Tokenizer

    raw = Path(path).read_bytes()
    return WordTokenizer(Tokenizer.from_str(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest())


def load_tokenizer() -> WordTokenizer:
    """The cached tokenizer, trained from the IMDB train split the first time (a few seconds)."""
    path = _tokenizer_path()
    if path.is_file():
        try:
            return _load(str(path), path.stat().st_mtime_ns)
        except Exception as exc:  # noqa: BLE001 - the tokenizers library raises its own kinds
            # A truncated or edited file: set it aside and train it again (deterministic, so
            # the models trained on it stay valid), as a damaged checkpoint is retrained.
            print(f"cached tokenizer {path} is unreadable ({type(exc).__name__}); training it "
                  "again", file=sys.stderr)
            os.replace(path, path.with_name(path.name + ".damaged"))
    if not path.is_file():
        texts, _ = data.load_imdb("train")
        tok = train_tokenizer(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Canonical JSON so the digest is a function of the vocabulary alone.
        tmp.write_text(json.dumps(json.loads(tok.to_str()), sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    return _load(str(path), path.stat().st_mtime_ns)
