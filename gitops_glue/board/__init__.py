"""The status board: ``glue status --html DIR``, a static page of what runs where."""
