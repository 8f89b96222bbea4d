"""Rows/s writing one 200k-row batch into PostgreSQL: our ingestion (COPY) against
``DataFrame.to_sql`` with its defaults, side by side in one run. Target: >= 5x.

    python bench/ingest.py [--rows 200000] [--repeat 3] [--db-url URL]

The database URL comes from --db-url or MLOPS_BENCH_DB_URL (default: the ``test``
database of the local PostgreSQL that dev and CI machines run). It works in a fresh
schema and drops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--db-url", default=os.environ.get("MLOPS_BENCH_DB_URL", "postgresql://postgres@localhost/test")
    )
    args = parser.parse_args()

    import pandas as pd
    import sqlalchemy as sa

    from mlops_cli.config import normalise_db_url
    from mlops_cli.pipeline.generator import GeneratorConfig, generate_batch
    from mlops_cli.schema import normalise
    from mlops_cli.store.frames import insert_frame
    from mlops_cli.store.tables import metadata, raw_data

    frame = normalise(generate_batch(0, GeneratorConfig(batch_rows=int(args.rows * 1.5))))
    frame = frame.head(args.rows).reset_index(drop=True)
    if len(frame) < args.rows:
        frame = pd.concat([frame] * (args.rows // len(frame) + 1), ignore_index=True).head(args.rows)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_db_url(args.db_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    # Everything below (our COPY included) lands in the scratch schema.
    engine = sa.create_engine(normalise_db_url(args.db_url), connect_args={"options": f"-csearch_path={schema}"})
    try:
        metadata.create_all(engine)
        ours, baseline = [], []
        for _ in range(args.repeat):  # interleaved, so machine noise hits both alike
            start = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(raw_data.delete())
                insert_frame(conn, raw_data, frame.assign(batch=1, round=1))
            ours.append(time.perf_counter() - start)
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}".to_sql_default'))
            start = time.perf_counter()
            frame.assign(batch=1, round=1).to_sql("to_sql_default", engine, schema=schema, index=False)
            baseline.append(time.perf_counter() - start)
        with engine.connect() as conn:
            stored = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".raw_data')).scalar()
        assert stored == len(frame), f"ingestion stored {stored} rows, expected {len(frame)}"
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    ours_s, base_s = statistics.median(ours), statistics.median(baseline)
    ratio = base_s / ours_s
    print(f"rows per batch          {len(frame):>12,}")
    print(f"mlops ingestion (COPY)  {len(frame) / ours_s:>12,.0f} rows/s  (median of {args.repeat}: {ours_s:.2f} s)")
    print(f"DataFrame.to_sql        {len(frame) / base_s:>12,.0f} rows/s  (median of {args.repeat}: {base_s:.2f} s)")
    print(f"ratio                   {ratio:>12.1f}x  (target >= 5x: {'met' if ratio >= 5 else 'NOT met'})")
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
