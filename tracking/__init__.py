"""The MLflow library: runs, metrics, pictures, method models and their comparison."""
