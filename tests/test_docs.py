"""The docs match the code: every config key is documented, the workflow picture names every rule."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def config_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if sub.get("type") == "object":
            keys += config_keys(sub, f"{path}.")
        else:
            keys.append(path)
    return keys


def test_every_config_key_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    documented = set(re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)?)`", readme))
    # Keys of the `fulltext` section are documented in its own table, without the section prefix.
    missing = [k for k in config_keys(schema)
               if k not in documented and k.split(".")[-1] not in documented]
    assert not missing, f"config keys missing from the README: {missing}"


def test_workflow_picture_names_every_rule():
    listed = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rules = set(listed.stdout.split())
    drawn = set(re.findall(r"^\s*(\w+) \[label=", (ROOT / "docs" / "workflow.dot").read_text(), re.M))
    assert rules == drawn
