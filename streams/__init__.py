"""Stream processing: event sources, ingest, and the stream processor around the scoring core."""
