"""Test doubles shared by test modules (put `tests/` on sys.path, then `import fakes`)."""
