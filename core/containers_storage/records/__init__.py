"""JSON record files: a generic store (load, reload-if-changed, atomic save) and the
three kinds on it (layers with mount counts, images, containers)."""
