"""pandera schemas of the datasets that sdpipe reads, one module per pipeline."""
