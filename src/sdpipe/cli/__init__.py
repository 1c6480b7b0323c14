"""The ``sdpipe`` command line: a thin layer over the library."""
