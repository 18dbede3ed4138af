"""The apply engine: send calls at the region's request rate, then watch everything at once.

protocol.py  the one way to call the Lambda mapping API, and one classification of failures
ordering.py  which change must wait for which (only where AWS needs an order)
watcher.py   every waiting mapping of a region, looked at by shared List sweeps or by Gets
engine.py    the loop: ready calls out, answers in, waits handed to the watcher
"""
