"""Reading inputs and publishing outputs through fsspec."""
