"""Pure renderers: an effective WeatherProxy spec in, the desired child objects (dicts) out.

No I/O, no clock, no randomness: the same input always renders the same objects.
"""
