"""The vfs graph driver: each layer is a complete copy of its parent's tree plus its own
changes. No kernel features, no privileges needed; the slowest to create layers (a copy,
made cheap by reflinks where the filesystem has them)."""
