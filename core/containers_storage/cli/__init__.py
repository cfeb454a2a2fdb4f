"""The ``containers-storage`` command: a drop-in for upstream's tool (spec cli.md).

Start-up speed matters: importing this package loads nothing; :mod:`.main` parses the
command line with :mod:`.flags` and imports only the module of the command it runs.
"""
