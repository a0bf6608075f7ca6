"""Materialize-only statements by family; ``statements`` parses and dispatches them."""
