"""Checks that read the source without running it: who may call a write."""
