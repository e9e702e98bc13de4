"""Fast CSV for large tidy frames (a 1,000,000-case `simulate --format csv` sweep): pyarrow's C++ writer
(about 0.4 M rows/s with 27 columns on 2 cores, against ~0.03 M/s for pandas' writer), strings quoted
only where needed, floats at full precision. Falls back to pandas where pyarrow is not installed (the
GPU image)."""

from __future__ import annotations

import sys
from typing import BinaryIO, TextIO

from .safety import neutralise_csv

PYARROW_FROM_ROWS = 20_000  # below this pandas is fast enough and keeps its exact number format


def write_csv(df, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    df = neutralise_csv(df)  # cells starting with = + - @ quoted: no spreadsheet formulas
    if len(df) >= PYARROW_FROM_ROWS:
        try:
            import pyarrow as pa
            import pyarrow.csv as pa_csv
        except ImportError:
            pa = None
        if pa is not None:
            raw: BinaryIO | None = getattr(out, "buffer", None)
            if raw is not None:
                out.flush()
                table = pa.Table.from_pandas(df, preserve_index=False)
                pa_csv.write_csv(table, raw, pa_csv.WriteOptions(quoting_style="needed"))
                raw.flush()
                return
    df.to_csv(out, index=False)
