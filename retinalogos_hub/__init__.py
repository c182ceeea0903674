"""retinalogos-hub: public fundus datasets -> captioned pairs -> text-to-fundus diffusion models on the Hub."""

__version__ = "0.1.0"
