"""Write the demo's data: the Palmer penguins (shipped inside the ``palmerpenguins`` package) as
``penguins.csv`` for training, less 30 rows held out in ``new_penguins.csv`` to predict, as new
data arriving after training would.

    python examples/prepare_demo.py DIR
"""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path

import pyarrow.csv as pacsv

HELD_OUT = 30


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with source.open("rb") as f:
        table = pacsv.read_csv(
            f, convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
        )
    # every 11th row is held out: a spread over species, islands and years
    keep = [i % 11 != 5 for i in range(table.num_rows)]
    held = [not k for k in keep][: table.num_rows]
    train, new = table.filter(keep), table.filter(held).slice(0, HELD_OUT)
    pacsv.write_csv(train, folder / "penguins.csv")
    pacsv.write_csv(new, folder / "new_penguins.csv")
    print(
        f"{folder}/penguins.csv: {train.num_rows} rows; {folder}/new_penguins.csv: {new.num_rows}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"))
