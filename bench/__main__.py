"""``python -m bench [--only 1,2,3,4,5] [--seconds N]``: run the benchmarks and print their figures."""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import tempfile

from bench import admission, analytics, coalescing, throughput, zipf


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default="1,2,3,4,5", help="comma-separated figures to run (1,2,3,4,5)")
    parser.add_argument(
        "--seconds", type=int, default=5, help="wrk duration per server and round (figures 1 and 5)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating wrk rounds (figure 1)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (figure 1)")
    parser.add_argument("--no-nginx", action="store_true", help="figure 1 without the nginx baseline")
    parser.add_argument("--no-granian", action="store_true", help="figure 1 without the granian servers")
    parser.add_argument("--no-scaling", action="store_true", help="figure 1 without the 1 -> 2 workers run")
    parser.add_argument("--no-https", action="store_true", help="figure 1 without the proxies over HTTPS")
    parser.add_argument(
        "--observability",
        action="store_true",
        help="figure 1 also serves the proxy with tracing on (sample 0.1) and with error tracking on",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="figure 1 also serves the proxy of this git commit, in the same rounds",
    )
    parser.add_argument("--zipf-requests", type=int, default=10_000)
    parser.add_argument("--zipf-ttl", type=int, default=300, help="fresh TTL for figure 3, seconds")
    parser.add_argument("--admission-seconds", type=float, default=75.0, help="load duration of figure 4")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",")}
    print(
        f"weather-proxy bench {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} (figures are only comparable on an otherwise idle machine)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="wpf-bench-") as tmp:
        root = pathlib.Path(tmp)
        if "1" in only:
            print(
                "\n".join(
                    throughput.run(
                        root / "t",
                        seconds=args.seconds,
                        connections=args.connections,
                        rounds=args.rounds,
                        scaling=not args.no_scaling,
                        with_nginx=not args.no_nginx,
                        with_granian=not args.no_granian,
                        against=args.against,
                        with_https=not args.no_https,
                        observability=args.observability,
                    ).lines()
                ),
                flush=True,
            )
        if "2" in only:
            print("\n".join(coalescing.run(root / "c").lines()), flush=True)
        if "3" in only:
            print(
                "\n".join(zipf.run(root / "z", requests=args.zipf_requests, ttl=args.zipf_ttl).lines()),
                flush=True,
            )
        if "4" in only:
            print("\n".join(admission.run(root / "a", seconds=args.admission_seconds).lines()), flush=True)
        if "5" in only:
            figure = analytics.run(
                root / "h", seconds=args.seconds, connections=args.connections, rounds=args.rounds
            )
            print("\n".join(figure.lines()), flush=True)


if __name__ == "__main__":
    main()
