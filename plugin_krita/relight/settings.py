"""The docker's settings: defaults, ranges, persistence through Krita's settings store.

No Krita and no Qt here: ``load``/``save`` take the two functions of the store
(``Krita.instance().readSetting``/``writeSetting``, which hold strings), so tests pass a dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from .formats import DEFAULT_OUTPUTS, OUTPUT_CHOICES

SETTINGS_GROUP = "relight"

# name: (minimum, maximum) of the numeric controls, in the core's units
RANGES = {
    "rotate_deg": (-180.0, 180.0),
    "strength": (0.0, 3.0),
    "shininess": (0.0, 1.0),
    "keep_original": (0.0, 1.0),
}


@dataclass
class DockerSettings:
    rotate_deg: float = 0.0
    strength: float = 1.0
    shininess: float = 0.3
    keep_original: float = 0.0
    edge_refine: bool = True
    use_hdri: bool = False
    hdri_path: str = ""
    outputs: list[str] = field(default_factory=lambda: list(DEFAULT_OUTPUTS))

    def clamped(self) -> DockerSettings:
        values = asdict(self)
        for name, (low, high) in RANGES.items():
            values[name] = min(high, max(low, float(values[name])))
        values["outputs"] = [o for o in values["outputs"] if o in OUTPUT_CHOICES]
        if "relit" not in values["outputs"]:
            values["outputs"].insert(0, "relit")
        return DockerSettings(**values)

    def core_settings(self) -> dict:
        """The ``settings`` object of a worker request (pipeline.Settings field names)."""
        return {
            "rotate_deg": self.rotate_deg,
            "strength": self.strength,
            "shininess": self.shininess,
            "keep_original": self.keep_original,
            "edge_refine": self.edge_refine,
        }


def _parse(kind: type, text: str):
    if kind is bool:
        return text.strip().lower() in ("1", "true", "yes")
    if kind is float:
        return float(text)
    if kind is list:
        value = json.loads(text)
        if not isinstance(value, list):
            raise ValueError("not a list")
        return [str(item) for item in value]
    return text


def load(read_setting: Callable[[str, str, str], str]) -> DockerSettings:
    """Read every field; a missing or unreadable value keeps its default."""
    settings = DockerSettings()
    kinds = {"rotate_deg": float, "strength": float, "shininess": float,
             "keep_original": float, "edge_refine": bool, "use_hdri": bool,
             "hdri_path": str, "outputs": list}
    for item in fields(DockerSettings):
        text = read_setting(SETTINGS_GROUP, item.name, "")
        if not text:
            continue
        try:
            setattr(settings, item.name, _parse(kinds[item.name], text))
        except (ValueError, TypeError):
            continue
    return settings.clamped()


def save(settings: DockerSettings, write_setting: Callable[[str, str, str], None]) -> None:
    for name, value in asdict(settings).items():
        if isinstance(value, list):
            text = json.dumps(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        write_setting(SETTINGS_GROUP, name, text)
