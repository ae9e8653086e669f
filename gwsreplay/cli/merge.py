"""`gwsreplay merge OUT IN1 IN2 ...`: captures of several proxies as one capture."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from gwsreplay.capture.merge import merge
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "merge", help="combine captures of several proxies into one (ids re-based, clocks compared)",
        description="Write the captures IN... into the new capture OUT: ids re-based (in the order given), "
                    "sessions that moved between proxies stitched by their CometD clientId, the clock offset of "
                    "each proxy against the first estimated from shared traffic (the same Bayeux messages, else "
                    "the server's Date headers) and reported; meta.merged_from records the sources.")
    p.add_argument("out", type=Path, help="the merged capture to write (must not exist)")
    p.add_argument("inputs", type=Path, nargs="+", metavar="IN", help="captures to merge (snapshots of live ones)")
    p.add_argument("--align-clocks", action="store_true",
                   help="shift each capture's times onto the first one's clock by the estimated offset")
    return p


def run(args) -> int:
    for p in args.inputs:
        if not p.is_file():
            raise UserError(f"no such capture: {p}")
    if args.out.exists():
        raise UserError(f"{args.out} exists; merge writes a new capture")
    if len({p.resolve() for p in args.inputs}) != len(args.inputs):
        raise UserError("the same capture is given twice")
    try:
        report = merge(args.out, args.inputs, align_clocks=args.align_clocks)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise UserError(f"{exc}; snapshot captures being recorded (`gwsreplay snapshot`) and merge those") from exc
        raise UserError(str(exc)) from exc
    for p in report.sources:
        clock = ("reference clock" if p.clock_method == "reference" else
                 f"clock {p.offset_ms:+.1f} ms ({p.clock_method}, {p.clock_samples} samples)"
                 if p.offset_ms is not None else "clock offset unknown (no shared traffic, no Date headers)")
        print(f"{p.origin}: {p.rows['exchanges']:,} exchanges, {p.rows['bayeux_messages']:,} Bayeux messages, "
              f"ids from +{p.bases['exchanges']:,}/+{p.bases['bayeux_messages']:,}; {clock}")
    aligned = "times shifted onto the first clock" if report.align_clocks else "times as recorded"
    print(f"{report.out}: " + ", ".join(f"{k} {v:,}" for k, v in report.counts.items())
          + f"; {report.stitched_sessions} session keys stitched; {aligned}; {report.seconds:.1f} s")
    return 0
