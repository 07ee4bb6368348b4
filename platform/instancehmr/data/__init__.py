"""Data: record schema, corpus converters, synthetic crowd corpus, shards, training targets."""
