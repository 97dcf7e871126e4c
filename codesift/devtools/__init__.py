"""Checks on the repository itself, run in CI: import layering (`python -m codesift.devtools.layers`)
and figures citing their logs (`python -m codesift.devtools.figures`). Nothing in codesift imports them."""
