"""``kiln models``: the model registry from the shell.

::

    kiln models                                  a table: latest version, aliases, last change
    kiln models show NAME                        versions (aliases, tags, metrics, run), history
    kiln models register NAME FOLDER             a saved model folder as the next version
    kiln models alias NAME VERSION ALIAS         point an alias (production, staging…) at a version
    kiln models rollback NAME [--alias A]        the alias back to its previous holder
    kiln models delete NAME VERSION              refused while an alias points at it
    kiln models tag NAME KEY VALUE [--version V] tag the model or one version
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kiln.cli._app import _console, _handles_errors, _workspace

if TYPE_CHECKING:
    from rich.table import Table

    from kiln.registry import AliasEvent, ModelRegistry, ModelVersion

__all__ = ["models_app"]

models_app = typer.Typer(
    help="The model registry: named models, numbered versions, aliases (production, staging…).",
    invoke_without_command=True,
)

_JSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_REASON = Annotated[str, typer.Option("--reason", help="Why: recorded in the alias history.")]


def _registry() -> ModelRegistry:
    from kiln.registry import ModelRegistry

    return ModelRegistry(_workspace())


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _table(*columns: str) -> Table:
    from rich.table import Table

    t = Table(box=None, header_style="bold", pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=1, sort_keys=True))


def _metrics(version: ModelVersion) -> dict[str, Any]:
    """The headline numbers in the model's manifest.json (only on a local artifact root)."""
    if version.to_dict()["path"] is None:
        return {}
    try:
        manifest = json.loads((version.path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    metrics = manifest.get("metrics") or {}
    if not isinstance(metrics, dict):
        return {}
    return {
        k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _move(e: AliasEvent) -> str:
    before = "–" if e.previous_version is None else str(e.previous_version)
    after = "removed" if e.version is None else str(e.version)
    return f"{before} → {after}"


@models_app.callback()
@_handles_errors
def models(ctx: typer.Context, as_json: _JSON = False) -> None:
    """A table of registered models: latest version, aliases, last change, description."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape

    found = _registry().models()
    if as_json:
        _echo_json([m.to_dict() for m in found])
        return
    if not found:
        _console().print(
            "no models registered yet: kiln train DATA --target COLUMN, or "
            "kiln models register NAME FOLDER"
        )
        return
    t = _table("name", "latest", "versions", "aliases", "updated", "description")
    for m in found:
        t.add_row(
            escape(m.name),
            "" if m.latest_version is None else str(m.latest_version),
            str(m.num_versions),
            escape(", ".join(f"{a} → {v}" for a, v in m.aliases.items())),
            _when(m.updated),
            escape(m.description),
        )
    _console().print(t)


@models_app.command("show")
@_handles_errors
def show(
    name: Annotated[str, typer.Argument(help="A model name from `kiln models`.")],
    as_json: _JSON = False,
) -> None:
    """One model: its versions (aliases, tags, metrics, run) and its alias history."""
    from rich.markup import escape

    reg = _registry()
    model = reg.model(name)
    versions = reg.versions(name)
    history = reg.alias_history(name)
    if as_json:
        _echo_json(
            {
                "model": model.to_dict(),
                "versions": [{**v.to_dict(), "metrics": _metrics(v)} for v in versions],
                "history": [e.to_dict() for e in history],
            }
        )
        return
    from rich.table import Table

    console = _console()
    head = Table.grid(padding=(0, 2))
    head.add_row("[bold]model[/]", escape(model.name))
    if model.description:
        head.add_row("[bold]description[/]", escape(model.description))
    if model.tags:
        head.add_row("[bold]tags[/]", escape(", ".join(f"{k}={v}" for k, v in model.tags.items())))
    head.add_row(
        "[bold]aliases[/]",
        escape(", ".join(f"{a} → {v}" for a, v in model.aliases.items())) or "[dim]none[/]",
    )
    head.add_row("[bold]created[/]", _when(model.created))
    head.add_row("[bold]updated[/]", _when(model.updated))
    console.print(head)
    t = _table("version", "aliases", "created", "by", "run", "metrics", "tags", "description")
    for v in reversed(versions):
        metrics = _metrics(v)
        t.add_row(
            str(v.version),
            f"[bold green]{escape(', '.join(v.aliases))}[/]" if v.aliases else "",
            _when(v.created),
            escape(v.actor),
            escape(str(v.source.get("run", ""))),
            escape(", ".join(f"{k}={_fmt(x)}" for k, x in list(metrics.items())[:4])),
            escape(", ".join(f"{k}={x}" for k, x in v.tags.items())),
            escape(v.description),
        )
    console.print(t if versions else "[dim]no versions (every one was deleted)[/]")
    if history:
        console.print("[bold]alias history[/] (newest first)")
        h = _table("when", "alias", "version", "action", "by", "reason")
        for e in reversed(history):
            h.add_row(
                _when(e.at), escape(e.alias), _move(e), e.action, escape(e.actor), escape(e.reason)
            )
        console.print(h)


@models_app.command("register")
@_handles_errors
def register(
    name: Annotated[str, typer.Argument(help="The model's name (created on first use).")],
    folder: Annotated[str, typer.Argument(help="A model folder (what Model.save wrote).")],
    description: Annotated[
        str | None, typer.Option("--description", help="What this version is.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable.")] = None,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Point this alias at it; repeatable.")
    ] = None,
    reason: _REASON = "",
) -> None:
    """Store a saved model folder in the workspace and register it as NAME's next version."""
    from kiln.errors import RegistryError

    tags: dict[str, str] = {}
    for pair in tag or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RegistryError(f"--tag {pair!r} is not KEY=VALUE")
        tags[key.strip()] = value
    v = _registry().register_folder(
        name, folder, description=description, tags=tags, aliases=alias or [], reason=reason
    )
    held = f"; {', '.join(v.aliases)} → {v.version}" if v.aliases else ""
    typer.echo(f"registered {v.uri} (Model artifact #{v.artifact_id}){held}")


@models_app.command("alias")
@_handles_errors
def alias(
    name: Annotated[str, typer.Argument(help="A model name.")],
    version: Annotated[int, typer.Argument(help="The version to point at.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="production, staging…")],
    reason: _REASON = "",
) -> None:
    """Point ALIAS of NAME at VERSION (recorded: who, when, why)."""
    reg = _registry()
    before = reg.alias(name, alias_name) if alias_name != "latest" else None
    v = reg.set_alias(name, alias_name, version, reason=reason)
    if before is not None and before.version == v.version:
        typer.echo(f"{alias_name} of {name} already points at version {v.version}; unchanged")
        return
    was = f"version {before.version}" if before is not None else "unset"
    typer.echo(f"{alias_name} of {name}: {was} → version {v.version} ({v.uri})")


@models_app.command("rollback")
@_handles_errors
def rollback(
    name: Annotated[str, typer.Argument(help="A model name.")],
    alias_name: Annotated[
        str, typer.Option("--alias", help="Which alias to move back.")
    ] = "production",
    reason: _REASON = "",
) -> None:
    """Move an alias (production by default) back to the version it pointed at before."""
    reg = _registry()
    before = reg.alias(name, alias_name)
    v = reg.rollback(name, alias_name, reason=reason)
    was = f"version {before.version}" if before is not None else "unset"
    typer.echo(f"{alias_name} of {name}: {was} → version {v.version} (rolled back; {v.uri})")


@models_app.command("delete")
@_handles_errors
def delete(
    name: Annotated[str, typer.Argument(help="A model name.")],
    version: Annotated[int, typer.Argument(help="The version to delete.")],
) -> None:
    """Delete a version (refused while an alias points at it); its number is never reused."""
    reg = _registry()
    v = reg.get(name, version)
    reg.delete_version(name, version)
    typer.echo(
        f"deleted {v.uri}; its Model artifact #{v.artifact_id} stays in the store for lineage "
        "(kiln gc decides about its files)"
    )


@models_app.command("tag")
@_handles_errors
def tag(
    name: Annotated[str, typer.Argument(help="A model name.")],
    key: Annotated[str, typer.Argument(help="Tag key.")],
    value: Annotated[str, typer.Argument(help="Tag value.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Tag this version, not the model.")
    ] = None,
) -> None:
    """Tag the model NAME (or one of its versions) with KEY=VALUE."""
    _registry().set_tag(name, key, value, version=version)
    what = f"{name} version {version}" if version is not None else name
    typer.echo(f"tagged {what}: {key}={value}")


@models_app.command("untag")
@_handles_errors
def untag(
    name: Annotated[str, typer.Argument(help="A model name.")],
    key: Annotated[str, typer.Argument(help="Tag key.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Untag this version, not the model.")
    ] = None,
) -> None:
    """Remove tag KEY from the model NAME (or one of its versions)."""
    _registry().remove_tag(name, key, version=version)
    what = f"{name} version {version}" if version is not None else name
    typer.echo(f"removed tag {key} from {what}")
