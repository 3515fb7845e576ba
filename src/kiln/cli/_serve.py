"""``kiln serve``: the options checked and turned into :class:`kiln.serving.ServeOptions`; the
ready line printed (and flushed) on stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.workspace import Workspace

__all__ = ["serve"]


def serve(
    models: Sequence[str],
    *,
    host: str,
    port: int,
    workers: int,
    token_env: str | None,
    log_predictions: float,
    max_body_bytes: int,
    poll_seconds: float,
    splits: Sequence[str] = (),
) -> None:
    from kiln.serving import ServeOptions
    from kiln.serving import serve as run

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise KilnError(
                f"--token-env {token_env}: the environment variable {token_env} is not set or "
                "empty; export the token in it"
            )

    def announce(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def workspace() -> Workspace | None:
        from kiln.workspace import Workspace

        return Workspace.find()

    run(
        models,
        ServeOptions(
            host=host,
            port=port,
            workers=workers,
            token=token,
            log_rate=log_predictions,
            max_body_bytes=max_body_bytes,
            poll_seconds=poll_seconds,
            splits=tuple(splits),
        ),
        announce=announce,
        workspace_finder=workspace,
    )
