"""Triton source templates, one module per family; each renders a kernel and its launcher."""
