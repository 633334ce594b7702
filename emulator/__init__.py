"""sgemu: a live, packet-level emulator of AWS EC2 Security Groups."""

__version__ = "0.1.0"
