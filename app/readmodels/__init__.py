"""What every worker holds in memory by tailing a topic: the segment partials and the
latest insights."""
