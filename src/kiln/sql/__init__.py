"""``kiln sql``: BigQuery ML's SQL dialect on a local DuckDB warehouse, training for real.

::

    import kiln.sql

    with kiln.sql.connect() as conn:
        conn.sql("CREATE SCHEMA IF NOT EXISTS bqml")
        conn.sql("CREATE TABLE bqml.penguins AS SELECT * FROM 'penguins.csv'")
        conn.sql(
            "CREATE MODEL bqml.mass OPTIONS(model_type='linear_reg', "
            "input_label_cols=['body_mass_g']) AS SELECT * FROM bqml.penguins "
            "WHERE body_mass_g IS NOT NULL"
        )
        table = conn.sql("SELECT * FROM ML.EVALUATE(MODEL bqml.mass)")   # a pyarrow.Table

Statements are parsed with sqlglot's BigQuery dialect (:mod:`kiln.sql._parse`), queries are
transpiled to DuckDB (:mod:`kiln.sql._dialect`) and run on the workspace's warehouse
(``.kiln/warehouse.duckdb``; a BigQuery dataset is a DuckDB schema). ``CREATE MODEL`` trains with
Kiln's trainers and registers an ordinary registry model named ``dataset.model``; the ``ML.*``
table functions run on it and compose with the rest of the query like tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.sql._engine import Connection, StatementResult, connect
    from kiln.sql._model import HParamCandidates, HParamRange, SqlModel

__all__ = [
    "Connection",
    "HParamCandidates",
    "HParamRange",
    "SqlModel",
    "StatementResult",
    "connect",
]

_EXPORTS = {
    "Connection": "kiln.sql._engine",
    "StatementResult": "kiln.sql._engine",
    "connect": "kiln.sql._engine",
    "HParamCandidates": "kiln.sql._model",
    "HParamRange": "kiln.sql._model",
    "SqlModel": "kiln.sql._model",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
