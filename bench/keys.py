"""Figure 5 (proxy side): one proxy process holding 10,000 and 50,000 keys.

For each size, a keys.yaml as the operator renders it (``weather_operator.render.keys_secret``)
is loaded by a fresh interpreter that imports the proxy, so the RSS figures are the
process's own: the file's size, the time to parse and validate it, the time to build
the key ring from it (what a hot reload costs), the RSS the ring adds, and the time of one
lookup (hash of the presented key + dict lookup + checks), which must not grow with the
number of keys.

``python -m bench.keys [--sizes 10000,50000]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

from weather_operator.render import keys_secret
from weather_proxy import config as proxy_config

CHILD = r"""
import gc, json, resource, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
from weather_proxy import config
from weather_proxy.auth import keys as keys_mod
limits = config.RateLimit()
gc.collect()
before = rss()
t0 = time.perf_counter()
loaded = config.load_keys(sys.argv[1])
t1 = time.perf_counter()
ring = keys_mod.KeyRing(loaded)
t2 = time.perf_counter()
del loaded
gc.collect()
after = rss()
presented = sys.argv[2]
n = 100_000
t3 = time.perf_counter()
for _ in range(n):
    ring.authenticate(presented, required=True, limits=limits, client_address="127.0.0.1")
t4 = time.perf_counter()
print(json.dumps({"keys": len(ring), "parseSeconds": t1 - t0, "ringSeconds": t2 - t1,
                  "rssBytes": after - before, "lookupMicros": (t4 - t3) / n * 1e6}))
"""


def keys_file(count: int) -> tuple[proxy_config.KeysFile, str]:
    """``count`` keys like a fleet's (one in five with its own limit); the plaintext of the last."""
    entries = []
    plaintext = ""
    for i in range(count):
        plaintext = f"wpk_bench_{i:08d}"
        limit = proxy_config.Limit(requests_per_minute=600, burst=60) if i % 5 == 0 else None
        entries.append(
            proxy_config.KeyEntry(
                id=f"tenants/key-{i:06d}",
                sha256=hashlib.sha256(plaintext.encode()).hexdigest(),
                rate_limit=limit,
            )
        )
    return proxy_config.KeysFile(keys=entries), plaintext


def measure(workdir: pathlib.Path, count: int) -> dict[str, float]:
    keys, plaintext = keys_file(count)
    path = workdir / f"keys-{count}.yaml"
    path.write_text(keys_secret.keys_yaml(keys))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), plaintext], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out)
    result["fileBytes"] = path.stat().st_size
    return result


def lines(results: list[dict[str, float]]) -> list[str]:
    out = []
    for r in results:
        out.append(
            f"5. proxy with {int(r['keys']):,} keys: keys.yaml {r['fileBytes'] / 2**20:.1f} MiB, "
            f"parse + validate {r['parseSeconds']:.2f} s, ring {r['ringSeconds'] * 1000:.0f} ms, "
            f"RSS +{r['rssBytes'] / 2**20:.0f} MiB, lookup {r['lookupMicros']:.1f} us"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.keys", description=__doc__)
    parser.add_argument("--sizes", default="10000,50000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wpf-bench-keys-") as tmp:
        results = [measure(pathlib.Path(tmp), int(size)) for size in args.sizes.split(",")]
    print("\n".join(lines(results)), flush=True)


if __name__ == "__main__":
    main()
