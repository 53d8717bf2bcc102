"""Config validation: one-line errors naming the key, defaults filled, unknown keys refused."""

import copy
from pathlib import Path

import pytest
import yaml

from sefaria_ingest.config import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]


def shipped():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_shipped_config_is_valid_and_defaults_fill_in():
    config = validate_config(shipped())
    assert config["fetch"]["requests_per_second"] > 0
    minimal = validate_config({"source": "api", "books": ["Jonah"]})
    assert minimal["fetch"]["retries"] == 6
    assert minimal["embed"]["languages"] == ["en"]
    assert minimal["fulltext"]["backend"] == "tantivy"


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda c: c["fetch"].update(requests_per_second=-1), "fetch.requests_per_second"),
        (lambda c: c["fetch"].update(max_in_flight="four"), "fetch.max_in_flight"),
        (lambda c: c.update(bogus=1), "(top level)"),
        (lambda c: c["fetch"].update(speed=3), "fetch"),
        (lambda c: c.update(source="ftp"), "source"),
        (lambda c: c.update(languages=["fr"]), "languages.0"),
        (lambda c: c.update(books=[], categories=[]), "(top level)"),
    ],
)
def test_bad_config_gives_one_line_error_naming_the_key(mutate, where):
    config = copy.deepcopy(shipped())
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message
    assert f": {where}: " in message
