"""Figure 5 (proxy side): one proxy process holding 10,000 and 50,000 keys.

For each size, the keys sharded and rendered as the operator writes them
(``weather_operator.keyshards``) are loaded by a fresh interpreter that imports the proxy,
so the RSS figures are the process's own: the files' size, the time to load them all,
what one key change costs (its shard parsed again, merged with the others, a new key
ring: what a watch event or a reload costs), the RSS the ring adds, and the time of one
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

from weather_operator import keyshards
from weather_operator.render import keys_secret
from weather_proxy import config as proxy_config

CHILD = r"""
import gc, json, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
from weather_proxy import config
from weather_proxy.auth import keys as keys_mod, keysources
limits = config.RateLimit()
paths = sys.argv[2:]
rings = []
sources = keysources.KeySources(paths, lambda merged: None, lambda: True, apply_ring=rings.append)
gc.collect()
before = rss()
t0 = time.perf_counter()
loaded = [config.load_keys(path) for path in paths]
t1 = time.perf_counter()
for path, part in zip(paths, loaded):
    sources.offer_watch(path, part)
t2 = time.perf_counter()
del loaded
rings[:] = rings[-1:]
gc.collect()
after = rss()
ring = rings[-1]
# One key change: its shard parsed again, merged with the others, a new ring.
t3 = time.perf_counter()
sources.offer_watch(paths[0], config.load_keys(paths[0]))
t4 = time.perf_counter()
presented = sys.argv[1]
n = 100_000
t5 = time.perf_counter()
for _ in range(n):
    ring.authenticate(presented, required=True, limits=limits, client_address="127.0.0.1")
t6 = time.perf_counter()
print(json.dumps({"keys": len(ring), "parseSeconds": t1 - t0, "ringSeconds": (t2 - t1) / len(paths),
                  "changeSeconds": t4 - t3, "rssBytes": after - before, "lookupMicros": (t6 - t5) / n * 1e6}))
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
    """The keys sharded as the operator writes them, loaded by a fresh interpreter."""
    keys, plaintext = keys_file(count)
    shards = keyshards.shard_count(keyshards.size(keys), 1)
    paths = []
    for index, part in enumerate(keyshards.split(keys, shards)):
        path = workdir / f"keys-{count}-{index}.yaml"
        path.write_text(keys_secret.keys_yaml(part))
        paths.append(str(path))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, plaintext, *paths], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out)
    result["fileBytes"] = sum(pathlib.Path(path).stat().st_size for path in paths)
    result["shards"] = shards
    return result


def lines(results: list[dict[str, float]]) -> list[str]:
    out = []
    for r in results:
        out.append(
            f"5. proxy with {int(r['keys']):,} keys in {int(r['shards'])} shard(s) "
            f"({r['fileBytes'] / 2**20:.1f} MiB): load {r['parseSeconds']:.2f} s, "
            f"one key change (its shard re-read, merge, new ring) {r['changeSeconds'] * 1000:.0f} ms, "
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
