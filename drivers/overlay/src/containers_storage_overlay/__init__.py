"""The overlay graph driver: layers as kernel overlayfs (or fuse-overlayfs) stacks, laid
out on disk exactly as upstream containers/storage does."""
