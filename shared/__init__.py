"""Code all three leadflow services share: events, settings, Kafka and database plumbing."""
