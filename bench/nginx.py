"""Figure 1's other baseline: nginx ``proxy_cache`` in front of the proxy, as an operator might put it.

The config is generated per run: one worker process, an ``X-API-Key`` check through a
``map`` of the bench key (nginx has no SHA-256 of its own, so the plaintext is in the
map: acceptable for a loopback benchmark, not for a deployment), ``limit_req`` per key
(set so high that nothing is throttled, as the proxy's limit), and a cache whose hits
never reach the proxy. Debian's ``nginx-light`` has every module this needs.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx

CONFIG = """\
{user}worker_processes 1;
daemon off;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    proxy_cache_path {root}/cache levels=1:2 keys_zone=weather:10m max_size=64m inactive=10m
                     use_temp_path=off;
    map $http_x_api_key $api_key_ok {{
        default 0;
        "{key}" 1;
    }}
    limit_req_zone $http_x_api_key zone=per_key:10m rate={rate}r/s;
    upstream weather_proxy {{
        server 127.0.0.1:{upstream_port};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            if ($api_key_ok = 0) {{
                return 403;
            }}
            limit_req zone=per_key burst={burst} nodelay;
            proxy_pass http://weather_proxy;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache weather;
            proxy_cache_key $uri$is_args$args;
            proxy_cache_valid 200 300s;
            add_header X-Nginx-Cache $upstream_cache_status;
        }}
    }}
}}
"""


def binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    return found


def config(root: pathlib.Path, *, port: int, upstream_port: int, key: str) -> str:
    # Started as root, nginx would run its worker as nobody, which cannot enter our temporary directory.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return CONFIG.format(
        user=user, root=root, port=port, upstream_port=upstream_port, key=key, rate=1_000_000, burst=100_000
    )


@contextlib.contextmanager
def served(root: pathlib.Path, *, port: int, upstream_port: int, key: str) -> Iterator[str]:
    """nginx on ``port`` caching the proxy on ``upstream_port``; yields its base URL once it answers."""
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(config(root, port=port, upstream_port=upstream_port, key=key))
    with (root / "stdout.log").open("wb") as out:
        proc = subprocess.Popen(
            [binary(), "-p", str(root), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    errors = root / "error.log"
                    log = errors.read_text(errors="replace") if errors.exists() else ""
                    raise RuntimeError(f"nginx exited: {log[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(url, timeout=1)
                    break
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(15)
