"""Usage history in PostgreSQL: request rows, their writer, reads, retention, erasure.

The contract (what is stored, the routes, the command line): docs/contracts.md, Usage history
and analytics.

* ``database``: connection settings and a few reusable connections (psycopg 3, async);
* ``migrations``: the versioned schema, applied once whatever the number of processes;
* ``partitions``: the request table's daily partitions, created ahead and dropped by age;
* ``writer``: the bounded in-memory queue of rows and its batched COPY, off the response path;
* ``queries``: the bounded reads behind ``/v1/usage?from=`` and ``/v1/analytics/*``;
* ``maintenance``: partitions ahead and retention, by one process of the fleet at a time; erasure;
* ``service``: what the app holds: all of the above, started and stopped with it;
* ``__main__``: the same operations from the command line (``python -m weather_proxy.history``).
"""
