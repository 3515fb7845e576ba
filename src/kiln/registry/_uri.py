"""Names in the registry, and the ``models:/`` URIs that point at one version of a model.

::

    models:/NAME/VERSION    that version (1, 2, 3…)
    models:/NAME@ALIAS      the version the alias points at (production, staging, any name)
    models:/NAME            the latest version (also models:/NAME/latest and models:/NAME@latest)

A model name is letters, digits, ``-``, ``_`` and ``.`` (starting with a letter or digit; no
``/`` or ``@``, which the URI uses). An alias is lowercase letters, digits, ``-`` and ``_``;
``latest`` is reserved (it always means the newest version) and an alias of digits only is
refused (it would read as a version number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln.errors import ModelNameError

__all__ = [
    "LATEST",
    "MODEL_URI_PREFIX",
    "ModelURI",
    "check_alias",
    "check_model_name",
    "check_tag_key",
    "is_model_uri",
    "parse_model_uri",
]

MODEL_URI_PREFIX = "models:/"
LATEST = "latest"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALIAS = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME (the latest version)"


def check_model_name(name: str) -> str:
    """``name`` when it is a valid model name, else :class:`ModelNameError` saying why."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ModelNameError(
            f"model name {name!r} is not valid: use letters, digits, '-', '_' and '.', starting "
            "with a letter or digit (at most 128 characters; no '/' or '@')"
        )
    return name


def check_alias(alias: str, *, reading: bool = False) -> str:
    """``alias`` when it is a valid alias name; ``latest`` is accepted only when ``reading``."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise ModelNameError(
            f"alias {alias!r} is not valid: use lowercase letters, digits, '-' and '_' "
            "(e.g. production, staging, champion-2024)"
        )
    if alias.isdigit():
        raise ModelNameError(
            f"alias {alias!r} would read as a version number; for a version use "
            f"models:/NAME/{alias}, or give the alias a letter (v{alias})"
        )
    if alias == LATEST and not reading:
        raise ModelNameError(
            "alias 'latest' is reserved: it always means the newest version; choose another name"
        )
    return alias


def check_tag_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > 255:
        raise ModelNameError(f"tag key {key!r} is not valid: use 1 to 255 characters")
    return key


@dataclass(frozen=True)
class ModelURI:
    """A parsed ``models:/`` URI: a version, an alias, or neither (the latest version)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{MODEL_URI_PREFIX}{self.name}/{self.version}"
        if self.alias is not None:
            return f"{MODEL_URI_PREFIX}{self.name}@{self.alias}"
        return f"{MODEL_URI_PREFIX}{self.name}"


def is_model_uri(text: str) -> bool:
    """Whether ``text`` is meant as a registry URI (starts with ``models:``), valid or not."""
    return text.startswith("models:")


def parse_model_uri(text: str) -> ModelURI:
    """Parse ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or ``models:/NAME``.

    ``latest`` (as a version or an alias) gives the latest version, as ``models:/NAME`` does.
    Anything else is a :class:`ModelNameError` showing the accepted forms.
    """
    if not text.startswith(MODEL_URI_PREFIX) or text.startswith(MODEL_URI_PREFIX + "/"):
        raise ModelNameError(f"{text!r} is not a model URI: use {_FORMS}")
    rest = text[len(MODEL_URI_PREFIX) :]
    if "@" in rest:
        name, _, alias = rest.partition("@")
        check_model_name(name)
        if alias == LATEST:
            return ModelURI(name)
        return ModelURI(name, alias=check_alias(alias, reading=True))
    if "/" in rest:
        name, _, version = rest.partition("/")
        check_model_name(name)
        if version == LATEST:
            return ModelURI(name)
        if not (version.isascii() and version.isdigit()) or int(version) < 1:
            raise ModelNameError(
                f"{text!r}: version {version!r} is not a number from 1 up; use {_FORMS}"
            )
        return ModelURI(name, version=int(version))
    return ModelURI(check_model_name(rest))
