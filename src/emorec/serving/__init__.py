"""Serving the champion over HTTP: `emorec serve` (FastAPI + uvicorn)."""
