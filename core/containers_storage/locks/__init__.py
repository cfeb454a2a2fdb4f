"""Lock providers: the lock protocol, POSIX fcntl locks (default, shared with upstream)
and portable ``filelock`` locks (not interoperable with upstream)."""
