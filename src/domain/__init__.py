"""The calculator's pure core: exact decimal arithmetic and the events it produces."""
