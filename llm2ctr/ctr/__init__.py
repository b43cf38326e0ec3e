"""ctr stage."""
