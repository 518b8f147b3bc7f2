"""The model-based test: Hypothesis runs the reconcile job on a changing in-memory AWS."""
