"""The components' configuration files: the templates in infra/local, filled in with this stack's
ports and paths and written under QOIMA_HOME/conf."""
from __future__ import annotations

from pathlib import Path
from string import Template

from model.settings import REPO_ROOT

LOCAL_TEMPLATES = REPO_ROOT / "infra" / "local"


def render(template: str, target: Path, **values: object) -> Path:
    text = Template((LOCAL_TEMPLATES / template).read_text(encoding="utf-8")).substitute(**values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
