"""User-interface panels."""
