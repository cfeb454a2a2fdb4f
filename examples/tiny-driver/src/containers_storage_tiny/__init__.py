"""An example third-party graph driver: plain directories, one per layer."""
