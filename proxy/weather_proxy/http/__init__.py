"""HTTP plumbing: problem details and pure ASGI middleware."""
