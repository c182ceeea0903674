"""The offline demo: procedural fundus sources, embedded tiny models, and the end-to-end run."""
