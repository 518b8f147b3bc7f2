"""Adapters against moto or Stubber; jobs, app, CLI and executor on the in-memory AWS."""
