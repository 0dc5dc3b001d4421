"""The ``jobyard`` command line: a thin layer over :mod:`jobyard.client`."""
