"""The FastAPI inference API: serves the champion from the MLflow registry."""
