"""The pipelines, one subpackage each; the registry finds them by name."""
