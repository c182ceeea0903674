"""retinalogos-hub: public fundus datasets -> captioned pairs -> text-to-fundus diffusion models on the Hub."""

__version__ = "0.1.0"

from pathlib import Path as _Path

# recipes/, dataset_cards/ and model_cards/ live at the repository top; `_shipped/` links them into the package so a
# non-editable install (a wheel) carries them too. Library code reads them only through here.
SHIPPED = _Path(__file__).resolve().parent / "_shipped"
