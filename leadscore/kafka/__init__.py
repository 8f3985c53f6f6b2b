"""The Kafka helpers every area shares: topics' limits and creation, batched produce, dead
letters, and following a compacted topic of published versions. Ground level: they import
no area, so `streams`, `routing` and the areas to come use them alike."""
