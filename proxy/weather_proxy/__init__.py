"""Weather proxy: the FastAPI service a fleet's pods run."""
