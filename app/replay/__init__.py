"""Replays into a shadow (the same pipeline under another app id) and their comparison with
the live answers: ``faust -A app.main replay|diff|promote`` (``app.commands``)."""
