"""In-process adapters: the embedded defaults for one process, and fakes for tests."""
