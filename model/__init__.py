"""Models: registry and loading, the summary-token compressor, prompt assembly, generation."""
