"""The project's version, for both programs: pyproject.toml's ``version``, read at run time.

pyproject.toml is the one place the version is written. An installed distribution (a wheel
in an image, an editable install in ``.venv``) carries it in its metadata; a source
checkout run without installing (``PYTHONPATH=proxy:operator``) reads pyproject.toml
itself. What cannot read it at run time (image tags in YAML manifests, Dockerfile defaults)
is checked against it by ``tests/unit/delivery/test_project_version.py``.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import tomllib

DISTRIBUTION = "weather-proxy-fleet"
# proxy/weather_proxy/version.py -> the repository root of a source checkout.
SOURCE_PYPROJECT = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"


def read_version() -> str:
    """The installed distribution's version, else the version in a source checkout's pyproject.toml."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(SOURCE_PYPROJECT.read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"
    if project.get("name") != DISTRIBUTION:
        return "0+unknown"
    return str(project["version"])


VERSION = read_version()
"""The version of this code, e.g. ``0.1.0``; ``0+unknown`` when neither source is found."""
