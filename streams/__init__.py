"""Stream processing: event sources, ingest, and the Faust processors around the scoring core."""
